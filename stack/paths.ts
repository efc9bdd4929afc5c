/**
 * Where the embedded stack keeps things.
 *
 * - repoRoot(): the checkout (folder holding package.json). Derived from __dirname so it
 *   works no matter what the caller's cwd is.
 * - cacheDir(): tool installs keyed by version (temporal binary, python venvs). Lives
 *   OUTSIDE the repo so that `git clean`, fresh worktrees and CI checkouts reuse it, and so
 *   binaries never end up committed.
 * - stateDir(): per-checkout runtime state (demo databases, logs). Inside the repo but
 *   git-ignored (`.ladder/`), so two checkouts never share a demo database.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

let cachedRoot: string | undefined;

/** The folder holding package.json, searched upwards from this file's folder. */
export function repoRoot(): string {
  if (cachedRoot) return cachedRoot;
  let dir = __dirname;
  for (;;) {
    if (fs.existsSync(path.join(dir, 'package.json'))) {
      cachedRoot = dir;
      return dir;
    }
    const parent = path.dirname(dir);
    if (parent === dir) throw new Error(`repoRoot: no package.json above ${__dirname}`);
    dir = parent;
  }
}

/** `$LADDER_CACHE_DIR`, else `$XDG_CACHE_HOME/ladder`, else `~/.cache/ladder`. Not created here. */
export function cacheDir(): string {
  const explicit = process.env.LADDER_CACHE_DIR;
  if (explicit) return path.resolve(explicit);
  const xdg = process.env.XDG_CACHE_HOME;
  if (xdg) return path.resolve(xdg, 'ladder');
  return path.join(os.homedir(), '.cache', 'ladder');
}

/** `$LADDER_STATE_DIR`, else `<repo>/.ladder` (git-ignored). Not created here. */
export function stateDir(): string {
  const explicit = process.env.LADDER_STATE_DIR;
  if (explicit) return path.resolve(explicit);
  return path.join(repoRoot(), '.ladder');
}
