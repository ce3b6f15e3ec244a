/** The dashboard's HTTP calls. The CSRF token comes with the session and rides in a header. */
import type { AssignmentAction, ViewSpec } from '../../streams/live/protocol.js'
export interface SessionInfo { user: string, role: string, expiresAt: number, csrfToken: string }

let csrfToken = ''

export class HttpError extends Error {
  constructor (readonly status: number, message: string) { super(message) }
}

async function call (method: string, path: string, body?: unknown): Promise<Response> {
  const headers: Record<string, string> = {}
  if (body !== undefined) headers['content-type'] = 'application/json'
  if (method !== 'GET') headers['x-csrf-token'] = csrfToken
  const res = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body), credentials: 'same-origin' })
  if (!res.ok) {
    const text = await res.text()
    let message = text
    try { message = (JSON.parse(text) as { message?: string }).message ?? text } catch { /* not JSON */ }
    throw new HttpError(res.status, message)
  }
  return res
}

/** The current session, or null when logged out. */
export async function currentSession (): Promise<SessionInfo | null> {
  try {
    const s = await (await call('GET', '/api/v1/session')).json() as SessionInfo
    csrfToken = s.csrfToken
    return s
  } catch (err) {
    if (err instanceof HttpError && err.status === 401) return null
    throw err
  }
}

export async function login (name: string, password: string): Promise<SessionInfo> {
  const s = await (await call('POST', '/api/v1/session', { name, password })).json() as SessionInfo
  csrfToken = s.csrfToken
  return s
}

export async function logout (): Promise<void> {
  await call('DELETE', '/api/v1/session').catch(() => {})
  csrfToken = ''
}

/** Sets the encounter's SpO2 scale for NEWS2 (the server records who and when). */
export async function setSpo2Scale (unit: string, scale: 1 | 2): Promise<void> {
  await call('POST', `/api/v1/units/${encodeURIComponent(unit)}/spo2-scale`, { scale })
}

export async function acknowledge (id: string): Promise<void> {
  await call('POST', `/api/v1/alerts/${encodeURIComponent(id)}/ack`)
}

export interface ViewInfo { view: ViewSpec, saved: boolean, default: ViewSpec }

/** The user's team view as the server remembers it. */
export async function getView (): Promise<ViewInfo> {
  return await (await call('GET', '/api/v1/view')).json() as ViewInfo
}

/** Saves the user's team view on the server (null: back to the admin's default). */
export async function saveView (view: ViewSpec | null): Promise<ViewInfo> {
  return await (await call('PUT', '/api/v1/view', { view })).json() as ViewInfo
}

/** Acknowledge-and-assign an incoming unit; every dashboard sees it through the live feed. */
export async function assign (unit: string, action: AssignmentAction): Promise<void> {
  await call('POST', `/api/v1/incoming/${encodeURIComponent(unit)}/assign`, { action })
}
