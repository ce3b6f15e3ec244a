// A private redis-server (Debian package `redis-server`) for scale-out tests and benchmarks:
// own temp dir, own free port on 127.0.0.1, no persistence (`--save '' --appendonly no`), log in
// a file. Never touches a system-wide Redis the package may have started.
import { join } from 'node:path';
import { freePort, pidListensOn } from './ports.js';
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
  /** Starts redis-server again on the same port (after kill()). */
  restart(): Promise<void>;
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
      timeoutMs: opts.startTimeoutMs ?? 10_000,
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
      async restart() {
        await proc.stop(5000);
        proc = spawnManaged(bin, args, { logFile: join(dir, 'redis.stdout') });
        await listening(proc);
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
