/**
 * What the sink (writes) and the dataspace reader (InfluxQL queries) share about talking to
 * InfluxDB over HTTP: the base URL, the `Authorization: Token …` header (a v2/3.x token, or
 * `user:password` for 1.x with auth) and the one health check, `/ping` (served by 1.x, 2.x, 3.x
 * and VictoriaMetrics, without auth).
 */

/** The server's base URL without a trailing slash, so paths join as `${base}/query`. */
export function influxBase (url: string): string {
  return url.replace(/\/$/, '')
}

/** Request headers for a token (none for an empty or absent token). */
export function influxAuthHeaders (token: string | undefined): Record<string, string> {
  return token !== undefined && token !== '' ? { authorization: `Token ${token}` } : {}
}

/** True when InfluxDB answers `/ping` within `timeoutMs` (2xx; 1.x and 2.x answer 204). */
export async function pingInflux (url: string, timeoutMs = 2000): Promise<boolean> {
  try {
    const res = await fetch(`${influxBase(url)}/ping`, { signal: AbortSignal.timeout(timeoutMs) })
    await res.arrayBuffer()
    return res.ok
  } catch {
    return false
  }
}
