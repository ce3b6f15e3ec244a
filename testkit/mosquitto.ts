// Debian's Mosquitto 2.0 tools as "a client written by others":
// mosquitto_pub / mosquitto_sub against any broker (e.g. the gateway's), and
// a private mosquitto broker for reference runs and benchmarks.
//
// Facts about the Debian 2.0.11 build this relies on:
// * `mosquitto_pub --help` / `mosquitto_sub --help` exit with code 1 (not 0),
//   printing the usage on stdout.
// * The clients cannot speak MQTT over WebSockets (libmosquitto has no
//   WebSocket client transport, there is no such option), and the broker is
//   not linked against libwebsockets either. Use the `mqtt` npm package for
//   WebSocket tests.
// * mosquitto_sub's stdout is block-buffered when it is a pipe, so it is run
//   under coreutils `stdbuf -oL`; with -d it prints "Subscribed (mid: N)"
//   once the SUBACK arrived, which is how we know it is ready.
// * The broker, started as root, drops privileges to user "mosquitto" unless
//   the config says `user root`; we set `user` to the current user so it can
//   read files in our 0700 temp dir.
import { writeFile } from 'node:fs/promises';
import { userInfo } from 'node:os';
import { join } from 'node:path';
import { freePort, pidListensOn } from './ports.js';
import {
  ProcessExitedError,
  makeTempDir,
  removeTempDir,
  resolveBinary,
  runCommand,
  serverLifecycle,
  spawnManaged,
  tailFile,
  waitFor,
  type CommandResult,
  type ManagedProcess,
} from './proc.js';

export type { CommandResult } from './proc.js';

export type MqttQos = 0 | 1 | 2;
export type MqttProtocol = 'mqttv31' | 'mqttv311' | 'mqttv5';

interface ConnectionOptions {
  port: number;
  /** Default 127.0.0.1. */
  host?: string;
  username?: string;
  password?: string;
  /** Client id (-i). */
  id?: string;
  /** -V; the tools default to mqttv311. */
  protocol?: MqttProtocol;
  /** Extra raw arguments appended to the command line. */
  extraArgs?: readonly string[];
}

function connectionArgs(o: ConnectionOptions): string[] {
  const args = ['-h', o.host ?? '127.0.0.1', '-p', String(o.port)];
  if (o.username !== undefined) args.push('-u', o.username);
  if (o.password !== undefined) args.push('-P', o.password);
  if (o.id !== undefined) args.push('-i', o.id);
  if (o.protocol !== undefined) args.push('-V', o.protocol);
  return args;
}

export interface MosquittoPubOptions extends ConnectionOptions {
  topic: string;
  /** Send the contents of this file as the payload (-f). */
  file?: string;
  /** Payload; written to a temp file and sent with -f so bytes are exact. */
  message?: Buffer | string;
  qos?: MqttQos;
  retain?: boolean;
  /** Not supported by mosquitto_pub: passing true rejects with an explanation. */
  ws?: boolean;
  /** Kill mosquitto_pub after this long (default 15 s). */
  timeoutMs?: number;
}

/**
 * Publish one message with mosquitto_pub. Resolves with its exit code and
 * output (code 0 = sent, and for QoS 1/2 acknowledged); never rejects for a
 * refused connection or auth failure: assert on `code`/`stderr`.
 * Without `file` and `message` an empty payload is sent (-n).
 */
export async function mosquittoPub(opts: MosquittoPubOptions): Promise<CommandResult> {
  if (opts.ws === true) {
    throw new Error('mosquitto_pub cannot publish over WebSockets; use the mqtt npm package instead');
  }
  if (opts.file !== undefined && opts.message !== undefined) {
    throw new Error('mosquittoPub: pass either file or message, not both');
  }
  const args = [...connectionArgs(opts), '-t', opts.topic, '-q', String(opts.qos ?? 0)];
  if (opts.retain === true) args.push('-r');
  let tmp: string | undefined;
  try {
    if (opts.file !== undefined) {
      args.push('-f', opts.file);
    } else if (opts.message !== undefined) {
      tmp = await makeTempDir('mosquitto-pub-');
      const file = join(tmp, 'payload');
      await writeFile(file, opts.message);
      args.push('-f', file);
    } else {
      args.push('-n');
    }
    args.push(...(opts.extraArgs ?? []));
    return await runCommand(resolveBinary('mosquitto_pub'), args, { timeoutMs: opts.timeoutMs ?? 15_000 });
  } finally {
    if (tmp !== undefined) await removeTempDir(tmp);
  }
}

