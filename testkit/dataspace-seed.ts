// Seed data for the dataspace tests: realistic unit, boot and encounter ids, demographics chosen
// so that k-anonymity (k = 5) keeps two classes and suppresses one encounter, free text in device
// alarms, and one frame before an encounter was assigned. Everything here is what must NOT leave
// the gateway through the dataspace (see IDENTIFIERS).
import mqtt from 'mqtt'
import { encodeFrame, type FrameInit } from '../decoders/index.js'

export const UNITS = ['AMB-LYON-07', 'AMB-LYON-12', 'SAMU69-VSAV-3'] as const
export const BOOTS: Record<string, string> = { 'AMB-LYON-07': 'boot-7f3a91c2', 'AMB-LYON-12': 'boot-e41d0b77', 'SAMU69-VSAV-3': 'boot-0c55aa19' }
export const ALARM_CODE = 'ASYSTOLE-X9'
export const ALARM_TEXT = 'Pt Jean Dupont unresponsive, wife Marie on scene'

export interface SeedEncounter {
  index: number
  id: string
  unit: string
  age: number
  sex: string
  startMs: number
  /** Its last frame is at a place no other encounter but one goes (a position cell below k). */
  far: boolean
}

export const FRAMES_PER_ENCOUNTER = 4
/** Two vitals instants per frame (offsets 0 and 1000 ms). */
export const VITALS_PER_ENCOUNTER = FRAMES_PER_ENCOUNTER * 2
export const ECG_SAMPLES = 10
export const ECG_LEADS = 3

const MALE_AGES = [71, 72, 74, 75, 77, 79]
const FEMALE_AGES = [61, 63, 65, 66, 68]

export function seedEncounters (t0: number): SeedEncounter[] {
  const ages: Array<[number, string]> = [...MALE_AGES.map((a): [number, string] => [a, 'M']), ...FEMALE_AGES.map((a): [number, string] => [a, 'F']), [97, 'F']]
  return ages.map(([age, sex], index) => ({
    index,
    id: `ENC-2025-00${48211 + index * 37}`,
    unit: UNITS[index % UNITS.length]!,
    age,
    sex,
    startMs: t0 + index * 20_000,
    far: index === 1 || index === 2
  }))
}

/** Heart rate of frame `i` of encounter `e` (unique: the tests recover the encounter from it). */
export function heartRate (e: number, i: number): number { return 50 + e * 5 + i }

export function frameTime (enc: SeedEncounter, i: number): number { return enc.startMs + i * 2000 }

export function encounterFrame (enc: SeedEncounter, i: number, seq: number): Uint8Array {
  const hr = heartRate(enc.index, i)
  const last = i === FRAMES_PER_ENCOUNTER - 1
  const init: FrameInit = {
    unitId: enc.unit,
    bootId: BOOTS[enc.unit]!,
    seq,
    capturedAtMs: frameTime(enc, i),
    encounterId: enc.id,
    numerics: [
      { sign: 1, value: hr, offsetMs: 0 },
      { sign: 3, value: 96, offsetMs: 0 },
      { sign: 7, value: 18, offsetMs: 0 },
      { sign: 4, value: 135, offsetMs: 0 },
      { sign: 9, value: 37.2, offsetMs: 0 },
      { sign: 11, value: 1, offsetMs: 0 },
      { sign: 1, value: hr + 0.5, offsetMs: 1000 }
    ],
    position: last && enc.far
      ? { latitude: 45.9012, longitude: 5.1034, speedMps: 0, headingDeg: 0, offsetMs: 0 }
      : { latitude: 45.7501 + i * 0.0003, longitude: 4.8501 + i * 0.0003, speedMps: 12.5, headingDeg: 80, offsetMs: 0 },
    waveforms: Array.from({ length: ECG_LEADS }, (_, l) => ({
      lead: l + 1, sampleRateHz: 500, microvoltsPerLsb: 1, offsetMs: 0,
      samples: Array.from({ length: ECG_SAMPLES }, (_, s) => (s * 31 + l * 7 + i) % 200 - 100)
    })),
    ...(i === 0
      ? { assessment: { stemiSuspected: enc.index % 4 === 0, lamsScore: 2, fastPositive: false, lastKnownWellMs: enc.startMs - 3_600_000, ageYears: enc.age, sex: enc.sex } }
      : {}),
    ...(i === 1 ? { alarms: [{ code: ALARM_CODE, priority: 3, text: ALARM_TEXT, offsetMs: 0 }] } : {})
  }
  return encodeFrame(init)
}

/** A frame from before dispatch assigned an encounter. */
export function unassignedFrame (unit: string, t: number, seq: number): Uint8Array {
  return encodeFrame({
    unitId: unit, bootId: BOOTS[unit]!, seq, capturedAtMs: t, encounterId: '',
    numerics: [{ sign: 1, value: 88, offsetMs: 0 }, { sign: 1, value: 89, offsetMs: 1000 }]
  })
}

/** Every identifier and free text of the seed: none may appear in any dataspace output. */
export function identifiers (encounters: SeedEncounter[], extra: string[] = []): string[] {
  return [...UNITS, ...Object.values(BOOTS), ...encounters.map(e => e.id), ALARM_CODE, ALARM_TEXT, 'Jean Dupont', 'Marie', ...extra]
}

/** Publishes every seed frame through mqtt.js, one client per unit, QoS 1, in time order. */
export async function publishSeed (mqttUrl: string, tokens: Record<string, string>, encounters: SeedEncounter[], t0: number): Promise<number> {
  let frames = 0
  await Promise.all(UNITS.map(async unit => {
    const client = await mqtt.connectAsync(mqttUrl, { username: unit, password: tokens[unit], clientId: unit, reconnectPeriod: 0 })
    try {
      let seq = 1
      if (unit === UNITS[0]) {
        await client.publishAsync(`units/${unit}/telemetry`, Buffer.from(unassignedFrame(unit, t0 - 60_000, seq++)), { qos: 1 })
        frames++
      }
      for (const enc of encounters.filter(e => e.unit === unit)) {
        for (let i = 0; i < FRAMES_PER_ENCOUNTER; i++) {
          await client.publishAsync(`units/${unit}/telemetry`, Buffer.from(encounterFrame(enc, i, seq++)), { qos: 1 })
          frames++
        }
      }
    } finally {
      await client.endAsync()
    }
  }))
  return frames
}
