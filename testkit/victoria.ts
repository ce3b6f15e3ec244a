// A private VictoriaMetrics single-node server (Debian package
// `victoria-metrics` 1.79.x, binary /usr/bin/victoria-metrics) for tests.
//
// How VictoriaMetrics stores InfluxDB line protocol (verified empirically
// against the Debian 1.79.5 binary; POST /write and /api/v2/write behave the
// same and both answer 204):
//
// * Metric names: `m,tag=v f1=1,f2=2i` becomes two series, `m_f1` and `m_f2`
//   (separator set by -influxMeasurementFieldSeparator, default "_"). Tags
//   become labels verbatim, escapes removed (`esc\ m,tag\ k=a\,b f\ x=1` gives
//   __name__="esc m_f x", label "tag k"="a,b"). A `?db=NAME` query parameter
//   adds the label db="NAME" (-influxDBLabel); without it there is no db label.
// * Values: floats and integers as float64; booleans as 1/0; string fields
//   are stored as 0 (series `m_s` with value 0), i.e. their content is lost.
// * Timestamps are stored in MILLISECONDS. An explicit `precision` (checked:
//   ns, u, us, ms, s) is honoured and finer timestamps are truncated (floored) to
//   the millisecond: us 1795864935596763 -> ms 1795864935596. With no
//   precision (or an unknown one) VM guesses the unit from the magnitude of
//   the number, so s/ms/us/ns all land right. A line without timestamp gets
//   the server's current time.
// * Consequence for microsecond ECG samples: several samples within the same
//   millisecond (e.g. >1 kHz, or jittered timestamps) keep the same ms
//   timestamp. They are NOT merged - export returns all of them, with equal
//   timestamps - unless -dedup.minScrapeInterval is set (we do not). VM sorts
//   by timestamp only, so do not rely on the order of equal-timestamp values.
// * Silently dropped (still HTTP 204!): points outside the retention period
//   (vm_rows_ignored_total{reason="small_timestamp"}) or more than 2 days in
//   the future ({reason="big_timestamp"}; 1.9 days ahead is kept, 2.1 days
//   is not). A wrong explicit precision (precision=ns with microsecond
//   numbers) therefore loses the data without any error. We start with -retentionPeriod=100y so fixed historic test
//   timestamps are kept.
//
// Visibility of fresh data (the reason for flush() and waitForExport()):
// * After a write to an EXISTING series, /internal/force_flush makes the new
//   points exportable immediately (~35 ms); without it they appear after ~1 s.
// * A NEW series only shows up 0.3-1 s after the write even with force_flush,
//   and polling for it WITHOUT force_flush took up to 10 s (a search that
//   comes back empty appears to be cached). So poll with flush() before every
//   attempt, which waitForExport() does.
// * /api/v1/export without end= stops at the current time, so samples
//   stamped even 10 s in the future are not returned; exportLines() passes
//   end=now+3d by default.
import { join } from 'node:path';
import { freePort, pidListensOn } from './ports.js';
import {
  ProcessExitedError,
  makeTempDir,
  removeTempDir,
  resolveBinary,
  serverLifecycle,
  sleep,
  spawnManaged,
  tailFile,
  waitFor,
  type ManagedProcess,
} from './proc.js';

export interface VMSeries {
  metric: Record<string, string>;
  values: number[];
  /** Milliseconds since the epoch. */
  timestamps: number[];
}

export type VMPrecision = 'ns' | 'us' | 'ms' | 's';

export interface VMWriteOptions {
  /** Sent as ?precision=; omit to let VM guess from the magnitude. */
  precision?: VMPrecision;
  /** Sent as ?db=; becomes label db="..." on every series. */
  db?: string;
}

export interface VMExportRange {
  /** Passed as start=/end= (unix seconds or RFC3339). */
  start?: string | number;
  /** Default: now + 3 days, so future-stamped samples are included. */
  end?: string | number;
}

export interface VMServer {
  /** Base URL, e.g. http://127.0.0.1:41235 (no trailing slash). */
  readonly url: string;
  readonly port: number;
  readonly dir: string;
  readonly logFile: string;
  readonly pid: number;
  /**
   * flush(), then GET /api/v1/export?match[]=<match> (NDJSON). Lines for the
   * same label set are merged (VM may split one series over several lines).
   * Result is sorted by metric name and labels; samples sorted by time.
   * `match` is a series selector, e.g. `ecg_v` or `{__name__=~"ecg_.*"}`.
   */
  exportLines(match: string, range?: VMExportRange): Promise<VMSeries[]>;
  /**
   * Poll exportLines() (flushing each time) until `done(series)` is true;
   * returns the last export. Default timeout 10 s.
   */
  waitForExport(
    match: string,
    done: (series: VMSeries[]) => boolean,
    timeoutMs?: number,
  ): Promise<VMSeries[]>;
  /** GET /internal/force_flush: make recently ingested samples searchable. */
  flush(): Promise<void>;
  /** POST line protocol to /api/v2/write; throws unless 204. */
  write(lines: string | readonly string[], opts?: VMWriteOptions): Promise<void>;
  logTail(lines?: number): Promise<string>;
  /** Send a signal to the process (fault tests). */
  kill(signal?: NodeJS.Signals): void;
  /** SIGTERM, SIGKILL after 5 s, then remove the temp dir. Idempotent. */
  stop(): Promise<void>;
}

export interface StartVMOptions {
  /** How long to wait for /health (default 20 s). */
  startTimeoutMs?: number;
  /** Extra command-line flags, e.g. ['-dedup.minScrapeInterval=1ms']. */
  extraArgs?: readonly string[];
}

const START_ATTEMPTS = 3;

