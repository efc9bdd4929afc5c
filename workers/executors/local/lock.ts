/**
 * A cross-process lock on a path, over `proper-lockfile` (an atomic mkdir whose mtime the holder
 * refreshes; a lock not refreshed within `staleMs` was left by a process that died, and is taken
 * over). Used by the local executor's run root and by the dev stack's builds (stack/python.ts,
 * stack/k8s/build.ts).
 */
import lockfile from 'proper-lockfile';

export interface FileLockOptions {
  /** Give up waiting after this long (an Error naming the lock). */
  timeoutMs: number;
  /** A lock not refreshed for this long is stale. Default 10000 (the library's floor is 2000). */
  staleMs?: number;
  /** Pause between tries. Default 100. */
  pollMs?: number;
  /** Lock folder. Default `<target>.lock`. */
  lockfilePath?: string;
  /** Checked while waiting: true ends the wait without the lock (the holder did the work). */
  done?: () => boolean;
  /** Called on each failed try (progress messages). */
  onWait?: () => void;
  /**
   * The lock was lost while held (its refresh failed for longer than `staleMs`, so another
   * process may have taken it). Default: ignored here, since the caller's work is already under
   * way and cannot be undone; the release then does nothing.
   */
  onCompromised?: (err: Error) => void;
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** Takes the lock; resolves to its release, or to undefined when `done()` became true first. */
export async function acquireFileLock(target: string, o: FileLockOptions): Promise<(() => Promise<void>) | undefined> {
  const deadline = Date.now() + o.timeoutMs;
  const lockPath = o.lockfilePath ?? `${target}.lock`;
  for (;;) {
    try {
      const release = await lockfile.lock(target, {
        realpath: false, // the target need not exist (a venv not built yet)
        lockfilePath: lockPath,
        stale: o.staleMs ?? 10_000,
        retries: 0,
        onCompromised: o.onCompromised ?? (() => {}),
      });
      return async () => {
        try {
          await release();
        } catch (e) {
          // Released already, or compromised and taken over: either way it is not ours now.
          if (!['ERELEASED', 'ENOTACQUIRED', 'ECOMPROMISED'].includes((e as NodeJS.ErrnoException).code ?? '')) throw e;
        }
      };
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ELOCKED') throw e;
    }
    if (o.done?.()) return undefined;
    if (Date.now() > deadline) throw new Error(`timed out after ${o.timeoutMs} ms waiting for lock ${lockPath}`);
    o.onWait?.();
    await sleep((o.pollMs ?? 100) * (0.5 + Math.random()));
  }
}

/** Runs `fn` holding the lock. */
export async function withFileLock<T>(target: string, o: Omit<FileLockOptions, 'done'>, fn: () => Promise<T>): Promise<T> {
  const release = (await acquireFileLock(target, o))!;
  try {
    return await fn();
  } finally {
    await release();
  }
}
