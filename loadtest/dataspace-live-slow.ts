/**
 * What a researcher's live stream that stops reading costs ingest, per frame (the timing
 * `test/dataspace.test.ts` leaves out: the test proves the client is cut off and counted). A
 * gateway in-process with the live-stream buffer the test uses (64 KiB); frames of 400 vital
 * signs are handed to ingest's 'frame' event, as decoded frames are, first with nobody
 * watching, then with one paused WebSocket on `/dataspace/stream?dataset=vitals`, until the
 * gateway cuts it. Prints JSON: ms per frame in both phases, frames until the cut, close code.
 *
 *   node --import tsx loadtest/dataspace-live-slow.ts [--frames 2000]
 */
import { runPermitCli } from '../cli/dataspace.js'
import { FrameDecoder, encodeFrame } from '../decoders/index.js'
import { openLive } from '../testkit/dataspace-client.js'
import { numberFlags } from '../testkit/fault-harness.js'
import { startTestGateway, type TestGateway } from '../testkit/gateway.js'

const HOUR = 3_600_000

async function emitFrames (tg: TestGateway, n: number, keepGoing: () => boolean): Promise<{ emitted: number, perFrameMs: number }> {
  const decoder = new FrameDecoder()
  const frame = decoder.decode(encodeFrame({
    unitId: 'AMB-BENCH-07', bootId: 'boot-bench', seq: 1, capturedAtMs: Date.now(), encounterId: 'ENC-BENCH-1',
    numerics: Array.from({ length: 400 }, (_, i) => ({ sign: 1, value: 60 + (i % 50), offsetMs: i * 10 }))
  }), 'AMB-BENCH-07')
  const t0 = performance.now()
  let emitted = 0
  for (; emitted < n && keepGoing(); emitted++) {
    tg.gw.ingest.emit('frame', frame, 'bench')
    if (emitted % 100 === 99) await new Promise(resolve => setImmediate(resolve))
  }
  return { emitted, perFrameMs: Math.round((performance.now() - t0) / Math.max(1, emitted) * 1000) / 1000 }
}

async function main (): Promise<void> {
  const f = numberFlags(process.argv.slice(2), { frames: 2000 })
  const tg = await startTestGateway({ dataspaceLiveMaxBufferBytes: 64 * 1024, logLevel: 'warn' })
  try {
    await tg.addUser('dr-bench', 'researcher')
    let token = ''
    let err = ''
    const code = await runPermitCli(['grant', '--researcher', 'dr-bench', '--datasets', 'vitals', '--purpose', 'live stream benchmark',
      '--from', new Date(Date.now() - HOUR).toISOString(), '--to', new Date(Date.now() + HOUR).toISOString(), '--expires', new Date(Date.now() + HOUR).toISOString()],
    { stdout: t => { token += t }, stderr: t => { err += t } }, tg.gw.config)
    if (code !== 0) throw new Error(`permit grant failed: ${err}`)
    const unwatched = await emitFrames(tg, f.frames, () => true)
    const slow = await openLive(`${tg.httpUrl.replace('http', 'ws')}/dataspace/stream?dataset=vitals`, token.trim())
    slow.ws.pause()
    const watched = await emitFrames(tg, f.frames, () => slow.ws.readyState === slow.ws.OPEN)
    slow.ws.resume()
    const closeCode = await slow.closed
    const metrics = await (await fetch(`${tg.httpUrl}/metrics`)).text()
    process.stdout.write(JSON.stringify({
      scenario: 'dataspace-live-slow-client',
      frames: f.frames,
      nobodyWatching: unwatched,
      pausedClient: { ...watched, cutBeforeAllFrames: watched.emitted < f.frames, closeCode },
      cutoffs: Number(/^ambulink_dataspace_live_cutoffs_total (\d+)/m.exec(metrics)?.[1] ?? NaN)
    }, null, 2) + '\n')
  } finally {
    await tg.close()
  }
}

if (import.meta.url === `file://${process.argv[1]}`) await main()
