// The testkit's restart on the same port (testkit/same-port.ts), which the InfluxDB, Redis and
// gateway-process restarts use: while the server is down its port can be taken — by another test
// file's server, or by a client whose ephemeral local port it becomes (one reconnecting to that
// very port can connect to itself) — and a naive restart then fails with EADDRINUSE. Real
// sockets hold the port here, and a real redis-server and a real gateway child are restarted
// past one; the tests synchronise on the helper's report that the port is busy, never on sleeps.
import { mkdir, mkdtemp, rm } from 'node:fs/promises'
import { connect, createServer, type Server } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it, onTestFinished } from 'vitest'
import { startGatewayProcess, type GatewayProcess } from '../testkit/gateway-process.js'
import { freePort, pidListensOn } from '../testkit/ports.js'
import { startRedis, type RedisServer } from '../testkit/redis.js'
import { canBind, portHolders, PortStillInUseError, restartOnSamePorts } from '../testkit/same-port.js'

/** A server listening on `port` (127.0.0.1), closed after the test. */
async function listen (port: number): Promise<Server> {
  const srv = createServer(s => { s.destroy() })
  await new Promise<void>((resolve, reject) => {
    srv.once('error', reject)
    srv.listen({ port, host: '127.0.0.1', exclusive: true }, () => { srv.off('error', reject); resolve() })
  })
  onTestFinished(() => { srv.close() })
  return srv
}

const closeServer = (srv: Server): Promise<void> => new Promise(resolve => { srv.close(() => { resolve() }) })

const inUse = (err: unknown): boolean => (err as NodeJS.ErrnoException).code === 'EADDRINUSE'

describe('restartOnSamePorts', () => {
  it('tells a bound port from a free one, and names what holds it', async () => {
    const port = await freePort()
    expect(await canBind(port)).toBe(true)
    const srv = await listen(port)
    expect(await canBind(port)).toBe(false)
    expect(await portHolders(port)).toContain('LISTEN')
    await closeServer(srv)
    expect(await canBind(port)).toBe(true)
  })

  it('waits while another server holds the port, then starts once it is free', async () => {
    const port = await freePort()
    const squatter = await listen(port)
    const busy: string[][] = []
    let starts = 0
    const srv = await restartOnSamePorts([port], async () => { starts++; return await listen(port) }, {
      what: 'test server',
      isAddressInUse: inUse,
      onPortBusy: (p, holders) => { expect(p).toBe(port); busy.push(holders); void closeServer(squatter) }
    })
    expect(busy).toEqual([['LISTEN']])
    expect(starts).toBe(1)
    expect(srv.listening).toBe(true)
    expect(await pidListensOn(process.pid, port)).toBe(true)
  })

  it('retries a start that lost the port between the check and the bind', async () => {
    const port = await freePort()
    let starts = 0
    let thief: Server | null = null
    const busy: number[] = []
    const srv = await restartOnSamePorts([port], async () => {
      starts++
      // Someone binds the port just before the first start does.
      if (starts === 1) thief = await listen(port)
      return await listen(port)
    }, {
      what: 'test server',
      isAddressInUse: inUse,
      onPortBusy: p => { busy.push(p); void closeServer(thief!) }
    })
    expect(starts).toBe(2)
    expect(busy).toEqual([port])
    expect(srv.listening).toBe(true)
  })

  it('gives up within its bound when the port stays taken, naming the holder, without starting', async () => {
    const port = await freePort()
    await listen(port)
    let starts = 0
    const err = await restartOnSamePorts([port], async () => { starts++ }, { what: 'test server', isAddressInUse: inUse, timeoutMs: 500, pollMs: 50 }).catch((e: unknown) => e)
    expect(err).toBeInstanceOf(PortStillInUseError)
    expect((err as Error).message).toMatch(new RegExp(`test server: port ${port} still in use after 500 ms \\(held by: LISTEN\\)`))
    expect(starts).toBe(0)
  })

  it('retries only an address in use, and at most `attempts` starts', async () => {
    let starts = 0
    await expect(restartOnSamePorts([], async () => { starts++; throw new Error('config error') }, { what: 'test server', isAddressInUse: inUse })).rejects.toThrow('config error')
    expect(starts).toBe(1)
    starts = 0
    const taken = Object.assign(new Error('listen EADDRINUSE'), { code: 'EADDRINUSE' })
    await expect(restartOnSamePorts([], async () => { starts++; throw taken }, { what: 'test server', isAddressInUse: inUse, attempts: 3 })).rejects.toBe(taken)
    expect(starts).toBe(3)
  })
})

describe('a real server restarted on its port while another socket holds it', () => {
  let redis: RedisServer
  beforeAll(async () => { redis = await startRedis() })
  afterAll(async () => { await redis?.stop() })

  /** One RESP PING on a fresh connection: resolves with the reply line. */
  const ping = (port: number): Promise<string> => new Promise((resolve, reject) => {
    const s = connect({ port, host: '127.0.0.1' }, () => { s.write('PING\r\n') })
    s.once('data', (d: Buffer) => { resolve(d.toString('latin1').trim()); s.destroy() })
    s.once('error', reject)
  })

  it('redis-server: after kill(), restart() waits for the port and the new process answers on it', async () => {
    const { port, pid } = redis
    await redis.kill()
    const squatter = await listen(port)
    const busy: string[][] = []
    await redis.restart({ onPortBusy: (_p, holders) => { busy.push(holders); void closeServer(squatter) } })
    expect(busy).toEqual([['LISTEN']])
    expect(redis.pid).not.toBe(pid)
    expect(await pidListensOn(redis.pid, port)).toBe(true)
    expect(await ping(port)).toBe('+PONG')
  })
})

describe('the gateway as a child process, restarted on its ports while another socket holds one', () => {
  it('restart() after kill() waits for the port, then listens on the same ports and answers', async () => {
    const root = await mkdtemp(join(tmpdir(), 'ambulink-same-port-'))
    const started: GatewayProcess[] = []
    onTestFinished(async () => { for (const g of started) await g.stop(); await rm(root, { recursive: true, force: true }) })
    await mkdir(join(root, 'data'))
    const gw = await startGatewayProcess({ dataDir: join(root, 'data') })
    started.push(gw)
    const ports = { ...gw.ports }
    const pid = gw.pid
    await gw.kill()
    const squatter = await listen(ports.http!)
    const busy: number[] = []
    expect(await gw.restart({}, { onPortBusy: p => { busy.push(p); void closeServer(squatter) } })).toBe(true)
    expect(busy).toEqual([ports.http])
    expect(gw.ports).toEqual(ports)
    expect(gw.pid).not.toBe(pid)
    expect((await fetch(`http://127.0.0.1:${ports.http!}/healthz`)).status).toBe(200)
  }, 240_000)
})
