// A private redis-server (Debian package `redis-server`) for scale-out tests and benchmarks:
// own temp dir, own free port on 127.0.0.1, no persistence (`--save '' --appendonly no`), log in
// a file. Never touches a system-wide Redis the package may have started.
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { freePort, pidListensOn } from './ports.js';
import { restartOnSamePorts, type SamePortOptions } from './same-port.js';
import {
  ProcessExitedError,
  makeTempDir,
  removeTempDir,
  resolveBinary,
  spawnManaged,
  tailFile,
  waitFor,
  type ManagedProcess,
} from './proc.js';

export interface RedisServer {
  readonly port: number;
  /** redis://127.0.0.1:<port> */
  readonly url: string;
  readonly dir: string;
  readonly logFile: string;
  readonly pid: number;
  logTail(lines?: number): Promise<string>;
  /** Stops redis-server (SIGKILL: an outage, not a shutdown) and waits for it to exit; keeps the dir. */
  kill(): Promise<void>;
  /**
   * Starts redis-server again on the same port (after kill(); stops it first if it still runs):
   * once the old process has exited and the port can be bound, retrying a start that lost the
   * port to someone else (testkit/same-port.ts).
   */
  restart(opts?: { onPortBusy?: SamePortOptions['onPortBusy'] }): Promise<void>;
  /** SIGTERM, SIGKILL after 5 s, remove the temp dir. Idempotent. */
  stop(): Promise<void>;
}

export async function startRedis(opts: { startTimeoutMs?: number } = {}): Promise<RedisServer> {
  const bin = resolveBinary('redis-server');
  for (let attempt = 1; ; attempt++) {
    const dir = await makeTempDir('redis-test-');
    const port = await freePort();
    const logFile = join(dir, 'redis.log');
    // Everything on the command line: no config file to go stale. `--save ''` disables RDB
    // snapshots, `--appendonly no` the AOF: sessions only need to outlive a gateway, not Redis.
    const args = [
      '--port', String(port),
      '--bind', '127.0.0.1',
      '--dir', dir,
      '--save', '',
      '--appendonly', 'no',
      '--daemonize', 'no',
      '--logfile', logFile,
      '--protected-mode', 'yes',
    ];
    let proc: ManagedProcess = spawnManaged(bin, args, { logFile: join(dir, 'redis.stdout') });
    const listening = (p: ManagedProcess): Promise<unknown> => waitFor(() => pidListensOn(p.pid, port), {
      // Generous: redis starts in milliseconds, but a loaded 2-core machine can hold a fork back for seconds.
      timeoutMs: opts.startTimeoutMs ?? 30_000,
      what: `redis-server listener on 127.0.0.1:${port}`,
      proc: p,
    });
    try {
      await listening(proc);
    } catch (e) {
      await proc.stop(1000);
      const log = await tailFile(logFile);
      await removeTempDir(dir);
      if (e instanceof ProcessExitedError && /address already in use/i.test(log) && attempt < 3) continue;
      throw new Error(`redis-server failed to start: ${(e as Error).message}\n--- log ---\n${log}`);
    }
    let stopped = false;
    const readLog = (): Promise<string> => readFile(logFile, 'utf8').catch(() => '');
    return {
      port,
      url: `redis://127.0.0.1:${port}`,
      dir,
      logFile,
      get pid() { return proc.pid; },
      logTail: (lines) => tailFile(logFile, lines),
      async kill() {
        proc.signal('SIGKILL');
        await proc.exited;
      },
      async restart(ropts = {}) {
        await proc.stop(5000);
        await restartOnSamePorts([port], async () => {
          const before = (await readLog()).length;
          proc = spawnManaged(bin, args, { logFile: join(dir, 'redis.stdout') });
          try {
            await listening(proc);
          } catch (e) {
            await proc.stop(1000);
            const log = (await readLog()).slice(before);
            throw Object.assign(new Error(`redis-server failed to restart on port ${port}: ${(e as Error).message}\n--- log ---\n${log.slice(-4000)}`), {
              addressInUse: e instanceof ProcessExitedError && /address already in use/i.test(log),
            });
          }
        }, {
          what: `redis-server on 127.0.0.1:${port}`,
          isAddressInUse: (err) => (err as { addressInUse?: boolean }).addressInUse === true,
          onPortBusy: ropts.onPortBusy,
        });
      },
      async stop() {
        if (stopped) return;
        stopped = true;
        await proc.stop(5000);
        await removeTempDir(dir);
      },
    };
  }
}