export interface MqttMessage {
  topic: string;
  payload: Buffer;
  qos: number;
  retained: boolean;
}

export interface MosquittoSubOptions extends ConnectionOptions {
  /** Topic filter(s), one -t each. */
  topic: string | readonly string[];
  qos?: MqttQos;
  /** `done` resolves once this many messages arrived (default: only on timeout). */
  count?: number;
  /** `done` resolves with what arrived so far after this long (default 10 s). */
  timeoutMs?: number;
  /** How long to wait for the SUBACK (default 10 s). */
  readyTimeoutMs?: number;
}

export interface MosquittoSub {
  /** Messages received so far (live array). */
  readonly messages: MqttMessage[];
  /**
   * Resolves after `count` messages or `timeoutMs`, whichever is first, or
   * when mosquitto_sub exits; the subscriber is stopped at that point.
   */
  readonly done: Promise<MqttMessage[]>;
  /** stdout lines that were not messages (connection debug) and stderr. */
  log(): string;
  /** Stop mosquitto_sub now; resolves with the messages received. */
  stop(): Promise<MqttMessage[]>;
}

// One line per message: fixed fields first, topic last (it may hold spaces).
const SUB_FORMAT = 'MSG\\t%q\\t%r\\t%x\\t%t';
const MSG_RE = /^MSG\t(\d)\t(\d)\t([0-9a-f]*)\t(.*)$/;

/**
 * Start mosquitto_sub and resolve once the broker acknowledged the
 * subscription, so a publish made afterwards is guaranteed to be seen.
 * Rejects (with mosquitto_sub's output) if it cannot connect or subscribe.
 */
export async function mosquittoSub(opts: MosquittoSubOptions): Promise<MosquittoSub> {
  const topics = typeof opts.topic === 'string' ? [opts.topic] : [...opts.topic];
  const args = ['-oL', resolveBinary('mosquitto_sub'), ...connectionArgs(opts), '-d', '-q', String(opts.qos ?? 0)];
  for (const t of topics) args.push('-t', t);
  args.push('-F', SUB_FORMAT, ...(opts.extraArgs ?? []));
  const proc: ManagedProcess = spawnManaged(resolveBinary('stdbuf'), args);

  const messages: MqttMessage[] = [];
  const other: string[] = [];
  let subscribed = false;
  let finish: (() => void) | undefined;
  let partial = '';
  proc.child.stdout?.on('data', (chunk: Buffer) => {
    partial += chunk.toString('latin1'); // hex payloads and debug text only; topics are re-decoded below
    let nl: number;
    while ((nl = partial.indexOf('\n')) >= 0) {
      const line = partial.slice(0, nl);
      partial = partial.slice(nl + 1);
      const m = MSG_RE.exec(line);
      if (m !== null) {
        messages.push({
          qos: Number(m[1]),
          retained: m[2] === '1',
          payload: Buffer.from(m[3]!, 'hex'),
          topic: Buffer.from(m[4]!, 'latin1').toString('utf8'),
        });
        if (opts.count !== undefined && messages.length >= opts.count) finish?.();
      } else {
        if (line.startsWith('Subscribed (mid:')) subscribed = true;
        other.push(line);
      }
    }
  });
  proc.child.stderr?.on('data', (chunk: Buffer) => other.push(chunk.toString('utf8').trimEnd()));
  const log = (): string => other.join('\n');

  try {
    await waitFor(async () => subscribed, {
      timeoutMs: opts.readyTimeoutMs ?? 10_000,
      intervalMs: 10,
      what: `mosquitto_sub SUBACK from ${opts.host ?? '127.0.0.1'}:${opts.port}`,
      proc,
    });
  } catch (e) {
    await proc.stop(1000);
    throw new Error(`${(e as Error).message}\n--- mosquitto_sub output ---\n${log()}`);
  }

  const stop = async (): Promise<MqttMessage[]> => {
    await proc.stop(2000);
    return messages;
  };
  const done = new Promise<MqttMessage[]>((resolve) => {
    const timer = setTimeout(() => finish?.(), opts.timeoutMs ?? 10_000);
    finish = () => {
      finish = undefined;
      clearTimeout(timer);
      void stop().then(resolve);
    };
    void proc.exited.then(() => finish?.());
    if (opts.count !== undefined && messages.length >= opts.count) finish();
  });
  return { messages, done, log, stop };
}

