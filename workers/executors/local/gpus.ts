/**
 * GPU slots of the local executor. Which ids exist (`detectGpus`), which are held (one claim file
 * per execution under `<runRoot>/gpu-claims/`, so that worker processes sharing the run root see
 * each other's), and which a launch gets (`pickGpus`, pure). Claims are read and written under the
 * run-root lock (`lock.ts`).
 */
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { readText, writeAtomic } from './files';

/** GPU ids from LADDER_GPUS or nvidia-smi; [] when there are none. */
export function detectGpus(env: NodeJS.ProcessEnv = process.env): string[] {
  const fromEnv = env.LADDER_GPUS;
  if (fromEnv !== undefined) {
    return fromEnv.split(',').map((s) => s.trim()).filter((s) => s.length > 0);
  }
  try {
    const out = execFileSync('nvidia-smi', ['-L'], {
      encoding: 'utf8',
      timeout: 10_000,
      stdio: ['ignore', 'pipe', 'ignore'],
    });
    return gpuIdsFromNvidiaSmi(out);
  } catch {
    return [];
  }
}

/** `0..n-1` for the n lines "GPU i: …" of `nvidia-smi -L`. */
export function gpuIdsFromNvidiaSmi(out: string): string[] {
  const n = out.split('\n').filter((l) => /^GPU \d+/.test(l.trim())).length;
  return Array.from({ length: n }, (_, i) => String(i));
}

export type GpuPick = { ok: true; gpus: string[] } | { ok: false; error: string };

/**
 * The first `wanted` ids of `all` not in `inUse`, or why not. `all` empty is the caller's case
 * (no GPU on this machine: run on CPU), so it is not handled here.
 */
export function pickGpus(all: readonly string[], inUse: ReadonlySet<string>, wanted: number, executionId: string): GpuPick {
  if (wanted > all.length) {
    return { ok: false, error: `local executor: ${executionId} needs ${wanted} GPU(s) but this machine has only ${all.length}` };
  }
  const free = all.filter((g) => !inUse.has(g));
  if (free.length < wanted) {
    return {
      ok: false,
      error:
        `local executor: not enough free GPUs for ${executionId}: needs ${wanted}, ` +
        `${free.length} of ${all.length} free (in use: ${[...inUse].join(',') || 'none'}); retry later`,
    };
  }
  return { ok: true, gpus: free.slice(0, wanted) };
}

/** The claim files of one run root. */
export class GpuClaims {
  constructor(private readonly dir: string) {}

  /** GPU ids held by executions that have not ended; drops the claims of ended ones. */
  inUse(ended: (executionId: string) => boolean): Set<string> {
    const inUse = new Set<string>();
    let names: string[];
    try {
      names = fs.readdirSync(this.dir);
    } catch {
      return inUse;
    }
    for (const id of names) {
      if (id.endsWith('.tmp')) continue;
      const ids = readText(path.join(this.dir, id));
      if (ids === undefined) continue;
      if (ended(id)) {
        fs.rmSync(path.join(this.dir, id), { force: true });
        continue;
      }
      for (const g of ids.split(',').map((s) => s.trim())) if (g) inUse.add(g);
    }
    return inUse;
  }

  claim(executionId: string, gpus: readonly string[]): void {
    fs.mkdirSync(this.dir, { recursive: true });
    writeAtomic(path.join(this.dir, executionId), gpus.join(','));
  }

  release(executionId: string): void {
    fs.rmSync(path.join(this.dir, executionId), { force: true });
  }
}
