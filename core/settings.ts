/**
 * Every environment variable Ladder reads, in one place: its type, bounds, default and meaning.
 * Validated when read, so a typo fails fast with the variable's name instead of surfacing later
 * as a connection error. README's settings table is generated from here (`settingsTable()`;
 * `core/settings.test.ts` fails when the two differ, and when shipped code reads a variable
 * that is not declared here).
 *
 * Grouped by who reads them. A group is read on its own (`readSpecLimits()` in every process
 * that checks a spec, `readKubernetesSettings()` in a worker on a cluster), so one process never
 * needs another's variables to be valid.
 */
import { z } from 'zod';

const int = (min: number, max = Number.MAX_SAFE_INTEGER) => z.coerce.number().int().min(min).max(max);
/** A comma-separated list; unset or empty → []. */
const list = () =>
  z
    .string()
    .default('')
    .transform((s) =>
      s
        .split(',')
        .map((x) => x.trim())
        .filter(Boolean),
    );
const json = <T extends z.ZodType>(name: string, shape: T) =>
  z
    .string()
    .transform((raw, ctx): z.infer<T> => {
      let value: unknown;
      try {
        value = JSON.parse(raw);
      } catch (e) {
        ctx.addIssue({ code: 'custom', message: `not JSON (${(e as Error).message})` });
        return z.NEVER;
      }
      const parsed = shape.safeParse(value);
      if (!parsed.success) {
        ctx.addIssue({ code: 'custom', message: `${name}: ${parsed.error.issues[0]!.message}` });
        return z.NEVER;
      }
      return parsed.data;
    })
    .optional();

/** Operator limits on what one sweep spec may ask for; checked the same in CLI, API and worker. */
export const SPEC_LIMITS = z.object({
  LADDER_MAX_TRIALS_PER_SWEEP: int(1, 1_000_000).default(10_000).describe('trials (variants × seeds × rungs) one spec may plan; counted before anything is built'),
  LADDER_MAX_GPUS_PER_TRIAL: int(0, 4096).default(64).describe("cap on a spec's `resources.gpus`"),
  LADDER_MAX_CPU_PER_TRIAL: z.coerce.number().positive().max(100_000).default(1024).describe("cap on a spec's `resources.cpu`"),
  LADDER_MAX_MEMORY_PER_TRIAL: int(1).default(4 * 1024 ** 4).describe("cap on a spec's `resources.memory`, bytes (4 TiB)"),
  LADDER_MAX_TIMEOUT_SECONDS: int(1).default(7 * 24 * 3600).describe("cap on a spec's `timeoutSeconds` (7 days)"),
});

/** Operator limits on "bring your own job" sweeps (a spec's `command`, `env` and `workdir`). */
export const COMMAND_LIMITS = z.object({
  LADDER_MAX_COMMAND_ARGS: int(1, 100_000).default(256).describe("arguments in a spec's `command` (before `{args}` expands)"),
  // Linux refuses one argument over 128 KiB (MAX_ARG_STRLEN) and all of them with the
  // environment over ~2 MiB: a clear error at submit beats an E2BIG from spawn on every attempt.
  LADDER_MAX_COMMAND_BYTES: int(1024, 2 * 1024 ** 2).default(128 * 1024).describe('bytes of the argument list a trial runs, after substitution'),
  LADDER_MAX_JOB_ENV: int(0, 10_000).default(64).describe("variables in a spec's `env`"),
  LADDER_MAX_WORKDIR_FILES: int(1, 10_000_000).default(20_000).describe("files hashed for a working directory's code version"),
  LADDER_MAX_WORKDIR_BYTES: int(1).default(1024 ** 3).describe("bytes hashed for a working directory's code version (1 GiB)"),
});

