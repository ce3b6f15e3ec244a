// Child-process helpers for tests and benchmarks: spawn long-running servers with their
// output going to a log file (never to the test output), run short commands collecting their
// output, and make sure nothing outlives the test worker or the bench process.
import { spawn, type ChildProcess } from 'node:child_process';
import { accessSync, constants, closeSync, openSync, rmSync } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';

export interface ExitInfo {
  code: number | null;
  signal: NodeJS.Signals | null;
}

export interface ManagedProcess {
  readonly child: ChildProcess;
  readonly pid: number;
  /** Resolves when the process has exited (never rejects). */
  readonly exited: Promise<ExitInfo>;
  /** Set once the process has exited. */
  readonly exitInfo: ExitInfo | undefined;
  /** Output collected in memory (only when no `logFile` was given). */
  output(): string;
  /** Send a signal; returns false if the process is already gone. */
  signal(sig: NodeJS.Signals): boolean;
  /**
   * SIGCONT (in case a fault test stopped it), SIGTERM, then SIGKILL after
   * `graceMs`. Resolves with the exit info.
   */
  stop(graceMs?: number): Promise<ExitInfo>;
}

export interface SpawnManagedOptions {
  cwd?: string;
  env?: NodeJS.ProcessEnv;
  /** Append stdout and stderr to this file instead of buffering them. */
  logFile?: string;
}

// Every live child, killed synchronously if the worker exits without
// stopping it (failed beforeAll, crashed test, forgotten stop()).
const live = new Set<ManagedProcess>();
const tempDirs = new Set<string>();
let exitHookInstalled = false;

function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.once('exit', () => {
    for (const p of live) {
      try {
        p.child.kill('SIGKILL');
      } catch {
        // already gone
      }
    }
    for (const dir of tempDirs) rmSync(dir, { recursive: true, force: true });
  });
}

const MAX_BUFFERED = 1 << 20; // keep at most 1 MiB of in-memory output

export function spawnManaged(
  cmd: string,
  args: readonly string[],
  opts: SpawnManagedOptions = {},
): ManagedProcess {
  installExitHook();
  let fd: number | undefined;
  if (opts.logFile !== undefined) fd = openSync(opts.logFile, 'a');
  let child: ChildProcess;
  try {
    child = spawn(cmd, args, {
      cwd: opts.cwd,
      env: opts.env ?? process.env,
      stdio: ['ignore', fd ?? 'pipe', fd ?? 'pipe'],
    });
  } finally {
    // The child has its own copy of the descriptor.
    if (fd !== undefined) closeSync(fd);
  }

  let spawnError: Error | undefined;
  child.on('error', (err) => {
    spawnError = err;
  });
  if (child.pid === undefined) {
    throw new Error(`failed to spawn ${cmd}: is it installed and on PATH?`);
  }

  let buffered = '';
  const collect = (chunk: Buffer): void => {
    if (buffered.length < MAX_BUFFERED) buffered += chunk.toString('utf8');
  };
  child.stdout?.on('data', collect);
  child.stderr?.on('data', collect);

  let exitInfo: ExitInfo | undefined;
  const exited = new Promise<ExitInfo>((resolve) => {
    child.once('exit', (code, signal) => {
      exitInfo = { code, signal };
      live.delete(proc);
      resolve(exitInfo);
    });
  });

  const proc: ManagedProcess = {
    child,
    pid: child.pid,
    exited,
    get exitInfo() {
      return exitInfo;
    },
    output: () => buffered + (spawnError ? `\n[spawn error] ${spawnError.message}` : ''),
    signal(sig) {
      if (exitInfo !== undefined) return false;
      try {
        return child.kill(sig);
      } catch {
        return false;
      }
    },
    async stop(graceMs = 5000) {
      if (exitInfo !== undefined) return exitInfo;
      proc.signal('SIGCONT');
      proc.signal('SIGTERM');
      const timer = setTimeout(() => proc.signal('SIGKILL'), graceMs);
      try {
        return await exited;
      } finally {
        clearTimeout(timer);
      }
    },
  };
  live.add(proc);
  return proc;
}

