/**
 * Where the ambulance is: it drives a route of waypoints that ends at the receiving hospital, at
 * urban emergency speeds, slowing for turns, then stays parked at the door (speed 0).
 *
 * Default destination: Groupement Hospitalier Est in Bron (Lyon), the campus that houses both
 * the cardiology hospital Louis Pradel (primary PCI for STEMI) and the neurology hospital Pierre
 * Wertheimer (stroke thrombectomy). Coordinates are approximate (to ~100 m) and the waypoints
 * follow main roads only loosely: this is a map marker for a dashboard, not navigation.
 */
import type { Rng } from './rng.js'

export interface GeoPoint { latitude: number, longitude: number }

export interface Route {
  name: string
  /** Name of the place the last waypoint stands for. */
  destination: string
  /** At least two points; the last one is the hospital. */
  waypoints: readonly GeoPoint[]
}

export interface PositionFix extends GeoPoint {
  speedMps: number
  /** Course over ground, degrees clockwise from true north, 0..360. */
  headingDeg: number
}

export const HOSPITAL_GHE_BRON: Readonly<GeoPoint & { name: string }> = Object.freeze({
  name: 'Groupement Hospitalier Est (Louis Pradel / Pierre Wertheimer), Bron',
  latitude: 45.7440,
  longitude: 4.9055
})

const p = (latitude: number, longitude: number): GeoPoint => ({ latitude, longitude })
const GHE = p(HOSPITAL_GHE_BRON.latitude, HOSPITAL_GHE_BRON.longitude)

export const LYON_ROUTES: readonly Route[] = Object.freeze([
  {
    name: 'Bellecour - Guillotière - Monplaisir - Grange Blanche - GHE',
    destination: HOSPITAL_GHE_BRON.name,
    waypoints: [p(45.7578, 4.8320), p(45.7560, 4.8370), p(45.7544, 4.8430), p(45.7530, 4.8530),
      p(45.7455, 4.8705), p(45.7430, 4.8795), p(45.7420, 4.8960), GHE]
  },
  {
    name: 'Croix-Rousse - Charpennes - Villeurbanne - Bd Laurent Bonnevay - GHE',
    destination: HOSPITAL_GHE_BRON.name,
    waypoints: [p(45.7743, 4.8320), p(45.7705, 4.8430), p(45.7705, 4.8630), p(45.7705, 4.8800),
      p(45.7640, 4.9030), p(45.7520, 4.9050), GHE]
  },
  {
    name: 'Vénissieux - États-Unis - Bd Pinel - Parilly - GHE',
    destination: HOSPITAL_GHE_BRON.name,
    waypoints: [p(45.6975, 4.8860), p(45.7120, 4.8880), p(45.7240, 4.8760), p(45.7300, 4.8950),
      p(45.7370, 4.9050), GHE]
  },
  {
    name: 'Vaulx-en-Velin - Bd Laurent Bonnevay - GHE',
    destination: HOSPITAL_GHE_BRON.name,
    waypoints: [p(45.7780, 4.9200), p(45.7680, 4.9150), p(45.7590, 4.9090), p(45.7510, 4.9070), GHE]
  }
])

const EARTH_RADIUS_M = 6_371_000
const RAD = Math.PI / 180
/** Urban emergency driving: cruise around 13 m/s (47 km/h), never above 22 m/s (80 km/h). */
const CRUISE_MPS = 13
const MAX_MPS = 22
const MIN_MPS = 3
/** Within this distance of a waypoint the driver slows for the turn. */
const TURN_ZONE_M = 80
const TURN_MPS = 7

export function distanceM (a: GeoPoint, b: GeoPoint): number {
  const dLat = (b.latitude - a.latitude) * RAD
  const dLon = (b.longitude - a.longitude) * RAD
  const h = Math.sin(dLat / 2) ** 2 + Math.cos(a.latitude * RAD) * Math.cos(b.latitude * RAD) * Math.sin(dLon / 2) ** 2
  return 2 * EARTH_RADIUS_M * Math.asin(Math.min(1, Math.sqrt(h)))
}

/** Initial great-circle bearing from a to b, degrees in [0, 360). */
export function bearingDeg (a: GeoPoint, b: GeoPoint): number {
  const lat1 = a.latitude * RAD
  const lat2 = b.latitude * RAD
  const dLon = (b.longitude - a.longitude) * RAD
  const y = Math.sin(dLon) * Math.cos(lat2)
  const x = Math.cos(lat1) * Math.sin(lat2) - Math.sin(lat1) * Math.cos(lat2) * Math.cos(dLon)
  return (Math.atan2(y, x) / RAD + 360) % 360
}

export class RouteFollower {
  readonly route: Route
  private readonly rng: Rng
  /** Distance from the first waypoint to each waypoint, m. */
  private readonly cumulative: number[]
  private readonly headings: number[]
  private travelled: number
  private speed: number

  /** @param startFraction where along the route (0..1) the unit is when the simulation starts */
  constructor (route: Route, rng: Rng, startFraction = 0) {
    if (route.waypoints.length < 2) throw new RangeError(`route ${route.name} needs at least two waypoints`)
    this.route = route
    this.rng = rng
    this.cumulative = [0]
    this.headings = []
    for (let i = 1; i < route.waypoints.length; i++) {
      const a = route.waypoints[i - 1]!
      const b = route.waypoints[i]!
      this.cumulative.push(this.cumulative[i - 1]! + distanceM(a, b))
      this.headings.push(bearingDeg(a, b))
    }
    this.travelled = Math.max(0, Math.min(1, startFraction)) * this.lengthM
    this.speed = this.arrived ? 0 : CRUISE_MPS
  }

  get lengthM (): number { return this.cumulative[this.cumulative.length - 1]! }
  get remainingM (): number { return this.lengthM - this.travelled }
  get arrived (): boolean { return this.travelled >= this.lengthM }

  /** Moves on by `dtS` seconds of driving. */
  advance (dtS: number): void {
    if (this.arrived) {
      this.speed = 0
      return
    }
    // Speed: mean-reverting random walk around cruise speed (traffic), capped near turns.
    this.speed += 0.2 * (CRUISE_MPS - this.speed) * dtS + 1.2 * Math.sqrt(dtS) * this.rng.gaussian()
    this.speed = Math.min(MAX_MPS, Math.max(MIN_MPS, this.speed))
    const leg = this.legAt(this.travelled)
    const toTurn = this.cumulative[leg + 1]! - this.travelled
    if (toTurn < TURN_ZONE_M) this.speed = Math.min(this.speed, TURN_MPS)
    this.travelled = Math.min(this.lengthM, this.travelled + this.speed * dtS)
    if (this.arrived) this.speed = 0
  }

  fix (): PositionFix {
    const leg = this.legAt(this.travelled)
    const a = this.route.waypoints[leg]!
    const b = this.route.waypoints[leg + 1]!
    const legLen = this.cumulative[leg + 1]! - this.cumulative[leg]!
    const f = legLen > 0 ? Math.min(1, (this.travelled - this.cumulative[leg]!) / legLen) : 1
    return {
      // Linear interpolation is fine over legs of a few hundred metres.
      latitude: a.latitude + f * (b.latitude - a.latitude),
      longitude: a.longitude + f * (b.longitude - a.longitude),
      speedMps: this.speed,
      headingDeg: this.headings[leg]!
    }
  }

  /** Index of the leg (waypoint i to i+1) that contains distance `d`. */
  private legAt (d: number): number {
    let i = 0
    while (i < this.headings.length - 1 && this.cumulative[i + 1]! <= d) i++
    return i
  }
}
