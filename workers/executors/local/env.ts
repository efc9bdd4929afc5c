/**
 * The environment of a local job: what it may inherit from the worker (an allow-list, so the
 * worker's own secrets such as database URLs and cloud keys never reach a user's program) and
 * what Ladder's protocol sets on top. Pure: the caller passes the worker's environment in.
 */
import * as path from 'node:path';
import type { JobLaunch } from '../types';

/** Worker environment variables a job may inherit (names, or prefixes ending in `*`). */
export const ENV_ALLOW: readonly string[] = [
  'PATH', 'HOME', 'USER', 'LOGNAME', 'SHELL', 'LANG', 'LANGUAGE', 'LC_*', 'TZ', 'TERM',
  'TMPDIR', 'TMP', 'TEMP', 'PYTHON*', 'VIRTUAL_ENV', 'CONDA_PREFIX', 'CONDA_DEFAULT_ENV',
  'PYENV_*', 'LD_LIBRARY_PATH', 'CUDA_HOME', 'CUDA_PATH', 'CUDA_DEVICE_ORDER',
  'CUDA_MODULE_LOADING', 'NVIDIA_*', 'NCCL_*', 'OMP_NUM_THREADS', 'MKL_NUM_THREADS',
  'OPENBLAS_NUM_THREADS', 'TORCH_HOME', 'HF_HOME', 'HF_HUB_OFFLINE', 'HF_DATASETS_OFFLINE',
  'TRANSFORMERS_OFFLINE', 'XDG_CACHE_HOME', 'SSL_CERT_FILE', 'SSL_CERT_DIR',
];

export function envNameAllowed(name: string, extra: ReadonlySet<string>): boolean {
  if (extra.has(name)) return true;
  return ENV_ALLOW.some((p) => (p.endsWith('*') ? name.startsWith(p.slice(0, -1)) : name === p));
}

export interface JobEnvInput {
  /** The worker's environment (`process.env`). */
  inherited: NodeJS.ProcessEnv;
  /** Names the operator added to the allow-list (`envPassthrough`). */
  extra: ReadonlySet<string>;
  launch: JobLaunch;
  /** The spec's own variables (from the invocation). */
  specEnv: Record<string, string>;
  /** Folder holding `ladder_jobs`; put first on PYTHONPATH. */
  jobsDir: string;
  checkpointDir: string;
  outputDir: string;
  /** GPU ids given to this job. */
  gpus: readonly string[];
  /** Whether this machine has GPUs at all (then CUDA_VISIBLE_DEVICES is always set, maybe empty). */
  machineHasGpus: boolean;
}

/** PYTHONPATH with the `ladder_jobs` folder first, keeping what the caller had after it. */
export function pythonPathWithJobs(jobsDir: string, inherited: string | undefined): string {
  return inherited ? `${jobsDir}${path.delimiter}${inherited}` : jobsDir;
}

export function jobEnvironment(i: JobEnvInput): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(i.inherited)) {
    if (v !== undefined && envNameAllowed(k, i.extra)) env[k] = v;
  }
  // The spec's own variables first: Ladder's protocol variables below always win.
  Object.assign(env, i.specEnv);
  env.LADDER_TRIAL_ID = i.launch.trialId;
  env.LADDER_ATTEMPT = String(i.launch.attempt);
  Object.assign(env, i.launch.env);
  env.PYTHONPATH = pythonPathWithJobs(i.jobsDir, i.inherited.PYTHONPATH);
  env.PYTHONUNBUFFERED = '1';
  // Trials share the machine's cores: each math library gets the CPUs the spec asked for, not
  // one thread per core each (oversubscription made two parallel torch jobs ~2x slower).
  const threads = String(Math.max(1, Math.floor(i.launch.resources.cpu ?? 1)));
  env.OMP_NUM_THREADS ??= threads;
  env.MKL_NUM_THREADS ??= threads;
  env.LADDER_CHECKPOINT_DIR = i.checkpointDir;
  env.LADDER_OUTPUT_DIR = i.outputDir;
  if (i.machineHasGpus) {
    // ids from nvidia-smi are in PCI order; make CUDA number devices the same way.
    env.CUDA_DEVICE_ORDER ??= 'PCI_BUS_ID';
    env.CUDA_VISIBLE_DEVICES = i.gpus.join(',');
  } else {
    delete env.CUDA_VISIBLE_DEVICES;
  }
  return env;
}
