// Sanity checks for the test-support launchers: each starts a real private
// server, gets data in with plain fetch / the Debian MQTT clients, and reads
// it back with the helpers.
import { existsSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startInfluxDB, type InfluxServer } from '../testkit/influxdb.js';
import { mosquittoPub, mosquittoSub, startMosquitto, type MosquittoBroker } from '../testkit/mosquitto.js';
import { freePort, freePorts } from '../testkit/ports.js';
import { resolveBinary, runCommand } from '../testkit/proc.js';
import { startVictoriaMetrics, type VMSeries, type VMServer } from '../testkit/victoria.js';

// 2023-11-14T22:13:20Z in microseconds: fixed, historic, exact in a double.
const T0_US = 1_700_000_000_000_000;

describe('ports', () => {
  it('hands out usable, distinct ports', async () => {
    const p = await freePort();
    expect(p).toBeGreaterThan(0);
    const ps = await freePorts(3);
    expect(new Set(ps).size).toBe(3);
  });
});

describe('InfluxDB 1.x launcher', () => {
  let influx: InfluxServer;
  const lines = [
    `ecg,patient=p1,lead=II v=0.125,seq=1i ${T0_US}`,
    `ecg,patient=p1,lead=II v=0.25,seq=2i ${T0_US + 2000}`,
    `ecg,patient=p1,lead=II v=-0.5,seq=3i ${T0_US + 4000}`,
    `ecg,patient=p2,lead=II v=1.5 ${T0_US + 1}`,
  ];

  beforeAll(async () => {
    influx = await startInfluxDB();
  });
  afterAll(async () => {
    await influx?.stop();
  });

  it('serves a private instance on a loopback port', async () => {
    expect(influx.url).toBe(`http://127.0.0.1:${influx.port}`);
    expect(influx.port).not.toBe(8086);
    expect(influx.rpcPort).not.toBe(8088);
    const res = await fetch(`${influx.url}/ping`);
    expect(res.status).toBe(204);
  });

  it('stores microsecond line protocol written by plain fetch', async () => {
    await influx.createDatabase('x');
    const res = await fetch(`${influx.url}/write?db=x&precision=u`, { method: 'POST', body: lines.join('\n') });
    expect(res.status).toBe(204);

    expect(await influx.count('x', 'ecg')).toBe(4);
    expect(await influx.count('x', 'ecg', 'seq')).toBe(3);
    expect(await influx.count('x', 'ecg', 'v', `"patient" = 'p2'`)).toBe(1);
    expect(await influx.count('x', 'nothing_here')).toBe(0);

    const body = await influx.query(`SELECT "v", "seq" FROM "ecg" WHERE "patient" = 'p1'`, 'x', { epoch: 'u' });
    expect(body.results[0].series[0].values).toEqual([
      [T0_US, 0.125, 1],
      [T0_US + 2000, 0.25, 2],
      [T0_US + 4000, -0.5, 3],
    ]);
  });

  it('throws on InfluxQL errors', async () => {
    await expect(influx.query('SELEC nonsense')).rejects.toThrow(/error parsing query/);
    await expect(influx.query('SELECT * FROM ecg', 'no_such_db')).rejects.toThrow(/database not found/);
  });

  it('survives SIGKILL + restart on the same port with the same data', async () => {
    const { port, pid } = influx;
    influx.kill('SIGKILL');
    await influx.restart();
    expect(influx.port).toBe(port);
    expect(influx.pid).not.toBe(pid);
    expect(await influx.count('x', 'ecg')).toBe(4);
  });

  it('removes its temp dir on stop', async () => {
    const dir = influx.dir;
    expect(existsSync(dir)).toBe(true);
    await influx.stop();
    expect(existsSync(dir)).toBe(false);
  });
});

