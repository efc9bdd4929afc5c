/**
 * Small process helpers shared by the stack modules (internal; not part of the public API).
 */
import { execFileSync, spawn, type SpawnOptions } from 'node:child_process';
import * as fs from 'node:fs';

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

export interface RunResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/** Run a command to completion, capturing output. Rejects only if it cannot be spawned. */
export function run(cmd: string, args: string[], opts: SpawnOptions = {}): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { ...opts, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout?.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr?.on('data', (d: Buffer) => (stderr += d.toString()));
    child.once('error', reject);
    child.once('close', (code, signal) => resolve({ code, signal, stdout, stderr }));
  });
}

/** Like run(), but throws (with the command's output) unless it exits 0. */
export async function runOk(cmd: string, args: string[], opts: SpawnOptions = {}): Promise<RunResult> {
  const r = await run(cmd, args, opts);
  if (r.code !== 0) {
    throw new Error(
      `command failed (${r.code ?? r.signal}): ${[cmd, ...args].join(' ')}\n${lastLines(r.stderr + r.stdout, 30)}`,
    );
  }
  return r;
}

export function lastLines(text: string, n: number): string {
  const lines = text.trimEnd().split('\n');
  return lines.slice(-n).join('\n');
}

/** A file's text from byte `offset` on, at most `max` bytes, or '' if it cannot be read. */
export function readFrom(file: string, offset: number, max = 1024 * 1024): string {
  try {
    const fd = fs.openSync(file, 'r');
    try {
      const len = Math.max(0, Math.min(fs.fstatSync(fd).size - offset, max));
      const buf = Buffer.alloc(len);
      fs.readSync(fd, buf, 0, len, offset);
      return buf.toString('utf8');
    } finally {
      fs.closeSync(fd);
    }
  } catch {
    return '';
  }
}

/** The last n lines of a (log) file, or '' if it cannot be read. Reads at most the last 64 KiB. */
export function tailFile(file: string, n = 20): string {
  try {
    const fd = fs.openSync(file, 'r');
    try {
      const size = fs.fstatSync(fd).size;
      const len = Math.min(size, 64 * 1024);
      const buf = Buffer.alloc(len);
      fs.readSync(fd, buf, 0, len, size - len);
      return lastLines(buf.toString('utf8'), n);
    } finally {
      fs.closeSync(fd);
    }
  } catch {
    return '';
  }
}

let pdeathsigSupported: boolean | undefined;

/**
 * `setpriv` flags that make a spawned server get `signal` when this process dies, however it
 * dies (kill -9 included): the kernel's parent-death signal, set just before setpriv exec()s the
 * server, so the spawned pid is still the server itself. [] where setpriv cannot do it (not
 * Linux, or util-linux older than 2.33); there a restart finds and replaces leftovers instead.
 */
export function parentDeathSignalArgs(signal: NodeJS.Signals): string[] {
  if (pdeathsigSupported === undefined) {
    pdeathsigSupported = false;
    if (process.platform === 'linux') {
      try {
        pdeathsigSupported = execFileSync('setpriv', ['--help'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).includes('--pdeathsig');
      } catch {
        /* no setpriv */
      }
    }
  }
  return pdeathsigSupported ? ['--pdeathsig', signal.replace(/^SIG/, '')] : [];
}

/** The command line of a live pid ('' when it is gone or unreadable, e.g. not Linux). */
export function pidCommandLine(pid: number): string {
  try {
    return fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').join(' ');
  } catch {
    return '';
  }
}

export function isPidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    // EPERM: exists but belongs to someone else (non-root caller, postgres-owned process).
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Poll until pid is gone or timeout; returns true if it exited. */
export async function waitPidExit(pid: number, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (!isPidAlive(pid)) return true;
    await sleep(50);
  }
  return !isPidAlive(pid);
}

// ---------------------------------------------------------------------------------------------
// Last-resort cleanup of servers we spawned. stop() is the primary path; this only makes sure
// a forgotten or crashed caller does not leave a Temporal or Postgres server behind.
// 'exit' handlers must be synchronous, so they can only send signals, not wait.

const cleanups = new Map<number, () => void>();
let installed = false;

function runAll(): void {
  for (const fn of cleanups.values()) {
    try {
      fn();
    } catch {
      /* best effort */
    }
  }
  cleanups.clear();
}

function install(): void {
  if (installed) return;
  installed = true;
  process.once('exit', runAll);
  // On SIGINT/SIGTERM/SIGHUP with nobody else listening, node would die without running
  // 'exit' handlers, so clean up and re-raise the signal with default handling. If the app has
  // its own handler, leave it alone: it may want to drain workers before the servers go, and
  // it will end with stop() or process.exit() (which runs the 'exit' handler above).
  for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    const handler = (): void => {
      if (process.listenerCount(sig) > 1) return;
      runAll();
      process.removeListener(sig, handler);
      process.kill(process.pid, sig);
    };
    process.on(sig, handler);
  }
}

let nextId = 1;
/** Register a synchronous cleanup; returns a function that unregisters it. */
export function registerCleanup(fn: () => void): () => void {
  install();
  const id = nextId++;
  cleanups.set(id, fn);
  return () => {
    cleanups.delete(id);
  };
}
