/** Decoder limits, with their defaults. The gateway's config table reads these; keep one copy. */
export interface DecoderOptions {
  /** Largest frame accepted, in bytes (a 250 ms 12-lead 500 Hz frame is ~4 KiB). */
  maxFrameBytes: number
  /** How far device time may lie ahead of the gateway clock, in ms (clock skew). */
  maxFutureSkewMs: number
  /** How old device time may be, in ms (store-and-forward after a long outage). */
  maxPastAgeMs: number
  /** Longest waveform span one frame may carry, in ms. */
  maxWaveformSpanMs: number
}

export const DECODER_DEFAULTS: Readonly<DecoderOptions> = Object.freeze({
  maxFrameBytes: 1024 * 1024,
  maxFutureSkewMs: 5 * 60_000,
  maxPastAgeMs: 7 * 24 * 3_600_000,
  maxWaveformSpanMs: 60_000
})

/** Plausibility limits that are part of the contract rather than tunables. */
export const LIMITS = Object.freeze({
  /** unit, boot and encounter ids: tag-safe, no escaping needed anywhere downstream. */
  idPattern: /^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$/,
  minSampleRateHz: 50,
  maxSampleRateHz: 2000,
  maxMicrovoltsPerLsb: 1000,
  /** |ECG| beyond 32 mV is not physiological (pacing spikes included) */
  maxAbsMicrovolts: 32_000,
  maxOffsetMs: 3_600_000,
  maxAlarmCodeLength: 64,
  maxAlarmTextLength: 512,
  maxSpeedMps: 120,
  maxAgeYears: 130,
  maxLams: 5,
  /** (v1.1) EcgInterpretation: statement length, and the plausible |ST deviation|, µV (5 mV). */
  maxStatementLength: 512,
  maxAbsStMicrovolts: 5000
})
