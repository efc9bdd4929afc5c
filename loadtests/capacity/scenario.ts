/**
 * Capacity scenario files (YAML or JSON): what to load, at which open-model arrival rate, for
 * how long, and the thresholds a step must hold. Validated like sweep specs: unknown keys are
 * refused with their path, and every problem names its field.
 *
 *   name: ingest-smoke
 *   scenario: ingest            # ingest | graphql | launch | k8s | http
 *   target: http://127.0.0.1:4000   # the API (or, for http, the base of `http.url`); --target overrides
 *   ingest: { jobs: 4, batch: 500 }
 *   load: { rate: 20, duration: 10s }            # or stages: [{ rate: 50, duration: 30s }, …]
 *   thresholds: ["p95 < 250ms", "errors < 0.1%", "achieved >= 0.95 * offered"]
 *   search: { start: 10, max: 2000 }             # optional: the capacity search (search.ts)
 */
import { z } from 'zod';
import { FORBIDDEN_KEYS, formatPath, SpecError, specTextToObject } from '../../core/spec/spec';
import { parseThreshold, type Threshold } from './thresholds';

export const SCENARIO_KINDS = ['ingest', 'graphql', 'launch', 'k8s', 'http'] as const;
export type ScenarioKind = (typeof SCENARIO_KINDS)[number];

/** Longest step a scenario may ask for: a step is one bounded measurement, not a soak test. */
export const MAX_STEP_SECONDS = 3600;
/** Highest arrival rate one run may offer (all generators together). */
export const MAX_RATE = 100_000;
/** Most steps a capacity search may take, whatever `search.maxSteps` says. */
export const MAX_SEARCH_STEPS = 40;
/** Most generator activities one step may fan out to. */
export const MAX_AGENTS = 64;

export interface ScenarioIssue {
  path: string;
  message: string;
}

export class ScenarioError extends Error {
  constructor(readonly issues: ScenarioIssue[]) {
    const text = issues.map((i) => (i.path ? `${i.path}: ${i.message}` : i.message));
    super(issues.length === 1 ? `invalid scenario: ${text[0]}` : `invalid scenario (${issues.length} problems): ${text.join('; ')}`);
    this.name = 'ScenarioError';
  }
}

/** `250ms`, `10s`, `2m`, `1h` or a number of seconds, to milliseconds. */
export function parseDurationMs(value: string | number): number {
  if (typeof value === 'number') return value * 1000;
  const m = /^(\d+(?:\.\d+)?)(ms|s|m|h)$/.exec(value.trim());
  if (!m) return Number.NaN;
  const unit = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 }[m[2] as 'ms' | 's' | 'm' | 'h'];
  return Number(m[1]) * unit;
}

const duration = (maxMs: number) =>
  z
    .union([z.number(), z.string().max(32)])
    .transform((v, ctx) => {
      const ms = parseDurationMs(v);
      if (!Number.isFinite(ms) || ms <= 0 || ms > maxMs) {
        ctx.addIssue({ code: 'custom', message: `must be a duration like 500ms, 10s or 2m, above 0 and at most ${maxMs / 1000}s` });
        return z.NEVER;
      }
      return ms;
    });

const rate = z.number().positive().max(MAX_RATE);
const boundedString = (max = 4096) => z.string().max(max);

const stage = z.strictObject({ rate: z.number().min(0).max(MAX_RATE), duration: duration(MAX_STEP_SECONDS * 1000) });

const load = z
  .strictObject({
    /** Operations started per second, whatever the target answers (open model). */
    rate: rate.optional(),
    /** With `rate`: how long the step runs. */
    duration: duration(MAX_STEP_SECONDS * 1000).optional(),
    /** Instead of rate + duration: the rate ramps linearly to each stage's rate over its duration (k6 ramping-arrival-rate). */
    stages: z.array(stage).min(1).max(100).optional(),
    /** Starting rate of the first stage (default 0). */
    startRate: z.number().min(0).max(MAX_RATE).default(0),
    /** Operations in flight at once per generator; an operation due while this many are in flight is dropped and counted. */
    maxInFlight: z.number().int().min(1).max(100_000).default(1000),
    /** An operation still unanswered after this long is an error. */
    timeout: duration(600_000).default(10_000),
  })
  .superRefine((l, ctx) => {
    if (l.stages && (l.rate !== undefined || l.duration !== undefined)) {
      ctx.addIssue({ code: 'custom', path: ['stages'], message: 'give either stages or rate + duration, not both' });
    } else if (!l.stages && (l.rate === undefined || l.duration === undefined)) {
      ctx.addIssue({ code: 'custom', path: [l.rate === undefined ? 'rate' : 'duration'], message: 'required (or give stages)' });
    }
  });

