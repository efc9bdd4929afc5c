/**
 * Debian packages the Python jobs need from the system (see jobs/system-packages.txt): checked
 * with dpkg, installed with apt-get when missing and we are root, otherwise a clear error with
 * the command to run. Nothing happens on machines without apt (the jobs then need a Python that
 * already has torch: set LADDER_PYTHON).
 */
import fs from 'node:fs';
import { run, runOk } from './proc';

export const DEBIAN_PYTHON = '/usr/bin/python3';

export function readPackageList(file: string): string[] {
  if (!fs.existsSync(file)) return [];
  return fs
    .readFileSync(file, 'utf8')
    .split('\n')
    .map((l) => l.replace(/#.*/, '').trim())
    .filter(Boolean);
}

export function hasApt(): boolean {
  return fs.existsSync('/usr/bin/apt-get') && fs.existsSync('/usr/bin/dpkg-query') && fs.existsSync(DEBIAN_PYTHON);
}

async function missingPackages(packages: string[]): Promise<string[]> {
  const res = await run('dpkg-query', ['-W', '-f=${Package} ${db:Status-Status}\\n', ...packages]);
  const installed = new Set(
    res.stdout
      .split('\n')
      .filter((l) => l.endsWith(' installed'))
      .map((l) => l.split(' ')[0]),
  );
  return packages.filter((p) => !installed.has(p));
}

/** Ensures the packages are installed; returns the ones it installed. */
export async function ensureSystemPackages(packages: string[], say: (line: string) => void = () => {}): Promise<string[]> {
  if (packages.length === 0 || !hasApt()) return [];
  const missing = await missingPackages(packages);
  if (missing.length === 0) return [];
  const command = `apt-get install -y --no-install-recommends ${missing.join(' ')}`;
  if (process.getuid?.() !== 0) {
    throw new Error(`the Python jobs need Debian packages that are missing; run: sudo ${command}`);
  }
  say(`installing Debian packages for the Python jobs: ${missing.join(' ')} (once; a few minutes)`);
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  const args = ['install', '-y', '-qq', '--no-install-recommends', ...missing];
  const first = await run('apt-get', args, { env });
  if (first.code !== 0) {
    // A fresh machine may have no package lists yet.
    await runOk('apt-get', ['update', '-qq'], { env });
    await runOk('apt-get', args, { env });
  }
  return missing;
}
