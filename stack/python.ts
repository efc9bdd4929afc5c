/**
 * Python environment for the `jobs/` package and its pytest suite: a venv in the cache keyed
 * by interpreter and requirements, so changing jobs/requirements*.txt builds a fresh one and
 * switching back reuses the old one.
 */
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { cacheDir, repoRoot } from './paths';
import { acquireFileLock } from '../workers/executors/local/lock';
import { runOk } from './proc';
import { DEBIAN_PYTHON, ensureSystemPackages, hasApt, readPackageList } from './system-packages';

export interface EnsurePythonEnvOptions {
  /** Interpreter used to create the venv. Default: `python3` from PATH. */
  basePython?: string;
  /** Folder whose requirements*.txt are installed. Default: `<repo>/jobs`. */
  jobsDir?: string;
  /** Give up waiting for another process that is building the same venv. Default: 15 min. */
  lockTimeoutMs?: number;
}

/** Marker written last: a venv without it is incomplete (interrupted build) and is rebuilt. */
const READY = '.ladder-ready';

/** The `jobs/requirements*.txt` files, sorted, that determine the venv. */
export function requirementsFiles(jobsDir: string = path.join(repoRoot(), 'jobs')): string[] {
  if (!fs.existsSync(jobsDir)) return [];
  return fs
    .readdirSync(jobsDir)
    .filter((f) => /^requirements.*\.txt$/.test(f))
    .sort()
    .map((f) => path.join(jobsDir, f));
}

function venvPython(venv: string): string {
  return process.platform === 'win32' ? path.join(venv, 'Scripts', 'python.exe') : path.join(venv, 'bin', 'python');
}

/**
 * Path of a python executable with jobs/ requirements installed. `$LADDER_PYTHON` overrides
 * everything (e.g. a system python that already has torch).
 *
 * The venv lives at `<cache>/pyenv-<X.Y.Z>-<hash>`, hash = first 12 hex of sha256 over the
 * requirements files (names and contents) and the base interpreter's prefix (a venv only works
 * with the interpreter it was made from). venvs are not relocatable (scripts embed absolute
 * paths), so instead of build-then-rename it is built in place under `<venv>.lock` and marked
 * complete last; the lock of a process that died is taken over once stale (proper-lockfile).
 */
export async function ensurePythonEnv(opts: EnsurePythonEnvOptions = {}): Promise<string> {
  const override = process.env.LADDER_PYTHON;
  if (override) return override;

  // On Debian, the torch job kinds use the system's python3-torch (see jobs/system-packages.txt):
  // the venv is then made from Debian's python3 and sees its site-packages.
  const jobsDir = opts.jobsDir ?? path.join(repoRoot(), 'jobs');
  const systemPackages = opts.basePython ? [] : readPackageList(path.join(jobsDir, 'system-packages.txt'));
  const useSystem = systemPackages.length > 0 && hasApt() && process.env.LADDER_SKIP_SYSTEM_PACKAGES !== '1';
  if (useSystem) await ensureSystemPackages(systemPackages, (line) => process.stderr.write(`${line}\n`));
  const base = opts.basePython ?? (useSystem ? DEBIAN_PYTHON : 'python3');
  const { version, prefix } = await interpreterInfo(base);
  const reqs = requirementsFiles(opts.jobsDir);
  const h = crypto.createHash('sha256');
  h.update(`prefix:${prefix}\n`);
  if (useSystem) h.update(`system-site-packages:${systemPackages.join(' ')}\n`);
  for (const f of reqs) h.update(`file:${path.basename(f)}\n`).update(fs.readFileSync(f)).update('\n');
  const venv = path.join(cacheDir(), `pyenv-${version}-${h.digest('hex').slice(0, 12)}`);
  const python = venvPython(venv);
  if (fs.existsSync(path.join(venv, READY))) return python;

  fs.mkdirSync(cacheDir(), { recursive: true });
  const release = await acquireFileLock(venv, {
    timeoutMs: opts.lockTimeoutMs ?? 15 * 60_000,
    pollMs: 250,
    done: () => fs.existsSync(path.join(venv, READY)),
  });
  if (!release) return python; // another process finished it while we waited
  try {
    if (fs.existsSync(path.join(venv, READY))) return python;
    fs.rmSync(venv, { recursive: true, force: true }); // leftovers of an interrupted build
    await runOk(base, ['-m', 'venv', ...(useSystem ? ['--system-site-packages'] : []), venv]);
    for (const f of reqs) {
      await runOk(python, ['-m', 'pip', 'install', '--disable-pip-version-check', '-q', '-r', f], {
        cwd: path.dirname(f), // so relative paths (-e ., -r other.txt) resolve like `pip install -r` in jobs/
      });
    }
    fs.writeFileSync(
      path.join(venv, READY),
      JSON.stringify({ created: new Date().toISOString(), base, requirements: reqs.map((f) => path.basename(f)) }) + '\n',
    );
    return python;
  } finally {
    await release();
  }
}

// Memoized per process: asking python3 costs ~50-100 ms (more through a pyenv shim).
const infoCache = new Map<string, Promise<{ version: string; prefix: string }>>();

function interpreterInfo(base: string): Promise<{ version: string; prefix: string }> {
  let p = infoCache.get(base);
  if (!p) {
    // -I -S: skip site/user config; we only want the version and prefix, fast.
    p = runOk(base, ['-I', '-S', '-c', 'import sys; print("%d.%d.%d" % sys.version_info[:3]); print(sys.base_prefix)'])
      .then((r) => {
        const [version = '', prefix = ''] = r.stdout.trim().split('\n');
        return { version, prefix };
      })
      .catch((e: Error) => {
        infoCache.delete(base);
        throw new Error(
          `ensurePythonEnv: cannot run ${base} (install Python 3 with venv and pip, or set LADDER_PYTHON): ${e.message}`,
        );
      });
    infoCache.set(base, p);
  }
  return p;
}
