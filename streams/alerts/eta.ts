/**
 * Distance and expected arrival at the receiving hospital, on the server, for the stroke alert's
 * windows at arrival (AHA/ASA 2019: thrombolysis ≤ 4.5 h, thrombectomy ≤ 24 h from last known
 * well). The same estimate as the dashboard's (dashboard/src/format.ts, which as browser code
 * cannot import this file): keep the two in step.
 */
import type { WirePosition } from '../../decoders/index.js'

export interface HospitalSite { latitude: number, longitude: number }

const R = 6_371_000
const RAD = Math.PI / 180
/**
 * Urban roads are ~1.3× the straight line (detour index of European cities), and an ambulance
 * under lights averages ~12 m/s there; the current speed alone is useless at a red light. So the
 * ETA is road distance over the average of the assumed and current speeds, bounded below.
 */
const DETOUR = 1.3
const ASSUMED_MPS = 12

/** Great-circle distance, metres (haversine). */
export function distanceM (lat1: number, lon1: number, lat2: number, lon2: number): number {
  const dLat = (lat2 - lat1) * RAD
  const dLon = (lon2 - lon1) * RAD
  const a = Math.sin(dLat / 2) ** 2 + Math.cos(lat1 * RAD) * Math.cos(lat2 * RAD) * Math.sin(dLon / 2) ** 2
  return 2 * R * Math.asin(Math.min(1, Math.sqrt(a)))
}

export function etaSeconds (distance: number, speedMps: number): number {
  const v = Math.max(6, (ASSUMED_MPS + Math.min(speedMps, 30)) / 2)
  return distance * DETOUR / v
}

/** Expected arrival (sample-time Unix ms) of a unit at `p`, taken at sample time `t`. */
export function etaAt (site: HospitalSite, p: WirePosition, t: number): number {
  return t + Math.round(etaSeconds(distanceM(p.latitude, p.longitude, site.latitude, site.longitude), p.speedMps) * 1000)
}
