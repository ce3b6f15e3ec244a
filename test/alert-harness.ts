// Shared by the alert-engine test files: frames built by hand (validated shape, no protobuf) and
// an engine on an injected clock (no timer: tests call tick()).
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { onTestFinished } from 'vitest'
import { VITAL_SIGNS, type Assessment, type Frame } from '../decoders/index.js'
import { AlertEngine, type AlertEngineOptions, type AlertEvent, type AlertKind } from '../streams/alerts/index.js'

export const T0 = 1_700_000_000_000
export const SIGN = Object.fromEntries(VITAL_SIGNS.map(s => [s.field, s.sign]))
/** Numerics that score 0 in NEWS2 (so only what a test changes can alert). */
export const NORMAL = { heart_rate: 72, respiratory_rate: 16, spo2: 97, supplemental_o2: 0, nibp_systolic: 125, consciousness_acvpu: 0, temperature: 36.8 }

export interface FrameSpec {
  unit?: string
  t: number
  /** The frame's seq (default: its capture time, so seq and clock agree). */
  seq?: number
  encounter?: string
  boot?: string
  numerics?: Record<string, number>
  alarms?: Array<{ code: string, priority: number, text?: string, ended?: boolean }>
  /** Fields given are sent (present); the others are left out (contract v1.1: unchanged). */
  assessment?: Partial<Omit<Assessment, 'present'>>
  encounterEnded?: boolean
  waveforms?: boolean
}

export function frame (s: FrameSpec): Frame {
  return {
    unitId: s.unit ?? 'amb-1',
    bootId: s.boot ?? 'boot-1',
    seq: String(s.seq ?? s.t),
    capturedAtMs: s.t,
    encounterId: s.encounter ?? 'enc-1',
    encounterEnded: s.encounterEnded ?? false,
    numerics: Object.entries(s.numerics ?? {}).map(([f, value]) => ({ sign: SIGN[f]!, value, offsetMs: 0 })),
    waveforms: s.waveforms === true ? [{ lead: 2, sampleRateHz: 500, microvoltsPerLsb: 1, offsetMs: 0, samples: [0, 1, 2] }] : [],
    position: null,
    alarms: (s.alarms ?? []).map(a => ({ code: a.code, priority: a.priority, text: a.text ?? '', offsetMs: 0, ended: a.ended ?? false })),
    assessment: s.assessment === undefined ? null : assessment(s.assessment),
    byteLength: 100
  }
}

/** An assessment carrying exactly the given fields (the rest absent: "unchanged"). */
export function assessment (a: Partial<Omit<Assessment, 'present'>>): Assessment {
  const has = (k: keyof typeof a): boolean => a[k] !== undefined
  return {
    present: { stemiSuspected: has('stemiSuspected'), lamsScore: has('lamsScore'), fastPositive: has('fastPositive'), lastKnownWellMs: has('lastKnownWellMs'), ageYears: has('ageYears'), sex: has('sex') },
    stemiSuspected: a.stemiSuspected ?? false,
    lamsScore: a.lamsScore ?? 0,
    fastPositive: a.fastPositive ?? false,
    lastKnownWellMs: a.lastKnownWellMs ?? 0,
    ageYears: a.ageYears ?? 0,
    sex: a.sex ?? ''
  }
}

export interface Harness {
  engine: AlertEngine
  events: AlertEvent[]
  clock: { now: number }
  /** Events of a kind (and type). */
  of: (kind: AlertKind, type?: AlertEvent['type']) => AlertEvent[]
  /** One frame per second of sample time in [from, to], gateway clock = sample time. */
  feed: (from: number, to: number, numerics: Record<string, number>, over?: Partial<FrameSpec>) => void
}

export async function harness (opts: Partial<AlertEngineOptions> = {}): Promise<Harness> {
  const clock = { now: T0 }
  const engine = await AlertEngine.open({ tickIntervalMs: 0, now: () => clock.now, ...opts })
  onTestFinished(() => engine.close())
  const events: AlertEvent[] = []
  engine.on('alert', e => { events.push(e) })
  return {
    engine,
    events,
    clock,
    of: (kind, type) => events.filter(e => e.alert.kind === kind && (type === undefined || e.type === type)),
    feed: (from, to, numerics, over = {}) => {
      for (let t = from; t <= to; t += 1000) {
        clock.now = t
        engine.onFrame(frame({ t, numerics: { ...NORMAL, ...numerics }, ...over }), t)
      }
    }
  }
}

export async function tempDir (): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'ambulink-alerts-'))
  onTestFinished(() => rm(dir, { recursive: true, force: true }))
  return dir
}

