/**
 * Fault injection for tests of the alert priority path (test/alert-priority-path.test.ts): a
 * hook the spool's group commit awaits before each fdatasync. A real disk cannot be made to
 * take 300 ms over one fsync, or to fail one with EIO, at the moment a test needs it, so a
 * test installs a hook that holds the fsync until it releases it (or rejects, as a failing
 * disk would) and synchronises on that, never on a sleep. Only the spool's writer consults it
 * (not the alert journal nor the dead letters).
 *
 * Unset (production), spoolSyncHook() is one comparison against null.
 */
export type SyncHook = () => Promise<void>

let hook: SyncHook | null = null

/** Installs (or, with null, removes) the hook. Tests only. */
export function setSpoolSyncHook (h: SyncHook | null): void { hook = h }

/** What the spool's group commit awaits before an fdatasync: null when no hook is installed. */
export function spoolSyncHook (): Promise<void> | null { return hook === null ? null : hook() }
