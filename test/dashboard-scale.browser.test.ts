// The dashboard at a hospital's scale, in a real browser (Debian's chromium through playwright-core)
// against a real gateway fed by 60 simulated ambulances over real MQTT with the demo's patient mix:
// the banner stack never exceeds its cap, the 12-lead stays on screen on a unit page at 1440×900
// and 1280×720, each team view shows its own alerts (and counts the rest), the incoming board's
// acknowledge-and-assign reaches another dashboard within a second and is journalled, and a
// clinician's view is remembered by the server. Screenshots of each view go to .tmp/screenshots/.
import { mkdir, readFile } from 'node:fs/promises'
import { type Browser, type BrowserContext, type Page } from 'playwright-core'
import { launchChromium } from '../testkit/chromium.js'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import { addUser, type DefaultView } from '../gateway/credentials.js'
import { journalPath } from '../gateway/dashboard/journal.js'
import { startDashboardFleet, type DashboardFleet } from '../loadtest/dashboard-fleet.js'
import { BANNER_CAP } from '../dashboard/src/alerts-view.js'
import { startTestGateway, type TestGateway } from '../testkit/gateway.js'
import { signIn } from './dashboard-page.js'

const SHOTS = '.tmp/screenshots'
const UNITS = 60

let tg: TestGateway
let fleet: DashboardFleet
let browser: Browser
const passwords: Record<string, string> = {}
const contexts: BrowserContext[] = []
let stemiUnit = ''

beforeAll(async () => {
  await mkdir(SHOTS, { recursive: true })
  tg = await startTestGateway()
  const users: Array<[string, DefaultView | undefined]> = [['edna', undefined], ['carl', 'cath'], ['sam', 'stroke'], ['erin', undefined]]
  for (const [name, view] of users) passwords[name] = await addUser(tg.dataDir, name, 'clinician', view)
  fleet = await startDashboardFleet({ mqttUrl: tg.mqttUrl, n: UNITS, seed: 20261201, addDevice: u => tg.addDevice(u) })
  stemiUnit = [...fleet.profiles].find(([, p]) => p === 'stemi')![0]
  browser = await launchChromium()
}, 120_000)

// Each test's pages close after it: open pages all keep rendering 60 units.
afterEach(async () => {
  for (const c of contexts.splice(0)) await c.close().catch(() => {})
})

afterAll(async () => {
  await browser?.close()
  await fleet?.stop()
  await tg?.close()
})

/** A logged-in page; it records the most banners it ever showed in window.maxBanners. */
async function loggedIn (user: string, width = 1440, height = 900): Promise<Page> {
  const context = await browser.newContext({ viewport: { width, height } })
  contexts.push(context)
  await context.addInitScript(() => {
    const w = window as unknown as { maxBanners: number }
    w.maxBanners = 0
    const check = (): void => { w.maxBanners = Math.max(w.maxBanners, document.querySelectorAll('.banner .alert').length) }
    new MutationObserver(check).observe(document, { subtree: true, childList: true })
  })
  const page = await context.newPage()
  await signIn(page, tg.httpUrl, user, passwords[user]!, { timeoutMs: 60_000 })
  return page
}

async function maxBanners (page: Page): Promise<number> {
  return await page.evaluate(() => (window as unknown as { maxBanners: number }).maxBanners)
}

/** Kinds and units of the banners on screen. */
async function banners (page: Page): Promise<Array<{ kind: string, unit: string }>> {
  return await page.$$eval('.banner .alert', els => els.map(e => ({ kind: (e as HTMLElement).dataset.kind ?? '', unit: (e as HTMLElement).dataset.unit ?? '' })))
}

async function count (page: Page, selector: string): Promise<number> {
  return Number(await page.locator(selector).getAttribute('data-count'))
}