export interface StartMosquittoOptions {
  /** Extra mosquitto.conf lines, appended after our listener settings. */
  extraConfig?: readonly string[];
  /**
   * Users for a generated password_file (mosquitto_passwd). When given,
   * anonymous access is disabled unless `allowAnonymous` is true.
   */
  users?: Readonly<Record<string, string>>;
  allowAnonymous?: boolean;
  /** How long to wait for the listener (default 10 s). */
  startTimeoutMs?: number;
}

export interface MosquittoBroker {
  readonly host: string;
  readonly port: number;
  /** mqtt://127.0.0.1:<port> */
  readonly url: string;
  readonly dir: string;
  readonly logFile: string;
  readonly pid: number;
  logTail(lines?: number): Promise<string>;
  kill(signal?: NodeJS.Signals): void;
  /** SIGTERM, SIGKILL after 5 s, remove the temp dir. Idempotent. */
  stop(): Promise<void>;
}

/** Start a private mosquitto broker on 127.0.0.1:<free port>. */
export async function startMosquitto(opts: StartMosquittoOptions = {}): Promise<MosquittoBroker> {
  const bin = resolveBinary('mosquitto');
  const users = Object.entries(opts.users ?? {});
  const allowAnonymous = opts.allowAnonymous ?? users.length === 0;

  for (let attempt = 1; ; attempt++) {
    const dir = await makeTempDir('mosquitto-test-');
    const port = await freePort();
    const logFile = join(dir, 'mosquitto.log');
    const conf = [
      '# generated by testkit/mosquitto.ts',
      // do not drop privileges to "mosquitto": our temp dir is 0700
      `user ${userInfo().username}`,
      `listener ${port} 127.0.0.1`,
      `allow_anonymous ${allowAnonymous}`,
      'persistence false',
      'log_dest stderr',
      'log_type error',
      'log_type warning',
      'log_type notice',
    ];
    if (users.length > 0) {
      const pwFile = join(dir, 'passwd');
      await writeFile(pwFile, '', { mode: 0o600 });
      for (const [user, pass] of users) {
        const r = await runCommand(resolveBinary('mosquitto_passwd'), ['-b', pwFile, user, pass]);
        if (r.code !== 0) throw new Error(`mosquitto_passwd failed: ${r.stderr || r.stdout}`);
      }
      conf.push(`password_file ${pwFile}`);
    }
    conf.push(...(opts.extraConfig ?? []));
    const confFile = join(dir, 'mosquitto.conf');
    await writeFile(confFile, `${conf.join('\n')}\n`);

    const proc = spawnManaged(bin, ['-c', confFile], { logFile });
    try {
      await waitFor(() => pidListensOn(proc.pid, port), {
        timeoutMs: opts.startTimeoutMs ?? 10_000,
        what: `mosquitto listener on 127.0.0.1:${port}`,
        proc,
      });
    } catch (e) {
      await proc.stop(1000);
      const log = await tailFile(logFile);
      await removeTempDir(dir);
      if (e instanceof ProcessExitedError && /address already in use/i.test(log) && attempt < 3) continue;
      throw new Error(`mosquitto failed to start: ${(e as Error).message}\n--- log ---\n${log}`);
    }

    return {
      host: '127.0.0.1',
      port,
      url: `mqtt://127.0.0.1:${port}`,
      dir,
      logFile,
      pid: proc.pid,
      ...serverLifecycle(proc, dir, logFile),
    };
  }
}
