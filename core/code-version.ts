/**
 * The code version that goes into every trial identity: `LADDER_CODE_VERSION` when set (an image
 * digest in a cluster), else the git commit of the checkout, marked `+dirty` with a hash of the
 * uncommitted diff so edited code never reuses results of the committed code.
 */
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import path from 'node:path';
import { readSetting } from './settings';

export function codeVersion(repoRoot = path.resolve(__dirname, '..')): string {
  const fromEnv = readSetting('LADDER_CODE_VERSION');
  if (fromEnv) return fromEnv;
  const git = (...args: string[]) =>
    execFileSync('git', args, { cwd: repoRoot, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
  try {
    const commit = git('rev-parse', 'HEAD');
    const diff = git('diff', 'HEAD', '--', 'jobs');
    return diff ? `${commit}+dirty.${createHash('sha256').update(diff).digest('hex').slice(0, 12)}` : commit;
  } catch {
    return 'unversioned';
  }
}
