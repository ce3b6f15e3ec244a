// Debian's Chromium driven by playwright-core (no browser download), for the browser tests and
// the dashboard rendering benchmark: one copy of the launch flags. Without the
// background-networking flags Chromium keeps trying hosts this closed machine cannot reach;
// --no-sandbox because tests run as root.
import { chromium, type Browser } from 'playwright-core'

export const CHROMIUM_PATH = '/usr/bin/chromium'

export async function launchChromium (): Promise<Browser> {
  return await chromium.launch({
    executablePath: CHROMIUM_PATH,
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run', '--disable-quic']
  })
}
