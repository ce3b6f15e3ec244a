/**
 * The heart as a moving electrical dipole, in the style of McSharry et al.'s ECGSYN (IEEE TBME
 * 2003) extended to three dimensions (Sameni et al., IEEE TBME 2007): each wave (P, Q, R, S, T)
 * is a Gaussian in time along its own direction in the body, and a lead sees the dipole's
 * projection on its lead vector. That is what makes the twelve leads agree with each other the
 * way a real recording does, including reciprocal ST depression opposite an infarct.
 *
 * Body axes: x = patient's left, y = towards the feet, z = anterior (out of the chest).
 * Amplitudes are in microvolts, times in seconds relative to the R peak.
 */

export type StemiKind = 'none' | 'inferior' | 'anterior'
export const STEMI_KINDS: readonly StemiKind[] = ['none', 'inferior', 'anterior']

type Vec3 = readonly [number, number, number]

/** How a wave's timing stretches with the RR interval. */
type Scaling = 'atrial' | 'qrs' | 'repolarisation'

interface DipoleWave {
  /** Centre, s from the R peak, at RR = 1 s. */
  t: number
  /** Gaussian width, s, at RR = 1 s. */
  sigma: number
  scaling: Scaling
  /** Dipole at the wave's peak: amplitude (µV) times a direction. */
  dipole: Vec3
}

function along (amplitudeUv: number, dir: Vec3): Vec3 {
  const n = Math.hypot(dir[0], dir[1], dir[2])
  return [amplitudeUv * dir[0] / n, amplitudeUv * dir[1] / n, amplitudeUv * dir[2] / n]
}

/**
 * A normal sinus beat. The QRS is four overlapping waves because its vector turns during
 * depolarisation: septum (left to right, forwards: the small q in I/V6 and r in V1), apex
 * (forwards-left-down), free wall (left-back: the tall R in V5-V6, deep S in V1-V2), base
 * (back-up: the terminal s). This gives the usual R-wave progression across V1-V6.
 */
const NORMAL_BEAT: readonly DipoleWave[] = [
  { t: -0.170, sigma: 0.022, scaling: 'atrial', dipole: along(150, [0.45, 0.85, 0.1]) },
  { t: -0.032, sigma: 0.008, scaling: 'qrs', dipole: along(200, [-0.4, 0.3, 0.85]) },
  { t: -0.008, sigma: 0.011, scaling: 'qrs', dipole: along(1100, [0.55, 0.75, 0.35]) },
  { t: 0.008, sigma: 0.011, scaling: 'qrs', dipole: along(900, [0.75, 0.45, -0.5]) },
  { t: 0.032, sigma: 0.010, scaling: 'qrs', dipole: along(350, [-0.35, -0.45, -0.8]) },
  // The T wave rises slowly and falls fast: two Gaussians, concordant with the QRS.
  { t: 0.250, sigma: 0.050, scaling: 'repolarisation', dipole: along(250, [0.6, 0.65, 0.45]) },
  { t: 0.300, sigma: 0.030, scaling: 'repolarisation', dipole: along(200, [0.6, 0.65, 0.45]) }
]

/**
 * Injury current of a transmural infarct: during the ST segment the dipole points towards the
 * injured wall, so the leads facing it show ST elevation and the opposite leads reciprocal
 * depression. Inferior (RCA): towards +110° in the frontal plane, elevation in III > II, aVF,
 * depression in aVL and I. Anterior (LAD): forwards and slightly left, elevation in V1-V5 and
 * aVL, reciprocal depression in III and aVF. Amplitudes give 0.2-0.4 mV, i.e. 2-4 mm, well past
 * the 1 mm (2 mm in V2-V3) criterion of the Fourth Universal Definition of MI.
 */
const INJURY: Readonly<Record<Exclude<StemiKind, 'none'>, Vec3>> = {
  inferior: along(260, [-0.25, 0.95, 0.1]),
  anterior: along(280, [0.25, -0.2, 0.95])
}
/** J point (end of QRS), s after the R peak: the ST segment starts here. */
export const J_POINT_S = 0.045

/**
 * Lead vectors of the eight leads an electrocardiograph actually measures (I, II, V1-V6); III,
 * aVR, aVL, aVF are computed from I and II exactly as the machine does (Einthoven, Goldberger).
 * Limb leads: hexaxial angles 0° and 60°. Chest leads: transverse-plane angles from V6 (0°, left)
 * to V1 (115°, right-anterior), longer because the electrodes sit closer to the heart.
 */