/** The API server, the worker, the CLI. */
export const PROCESS_SETTINGS = z.object({
  DATABASE_URL: z.string().regex(/^postgres(ql)?:\/\//, 'must be a postgres:// URL').optional().describe('Postgres the API, worker and CLI use (the CLI falls back to the stack `ladder dev` started)'),
  TEMPORAL_ADDRESS: z.string().regex(/^[^\s:/]+:\d+$/, 'must be host:port').optional().describe('Temporal frontend, host:port'),
  TEMPORAL_NAMESPACE: z.string().min(1).default('default').describe('Temporal namespace'),
  LADDER_TASK_QUEUE: z.string().min(1).default('ladder').describe('task queue of the sweep workflows and their activities'),
  LADDER_EXECUTOR: z.enum(['local', 'kubernetes', 'simulated']).default('local').describe('`local` (jobs as processes on the worker), `kubernetes` (a `batch/v1` Job per attempt) or `simulated` (no jobs: capacity tests)'),
  LADDER_INGEST_URL: z.string().url().optional().describe("the API's ingest base URL as jobs see it, e.g. `http://ladder-api:4000/ingest/v1`"),
  LADDER_INGEST_SECRET: z.string().min(16, 'must be at least 16 characters').optional().describe('HMAC secret for per-trial ingest tokens, shared by worker and API'),
  LADDER_CODE_VERSION: z.string().min(1).optional().describe('the code version in every trial identity (an image digest on a cluster); default: the git commit, `+dirty` when edited'),
  LADDER_RUN_ROOT: z.string().optional().describe("local executor: where executions' state, logs and checkpoints go"),
  LADDER_PYTHON: z.string().optional().describe('local executor: the Python that runs jobs (default `python3`)'),
  LADDER_GPUS: z.string().optional().describe('local executor: comma-separated GPU ids trials may use (default: what `nvidia-smi` lists)'),
  LADDER_POLL_INTERVAL_MS: int(10, 3_600_000).default(1000).describe("worker: how often an executor without wait() is polled"),
  LADDER_PORT: int(0, 65535).default(4000).describe('API port (`ladder dev` takes a free one when it is busy)'),
  LADDER_HOST: z.string().min(1).default('0.0.0.0').describe('`ladder serve`: the interface to listen on'),
  LADDER_ALLOWED_ORIGINS: list().describe('comma-separated browser origins allowed cross-origin (CORS); default none: same-origin only'),
  LADDER_ALLOWED_HOSTS: list().describe('comma-separated `host:port` values the API answers (others get 421); default any. `ladder dev` answers only its loopback addresses'),
  LADDER_WEBHOOK_ALLOW_INTERNAL: z.enum(['1']).optional().describe("`1`: a schedule's regression webhook may post to loopback and private addresses (refused otherwise)"),
  LADDER_LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info').describe('lowest level logged (JSON lines on stderr)'),
  NODE_ENV: z.string().optional().describe('`production` turns GraphiQL off'),
  CI: z.string().optional().describe('`true` (as CI services set it): `npm run demo` exits once its sweeps end'),
});

/** Capacity load testing (`ladder capacity`, `npm run loadgen`). */
export const LOADGEN_SETTINGS = z.object({
  LADDER_API_TOKEN: z.string().min(1).optional().describe('an API token the load generators use instead of one made per run (then set on every loadgen worker)'),
  LADDER_LOADGEN_CONCURRENCY: int(1, 1024).default(4).describe('activities one loadgen worker runs at once'),
  LADDER_LOADGEN_QUEUE: z.string().min(1).optional().describe("the load generators' task queue (default `ladder-loadgen`; `none`: this worker runs no generators)"),
  LADDER_CAPACITY_QUEUE: z.string().min(1).optional().describe("the capacity workflow's task queue (default `ladder-capacity` with a database; `none`: not this worker)"),
});

const tolerations = z.array(z.record(z.string(), z.unknown()));
/** The Kubernetes executor (what the Helm chart sets on the worker). */
export const KUBERNETES_SETTINGS = z.object({
  LADDER_K8S_NAMESPACE: z.string().min(1).optional().describe("namespace of the Jobs (default: the pod's own, else `default`)"),
  LADDER_JOB_IMAGE: z.string().min(1).optional().describe('image of built-in kinds, `repo@sha256:…` (required with the kubernetes executor)'),
  LADDER_GPU_RESOURCE: z.string().min(1).optional().describe('the GPU resource name (default `nvidia.com/gpu`)'),
  LADDER_K8S_NODE_SELECTOR: json('a JSON object of strings', z.record(z.string(), z.string())).describe('node selector of the Jobs, a JSON object'),
  LADDER_K8S_TOLERATIONS: json('a JSON array of objects', tolerations).describe('tolerations of the Jobs, a JSON array'),
  LADDER_KUEUE_QUEUE: z.string().min(1).optional().describe('Kueue LocalQueue the Jobs go to'),
  LADDER_PRIORITY_CLASS: z.string().min(1).optional().describe('priority class of the Jobs'),
  LADDER_JOB_SERVICE_ACCOUNT: z.string().min(1).optional().describe('service account of the Jobs'),
  LADDER_CHECKPOINT_PVC: z.string().min(1).optional().describe('a PersistentVolumeClaim for checkpoints (default an emptyDir: a retry on another node starts over)'),
  LADDER_JOB_TTL_SECONDS: int(0).optional().describe('ttlSecondsAfterFinished of the Jobs (default 3600)'),
  LADDER_JOB_DELETE_PROPAGATION: z.enum(['Background', 'Foreground']).optional().describe('how a cancelled Job is deleted (default Background)'),
});

/**
 * The development stack (`ladder dev`, `npm run demo`, `npm test`): read by stack/ and scripts/
 * where they start; declared here so the table lists them.
 */
export const DEV_SETTINGS = z.object({
  LADDER_STATE_DIR: z.string().optional().describe("the embedded stack's state (default `.ladder/` in the checkout)"),
  LADDER_CACHE_DIR: z.string().optional().describe('tool builds and downloads, keyed by version (default `$XDG_CACHE_HOME/ladder`, else `~/.cache/ladder`)'),
  PG_BIN: z.string().optional().describe("a folder with Postgres's `initdb` and `postgres` to use instead of the cached build"),
  TEMPORAL_CLI_PATH: z.string().optional().describe('a `temporal` binary to use instead of the cached one'),
  LADDER_SKIP_SYSTEM_PACKAGES: z.enum(['1']).optional().describe('`1`: build the Python env without apt packages'),
  LADDER_CHROMIUM: z.string().optional().describe('the browser of the dashboard tests'),
  LADDER_K8S_BUILD_P: int(1, 64).optional().describe('parallel Go builds of the test control plane (default 2)'),
  LADDER_STRICT_TESTS: z.enum(['0', '1']).optional().describe('`npm test` is strict (a test that cannot run fails) unless this is `0`; always strict under `CI=true`'),
  LADDER_TEST_PG_URL: z.string().optional().describe('tests: a running Postgres to use instead of starting one'),
  LADDER_TEST_TEMPORAL_ADDRESS: z.string().optional().describe('tests: a running Temporal to use instead of starting one'),
  LADDER_TEST_VERBOSE: z.string().optional().describe('tests: print query counts'),
  LADDER_BENCH_BASELINE_EXECUTOR: z.string().optional().describe('`test/k8s/bench-jobs.ts`: an older kubernetes.ts to compare with'),
});

const GROUPS = {
  'API, worker and CLI': PROCESS_SETTINGS,
  'Spec limits': SPEC_LIMITS,
  'Bring-your-own-job limits': COMMAND_LIMITS,
  'Kubernetes executor': KUBERNETES_SETTINGS,
  'Capacity load testing': LOADGEN_SETTINGS,
  'Development stack and tests': DEV_SETTINGS,
} as const;

/** Every variable name declared above. */
export const SETTING_NAMES: readonly string[] = Object.values(GROUPS).flatMap((g) => Object.keys(g.shape));

/** Reads one group; an empty variable counts as unset, as in the shell's `VAR= cmd` idiom. */
export function readGroup<S extends z.ZodObject>(schema: S, env: NodeJS.ProcessEnv = process.env): z.infer<S> {
  const present: Record<string, string> = {};
  for (const key of Object.keys(schema.shape)) {
    const value = env[key];
    if (value !== undefined && value !== '') present[key] = value;
  }
  const parsed = schema.safeParse(present);
  if (parsed.success) return parsed.data;
  const issue = parsed.error.issues[0]!;
  throw new Error(`environment variable ${String(issue.path[0])}: ${issue.message}`);
}

export type Settings = z.infer<typeof PROCESS_SETTINGS> & z.infer<typeof SPEC_LIMITS>;
export type SpecLimits = z.infer<typeof SPEC_LIMITS>;
export type CommandLimits = z.infer<typeof COMMAND_LIMITS>;
export type KubernetesSettings = z.infer<typeof KUBERNETES_SETTINGS>;
export type LoadgenSettings = z.infer<typeof LOADGEN_SETTINGS>;

export function readSettings(env: NodeJS.ProcessEnv = process.env): Settings {
  return { ...readGroup(SPEC_LIMITS, env), ...readGroup(PROCESS_SETTINGS, env) };
}
export const readSpecLimits = (env: NodeJS.ProcessEnv = process.env): SpecLimits => readGroup(SPEC_LIMITS, env);
export const readCommandLimits = (env: NodeJS.ProcessEnv = process.env): CommandLimits => readGroup(COMMAND_LIMITS, env);
export const readKubernetesSettings = (env: NodeJS.ProcessEnv = process.env): KubernetesSettings => readGroup(KUBERNETES_SETTINGS, env);
export const readLoadgenSettings = (env: NodeJS.ProcessEnv = process.env): LoadgenSettings => readGroup(LOADGEN_SETTINGS, env);

type ProcessSettings = z.infer<typeof PROCESS_SETTINGS>;
/** One variable of the API/worker/CLI group, validated alone (a library reads only what it needs). */
export function readSetting<K extends keyof ProcessSettings & string>(name: K, env: NodeJS.ProcessEnv = process.env): ProcessSettings[K] {
  const one = z.object({ [name]: PROCESS_SETTINGS.shape[name] });
  return (readGroup(one, env) as Record<string, unknown>)[name] as ProcessSettings[K];
}

/** Whether the variable is set (non-empty): for "the environment overrides the stack file". */
export const isSet = (name: (typeof SETTING_NAMES)[number], env: NodeJS.ProcessEnv = process.env): boolean => !!env[name];

export function requireSetting<K extends keyof Settings>(settings: Settings, key: K): NonNullable<Settings[K]> {
  const value = settings[key];
  if (value === undefined || value === null || value === '') {
    throw new Error(`environment variable ${key} is required here`);
  }
  return value as NonNullable<Settings[K]>;
}

/** README's table: one section per group, one row per variable with its default. */
export function settingsTable(): string {
  const out: string[] = [];
  for (const [title, schema] of Object.entries(GROUPS)) {
    out.push(`**${title}**`, '', '| variable | default | meaning |', '| --- | --- | --- |');
    for (const [name, field] of Object.entries(schema.shape) as [string, z.ZodType][]) {
      const parsed = field.safeParse(undefined);
      const fallback = parsed.success && parsed.data !== undefined && !(Array.isArray(parsed.data) && parsed.data.length === 0) ? `\`${String(parsed.data)}\`` : '';
      out.push(`| \`${name}\` | ${fallback} | ${field.description ?? ''} |`);
    }
    out.push('');
  }
  return out.join('\n').trimEnd() + '\n';
}

export const README_MARKERS = {
  start: '<!-- settings:start (generated from core/settings.ts by scripts/settings-table.ts) -->',
  end: '<!-- settings:end -->',
};

/** `readme` with the text between the markers replaced by `settingsTable()`. */
export function withSettingsTable(readme: string): string {
  const start = readme.indexOf(README_MARKERS.start);
  const end = readme.indexOf(README_MARKERS.end);
  if (start < 0 || end < start) throw new Error(`README.md has no ${README_MARKERS.start} … ${README_MARKERS.end} block`);
  return `${readme.slice(0, start + README_MARKERS.start.length)}\n\n${settingsTable()}\n${readme.slice(end)}`;
}
