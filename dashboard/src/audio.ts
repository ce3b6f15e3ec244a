/**
 * Alarm tones in the spirit of IEC 60601-1-8: the priority is heard, not only seen.
 * High: a 10-pulse burst (3 + 2, pause, 3 + 2), repeated every 5 s while an unacknowledged
 * high-priority alert exists. Medium: 3 slower, lower pulses every 15 s. Low: 2 soft pulses, once
 * per new alert. Pulses are harmonic-rich (a triangle wave, softened attack and release), which
 * the standard asks for so that they can be located and heard through noise.
 *
 * Browsers start audio only after a user gesture: logging in counts; after a reload with a live
 * session the page shows a button until the user clicks anywhere.
 */
export type Priority = 'high' | 'medium' | 'low'

const PATTERN: Record<Priority, { hz: number, pulseS: number, at: number[] }> = {
  high: { hz: 660, pulseS: 0.15, at: [0, 0.2, 0.4, 0.8, 1.0, 1.7, 1.9, 2.1, 2.5, 2.7] },
  medium: { hz: 520, pulseS: 0.2, at: [0, 0.35, 0.7] },
  low: { hz: 440, pulseS: 0.2, at: [0, 0.4] }
}
const REPEAT_MS: Record<'high' | 'medium', number> = { high: 5000, medium: 15_000 }

export class Sounder {
  private ctx: AudioContext | null = null
  private lastPlayed: Record<'high' | 'medium', number> = { high: 0, medium: 0 }
  /** Highest priority currently needing sound (set by the alert view). */
  wanted: Priority | null = null
  onStateChange: (running: boolean) => void = () => {}

  /** Call from a user gesture. */
  enable (): void {
    this.ctx ??= new AudioContext()
    void this.ctx.resume().then(() => { this.onStateChange(true) })
  }

  get running (): boolean { return this.ctx?.state === 'running' }

  /** Called every second: repeats the high/medium pattern while it is wanted. */
  tick (now: number): void {
    const p = this.wanted
    if (p === 'high' || p === 'medium') {
      if (now - this.lastPlayed[p] >= REPEAT_MS[p]) {
        this.lastPlayed[p] = now
        this.play(p)
      }
    }
  }

  /** Plays a pattern once (low-priority alerts, and the first burst of new ones). */
  play (p: Priority): void {
    const ctx = this.ctx
    if (ctx === null || ctx.state !== 'running') return
    const { hz, pulseS, at } = PATTERN[p]
    const t0 = ctx.currentTime + 0.02
    const gain = p === 'high' ? 0.35 : p === 'medium' ? 0.25 : 0.15
    for (const dt of at) {
      const osc = ctx.createOscillator()
      const env = ctx.createGain()
      osc.type = 'triangle'
      osc.frequency.value = hz
      env.gain.setValueAtTime(0, t0 + dt)
      env.gain.linearRampToValueAtTime(gain, t0 + dt + 0.02)
      env.gain.setValueAtTime(gain, t0 + dt + pulseS - 0.03)
      env.gain.linearRampToValueAtTime(0, t0 + dt + pulseS)
      osc.connect(env).connect(ctx.destination)
      osc.start(t0 + dt)
      osc.stop(t0 + dt + pulseS + 0.01)
    }
    if (p === 'high' || p === 'medium') this.lastPlayed[p] = performance.now()
  }
}