const V = (gain: number, angleDeg: number, y: number): Vec3 => {
  const a = angleDeg * Math.PI / 180
  return [gain * Math.cos(a), gain * y, gain * Math.sin(a)]
}
export const MEASURED_LEAD_VECTORS: readonly Vec3[] = [
  [1, 0, 0], // I
  [0.5, Math.sqrt(3) / 2, 0], // II
  V(1.0, 115, -0.1), // V1
  V(1.4, 94, -0.05), // V2
  V(1.5, 75, 0), // V3
  V(1.4, 60, 0.05), // V4
  V(1.2, 30, 0.1), // V5
  V(1.0, 0, 0.15) // V6
]
export const MEASURED_LEADS = MEASURED_LEAD_VECTORS.length

/** Lowest and highest RR the model renders (300 and 20 bpm). */
export const MIN_RR_S = 0.2
export const MAX_RR_S = 3

function timeScale (scaling: Scaling, rrS: number): number {
  switch (scaling) {
    case 'qrs': return 1 // conduction through the ventricles does not speed up with rate
    case 'atrial': return Math.pow(rrS, 0.25) // PR shortens a little with rate
    case 'repolarisation': return Math.sqrt(rrS) // QT ∝ √RR (Bazett)
  }
}

/** T peak and width used by the injury current, s at RR = 1 s (scaled like repolarisation). */
const T_PEAK_S = 0.27
const T_SIGMA_S = 0.045

/** Extent of one beat's template around its R peak, in seconds. */
function extent (rrS: number): { start: number, end: number } {
  let start = 0
  // The injury current decays with the T wave; 5σ past its peak it is below 0.001%.
  let end = (T_PEAK_S + 5 * T_SIGMA_S) * timeScale('repolarisation', rrS)
  for (const w of NORMAL_BEAT) {
    const k = timeScale(w.scaling, rrS)
    // ±4σ: beyond it a Gaussian is below 0.04% of its peak, well under one µV.
    start = Math.min(start, (w.t - 4 * w.sigma) * k)
    end = Math.max(end, (w.t + 4 * w.sigma) * k)
  }
  return { start, end }
}

/** Template length in samples for the slowest rhythm: sizes every buffer once. */
export function maxTemplateSamples (sampleRateHz: number): number {
  const { start, end } = extent(MAX_RR_S)
  return Math.ceil((end - start) * sampleRateHz) + 1
}

export interface BeatTemplate {
  /** Samples per measured lead that the template fills. */
  length: number
  /** Index of the R peak within the template. */
  rIndex: number
}

/**
 * Renders one beat at the given RR into `out`: MEASURED_LEADS rows of `stride` floats (µV).
 * Runs once per heart-rate change, never per sample, so clarity wins over speed here.
 */
export function renderBeat (rrS: number, sampleRateHz: number, stemi: StemiKind, out: Float32Array, stride: number): BeatTemplate {
  const { start, end } = extent(rrS)
  const length = Math.min(stride, Math.ceil((end - start) * sampleRateHz) + 1)
  const rIndex = Math.round(-start * sampleRateHz)
  const repol = timeScale('repolarisation', rrS)
  const tPeak = T_PEAK_S * repol
  const tSigma = T_SIGMA_S * repol
  const injury = stemi === 'none' ? null : INJURY[stemi]
  const d = [0, 0, 0]
  for (let j = 0; j < length; j++) {
    const t = (j - rIndex) / sampleRateHz
    d[0] = d[1] = d[2] = 0
    for (const w of NORMAL_BEAT) {
      const k = timeScale(w.scaling, rrS)
      const z = (t - w.t * k) / (w.sigma * k)
      const g = Math.exp(-0.5 * z * z)
      d[0] += g * w.dipole[0]
      d[1] += g * w.dipole[1]
      d[2] += g * w.dipole[2]
    }
    if (injury !== null) {
      // Plateau from the J point to the T peak, then down with the T wave; plus a hyperacute T.
      const rise = 1 / (1 + Math.exp(-(t - J_POINT_S) / 0.006))
      const fall = t <= tPeak ? 1 : Math.exp(-0.5 * ((t - tPeak) / tSigma) ** 2)
      const hyper = 0.5 * Math.exp(-0.5 * ((t - tPeak) / tSigma) ** 2)
      const s = rise * fall + hyper
      d[0] += s * injury[0]
      d[1] += s * injury[1]
      d[2] += s * injury[2]
    }
    for (let k = 0; k < MEASURED_LEADS; k++) {
      const v = MEASURED_LEAD_VECTORS[k]!
      out[k * stride + j] = v[0] * d[0]! + v[1] * d[1]! + v[2] * d[2]!
    }
  }
  return { length, rIndex }
}
