// The page.evaluate bodies below run in Chromium, so this file is type-checked with the tests'
// project (DOM and Node types), not the server's (test/tsconfig.json, tsconfig.json).
/**
 * Rendering benchmark of the clinicians' dashboard: frame rate and long tasks (main-thread tasks
 * over 50 ms, the browser's own Long Tasks API) of the fleet board, the incoming board and a
 * STEMI unit's 12-lead page, with 100 and 300 simulated ambulances streaming into a real gateway
 * over MQTT (the demo's patient mix; loadtest/dashboard-fleet.ts). Chromium headless via
 * playwright-core at 1440×900. JSON on stdout.
 *
 *   npx tsx loadtest/dashboard-render.ts [--units 100,300] [--seconds 10]
 *
 * Headless Chromium paints without a GPU here (--disable-gpu), so the figures are a floor for a
 * clinician's workstation, and they share the machine with the gateway and the fleet.
 */
import { parseArgs } from 'node:util'
import { type Page } from 'playwright-core'
import { launchChromium } from '../testkit/chromium.js'
import { addUser } from '../gateway/credentials.js'
import { startTestGateway } from '../testkit/gateway.js'
import { startDashboardFleet } from './dashboard-fleet.js'

export interface RenderFigure {
  units: number
  page: 'fleet' | 'incoming' | 'unit-12-lead'
  seconds: number
  fps: number
  longTasks: number
  longTaskMsPerS: number
  worstLongTaskMs: number
  domNodes: number
}

/**
 * Counts animation frames and long tasks in the page for `seconds`. Plain JavaScript text, not a
 * function: tsx's esbuild would wrap named functions in a helper the page does not have.
 */
const MEASURE = `async (s) => {
  let frames = 0
  const long = []
  const obs = new PerformanceObserver(list => { for (const e of list.getEntries()) long.push(e.duration) })
  obs.observe({ type: 'longtask', buffered: false })
  const t0 = performance.now()
  await new Promise(resolve => {
    const tick = () => { frames++; if (performance.now() - t0 < s * 1000) requestAnimationFrame(tick); else resolve() }
    requestAnimationFrame(tick)
  })
  const dt = (performance.now() - t0) / 1000
  obs.disconnect()
  const total = long.reduce((a, b) => a + b, 0)
  return {
    seconds: Math.round(dt * 10) / 10,
    fps: Math.round(frames / dt * 10) / 10,
    longTasks: long.length,
    longTaskMsPerS: Math.round(total / dt),
    worstLongTaskMs: Math.round(Math.max(0, ...long)),
    domNodes: document.getElementsByTagName('*').length
  }
}`

async function measure (page: Page, seconds: number): Promise<Omit<RenderFigure, 'units' | 'page'>> {
  return await page.evaluate(`(${MEASURE})(${seconds})`) as Omit<RenderFigure, 'units' | 'page'>
}

export async function runDashboardRender (unitCounts: number[], seconds: number): Promise<RenderFigure[]> {
  const out: RenderFigure[] = []
  const browser = await launchChromium()
  try {
    for (const n of unitCounts) {
      const tg = await startTestGateway({ logLevel: 'warn' })
      const fleet = await startDashboardFleet({ mqttUrl: tg.mqttUrl, n, seed: 42, addDevice: u => tg.addDevice(u) })
      try {
        const password = await addUser(tg.dataDir, 'bench', 'clinician')
        // bypassCSP: the page's CSP forbids eval, which waitForFunction's string predicates need.
        const context = await browser.newContext({ viewport: { width: 1440, height: 900 }, bypassCSP: true })
        const page = await context.newPage()
        await page.goto(tg.httpUrl)
        await page.fill('input[name=name]', 'bench')
        await page.fill('input[name=password]', password)
        await page.click('button[type=submit]')
        await page.waitForSelector('.conn.live', { timeout: 60_000 })
        await page.waitForFunction(`document.querySelectorAll('.card').length >= ${n}`, undefined, { timeout: 120_000 })
        out.push({ units: n, page: 'fleet', ...await measure(page, seconds) })
        await page.goto(`${tg.httpUrl}/#/incoming`)
        await page.waitForFunction(`document.querySelectorAll('.incoming-rows .irow').length >= ${n}`, undefined, { timeout: 60_000 })
        out.push({ units: n, page: 'incoming', ...await measure(page, seconds) })
        const stemi = [...fleet.profiles].find(([, p]) => p === 'stemi')![0]
        await page.goto(`${tg.httpUrl}/#/unit/${stemi}`)
        await page.waitForSelector('canvas.ecg-trace')
        await page.waitForFunction("document.querySelector('button.layout')?.textContent === 'Lead II view'", undefined, { timeout: 30_000 })
        out.push({ units: n, page: 'unit-12-lead', ...await measure(page, seconds) })
        await context.close()
      } finally {
        await fleet.stop()
        await tg.close()
      }
    }
  } finally {
    await browser.close()
  }
  return out
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const { values } = parseArgs({ options: { units: { type: 'string', default: '100,300' }, seconds: { type: 'string', default: '10' } } })
  const units = values.units.split(',').map(Number)
  const seconds = Number(values.seconds)
  if (units.some(u => !Number.isInteger(u) || u < 1) || !(seconds > 0)) {
    process.stderr.write('usage: dashboard-render.ts [--units 100,300] [--seconds 10]\n')
    process.exit(2)
  }
  const figures = await runDashboardRender(units, seconds)
  process.stdout.write(JSON.stringify({ benchmark: 'dashboard-render', viewport: '1440x900', figures }, null, 2) + '\n')
}