describe('VictoriaMetrics launcher', () => {
  let vm: VMServer;

  beforeAll(async () => {
    vm = await startVictoriaMetrics();
  });
  afterAll(async () => {
    await vm?.stop();
  });

  it('maps line protocol to <measurement>_<field> series with ms timestamps', async () => {
    const body = [
      `ecg,patient=p1,lead=II v=0.125,seq=1i ${T0_US + 100}`,
      `ecg,patient=p1,lead=II v=0.25,seq=2i ${T0_US + 900}`, // same millisecond as the first
      `ecg,patient=p1,lead=II v=-0.5,seq=3i ${T0_US + 2999}`,
    ].join('\n');
    const res = await fetch(`${vm.url}/api/v2/write?precision=us&db=amb`, { method: 'POST', body });
    expect(res.status).toBe(204);

    const series = await vm.waitForExport('{__name__=~"ecg_.*"}', (s) => s.length === 2);
    const t0ms = T0_US / 1000;
    expect(series.map((s) => s.metric)).toEqual([
      { __name__: 'ecg_seq', db: 'amb', lead: 'II', patient: 'p1' },
      { __name__: 'ecg_v', db: 'amb', lead: 'II', patient: 'p1' },
    ]);
    // Microseconds are floored to ms; the two samples of the same millisecond
    // are both kept (order among equal timestamps is unspecified).
    const pairs = (s: VMSeries | undefined): Array<[number, number]> =>
      (s?.timestamps ?? []).map((t, i): [number, number] => [t, s!.values[i]!]).sort((a, b) => a[0] - b[0] || a[1] - b[1]);
    expect(pairs(series[0])).toEqual([
      [t0ms, 1],
      [t0ms, 2],
      [t0ms + 2, 3],
    ]);
    expect(pairs(series[1])).toEqual([
      [t0ms, 0.125],
      [t0ms, 0.25],
      [t0ms + 2, -0.5],
    ]);
  });

  it('makes points for an existing series visible right after flush', async () => {
    await vm.write(`ecg,patient=p1,lead=II v=2 ${T0_US + 10_000}`, { precision: 'us', db: 'amb' });
    const [v] = await vm.exportLines('ecg_v');
    expect(v?.values).toHaveLength(4);
    expect(v?.values[3]).toBe(2);
    expect(v?.timestamps[3]).toBe(T0_US / 1000 + 10);
  });
});

describe('mosquitto helpers', () => {
  let broker: MosquittoBroker;

  beforeAll(async () => {
    broker = await startMosquitto();
  });
  afterAll(async () => {
    await broker?.stop();
  });

  it('finds the Debian clients (--help exits 1 in mosquitto 2.0)', async () => {
    const r = await runCommand(resolveBinary('mosquitto_pub'), ['--help']);
    expect(r.code).toBe(1);
    expect(r.stdout).toMatch(/mosquitto_pub version 2\./);
  });

  it('round-trips binary and text payloads through a private broker', async () => {
    const sub = await mosquittoSub({ port: broker.port, topic: 'amb/+/ecg', qos: 1, count: 2, timeoutMs: 60_000 });
    const binary = Buffer.from([0x00, 0x01, 0xff, 0x0a, 0x0d, 0x09, 0x80]);
    const a = await mosquittoPub({ port: broker.port, topic: 'amb/a1/ecg', message: binary, qos: 1, id: 'amb-a1' });
    expect(a).toMatchObject({ code: 0, stderr: '' });
    const b = await mosquittoPub({ port: broker.port, topic: 'amb/a2/ecg', message: 'hello', qos: 0 });
    expect(b.code).toBe(0);

    const msgs = await sub.done;
    expect(msgs).toHaveLength(2);
    expect(msgs[0]).toMatchObject({ topic: 'amb/a1/ecg', qos: 1, retained: false });
    expect(msgs[0]?.payload.equals(binary)).toBe(true);
    expect(msgs[1]?.topic).toBe('amb/a2/ecg');
    expect(msgs[1]?.payload.toString()).toBe('hello');
  });

  it('reports a refused connection through the exit code', async () => {
    const port = await freePort(); // nothing listens there
    const r = await mosquittoPub({ port, topic: 't', message: 'x' });
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/refused/i);
    await expect(mosquittoPub({ port, topic: 't', ws: true })).rejects.toThrow(/WebSockets/);
  });

  it('supports a broker with a password file', async () => {
    const secured = await startMosquitto({ users: { amb1: 's3cret' } });
    try {
      const bad = await mosquittoPub({ port: secured.port, topic: 't', message: 'x', username: 'amb1', password: 'nope' });
      expect(bad.code).not.toBe(0);
      expect(bad.stderr).toMatch(/not authori[sz]ed/i);
      const ok = await mosquittoPub({ port: secured.port, topic: 't', message: 'x', username: 'amb1', password: 's3cret' });
      expect(ok.code).toBe(0);
    } finally {
      await secured.stop();
    }
  });
});
