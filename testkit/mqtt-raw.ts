/**
 * Just enough MQTT 3.1.1 to hold thousands of idle device connections from one process: a
 * CONNECT with credentials and the devices' will, the CONNACK check, PINGREQ. mqtt.js keeps
 * ~100 KB of state per client; a raw socket keeps ~2 KB, so the load generator measures the
 * gateway's memory, not its own.
 */
import { connect as tcpConnect, type Socket } from 'node:net'

export const PINGREQ = Buffer.from([0xc0, 0x00])
export const DISCONNECT = Buffer.from([0xe0, 0x00])

function str (s: string | Buffer): Buffer {
  const b = typeof s === 'string' ? Buffer.from(s) : s
  const out = Buffer.allocUnsafe(2 + b.length)
  out.writeUInt16BE(b.length, 0)
  b.copy(out, 2)
  return out
}

function remainingLength (n: number): Buffer {
  const bytes: number[] = []
  do {
    let b = n % 128
    n = Math.floor(n / 128)
    if (n > 0) b |= 0x80
    bytes.push(b)
  } while (n > 0)
  return Buffer.from(bytes)
}

export interface ConnectOptions {
  clientId: string
  username: string
  password: string
  keepaliveS: number
  /** Will: retained QoS 1 message on `topic` (the device contract's `offline`). */
  will?: { topic: string, payload: string }
}

/** [MQTT-3.1] CONNECT, protocol level 4 (3.1.1), clean session. */
export function connectPacket (o: ConnectOptions): Buffer {
  // username | password | (will retain | will QoS 1 | will) | clean session
  const flags = 0x80 | 0x40 | (o.will !== undefined ? 0x20 | 0x08 | 0x04 : 0) | 0x02
  const variable = Buffer.concat([str('MQTT'), Buffer.from([4, flags, o.keepaliveS >> 8, o.keepaliveS & 0xff])])
  const payload = Buffer.concat([
    str(o.clientId),
    ...(o.will !== undefined ? [str(o.will.topic), str(o.will.payload)] : []),
    str(o.username),
    str(o.password)
  ])
  const body = Buffer.concat([variable, payload])
  return Buffer.concat([Buffer.from([0x10]), remainingLength(body.length), body])
}

export interface RawConnection {
  socket: Socket
  /** Resolves once CONNACK accepted the connection; rejects on refusal, close or timeout. */
  ready: Promise<void>
}

/** Connects from `localAddress` (127.0.0.x spreads the ephemeral ports and per-address caps). */
export function rawConnect (host: string, port: number, localAddress: string, o: ConnectOptions, timeoutMs: number): RawConnection {
  const socket = tcpConnect({ host, port, localAddress })
  socket.setNoDelay(true)
  const ready = new Promise<void>((resolve, reject) => {
    let got = Buffer.alloc(0)
    const timer = setTimeout(() => { fail(new Error(`no CONNACK within ${timeoutMs} ms`)) }, timeoutMs)
    const fail = (err: Error): void => {
      clearTimeout(timer)
      socket.off('data', onData)
      socket.destroy()
      reject(err)
    }
    const onData = (chunk: Buffer): void => {
      got = Buffer.concat([got, chunk])
      if (got.length < 4) return
      clearTimeout(timer)
      socket.off('data', onData)
      // CONNACK: 0x20 0x02 <session present> <return code>
      if (got[0] !== 0x20 || got[3] !== 0) {
        fail(new Error(`CONNACK refused: ${got.subarray(0, 4).toString('hex')}`))
        return
      }
      // Anything else the gateway sends (PINGRESP) is read and dropped.
      socket.on('data', () => {})
      resolve()
    }
    socket.on('data', onData)
    socket.once('error', fail)
    socket.once('close', () => { fail(new Error('closed before CONNACK')) })
    socket.once('connect', () => { socket.write(connectPacket(o)) })
  })
  ready.catch(() => {})
  return { socket, ready }
}