const search = z.strictObject({
  /** First offered rate (ops/s); doubles until a step fails. */
  start: rate,
  /** Highest rate tried; reaching it without a failure reports the knee as at least this. */
  max: rate,
  /** Duration of each step (default: load.duration, else 10s). */
  stepDuration: duration(MAX_STEP_SECONDS * 1000).optional(),
  /** Bisection stops when (first failing − last passing) ≤ precision × last passing. */
  precision: z.number().positive().max(1).default(0.1),
  maxSteps: z.number().int().min(1).max(MAX_SEARCH_STEPS).default(12),
});

const scaling = z
  .strictObject({
    /** Generator counts to repeat the search with, ascending (e.g. [1, 2, 4]). */
    generators: z.array(z.number().int().min(1).max(MAX_AGENTS)).min(2).max(8),
    /** Searches per generator count: with 2 or more the fit's interval reflects run-to-run noise. */
    repeats: z.number().int().min(1).max(5).default(1),
    /** The question: how many replicas for this many ops/s (default: 10 × the largest knee). */
    forRate: rate.optional(),
  })
  .superRefine((s, ctx) => {
    if (s.generators.some((g, i) => i > 0 && g <= s.generators[i - 1]!)) ctx.addIssue({ code: 'custom', path: ['generators'], message: 'must be strictly ascending' });
  });

const ingest = z.strictObject({
  /** Simulated jobs (trials of one sweep created for the run), each sending its own metric series. */
  jobs: z.number().int().min(1).max(1000).default(4),
  /** Points per POST: the Python client's FLUSH_POINTS. */
  batch: z.number().int().min(1).max(10_000).default(500),
  /** Metric names each point cycles through. */
  metrics: z.array(z.string().min(1).max(100)).min(1).max(16).default(['loss', 'accuracy']),
});

const graphql = z.strictObject({
  /** Relative weights of the dashboard's queries. */
  mix: z
    .strictObject({
      sweeps: z.number().min(0).default(1),
      sweep: z.number().min(0).default(1),
      leaderboard: z.number().min(0).default(1),
      curves: z.number().min(0).default(1),
    })
    .default({ sweeps: 1, sweep: 1, leaderboard: 1, curves: 1 }),
  /** Seed a sweep of this many trials with points each before the run (0: use existing data). */
  seedTrials: z.number().int().min(0).max(1000).default(4),
  seedPoints: z.number().int().min(0).max(100_000).default(2000),
  /** maxPoints of the curves query (the dashboard asks for 500). */
  maxPoints: z.number().int().min(2).max(10_000).default(500),
  /** Curves of this many trials per request (the compare view). */
  curveTrials: z.number().int().min(1).max(50).default(4),
});

const launch = z.strictObject({
  /** Trials (seeds) per submitted sweep. */
  trials: z.number().int().min(1).max(1000).default(2),
  /** Job kind and config of each trial (the worker's executor decides how it runs). */
  kind: boundedString(100).default('synthetic'),
  config: z.record(z.string().max(256), z.union([z.string().max(4096), z.number(), z.boolean()])).default({ steps: 1 }),
  /** How long to wait, after a step, for its sweeps' trials to finish (for trial throughput). */
  drain: duration(600_000).default(30_000),
});

const k8s = z.strictObject({
  namespace: boundedString(63).default('default'),
  image: boundedString(500).default('busybox'),
  nodeSelector: z.record(z.string().max(253), z.string().max(63)).optional(),
  tolerations: z
    .array(z.strictObject({ key: boundedString(253), operator: z.enum(['Exists', 'Equal']).default('Exists'), value: boundedString(63).optional(), effect: boundedString(32).optional() }))
    .max(16)
    .optional(),
  /** Annotations of each pod (KWOK stages select on these). */
  podAnnotations: z.record(z.string().max(253), z.string().max(1024)).optional(),
  /** Kubeconfig file (default: KUBECONFIG or ~/.kube/config). */
  kubeconfig: boundedString().optional(),
});

const http = z.strictObject({
  method: z.enum(['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS']).default('GET'),
  /** Absolute, or a path joined to `target`. */
  url: boundedString(),
  headers: z.record(z.string().max(256), z.string().max(8192)).default({}),
  body: z.union([z.string().max(1 << 20), z.record(z.string(), z.unknown())]).optional(),
  /** Statuses that count as success (default: 200–399). */
  expectStatus: z.array(z.number().int().min(100).max(599)).max(100).optional(),
});

const thresholds = z
  .array(z.string().max(200))
  .max(32)
  .default(['errors < 1%', 'achieved >= 0.95 * offered'])
  .transform((list, ctx) => {
    const out: Threshold[] = [];
    list.forEach((text, i) => {
      try {
        out.push(parseThreshold(text));
      } catch (err) {
        ctx.addIssue({ code: 'custom', path: [i], message: (err as Error).message });
      }
    });
    return out;
  });