describe('the dashboard at 60 units', () => {
  it('ED view: every unit on the fleet board, at most 3 banners, the rest counted in the bar', async () => {
    const page = await loggedIn('edna')
    await expect.poll(async () => await page.locator('.card').count(), { timeout: 30_000 }).toBe(UNITS)
    expect(await page.locator('select.team-view').inputValue()).toBe('ed')
    // More alerts than the cap are waiting: the banners stay at the cap, the bar counts the others.
    await expect.poll(async () => (await banners(page)).length === BANNER_CAP && await count(page, '.alert-bar .bar-more') > 0, { timeout: 40_000 }).toBe(true)
    expect(await page.locator('.cards.compact').count()).toBe(1)
    await page.fill('input.fleet-search', stemiUnit)
    await expect.poll(async () => await page.locator('.card').count()).toBe(1)
    await page.fill('input.fleet-search', '')
    await page.waitForTimeout(1200) // map redraws at 1 Hz
    await page.screenshot({ path: `${SHOTS}/fleet-ed-1440x900.png` })
    // The full list: every alert, sortable and filterable.
    await page.click('.alert-bar .bar-all')
    await page.waitForSelector('.alert-panel:not([hidden]) .alert-list .alert')
    const listed = await page.locator('.alert-panel .alert-list .alert').count()
    expect(listed).toBeGreaterThan(BANNER_CAP)
    await page.selectOption('.alert-panel select[name=priority]', 'high')
    await expect.poll(async () => await page.$$eval('.alert-panel .alert-list .alert', els => els.every(e => (e as HTMLElement).dataset.priority === 'high'))).toBe(true)
    await page.selectOption('.alert-panel select[name=priority]', 'low')
    await page.screenshot({ path: `${SHOTS}/alert-list-1440x900.png` })
    await page.click('.alert-panel button.close')
    expect(await maxBanners(page)).toBeLessThanOrEqual(BANNER_CAP)
  }, 120_000)

  for (const [width, height] of [[1440, 900], [1280, 720]] as const) {
    it(`a STEMI unit page at ${width}×${height}: the whole 12-lead is on screen under the banners`, async () => {
      const page = await loggedIn('edna', width, height)
      await page.goto(`${tg.httpUrl}/#/unit/${stemiUnit}`)
      await page.waitForSelector(`.unit-view[data-unit="${stemiUnit}"] canvas.ecg-trace`)
      await expect.poll(async () => await page.locator('button.layout').textContent(), { timeout: 20_000 }).toBe('Lead II view') // opened on 12 leads
      await expect.poll(async () => (await banners(page)).length, { timeout: 20_000 }).toBeGreaterThan(0)
      // Its own alerts come first in the banners.
      expect((await banners(page))[0]!.unit).toBe(stemiUnit)
      await page.waitForTimeout(1500) // the sweep and the trends draw
      const box = (await page.locator('.ecg').boundingBox())!
      expect(box.y).toBeGreaterThanOrEqual(0)
      expect(box.y + box.height).toBeLessThanOrEqual(height)
      expect(box.height).toBeGreaterThan(250) // 3 rows of 25 mm: the 12-lead, not lead II alone
      await page.screenshot({ path: `${SHOTS}/unit-stemi-${width}x${height}.png` })
      expect(await maxBanners(page)).toBeLessThanOrEqual(BANNER_CAP)
    }, 90_000)
  }

  it('team views: the cath lab and the stroke unit see their own alerts; the rest is counted, not lost', async () => {
    const cath = await loggedIn('carl')
    const stroke = await loggedIn('sam')
    expect(await cath.locator('select.team-view').inputValue()).toBe('cath') // the admin's default (user add --view)
    expect(await stroke.locator('select.team-view').inputValue()).toBe('stroke')
    const stemi = new Set([...fleet.profiles].filter(([, p]) => p === 'stemi').map(([u]) => u))
    await expect.poll(async () => (await banners(cath)).length, { timeout: 30_000 }).toBeGreaterThan(0)
    await expect.poll(async () => (await banners(stroke)).length, { timeout: 30_000 }).toBeGreaterThan(0)
    for (let i = 0; i < 3; i++) { // over a few renders, as alerts come and go
      for (const b of await banners(cath)) {
        expect(b.kind).not.toContain('stroke')
        if (!b.kind.includes('stemi') && b.kind !== 'device_alarm' && b.kind !== 'threshold') expect(stemi.has(b.unit), `${b.kind} of ${b.unit}`).toBe(true)
      }
      for (const b of await banners(stroke)) expect(b.kind).toContain('stroke')
      await cath.waitForTimeout(700)
    }
    // Everything else is counted in the bar, never dropped.
    await expect.poll(async () => await count(stroke, '.alert-bar .bar-outside'), { timeout: 20_000 }).toBeGreaterThan(0)
    // Each team's patients first on the fleet board.
    await expect.poll(async () => await cath.locator('.card').first().getAttribute('data-unit'), { timeout: 20_000 }).toBe(stemiUnit)
    await cath.screenshot({ path: `${SHOTS}/fleet-cath-1440x900.png` })
    await stroke.screenshot({ path: `${SHOTS}/fleet-stroke-1440x900.png` })
    expect(await maxBanners(cath)).toBeLessThanOrEqual(BANNER_CAP)
    expect(await maxBanners(stroke)).toBeLessThanOrEqual(BANNER_CAP)
  }, 120_000)

  it('incoming board: an assignment made on one page shows on another, and is journalled', async () => {
    const a = await loggedIn('edna')
    const b = await loggedIn('carl')
    for (const p of [a, b]) {
      await p.goto(`${tg.httpUrl}/#/incoming`)
      await p.waitForSelector(`.irow[data-unit="${stemiUnit}"]`)
    }
    expect(await a.locator('.incoming-rows .irow').count()).toBe(UNITS)
    expect(await a.locator(`.irow[data-unit="${stemiUnit}"] .icat`).textContent()).toBe('STEMI')
    await a.click('button.sort[data-sort="eta"]')
    await a.screenshot({ path: `${SHOTS}/incoming-ed-1440x900.png` })
    await b.evaluate((unit) => {
      const w = window as unknown as { seenAt: number }
      w.seenAt = 0
      const seen = (): boolean => document.querySelector(`.irow[data-unit="${unit}"] .iassigned`)?.textContent?.includes('Cath lab activated') === true
      new MutationObserver((_m, obs) => { if (seen()) { w.seenAt = Date.now(); obs.disconnect() } }).observe(document.body, { subtree: true, childList: true, characterData: true })
    }, stemiUnit)
    const clickedAt = await a.evaluate((unit) => {
      document.querySelector<HTMLButtonElement>(`.irow[data-unit="${unit}"] button[data-action="cath_lab_activated"]`)!.click()
      return Date.now()
    }, stemiUnit)
    await expect.poll(async () => await b.evaluate(() => (window as unknown as { seenAt: number }).seenAt), { timeout: 20_000 }).toBeGreaterThan(0)
    // Shown on the other page after the click, i.e. carried there by the server (no wall-clock
    // bound: a loaded machine is slow, and that is not what this test is about).
    const seenAt = await b.evaluate(() => (window as unknown as { seenAt: number }).seenAt)
    expect(seenAt).toBeGreaterThanOrEqual(clickedAt)
    expect(await b.locator(`.irow[data-unit="${stemiUnit}"] .iassigned`).textContent()).toContain('edna')
    await b.screenshot({ path: `${SHOTS}/incoming-assigned-cath-1440x900.png` })
    const journal = (await readFile(journalPath(tg.dataDir), 'utf8')).trim().split('\n').map(l => JSON.parse(l) as { type: string, assignment?: { unit: string, action: string, by: string } })
    expect(journal.some(r => r.type === 'assign' && r.assignment?.unit === stemiUnit && r.assignment.action === 'cath_lab_activated' && r.assignment.by === 'edna')).toBe(true)
  }, 90_000)

  it('a clinician\'s chosen view is remembered by the server; the custom filter edits kinds, priority and units', async () => {
    const page = await loggedIn('erin')
    expect(await page.locator('select.team-view').inputValue()).toBe('ed')
    await page.selectOption('select.team-view', 'custom')
    await page.waitForSelector('dialog.view-editor[open]')
    await page.uncheck('dialog.view-editor input[value="stroke"]')
    await page.selectOption('dialog.view-editor select[name=minPriority]', 'medium')
    await page.screenshot({ path: `${SHOTS}/custom-view-editor-1440x900.png` })
    const saved = page.waitForResponse(r => r.url().endsWith('/api/v1/view') && r.request().method() === 'PUT')
    await page.click('dialog.view-editor button[type=submit]')
    expect((await saved).status()).toBe(200)
    for (const b of await banners(page)) expect(b.kind).not.toBe('stroke')
    const again = await loggedIn('erin') // a new browser context: only the server can remember
    await expect.poll(async () => await again.locator('select.team-view').inputValue()).toBe('custom')
    const info = await again.evaluate(async () => await (await fetch('/api/v1/view')).json() as { view: { excludeKinds: string[], minPriority: string } })
    expect(info.view.excludeKinds).toEqual(['stroke'])
    expect(info.view.minPriority).toBe('medium')
  }, 90_000)

  // Last: it stops the fleet.
  it('units that fall silent stand out on the fleet and incoming boards', async () => {
    const page = await loggedIn('edna')
    await expect.poll(async () => await page.locator('.card').count(), { timeout: 30_000 }).toBe(UNITS)
    await fleet.stop()
    await expect.poll(async () => await page.locator('.card.stale .lost-badge').count(), { timeout: 40_000 }).toBe(UNITS)
    await page.screenshot({ path: `${SHOTS}/fleet-no-signal-1440x900.png` })
    await page.goto(`${tg.httpUrl}/#/incoming`)
    await expect.poll(async () => await page.locator('.irow.lost').count(), { timeout: 20_000 }).toBe(UNITS)
    expect(await page.locator('.irow.lost .iunit').first().textContent()).toContain('NO SIGNAL')
  }, 90_000)
})
