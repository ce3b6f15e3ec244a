// Free TCP port allocation for test servers.
//
// The kernel picks an unused port when we listen on port 0; we read it and
// close the socket again. There is an unavoidable race between closing and
// the real server binding it, so server launchers check with pidListensOn()
// that their own process got the port, and retry on "address in use".
import { readFile, readdir, readlink } from 'node:fs/promises';
import { createServer, type Server } from 'node:net';

const HOST = '127.0.0.1';

function listenEphemeral(): Promise<Server> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.unref();
    srv.once('error', reject);
    srv.listen({ port: 0, host: HOST, exclusive: true }, () => resolve(srv));
  });
}

function portOf(srv: Server): number {
  const addr = srv.address();
  if (addr === null || typeof addr === 'string') throw new Error('unexpected server address');
  return addr.port;
}

function close(srv: Server): Promise<void> {
  return new Promise((resolve, reject) => srv.close((err) => (err ? reject(err) : resolve())));
}

/** A TCP port on 127.0.0.1 that was free a moment ago. */
export async function freePort(): Promise<number> {
  const srv = await listenEphemeral();
  const port = portOf(srv);
  await close(srv);
  return port;
}

/**
 * `n` distinct free ports. All sockets are held open until every port is
 * known, so the kernel cannot hand out the same port twice.
 */
export async function freePorts(n: number): Promise<number[]> {
  const servers: Server[] = [];
  try {
    for (let i = 0; i < n; i++) servers.push(await listenEphemeral());
    return servers.map(portOf);
  } finally {
    await Promise.all(servers.map(close));
  }
}

/**
 * Whether process `pid` itself holds a listening TCP socket on `port`
 * (Linux: matches /proc/net/tcp{,6} LISTEN entries against the process' fds).
 * Launchers use it so that a server that lost the race for its port cannot
 * be mistaken for whoever else grabbed it.
 */
export async function pidListensOn(pid: number, port: number): Promise<boolean> {
  const portHex = `:${port.toString(16).toUpperCase().padStart(4, '0')}`;
  const inodes = new Set<string>();
  for (const table of ['/proc/net/tcp', '/proc/net/tcp6']) {
    let text: string;
    try {
      text = await readFile(table, 'utf8');
    } catch {
      continue; // e.g. no IPv6
    }
    for (const line of text.split('\n').slice(1)) {
      const cols = line.trim().split(/\s+/);
      // cols: sl local_address rem_address st tx:rx tr:when retrnsmt uid timeout inode
      if (cols.length > 9 && cols[1]?.endsWith(portHex) && cols[3] === '0A') inodes.add(cols[9]!);
    }
  }
  if (inodes.size === 0) return false;
  let fds: string[];
  try {
    fds = await readdir(`/proc/${pid}/fd`);
  } catch {
    return false; // process gone
  }
  for (const fd of fds) {
    try {
      const target = await readlink(`/proc/${pid}/fd/${fd}`);
      const m = /^socket:\[(\d+)\]$/.exec(target);
      if (m !== null && inodes.has(m[1]!)) return true;
    } catch {
      // fd closed meanwhile
    }
  }
  return false;
}
