// The 12-lead snapshot in a real browser (Debian's chromium through playwright-core): a real
// gateway receives 12 s of a simulated inferior STEMI over the device HTTP API; a clinician logs
// in, the ECG STEMI alert shows a "12-lead ECG" button, and clicking it opens the snapshot on the
// standard grid (25 mm/s, 10 mm/mV): the canvas is 10 s wide at 25 mm/s, the grid and the traces
// are drawn, and the ST table marks II, III and aVF.
import { mkdir } from 'node:fs/promises'
import { type Browser } from 'playwright-core'
import { launchChromium } from '../testkit/chromium.js'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { UnitFrameSource } from '../simulator/frame-source.js'
import { startTestGateway, type TestGateway } from '../testkit/gateway.js'
import { signIn } from './dashboard-page.js'

let tg: TestGateway
let browser: Browser
let password = ''

beforeAll(async () => {
  await mkdir('.tmp', { recursive: true })
  tg = await startTestGateway({ signalLossMs: 600_000, alertEscalateMs: 600_000 })
  password = await tg.addUser('carla', 'clinician')
  const token = await tg.addDevice('AMB-31')
  const src = new UnitFrameSource({ unitId: 'AMB-31', startMs: Date.now() - 12_000, profile: 'stemi', seed: 8, stemi: 'inferior' })
  for (let i = 0; i < 48; i++) {
    const res = await fetch(`${tg.httpUrl}/api/v1/units/AMB-31/telemetry`, {
      method: 'POST', headers: { authorization: `Bearer ${token}`, 'content-type': 'application/x-protobuf' }, body: new Uint8Array(src.nextFrame().bytes)
    })
    if (res.status !== 200) throw new Error(`device post ${res.status}`)
  }
  browser = await launchChromium()
}, 60_000)

afterAll(async () => {
  await browser?.close()
  await tg?.close()
})

describe('12-lead snapshot viewer', () => {
  it('opens from the ECG STEMI alert and draws the grid and twelve leads', async () => {
    const context = await browser.newContext({ viewport: { width: 1600, height: 1000 } })
    const page = await context.newPage()
    await signIn(page, tg.httpUrl, 'carla', password)
    const button = page.locator('.banner button.open-ecg').first()
    await button.waitFor()
    await button.click()
    const canvas = page.locator('dialog.ecg-dialog canvas.ecg-12lead')
    await canvas.waitFor()
    await page.screenshot({ path: '.tmp/stemi-12lead.png' })
    const px = await canvas.evaluate((c: HTMLCanvasElement) => {
      const d = c.getContext('2d')!.getImageData(0, 0, c.width, c.height).data
      let ink = 0
      let grid = 0
      for (let i = 0; i < d.length; i += 4) {
        const [r, g, b] = [d[i]!, d[i + 1]!, d[i + 2]!]
        if (r < 80 && g < 80 && b < 80) ink++
        else if (r > 200 && g < 230 && b < 230 && r - g > 15) grid++
      }
      return { width: c.width, height: c.height, ink, grid, mmPerS: c.dataset.mmPerS, mmPerMv: c.dataset.mmPerMv }
    })
    // 7 mm calibration margin + 10 s × 25 mm/s, at 4 px per mm.
    expect(px.width).toBe((7 + 10 * 25) * 4)
    expect(px.mmPerS).toBe('25')
    expect(px.mmPerMv).toBe('10')
    expect(px.grid).toBeGreaterThan(px.width * px.height * 0.1)
    // Twelve 2.5 s traces + the 10 s rhythm strip: at least one inked pixel per column drawn.
    expect(px.ink).toBeGreaterThan(px.width * 2)
    const marked = await page.locator('dialog.ecg-dialog table.st-table tr[data-lead]').evaluateAll(rows =>
      rows.filter(r => (r as HTMLElement).style.fontWeight === 'bold').map(r => (r as HTMLElement).dataset.lead))
    expect(marked).toEqual(['II', 'III', 'aVF'])
    await context.close()
  }, 60_000)
})
