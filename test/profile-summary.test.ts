// loadtest/profile-summary.ts on a small hand-made .cpuprofile: samples go to the innermost
// stage on their stack (Node internals count for the stage that called them), idle time is left
// out of the shares, and --from-first-frame leaves out what came before the first decode.
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { summarise } from '../loadtest/profile-summary.js'

const frame = (functionName: string, url: string): { functionName: string, url: string, lineNumber: number } => ({ functionName, url, lineNumber: 0 })
const profile = {
  nodes: [
    { id: 1, callFrame: frame('(root)', ''), children: [2, 3, 4, 7] },
    { id: 2, callFrame: frame('(idle)', ''), children: [] },
    { id: 3, callFrame: frame('compileSourceTextModule', 'node:internal/modules/esm/utils'), children: [] },
    { id: 4, callFrame: frame('onPublish', 'file:///app/gateway/ingest.ts'), children: [5] },
    { id: 5, callFrame: frame('decode', 'file:///app/decoders/frame.ts'), children: [6] },
    { id: 6, callFrame: frame('_copyActual', 'node:buffer'), children: [] },
    { id: 7, callFrame: frame('evaluate', 'file:///app/streams/alerts/engine.ts'), children: [] }
  ],
  startTime: 0,
  endTime: 1_000_000,
  // Sample i lasts timeDeltas[i + 1] µs.
  samples: [3, 3, 6, 2, 5, 7, 4, 3],
  timeDeltas: [0, 100, 100, 300, 500, 200, 400, 100]
}

let dir: string | undefined
afterEach(async () => { if (dir !== undefined) await rm(dir, { recursive: true, force: true }) })

describe('profile-summary', () => {
  it('attributes each sample to the innermost stage on its stack', async () => {
    dir = await mkdtemp(join(tmpdir(), 'prof-'))
    const path = join(dir, 'p.cpuprofile')
    await writeFile(path, JSON.stringify(profile))
    const all = summarise(path, 2)
    const ms = Object.fromEntries(all.stages.map(s => [s.stage, s.ms]))
    // Buffer copy under decode (300) + decode itself (200) = 500 µs of decode.
    expect(ms['decode (protobuf, waveforms)']).toBe(0.5)
    expect(ms.alerts).toBe(0.4)
    // Module compile: 100 + 100, and the last sample (no delta after it: 0).
    expect(ms['other node/V8']).toBe(0.2)
    expect(ms['ingest glue (gateway/ingest, mqtt hooks)']).toBe(0.1)
    expect(all.idle_ms).toBe(0.5)
    expect(all.busy_ms).toBe(1.2)
    expect(all.stages.find(s => s.stage === 'alerts')!.us_per_frame).toBe(200)
    expect(all.skipped_s).toBe(0)

    const fromFrame = summarise(path, null, 15, true)
    // Start-up (the two compile samples) left out; the first sample counted is the Buffer copy.
    expect(fromFrame.stages.find(s => s.stage === 'other node/V8')!.ms).toBe(0)
    expect(fromFrame.busy_ms).toBe(1)
  })
})