export const scenarioSchema = z
  .strictObject({
    name: z.string().regex(/^[a-z0-9][a-z0-9._-]{0,62}$/, 'lowercase letters, digits, ".", "_" or "-", at most 63'),
    scenario: z.enum(SCENARIO_KINDS),
    description: boundedString().optional(),
    target: z.url({ protocol: /^https?$/ }).max(2048).optional(),
    load,
    thresholds,
    /** Stop a step as soon as its errors threshold is broken (after `abortAfter` operations), instead of running it out. */
    abortOnFail: z.boolean().default(true),
    abortAfter: z.number().int().min(1).max(1_000_000).default(20),
    search: search.optional(),
    /** Repeat the search with each generator count and fit capacity against replicas (needs search). */
    scaling: scaling.optional(),
    /** Generator activities the rate is split across (on the loadgen task queue's workers). */
    agents: z.number().int().min(1).max(MAX_AGENTS).default(1),
    ingest: ingest.optional(),
    graphql: graphql.optional(),
    launch: launch.optional(),
    k8s: k8s.optional(),
    http: http.optional(),
  })
  .superRefine((s, ctx) => {
    for (const kind of SCENARIO_KINDS) {
      if (kind !== s.scenario && s[kind] !== undefined) ctx.addIssue({ code: 'custom', path: [kind], message: `only a "${kind}" scenario takes this block` });
    }
    if (s.scenario === 'http' && !s.http) ctx.addIssue({ code: 'custom', path: ['http'], message: 'required for an http scenario (at least url)' });
    if (s.scaling && !s.search) ctx.addIssue({ code: 'custom', path: ['scaling'], message: 'needs a search block: the scaling run repeats the search' });
    if (s.search && s.search.max < s.search.start) ctx.addIssue({ code: 'custom', path: ['search', 'max'], message: 'must be at least search.start' });
  });

export type Scenario = z.output<typeof scenarioSchema>;
export type LoadProfile = Scenario['load'];

/** Validates a parsed object; throws ScenarioError listing every problem with its path. */
export function parseScenario(input: unknown): Scenario {
  // Before zod: headers, config and selectors are user-keyed records, and none may name a
  // prototype slot of the objects they become.
  const hostile = forbiddenKeyIssues(input);
  if (hostile.length) throw new ScenarioError(hostile);
  const parsed = scenarioSchema.safeParse(input);
  if (parsed.success) return withDefaults(parsed.data);
  const issues: ScenarioIssue[] = [];
  for (const issue of parsed.error.issues) {
    if (issue.code === 'unrecognized_keys') for (const key of issue.keys) issues.push({ path: formatPath([...issue.path, key]), message: 'unknown key' });
    else issues.push({ path: formatPath(issue.path), message: issue.message });
  }
  throw new ScenarioError(issues);
}

function forbiddenKeyIssues(input: unknown): ScenarioIssue[] {
  const issues: ScenarioIssue[] = [];
  const stack: Array<{ value: unknown; path: Array<string | number> }> = [{ value: input, path: [] }];
  let nodes = 0;
  while (stack.length && issues.length < 20 && nodes++ < 100_000) {
    const { value, path } = stack.pop()!;
    if (value === null || typeof value !== 'object') continue;
    for (const key of Object.keys(value)) {
      if (FORBIDDEN_KEYS.has(key)) issues.push({ path: formatPath([...path, key]), message: 'this key is not allowed' });
      else stack.push({ value: (value as Record<string, unknown>)[key], path: [...path, Array.isArray(value) ? Number(key) : key] });
    }
  }
  return issues;
}

/** The kind's own block gets its defaults even when the file leaves it out. */
function withDefaults(s: Scenario): Scenario {
  if (s.scenario === 'ingest') return { ...s, ingest: s.ingest ?? ingest.parse({}) };
  if (s.scenario === 'graphql') return { ...s, graphql: s.graphql ?? graphql.parse({}) };
  if (s.scenario === 'launch') return { ...s, launch: s.launch ?? launch.parse({}) };
  if (s.scenario === 'k8s') return { ...s, k8s: s.k8s ?? k8s.parse({}) };
  return s;
}

/** YAML or JSON text (bounded, no tags: the sweep-spec reader) to a validated scenario. */
export function parseScenarioText(text: string): Scenario {
  let doc: Record<string, unknown>;
  try {
    doc = specTextToObject(text);
  } catch (err) {
    if (err instanceof SpecError) throw new ScenarioError(err.issues.map((i) => ({ path: i.path, message: i.message.replace('sweep spec', 'scenario') })));
    throw err;
  }
  return parseScenario(doc);
}

export { constantProfile, offeredRate, plannedOperations, profileDurationMs, scaleProfile } from './profile';
