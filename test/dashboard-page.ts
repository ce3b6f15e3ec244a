// What the browser tests do on the clinicians' page more than once: sign in through the form,
// and read the ECG trace canvas. (A test helper, not in testkit/: it evaluates DOM code in the
// page, and testkit/ is type-checked without the DOM.)
import type { Page } from 'playwright-core'

/** Fills and submits the sign-in form of a page showing it; resolves once the live feed is up. */
export async function submitSignIn (page: Page, name: string, password: string, opts: { timeoutMs?: number } = {}): Promise<void> {
  await page.fill('input[name=name]', name)
  await page.fill('input[name=password]', password)
  await page.click('button[type=submit]')
  await page.waitForSelector('.conn.live', opts.timeoutMs !== undefined ? { timeout: opts.timeoutMs } : undefined)
}

/** Opens the dashboard at `url` and signs in. */
export async function signIn (page: Page, url: string, name: string, password: string, opts: { timeoutMs?: number } = {}): Promise<void> {
  await page.goto(url)
  await submitSignIn(page, name, password, opts)
}

/** Count and hash of the painted pixels of the ECG trace canvas. */
export function tracePixels (page: Page): Promise<{ painted: number, hash: number }> {
  return page.evaluate(() => {
    const c = document.querySelector<HTMLCanvasElement>('canvas.ecg-trace')!
    const d = c.getContext('2d')!.getImageData(0, 0, c.width, c.height).data
    let painted = 0
    let hash = 0
    for (let i = 3; i < d.length; i += 4) {
      if (d[i]! === 0) continue
      painted++
      hash = (hash * 31 + i) | 0
    }
    return { painted, hash }
  })
}
