/**
 * The code version of a command sweep's working directory, and the submit-time step that makes a
 * spec file's `workdir` absolute and records that version in the spec.
 *
 * The version is a content hash of the files (path, executable bit, bytes), not a git commit or
 * tree hash: an uncommitted edit must change it (a commit would not), and committing the same
 * bytes must not (a tree hash would flip between "dirty" and "clean" and rerun every trial).
 * Inside a git work tree git lists the files, so .gitignore'd data, checkpoints and virtualenvs are
 * skipped; elsewhere the walk skips VCS and cache folders. Both are bounded in files and bytes.
 */
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { readCommandLimits, type CommandLimits } from './limits';
import { SpecError, specTextToObject } from './spec';

/** Folders never part of a code version: VCS metadata, caches, environments, job output. */
export const IGNORED_DIRS: ReadonlySet<string> = new Set([
  '.git', '.hg', '.svn', '__pycache__', '.pytest_cache', '.mypy_cache', '.ruff_cache', '.tox',
  '.venv', 'venv', 'node_modules', '.ipynb_checkpoints', 'ladder-output', 'wandb',
]);

export interface WorkdirVersionOptions {
  limits?: Pick<CommandLimits, 'LADDER_MAX_WORKDIR_FILES' | 'LADDER_MAX_WORKDIR_BYTES'>;
  /** Absolute paths of files left out (the spec file itself: editing it must not rerun everything). */
  exclude?: string[];
}

/** `sha256:<hex>` over the files under `dir`. Throws an Error naming the directory and the limit. */
export function workdirCodeVersion(dir: string, options: WorkdirVersionOptions = {}): string {
  const limits = options.limits ?? readCommandLimits();
  const root = path.resolve(dir);
  const stat = fs.statSync(root, { throwIfNoEntry: false });
  if (!stat?.isDirectory()) throw new Error(`workdir ${root} is not a directory`);
  const exclude = new Set((options.exclude ?? []).map((f) => path.resolve(f)));
  const files = (gitFiles(root) ?? walk(root, limits.LADDER_MAX_WORKDIR_FILES))
    .filter((rel) => !rel.split('/').some((part) => IGNORED_DIRS.has(part)))
    .filter((rel) => !exclude.has(path.join(root, rel)))
    .sort();
  if (files.length > limits.LADDER_MAX_WORKDIR_FILES) {
    throw new Error(
      `workdir ${root} has more than ${limits.LADDER_MAX_WORKDIR_FILES} files to version (LADDER_MAX_WORKDIR_FILES): ` +
        'point workdir at the code only, or .gitignore data and outputs',
    );
  }
  const hash = createHash('sha256');
  let bytes = 0;
  for (const rel of files) {
    const full = path.join(root, rel);
    const st = fs.lstatSync(full, { throwIfNoEntry: false });
    if (!st) continue; // tracked by git but deleted: not part of what runs
    let content: Buffer;
    if (st.isSymbolicLink()) content = Buffer.from(`symlink:${fs.readlinkSync(full)}`); // never followed
    else if (st.isFile()) {
      bytes += st.size;
      if (bytes > limits.LADDER_MAX_WORKDIR_BYTES) {
        throw new Error(
          `workdir ${root} holds more than ${limits.LADDER_MAX_WORKDIR_BYTES} bytes to version (LADDER_MAX_WORKDIR_BYTES): ` +
            'point workdir at the code only, or .gitignore data and outputs',
        );
      }
      content = fs.readFileSync(full);
    } else continue;
    const exec = st.isFile() && (st.mode & 0o111) !== 0 ? 'x' : '-';
    hash.update(`${rel}\0${exec}\0${createHash('sha256').update(content).digest('hex')}\n`);
  }
  return `sha256:${hash.digest('hex').slice(0, 32)}`;
}

/** Paths (relative, with `/`) git would version under `root`, or undefined outside a work tree. */
function gitFiles(root: string): string[] | undefined {
  let out: string;
  try {
    out = execFileSync('git', ['-C', root, 'ls-files', '-z', '--cached', '--others', '--exclude-standard', '--', '.'], {
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'ignore'],
      maxBuffer: 256 * 1024 * 1024,
    });
  } catch {
    return undefined;
  }
  return [...new Set(out.split('\0').filter(Boolean))];
}

/** Files under root, skipping IGNORED_DIRS; stops once past `max` so a huge tree costs little. */
function walk(root: string, max: number): string[] {
  const out: string[] = [];
  const stack = [''];
  while (stack.length && out.length <= max) {
    const rel = stack.pop()!;
    for (const entry of fs.readdirSync(path.join(root, rel), { withFileTypes: true })) {
      const child = rel ? `${rel}/${entry.name}` : entry.name;
      if (entry.isDirectory()) {
        if (!IGNORED_DIRS.has(entry.name)) stack.push(child);
      } else if (entry.isFile() || entry.isSymbolicLink()) out.push(child);
    }
  }
  return out;
}

/**
 * A spec file made ready for submit. A command sweep's `workdir` (default: the spec file's folder)
 * becomes absolute, and its code version goes into `workdirVersion`; any other spec is returned
 * as text, untouched. Throws SpecError with the path `workdir`.
 */
export function prepareSpecFile(text: string, specFile: string, options: WorkdirVersionOptions = {}): string | Record<string, unknown> {
  const doc = specTextToObject(text);
  if (doc.command === undefined) return text;
  const given = doc.workdir === undefined ? '.' : doc.workdir;
  if (typeof given !== 'string' || given === '') return doc; // the parser reports it with its path
  const specPath = path.resolve(specFile);
  const workdir = path.resolve(path.dirname(specPath), given);
  let version: string;
  try {
    version = workdirCodeVersion(workdir, { ...options, exclude: [...(options.exclude ?? []), specPath] });
  } catch (err) {
    throw new SpecError([{ path: 'workdir', message: (err as Error).message }]);
  }
  return { ...doc, workdir, workdirVersion: version };
}