function vmArgs(dir: string, port: number, extra: readonly string[]): string[] {
  return [
    `-storageDataPath=${join(dir, 'data')}`,
    `-httpListenAddr=127.0.0.1:${port}`,
    // keep fixed historic test timestamps (default retention is 1 month)
    '-retentionPeriod=100y',
    // make just-written samples visible to queries without the 30 s delay
    '-search.latencyOffset=0s',
    '-search.disableCache',
    '-loggerLevel=WARN',
    // no listeners besides HTTP; this version has no telemetry to turn off
    ...extra,
  ];
}

// Identity and sort key of a series: name first, then labels sorted by key.
function seriesKey(metric: Record<string, string>): string {
  const { __name__: name = '', ...labels } = metric;
  const rest = Object.keys(labels)
    .sort()
    .map((k) => `${k}\u0001${labels[k]}`)
    .join('\u0002');
  return `${name}\u0000${rest}`;
}

function describeSeries(metric: Record<string, string>): string {
  const { __name__: name = '', ...labels } = metric;
  return `${name}${JSON.stringify(labels)}`;
}

export async function startVictoriaMetrics(opts: StartVMOptions = {}): Promise<VMServer> {
  const timeoutMs = opts.startTimeoutMs ?? 20_000;
  const bin = resolveBinary('victoria-metrics');
  for (let attempt = 1; ; attempt++) {
    const dir = await makeTempDir('victoria-test-');
    const port = await freePort();
    const url = `http://127.0.0.1:${port}`;
    const logFile = join(dir, 'victoria-metrics.log');
    const proc = spawnManaged(bin, vmArgs(dir, port, opts.extraArgs ?? []), { logFile });
    try {
      await waitFor(
        async () => {
          if (!(await pidListensOn(proc.pid, port))) return false;
          const res = await fetch(`${url}/health`, { signal: AbortSignal.timeout(2000) });
          await res.arrayBuffer();
          return res.ok;
        },
        { timeoutMs, what: `victoria-metrics /health on ${url}`, proc },
      );
    } catch (e) {
      await proc.stop();
      const log = await tailFile(logFile);
      await removeTempDir(dir);
      if (e instanceof ProcessExitedError && /address already in use/i.test(log) && attempt < START_ATTEMPTS) {
        continue;
      }
      throw new Error(
        `VictoriaMetrics failed to start: ${(e as Error).message}\n--- tail of ${logFile} ---\n${log}`,
      );
    }
    return makeServer(url, port, dir, logFile, proc);
  }
}

function makeServer(
  url: string,
  port: number,
  dir: string,
  logFile: string,
  proc: ManagedProcess,
): VMServer {

  async function flush(): Promise<void> {
    const res = await fetch(`${url}/internal/force_flush`);
    await res.arrayBuffer();
    if (!res.ok) throw new Error(`VictoriaMetrics force_flush HTTP ${res.status}`);
  }

  async function exportLines(match: string, range: VMExportRange = {}): Promise<VMSeries[]> {
    await flush();
    const qs = new URLSearchParams();
    qs.append('match[]', match);
    if (range.start !== undefined) qs.set('start', String(range.start));
    // VM's export stops at "now" by default, which hides samples stamped a
    // little in the future (clock skew); it accepts up to ~2 days ahead.
    qs.set('end', String(range.end ?? Math.ceil(Date.now() / 1000) + 3 * 86_400));
    const res = await fetch(`${url}/api/v1/export?${qs}`);
    const text = await res.text();
    if (!res.ok) throw new Error(`VictoriaMetrics export HTTP ${res.status}: ${text.slice(0, 500)}`);
    const byKey = new Map<string, VMSeries>();
    for (const line of text.split('\n')) {
      if (line.trim() === '') continue;
      const s = JSON.parse(line) as VMSeries;
      const key = seriesKey(s.metric);
      const prev = byKey.get(key);
      if (prev === undefined) {
        byKey.set(key, { metric: s.metric, values: [...s.values], timestamps: [...s.timestamps] });
      } else {
        prev.values.push(...s.values);
        prev.timestamps.push(...s.timestamps);
      }
    }
    const out = [...byKey.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)).map(([, s]) => s);
    for (const s of out) {
      // Stable sort by timestamp keeps VM's order for equal timestamps.
      const idx = s.timestamps.map((_, i) => i).sort((a, b) => s.timestamps[a]! - s.timestamps[b]!);
      s.values = idx.map((i) => s.values[i]!);
      s.timestamps = idx.map((i) => s.timestamps[i]!);
    }
    return out;
  }

  return {
    url,
    port,
    dir,
    logFile,
    pid: proc.pid,
    exportLines,
    async waitForExport(match, done, timeoutMs = 10_000) {
      let last: VMSeries[] = [];
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        last = await exportLines(match);
        if (done(last)) return last;
        if (Date.now() >= deadline) {
          const summary = last.map((s) => `${describeSeries(s.metric)}: ${s.values.length} samples`).join('; ');
          throw new Error(
            `timed out after ${timeoutMs} ms waiting for VictoriaMetrics export of ${match}; ` +
              `last export: ${summary || 'no series'}`,
          );
        }
        await sleep(100);
      }
    },
    flush,
    async write(lines, wopts = {}) {
      const body = typeof lines === 'string' ? lines : lines.join('\n');
      const qs = new URLSearchParams();
      if (wopts.precision !== undefined) qs.set('precision', wopts.precision);
      if (wopts.db !== undefined) qs.set('db', wopts.db);
      const res = await fetch(`${url}/api/v2/write?${qs}`, { method: 'POST', body });
      if (res.status !== 204) {
        throw new Error(`VictoriaMetrics /api/v2/write HTTP ${res.status}: ${(await res.text()).slice(0, 500)}`);
      }
    },
    ...serverLifecycle(proc, dir, logFile),
  };
}
