/** Process groups on this machine: is any member alive (zombies excluded), and signalling them. */
import * as fs from 'node:fs';

/**
 * `[state, pgrp]` from the text of /proc/<pid>/stat: "pid (comm) S ppid pgrp ...". comm may hold
 * spaces and parentheses, so the fields are cut after the last ')'.
 */
export function parseProcStat(text: string): [string, number] | undefined {
  const close = text.lastIndexOf(')');
  if (close < 0) return undefined;
  const fields = text.slice(close + 2).split(' ');
  const state = fields[0];
  const pgrp = Number(fields[2]);
  return state && Number.isInteger(pgrp) && fields[2] !== '' ? [state, pgrp] : undefined;
}

/** `[state, pgrp]` of a process; undefined when unreadable (gone, or not Linux). */
function procStat(pid: number | string): [string, number] | undefined {
  let text: string;
  try {
    text = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return undefined;
  }
  return parseProcStat(text);
}

/** A process of group `pgid` that still runs: Z (zombie) and X (dead) do not count. */
export function livesInGroup(stat: [string, number] | undefined, pgid: number): boolean {
  return stat !== undefined && stat[1] === pgid && stat[0] !== 'Z' && stat[0] !== 'X';
}

const HAS_PROC = process.platform === 'linux' && fs.existsSync('/proc/self/stat');

/**
 * Whether any process of the group `pgid` is alive. On Linux, zombies do not count: when the
 * worker runs as PID 1 of a container without an init, orphaned job processes that died are never
 * reaped, and `kill(-pgid, 0)` would report them alive forever.
 */
export function processGroupAlive(pgid: number): boolean {
  if (!Number.isInteger(pgid) || pgid <= 1) return false;
  try {
    process.kill(-pgid, 0);
  } catch (e) {
    // EPERM: it exists but is not ours; still alive.
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
  if (!HAS_PROC) return true;
  // Common case: the group leader (the wrapper shell) is alive.
  if (livesInGroup(procStat(pgid), pgid)) return true;
  let pids: string[];
  try {
    pids = fs.readdirSync('/proc').filter((n) => /^\d+$/.test(n));
  } catch {
    return true;
  }
  return pids.some((p) => livesInGroup(procStat(p), pgid));
}

export function signalGroup(pgid: number, signal: NodeJS.Signals): void {
  if (!Number.isInteger(pgid) || pgid <= 1) return;
  try {
    process.kill(-pgid, signal);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ESRCH') throw e;
  }
}
