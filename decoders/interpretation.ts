/**
 * (v1.1) The device's 12-lead interpretation, TelemetryFrame.interpretation (field 11):
 * its statement, the ST deviation per lead at J+60 ms, and the rhythm flags under which ST
 * criteria do not apply (LBBB, paced). Validated whole, like the rest of the frame.
 */
import { FrameError } from './errors.js'
import { LIMITS } from './options.js'
import type { WireInterpretation } from './schema.js'
import { LEAD_FIELDS } from './vitals.js'

export interface StDeviation {
  /** Lead enum number (1 = I … 12 = V6). */
  lead: number
  /** + elevation, − depression, µV at J+60 ms against the PR baseline (100 µV = 1 mm). */
  microvolts: number
}

export interface EcgInterpretation {
  statement: string
  /** At most one per lead, in the order the device sent them. */
  stDeviations: StDeviation[]
  lbbb: boolean
  paced: boolean
  /** End of the analysed ECG, from captured_at_ms. */
  offsetMs: number
}

/** Checks an interpretation; throws a coded FrameError naming the first bad value. */
export function validateInterpretation (w: WireInterpretation): EcgInterpretation {
  const statement = w.statement ?? ''
  if (statement.length > LIMITS.maxStatementLength) {
    throw new FrameError('AMB_ERR_FIELD_INVALID', `interpretation.statement longer than ${LIMITS.maxStatementLength}`)
  }
  // Control characters would let a device forge lines in logs and alert messages.
  // eslint-disable-next-line no-control-regex
  if (/[\u0000-\u001f\u007f]/.test(statement)) throw new FrameError('AMB_ERR_FIELD_INVALID', 'interpretation.statement contains control characters')
  const offsetMs = w.offsetMs ?? 0
  if (offsetMs < -LIMITS.maxOffsetMs || offsetMs > LIMITS.maxOffsetMs) {
    throw new FrameError('AMB_ERR_VALUE_OUT_OF_RANGE', `interpretation: offset_ms ${offsetMs} outside ±${LIMITS.maxOffsetMs}`)
  }
  const st: StDeviation[] = []
  let seen = 0
  const list = w.stDeviations ?? []
  for (let i = 0; i < list.length; i++) {
    const d = list[i]!
    const lead = d.lead ?? 0
    const field = LEAD_FIELDS[lead]
    if (lead === 0 || field === undefined) throw new FrameError('AMB_ERR_FIELD_INVALID', `interpretation.st_deviations[${i}].lead ${lead} is not a known Lead`)
    if ((seen & (1 << lead)) !== 0) throw new FrameError('AMB_ERR_FIELD_INVALID', `interpretation.st_deviations: lead ${field} appears twice`)
    seen |= 1 << lead
    const uv = d.microvolts ?? 0
    if (!(Math.abs(uv) <= LIMITS.maxAbsStMicrovolts)) {
      throw new FrameError('AMB_ERR_VALUE_OUT_OF_RANGE', `interpretation.st_deviations[${i}] (${field}) ${uv} µV beyond ±${LIMITS.maxAbsStMicrovolts} µV`)
    }
    st.push({ lead, microvolts: uv })
  }
  return { statement, stDeviations: st, lbbb: w.lbbb === true, paced: w.paced === true, offsetMs }
}
