/**
 * Writes core/spec/job-kinds.json: the config keys, their types and the preset names of every job
 * kind, from `python -m ladder_jobs kinds --json`. Submit checks specs against this file so it
 * needs no Python; core/spec/kinds.test.ts regenerates it and fails on drift.
 *
 *   npx tsx scripts/gen-job-kinds.ts            (uses $LADDER_PYTHON or the jobs venv)
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import YAML from 'yaml';
import { repoRoot } from '../stack/paths';
import type { ConfigType, JobKindsFile } from '../core/spec/kinds';

export const JOB_KINDS_FILE = path.join(repoRoot(), 'core', 'spec', 'job-kinds.json');

/** Mirrors `type(default)` in jobs/ladder_jobs/config.py::_check_value. */
function typeOf(kind: string, key: string, value: unknown): ConfigType {
  if (value === null) return 'any';
  if (typeof value === 'boolean') return 'bool';
  if (typeof value === 'bigint') return 'int';
  if (typeof value === 'number') return 'float';
  if (typeof value === 'string') return 'str';
  if (Array.isArray(value)) return 'list';
  if (typeof value === 'object') return 'object';
  throw new Error(`kind "${kind}": default of "${key}" has an unsupported type (${typeof value})`);
}

/** Converts the JSON printed by `kinds --json` into the committed file's text. */
export function jobKindsFromListing(listingText: string): string {
  // Python prints floats with a '.' or an exponent and ints without; JSON.parse would merge the
  // two, but YAML's core schema keeps them apart when ints become BigInt.
  const listing = YAML.parse(listingText, { intAsBigInt: true }) as Record<
    string,
    { defaults: Record<string, unknown> | null; presets: Record<string, unknown> | null }
  >;
  const out: JobKindsFile = { kinds: {} };
  for (const name of Object.keys(listing).sort()) {
    const info = listing[name]!;
    if (info.defaults === null || info.presets === null) {
      throw new Error(
        `kind "${name}" did not load in this Python environment (its defaults are null, usually torch is missing): ` +
          'run the generator with the jobs venv (LADDER_PYTHON) so every kind is described',
      );
    }
    const keys: Record<string, ConfigType> = {};
    for (const key of Object.keys(info.defaults).sort()) keys[key] = typeOf(name, key, info.defaults[key]);
    out.kinds[name] = { keys, presets: Object.keys(info.presets).sort() };
  }
  return `${JSON.stringify(out, null, 1)}\n`;
}

/** Runs the jobs package's own listing; `python` is the jobs venv interpreter. */
export function generateJobKinds(python: string): string {
  const listing = execFileSync(python, ['-m', 'ladder_jobs', 'kinds', '--json'], {
    cwd: path.join(repoRoot(), 'jobs'),
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  return jobKindsFromListing(listing);
}

async function main(): Promise<void> {
  let python = process.env.LADDER_PYTHON;
  if (!python) {
    const { ensurePythonEnv } = await import('../stack/python');
    python = await ensurePythonEnv();
  }
  fs.writeFileSync(JOB_KINDS_FILE, generateJobKinds(python));
  process.stdout.write(`wrote ${path.relative(repoRoot(), JOB_KINDS_FILE)}\n`);
}

if (require.main === module) {
  main().catch((err: Error) => {
    process.stderr.write(`gen-job-kinds: ${err.message}\n`);
    process.exit(1);
  });
}
