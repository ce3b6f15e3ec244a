/**
 * Where the ambulance is: it drives a route of waypoints that ends at the receiving hospital, at
 * urban emergency speeds, slowing for turns, then stays parked at the door (speed 0).
 *
 * Default destination: Hôpital Kirchberg (Hôpitaux Robert Schuman) on the Kirchberg plateau,
 * Luxembourg City; the ambulances come in from around the city (the Gare, Bonnevoie, Strassen,
 * Walferdange, Findel, Hesperange). Coordinates are approximate (to a few hundred metres) and the
 * waypoints follow main roads only loosely: this is a map marker for a dashboard, not navigation.
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

export const HOSPITAL_KIRCHBERG: Readonly<GeoPoint & { name: string }> = Object.freeze({
  name: 'Hôpital Kirchberg, Luxembourg',
  latitude: 49.6280,
  longitude: 6.1620
})

const p = (latitude: number, longitude: number): GeoPoint => ({ latitude, longitude })
const HK = p(HOSPITAL_KIRCHBERG.latitude, HOSPITAL_KIRCHBERG.longitude)
/** The Red Bridge (Pont Grande-Duchesse Charlotte) and Avenue J. F. Kennedy up to the hospital. */
const RED_BRIDGE_JFK = [p(49.6140, 6.1340), p(49.6170, 6.1405), p(49.6215, 6.1480), p(49.6255, 6.1560), HK]

export const LUXEMBOURG_ROUTES: readonly Route[] = Object.freeze([
  {
    name: 'Gare - Pont Adolphe - Boulevard Royal - Pont Rouge - Avenue Kennedy',
    destination: HOSPITAL_KIRCHBERG.name,
    waypoints: [p(49.6000, 6.1335), p(49.6050, 6.1300), p(49.6077, 6.1265), p(49.6125, 6.1275), ...RED_BRIDGE_JFK]
  },
  {
    name: 'Bonnevoie - Cents - Neudorf - Kirchberg',
    destination: HOSPITAL_KIRCHBERG.name,
    waypoints: [p(49.5975, 6.1440), p(49.6045, 6.1500), p(49.6100, 6.1700), p(49.6180, 6.1650), p(49.6240, 6.1630), HK]
  },
  {
    name: "Strassen - Route d'Arlon - Limpertsberg - Pont Rouge - Avenue Kennedy",
    destination: HOSPITAL_KIRCHBERG.name,
    waypoints: [p(49.6195, 6.0770), p(49.6160, 6.0950), p(49.6135, 6.1150), p(49.6130, 6.1260), ...RED_BRIDGE_JFK]
  },
  {
    name: 'Walferdange - Bereldange - Dommeldange - Weimershof - Kirchberg',
    destination: HOSPITAL_KIRCHBERG.name,
    waypoints: [p(49.6600, 6.1330), p(49.6500, 6.1300), p(49.6370, 6.1360), p(49.6320, 6.1500), p(49.6290, 6.1570), HK]
  },
  {
    name: 'Sandweiler - Findel - A1 - Kirchberg',
    destination: HOSPITAL_KIRCHBERG.name,
    waypoints: [p(49.6165, 6.2170), p(49.6290, 6.2000), p(49.6320, 6.1800), p(49.6295, 6.1700), HK]
  },
  {
    name: 'Hesperange - Route de Thionville - Bonnevoie - Cents - Kirchberg',
    destination: HOSPITAL_KIRCHBERG.name,
    waypoints: [p(49.5730, 6.1580), p(49.5850, 6.1420), p(49.5975, 6.1440), p(49.6100, 6.1700), p(49.6180, 6.1650), HK]
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