export interface CommandResult {
  code: number;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

export interface RunCommandOptions {
  cwd?: string;
  env?: NodeJS.ProcessEnv;
  input?: string | Buffer;
  /** SIGKILL the command after this long (default 30 s). */
  timeoutMs?: number;
}

/**
 * Run a short command to completion. Never rejects for a non-zero exit:
 * `code` is the exit code, or -1 when the command was killed by a signal.
 * Rejects only if the command cannot be started at all.
 */
export function runCommand(
  cmd: string,
  args: readonly string[],
  opts: RunCommandOptions = {},
): Promise<CommandResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, {
      cwd: opts.cwd,
      env: opts.env ?? process.env,
      stdio: [opts.input === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'],
    });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout?.on('data', (c: Buffer) => out.push(c));
    child.stderr?.on('data', (c: Buffer) => err.push(c));
    const timer = setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs ?? 30_000);
    child.once('error', (e) => {
      clearTimeout(timer);
      reject(new Error(`failed to run ${cmd}: ${e.message}`));
    });
    child.once('close', (code, signal) => {
      clearTimeout(timer);
      resolve({
        code: code ?? -1,
        signal,
        stdout: Buffer.concat(out).toString('utf8'),
        stderr: Buffer.concat(err).toString('utf8'),
      });
    });
    if (opts.input !== undefined) child.stdin?.end(opts.input);
  });
}

/**
 * Absolute path of an executable. Looks in PATH and then in the sbin
 * directories, which are not on PATH for non-root users but hold
 * e.g. Debian's /usr/sbin/mosquitto.
 */
export function resolveBinary(name: string): string {
  const dirs = [
    ...(process.env.PATH ?? '').split(delimiter).filter(Boolean),
    '/usr/local/sbin',
    '/usr/sbin',
    '/sbin',
    '/usr/local/bin',
    '/usr/bin',
  ];
  for (const dir of dirs) {
    const candidate = join(dir, name);
    try {
      accessSync(candidate, constants.X_OK);
      return candidate;
    } catch {
      // keep looking
    }
  }
  throw new Error(`executable "${name}" not found (searched ${dirs.join(':')}); install its Debian package`);
}

/** A fresh private temp dir, removed at worker exit if not removed before. */
export async function makeTempDir(prefix: string): Promise<string> {
  installExitHook();
  const dir = await mkdtemp(join(tmpdir(), prefix));
  tempDirs.add(dir);
  return dir;
}

export async function removeTempDir(dir: string): Promise<void> {
  await rm(dir, { recursive: true, force: true });
  tempDirs.delete(dir);
}

/**
 * What every private server started here hands back about its process: its log, a kill for
 * fault tests, and a stop (SIGTERM, SIGKILL after 5 s, temp dir removed) that is idempotent.
 */
export interface ServerLifecycle {
  logTail(lines?: number): Promise<string>;
  kill(signal?: NodeJS.Signals): void;
  stop(): Promise<void>;
}

export function serverLifecycle(proc: ManagedProcess, dir: string, logFile: string): ServerLifecycle {
  let stopped = false;
  return {
    logTail: (lines) => tailFile(logFile, lines),
    kill(signal = 'SIGKILL') {
      proc.signal(signal);
    },
    async stop() {
      if (stopped) return;
      stopped = true;
      await proc.stop(5000);
      await removeTempDir(dir);
    },
  };
}

/** Last `maxLines` lines of a (log) file, or a note if it cannot be read. */
export async function tailFile(path: string, maxLines = 40): Promise<string> {
  try {
    const text = await readFile(path, 'utf8');
    return text.trimEnd().split('\n').slice(-maxLines).join('\n');
  } catch (e) {
    return `<cannot read ${path}: ${(e as Error).message}>`;
  }
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

export interface WaitForOptions {
  timeoutMs: number;
  intervalMs?: number;
  /** Used in the timeout error message. */
  what: string;
  /** Give up early (with this process' exit status) if it dies meanwhile. */
  proc?: ManagedProcess;
}

export class ProcessExitedError extends Error {
  constructor(
    message: string,
    readonly exit: ExitInfo,
  ) {
    super(message);
    this.name = 'ProcessExitedError';
  }
}

/**
 * Poll `probe` until it returns something other than undefined/false.
 * Exceptions thrown by the probe count as "not yet" (the server may not be
 * listening yet); the last one is reported on timeout.
 */
export async function waitFor<T>(
  probe: () => Promise<T | undefined | false>,
  opts: WaitForOptions,
): Promise<T> {
  const deadline = Date.now() + opts.timeoutMs;
  let lastError: unknown;
  for (;;) {
    if (opts.proc?.exitInfo !== undefined) {
      const { code, signal } = opts.proc.exitInfo;
      throw new ProcessExitedError(
        `process exited (code ${code}, signal ${signal}) while waiting for ${opts.what}`,
        opts.proc.exitInfo,
      );
    }
    try {
      const v = await probe();
      if (v !== undefined && v !== false) return v;
    } catch (e) {
      lastError = e;
    }
    if (Date.now() >= deadline) {
      const why = lastError instanceof Error ? `; last error: ${lastError.message}` : '';
      throw new Error(`timed out after ${opts.timeoutMs} ms waiting for ${opts.what}${why}`);
    }
    await sleep(opts.intervalMs ?? 50);
  }
}
