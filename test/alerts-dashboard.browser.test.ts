// Issue #9 on the clinicians' page (Debian's chromium through playwright-core, a real gateway):
// an alert acknowledged at NEWS2 5 stops flashing; when the patient worsens to NEWS2 9 it is back
// in the banner, unacknowledged, high priority, and the page flashes again.
import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { type Browser, type Page } from 'playwright-core'
import { launchChromium } from '../testkit/chromium.js'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { encodeFrame } from '../decoders/index.js'
import { startTestGateway, type TestGateway } from '../testkit/gateway.js'
import { signIn } from './dashboard-page.js'

const UNIT = 'AMB-31'
/** VitalSign numbers → NEWS2-0 values (RR, SpO2, O2, SBP, HR, ACVPU, temperature). */
const NORMAL: Readonly<Record<number, number>> = { 7: 16, 3: 97, 11: 0, 4: 125, 1: 72, 10: 0, 9: 36.8 }

let tg: TestGateway
let browser: Browser
let token = ''
let childToken = ''
const CHILD = 'AMB-40'
let seq = 0

beforeAll(async () => {
  tg = await startTestGateway({ signalLossMs: 600_000 })
  token = await tg.addDevice(UNIT)
  childToken = await tg.addDevice(CHILD)
  browser = await launchChromium()
}, 60_000)

afterAll(async () => {
  await browser?.close()
  await tg?.close()
})

/** Posts `n` frames of device time one second apart, ending at `end`, as the unit would after a burst. */
async function frames (n: number, end: number, vitals: Record<number, number>, unit = UNIT, ageYears?: number): Promise<void> {
  for (let i = n - 1; i >= 0; i--) {
    const numerics = Object.entries({ ...NORMAL, ...vitals }).map(([sign, value]) => ({ sign: Number(sign), value, offsetMs: 0 }))
    const assessment = ageYears === undefined ? undefined : { ageYears }
    const body = new Uint8Array(encodeFrame({ unitId: unit, bootId: 'b1', seq: ++seq, capturedAtMs: end - i * 1000, encounterId: `enc-${unit}`, numerics, assessment }))
    const res = await fetch(`${tg.httpUrl}/api/v1/units/${unit}/telemetry`, {
      method: 'POST', headers: { authorization: `Bearer ${unit === UNIT ? token : childToken}`, 'content-type': 'application/x-protobuf' }, body
    })
    expect(res.status).toBe(200)
  }
}

async function login (name = 'carol'): Promise<Page> {
  const password = await tg.addUser(name, 'clinician')
  const page = await (await browser.newContext({ viewport: { width: 1400, height: 900 } })).newPage()
  await signIn(page, tg.httpUrl, name, password)
  return page
}

const flashing = (page: Page): Promise<string> => page.evaluate(() => getComputedStyle(document.querySelector('.frame-flash')!).animationName)

describe('dashboard: acknowledgement silences, never hides', () => {
  it('a worsening acknowledged alert flashes again', async () => {
    const page = await login()
    const t0 = Date.now() - 60_000
    await frames(12, t0 + 12_000, { 7: 25, 3: 93 })   // NEWS2 5: urgent, medium
    const row = page.locator('.banner .alert', { hasText: 'NEWS2' })
    await row.waitFor({ timeout: 20_000 })
    expect(await row.getAttribute('data-priority')).toBe('medium')
    await expect.poll(() => flashing(page)).toBe('flash-med')

    await row.locator('button.ack').click()
    await row.waitFor({ state: 'detached', timeout: 20_000 })
    await expect.poll(() => flashing(page)).toBe('none')

    await frames(12, t0 + 24_000, { 7: 25, 3: 93, 1: 135, 4: 105 })   // NEWS2 9: emergency, high
    const again = page.locator('.banner .alert[data-priority="high"]', { hasText: 'NEWS2' })
    await again.waitFor({ timeout: 20_000 })
    expect(await again.locator('button.ack').textContent()).toBe('Acknowledge')
    await expect.poll(() => flashing(page)).toBe('flash-high')
    expect(await page.evaluate(() => document.body.classList.contains('alarm-high'))).toBe(true)

    // A child of 6: the card says NEWS2 is not applied, and nothing alerts at normal values for the age.
    await frames(5, Date.now(), { 1: 100, 7: 22, 4: 100 }, CHILD, 6)
    const badge = page.locator(`.card[data-unit="${CHILD}"] .news2`)
    await expect.poll(async () => await badge.getAttribute('data-news2')).toBe('n/a')
    expect(await badge.textContent()).toContain('under 16: not applied')
    expect(tg.gw.alerts.alertsFor(CHILD)).toEqual([])
  })

  it('a clinician sets SpO2 scale 2 for an encounter: applied, and recorded (who, when) in the clinical audit file', async () => {
    const page = await login('dave')
    const call = (unit: string, scale: unknown): Promise<number> => page.evaluate(async ([u, sc]) => {
      const s = await (await fetch('/api/v1/session')).json() as { csrfToken: string }
      return (await fetch(`/api/v1/units/${u as string}/spo2-scale`, { method: 'POST', headers: { 'x-csrf-token': s.csrfToken, 'content-type': 'application/json' }, body: JSON.stringify({ scale: sc }) })).status
    }, [unit, scale] as const)
    const before = Date.now()
    // The unit view's control (a confirmation first: the decision is recorded).
    await page.goto(`${tg.httpUrl}/#/unit/${UNIT}`)
    page.once('dialog', d => { void d.accept() })
    await page.click('button.spo2-scale')
    await expect.poll(async () => await page.locator('button.spo2-scale').textContent()).toMatch(/scale 2 \(set\)/)
    expect(tg.gw.alerts.spo2ScaleOf(UNIT)).toBe(2)
    expect(await call(UNIT, 3)).toBe(400)
    expect(await call('AMB-NONE', 2)).toBe(404)
    expect((await page.context().request.post(`${tg.httpUrl}/api/v1/units/${UNIT}/spo2-scale`, { data: { scale: 1 } })).status()).toBe(403)
    const audit = (await readFile(join(tg.dataDir, 'alerts', 'clinical-audit.ndjson'), 'utf8')).trim().split('\n').map(l => JSON.parse(l) as Record<string, unknown>)
    expect(audit).toEqual([{ at: expect.any(Number), by: 'dave', action: 'spo2_scale', unit: UNIT, encounter: `enc-${UNIT}`, value: 2 }])
    expect(audit[0]!.at as number).toBeGreaterThanOrEqual(before)
  })
})
