/** Display helpers: distances, ETA, ages, and the formatting of each vital sign. */
import type { TrendSign } from '../../streams/live/protocol.js'

const R = 6_371_000
const RAD = Math.PI / 180

export function distanceM (lat1: number, lon1: number, lat2: number, lon2: number): number {
  const dLat = (lat2 - lat1) * RAD
  const dLon = (lon2 - lon1) * RAD
  const a = Math.sin(dLat / 2) ** 2 + Math.cos(lat1 * RAD) * Math.cos(lat2 * RAD) * Math.sin(dLon / 2) ** 2
  return 2 * R * Math.asin(Math.min(1, Math.sqrt(a)))
}

/**
 * Urban roads are ~1.3× the straight line (detour index of European cities), and an ambulance
 * under lights averages ~12 m/s there; the current speed alone is useless at a red light. So the
 * ETA is road distance over the average of the assumed and current speeds, bounded below.
 */
const DETOUR = 1.3
const ASSUMED_MPS = 12

export function etaSeconds (distance: number, speedMps: number): number {
  const road = distance * DETOUR
  const v = Math.max(6, (ASSUMED_MPS + Math.min(speedMps, 30)) / 2)
  return road / v
}

export function km (m: number): string { return m < 1000 ? `${Math.round(m / 10) * 10} m` : `${(m / 1000).toFixed(1)} km` }

export function minutes (s: number): string {
  if (s < 60) return '< 1 min'
  if (s < 3600) return `~${Math.round(s / 60)} min`
  return `${Math.floor(s / 3600)} h ${Math.round((s % 3600) / 60)} min`
}

export function ago (ms: number): string {
  const s = Math.max(0, Math.round(ms / 1000))
  if (s < 60) return `${s} s ago`
  if (s < 3600) return `${Math.floor(s / 60)} min ago`
  return `${Math.floor(s / 3600)} h ago`
}

export function hm (ms: number): string {
  const m = Math.floor(ms / 60_000)
  return `${Math.floor(m / 60)} h ${String(m % 60).padStart(2, '0')} min`
}

export function clock (t: number): string {
  return new Date(t).toLocaleTimeString([], { hour: '2-digit', minute: '2-digit', second: '2-digit' })
}

export interface SignFormat { label: string, unit: string, digits: number }

export const SIGN_FORMAT: Readonly<Record<TrendSign, SignFormat>> = {
  heart_rate: { label: 'HR', unit: 'bpm', digits: 0 },
  pulse_rate: { label: 'PR', unit: 'bpm', digits: 0 },
  spo2: { label: 'SpO₂', unit: '%', digits: 0 },
  nibp_systolic: { label: 'SYS', unit: 'mmHg', digits: 0 },
  nibp_diastolic: { label: 'DIA', unit: 'mmHg', digits: 0 },
  nibp_mean: { label: 'MAP', unit: 'mmHg', digits: 0 },
  respiratory_rate: { label: 'RR', unit: '/min', digits: 0 },
  etco2: { label: 'EtCO₂', unit: 'mmHg', digits: 0 },
  temperature: { label: 'Temp', unit: '°C', digits: 1 },
  consciousness_acvpu: { label: 'ACVPU', unit: '', digits: 0 },
  supplemental_o2: { label: 'O₂', unit: '', digits: 0 }
}

const ACVPU = ['A', 'C', 'V', 'P', 'U']

export function formatValue (sign: TrendSign, v: number): string {
  if (sign === 'consciousness_acvpu') return ACVPU[Math.round(v)] ?? '?'
  if (sign === 'supplemental_o2') return v >= 1 ? 'O₂' : 'Air'
  return v.toFixed(SIGN_FORMAT[sign].digits)
}
