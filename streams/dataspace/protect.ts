/**
 * What a permit's protection does to one record, the same for extracts and the live stream.
 *
 * Pseudonyms: HMAC-SHA256 under a key derived (HKDF) from the holder secret and the permit id,
 * so two permits see unrelated pseudonyms for one encounter and only the holder, who keeps the
 * secret, can recompute or reverse them (EHDS Art. 66(3)). Level anonymised also derives a time
 * shift per encounter, and generalises the quasi-identifiers (ages in bands, positions on a
 * ~1 km grid, sex reduced to a closed vocabulary).
 *
 * The extract and the live stream of one permit use different keys: a live client sees data
 * arrive in real time and could work out an encounter's shift from the arrival times; with
 * separate keys that knowledge does not carry over to the extracts' pseudonyms and shifts (the
 * exact values themselves still can: see the threat model in docs/dataspace.md).
 */
import { createHmac, hkdfSync } from 'node:crypto'
import type { DataspaceOptions } from './options.js'
import type { Permit, ProtectionLevel } from './permit.js'

export type Channel = 'extract' | 'live'
export type Sex = 'female' | 'male' | 'other' | 'unknown'

type GeneraliseOptions = Pick<DataspaceOptions, 'maxShiftDays' | 'ageBandYears' | 'topAgeYears' | 'cellDegrees'>

const CACHE_MAX = 50_000
const DAY_S = 86_400

function deriveKey (secret: Buffer, permitId: string, use: string, scope: string): Buffer {
  return Buffer.from(hkdfSync('sha256', secret, Buffer.from(permitId, 'utf8'), `ambulink/dataspace/v1/${use}/${scope}`, 32))
}

/** First 16 bytes of a MAC as an RFC 9562 UUID version 8 (custom), so FHIR can use urn:uuid. */
function uuid8 (mac: Buffer): string {
  const b = Buffer.from(mac.subarray(0, 16))
  b[6] = (b[6]! & 0x0f) | 0x80
  b[8] = (b[8]! & 0x3f) | 0x80
  const h = b.toString('hex')
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`
}

export class Protector {
  readonly level: ProtectionLevel
  private readonly pseudonymKey: Buffer
  private readonly shiftKey: Buffer
  private readonly perEncounter = new Map<string, { subject: string, shiftUs: number }>()

  constructor (holderSecret: Buffer, permit: Pick<Permit, 'id' | 'level'>, channel: Channel, private readonly o: GeneraliseOptions) {
    this.level = permit.level
    // Keys per channel at every level (item 7): a live pseudonym never equals an extract's. At
    // level pseudonymised the real times link them anyway; that level promises no unlinkability.
    const scope = channel
    this.pseudonymKey = deriveKey(holderSecret, permit.id, 'pseudonym', scope)
    this.shiftKey = deriveKey(holderSecret, permit.id, 'time-shift', scope)
  }

  private encounter (encounter: string): { subject: string, shiftUs: number } {
    let e = this.perEncounter.get(encounter)
    if (e === undefined) {
      if (this.perEncounter.size >= CACHE_MAX) this.perEncounter.clear()
      const subject = uuid8(createHmac('sha256', this.pseudonymKey).update('encounter\0').update(encounter).digest())
      let shiftUs = 0
      if (this.level !== 'pseudonymised') {
        // Uniform to the microsecond within ±maxShiftDays (issue #10, item 5: a shift in whole
        // seconds keeps the sub-second part of every real instant). Every interval within the
        // encounter is unchanged; only the encounter's position in time moves. 64 bits modulo a
        // span of ~3.1e13 µs: the modulo bias is below 2e-6.
        const half = BigInt(this.o.maxShiftDays * DAY_S) * 1_000_000n
        const r = createHmac('sha256', this.shiftKey).update(encounter).digest().readBigUInt64BE(0)
        shiftUs = Number(r % (2n * half + 1n) - half)
      }
      e = { subject, shiftUs }
      this.perEncounter.set(encounter, e)
    }
    return e
  }

  /** The encounter's pseudonym under this permit (a UUID). */
  subject (encounter: string): string { return this.encounter(encounter).subject }

  /** Microseconds to add to the encounter's timestamps (0 at level pseudonymised; at aggregated it only places the encounter for shifted windows). */
  shiftUs (encounter: string): number { return this.encounter(encounter).shiftUs }

  /** Pseudonym for another identifier (an alert's id), in the same key space. */
  ref (kind: string, id: string): string {
    return uuid8(createHmac('sha256', this.pseudonymKey).update(kind).update('\0').update(id).digest())
  }

  /** Age as released: exact at pseudonymised, a band at anonymised; null/`unknown` when not known. */
  age (years: number | null): number | string | null {
    // proto3 cannot tell 0 from unset, and a newborn in a stroke/cardiac ambulance is rarer than
    // a paramedic who did not enter an age: 0 reads as unknown.
    const known = years !== null && Number.isFinite(years) && years > 0
    if (this.level === 'pseudonymised') return known ? years : null
    // Bands at level anonymised and aggregated.
    if (!known) return 'unknown'
    return ageBand(years, this.o.ageBandYears, this.o.topAgeYears)
  }

  /** Sex reduced to a closed vocabulary at every level: the stored value is typed free text. */
  sex (raw: string | null): Sex { return normaliseSex(raw) }

  /** The ~1 km cell a position falls in, as its centre (level anonymised). */
  cell (lat: number, lon: number): { lat: number, lon: number, key: string } {
    return coarsen(lat, lon, this.o.cellDegrees)
  }
}

export function ageBand (years: number, width: number, top: number): string {
  if (years >= top) return `${top}+`
  const lo = Math.floor(years / width) * width
  return `${lo}-${lo + width - 1}`
}

export function normaliseSex (raw: string | null): Sex {
  const s = (raw ?? '').trim().toLowerCase()
  if (s === '' || s === 'u' || s === 'unknown') return 'unknown'
  if (s === 'm' || s === 'male' || s === 'man') return 'male'
  if (s === 'f' || s === 'female' || s === 'woman' || s === 'w') return 'female'
  return 'other'
}

/**
 * Snaps a position to a grid of `step` degrees of latitude, with the longitude step widened by
 * 1/cos(latitude) so cells stay about square (0.01° ≈ 1.1 km). Returns the cell's centre.
 */
export function coarsen (lat: number, lon: number, step: number): { lat: number, lon: number, key: string } {
  const li = Math.floor(lat / step)
  const centreLat = (li + 0.5) * step
  const lonStep = step / Math.max(Math.cos(centreLat * Math.PI / 180), 0.01)
  const lo = Math.floor(lon / lonStep)
  const centreLon = (lo + 0.5) * lonStep
  return { lat: round4(centreLat), lon: round4(centreLon), key: `${li}:${lo}` }
}

function round4 (v: number): number { return Math.round(v * 1e4) / 1e4 }

/** RFC 3339 with microseconds (ECG sample instants need them; Date has only ms). */
export function formatUs (us: number): string {
  const ms = Math.floor(us / 1000)
  const micro = us - ms * 1000
  return new Date(ms).toISOString().slice(0, 23) + String(micro).padStart(3, '0') + 'Z'
}
