/**
 * What an executor runs for a launch: the argument list, the extra environment, the working
 * directory and (on Kubernetes) the image. Pure, so the local and Kubernetes executors agree on
 * it and it is tested without starting anything.
 *
 * - A built-in kind runs `<python> -m ladder_jobs run --kind K --config F` (the job protocol).
 * - A `command` launch runs the spec's template with `{key}`/`{args}` substituted from the
 *   trial's config (core/spec/template.ts), as a list handed to exec, never to a shell.
 *
 * Either way the config file's path is in LADDER_CONFIG. The spec's own `env` comes first and the
 * executor sets its protocol variables (LADDER_TRIAL_ID, LADDER_INGEST_*, LADDER_*_DIR) after it,
 * so a job can never be pointed at another trial's ingest or checkpoints.
 */
import { isAbsolute } from 'node:path';
import { COMMAND_KIND, RESERVED_ENV_PREFIX } from '../../core/spec/spec';
import { readCommandLimits } from '../../core/spec/limits';
import { expandCommand, TemplateError } from '../../core/spec/template';
import type { JobLaunch } from './types';

export interface JobInvocation {
  /** Program first, then its arguments. */
  argv: string[];
  /** Variables to add to the job's environment, before the executor's own. */
  env: Record<string, string>;
  /** Working directory; undefined leaves it to the executor (its run folder, the image's default). */
  cwd?: string;
  /** Container image; undefined means the executor's own job image. */
  image?: string;
}

export interface InvocationOptions {
  target: 'local' | 'kubernetes';
  /** The config file's path as the job sees it (the local run folder's config.json, /config/config.json). */
  configPath: string;
  /** The interpreter built-in kinds run with (local: LADDER_PYTHON; Kubernetes: `python`). */
  python: string;
  /** Module of the built-in kinds. Default `ladder_jobs`. */
  module?: string;
  /**
   * When set, a command whose program is exactly `python` or `python3` runs with this interpreter
   * instead (the local executor passes LADDER_PYTHON: the environment that has the SDK and torch,
   * which need not be the first `python` on PATH). Kubernetes leaves the image's python alone.
   */
  interpreter?: string;
  /** Limit on the substituted argument list; default LADDER_MAX_COMMAND_BYTES. */
  maxCommandBytes?: number;
}

/** A launch that cannot run as given; another attempt cannot fix it (a failure, never retried). */
export class InvocationError extends Error {
  readonly retryable = false;
  constructor(
    /** The spec field at fault, e.g. `command[2]`, `image`, `env.LADDER_X`. */
    readonly path: string,
    message: string,
  ) {
    super(`${path}: ${message}`);
    this.name = 'InvocationError';
  }
}

const PYTHON_NAMES: ReadonlySet<string> = new Set(['python', 'python3']);

export function jobInvocation(launch: JobLaunch, options: InvocationOptions): JobInvocation {
  const env: Record<string, string> = Object.create(null) as Record<string, string>;
  if (launch.command === undefined) {
    if (launch.kind === COMMAND_KIND) throw new InvocationError('command', `kind "${COMMAND_KIND}" needs a command`);
    env.LADDER_CONFIG = options.configPath;
    return {
      argv: [options.python, '-m', options.module ?? 'ladder_jobs', 'run', '--kind', launch.kind, '--config', options.configPath],
      env: { ...env },
    };
  }
  if (launch.command.length === 0) throw new InvocationError('command', 'must not be empty');
  for (const [name, value] of Object.entries(launch.jobEnv ?? {})) {
    if (name.toUpperCase().startsWith(RESERVED_ENV_PREFIX)) {
      throw new InvocationError(`env.${name}`, `names starting with ${RESERVED_ENV_PREFIX} belong to Ladder and cannot be set`);
    }
    if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(name)) throw new InvocationError(`env.${name}`, 'is not an environment variable name');
    if (typeof value !== 'string' || value.includes('\0')) throw new InvocationError(`env.${name}`, 'must be a string without NUL characters');
    env[name] = value;
  }
  env.LADDER_CONFIG = options.configPath;

  let argv: string[];
  try {
    argv = expandCommand(launch.command, launch.config);
  } catch (err) {
    if (err instanceof TemplateError) throw new InvocationError(`command[${err.index}]`, err.message);
    throw err;
  }
  if (argv[0] === '') throw new InvocationError('command[0]', 'the program is empty after substitution');
  if (options.interpreter && PYTHON_NAMES.has(argv[0]!)) argv[0] = options.interpreter;
  const badArg = argv.findIndex((a) => a.includes('\0'));
  if (badArg >= 0) throw new InvocationError('command', `argument ${badArg} contains a NUL character after substitution`);
  const maxBytes = options.maxCommandBytes ?? readCommandLimits().LADDER_MAX_COMMAND_BYTES;
  const bytes = argv.reduce((n, a) => n + Buffer.byteLength(a, 'utf8') + 1, 0);
  if (bytes > maxBytes) {
    throw new InvocationError('command', `the arguments take ${bytes} bytes after substitution; the limit is ${maxBytes} (LADDER_MAX_COMMAND_BYTES)`);
  }

  if (options.target === 'kubernetes') {
    if (!launch.image) {
      throw new InvocationError('image', 'a sweep with a command needs an image to run on Kubernetes (the image holds the code and the SDK)');
    }
    // In a container the code lives in the image: its WORKDIR applies, not a path of the submitter's machine.
    return { argv, env: { ...env }, image: launch.image };
  }
  if (launch.workdir !== undefined && !isAbsolute(launch.workdir)) {
    throw new InvocationError('workdir', `"${launch.workdir}" is relative; submit the spec with the CLI (which resolves it against the spec file) or give an absolute path`);
  }
  return { argv, env: { ...env }, ...(launch.workdir !== undefined ? { cwd: launch.workdir } : {}) };
}
