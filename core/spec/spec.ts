/**
 * The sweep spec: what a user writes (YAML or JSON) to ask for a sweep.
 *
 * Validation is strict on purpose: a typo in a key would otherwise silently run the default,
 * and a sweep costs GPU hours. Every problem is reported with the path to the field.
 */
import { z } from 'zod';
import YAML from 'yaml';
import { readSpecLimits, type SpecLimits } from '../settings';
import { canonicalJson } from './identity';
import { jobKind, jobKindNames, keyType, unknownKeyMessage, valueProblem, type JobKind } from './kinds';
import { readCommandLimits, type CommandLimits } from './limits';
import { templateProblems } from './template';
import { ashaLadder, samplePoints, SampleError, searchBlockSchema, searchIssues } from './search';
import { scheduleBlockSchema } from './schedule';

/** Spec text larger than this is refused before it is parsed. */
export const MAX_SPEC_BYTES = 256 * 1024;
/** Any string in a spec (values, names, rung values), in characters. */
export const MAX_STRING_LENGTH = 4096;
/** Any object key in a spec, in characters. */
export const MAX_KEY_LENGTH = 256;
/** Nesting of the whole spec document (a config sits two or four levels down). */
export const MAX_SPEC_DEPTH = 24;
/** Values (objects, arrays and scalars together) in one spec. */
export const MAX_SPEC_NODES = 50_000;
/** Seeds reach jobs as a 32-bit signed int (torch, numpy). */
export const MAX_SEED = 2 ** 31 - 1;
/**
 * Keys that reach an object's prototype when used as a property name; never a config key, in
 * any position or path segment, so no code path can be tricked into writing through them.
 */
export const FORBIDDEN_KEYS: ReadonlySet<string> = new Set(['__proto__', 'prototype', 'constructor']);
/**
 * What the `kind` of a sweep that runs its own `command` is (the sweeps table's `kind` column,
 * filters, the dashboard). Reserved: no built-in kind may take this name. A parsed spec carries it,
 * so parsing a parsed spec again gives the same spec.
 */
export const COMMAND_KIND = 'command';
/** Environment names a spec's `env` may not set: the job protocol's own variables. */
export const RESERVED_ENV_PREFIX = 'LADDER_';

const configValue: z.ZodType<unknown> = z.lazy(() =>
  z.union([
    z.string(),
    z.number().refine(Number.isFinite, 'must be a finite number'),
    z.boolean(),
    z.null(),
    z.array(configValue),
    z.record(z.string(), configValue),
  ]),
);
const configObject = z.record(z.string(), configValue);

const name = z
  .string()
  .min(1, 'must not be empty')
  .max(63, 'must be at most 63 characters')
  .regex(/^[a-z0-9]([a-z0-9-]*[a-z0-9])?$/, 'must be lowercase letters, digits and dashes (like a-b-1)');

const scalarRung = z.union([z.number().refine(Number.isFinite, 'must be a finite number'), z.string().min(1)]);

const rung = z.union([
  scalarRung,
  z.strictObject({
    name: z.string().min(1).max(40),
    /** The value the scale key takes on this rung (also the x of scaling fits when numeric). */
    value: scalarRung,
    /** Extra config for this rung only (e.g. a bigger batch on a bigger model). */
    config: configObject.optional(),
  }),
]);

const promotion = z
  .strictObject({
    metric: z.string().min(1),
    mode: z.enum(['min', 'max']).default('min'),
    /** Keep the best k variants. */
    topK: z.number().int().positive().optional(),
    /** Keep this fraction of variants (successive halving uses 0.5), at least one. */
    fraction: z.number().gt(0).lte(1).optional(),
    /** Keep every variant whose prediction interval at the next rung overlaps the best one's. */
    intervalOverlap: z.literal(true).optional(),
  })
  .refine((p) => [p.topK, p.fraction, p.intervalOverlap].filter((v) => v !== undefined).length === 1, {
    message: 'give exactly one of topK, fraction or intervalOverlap',
  });

/** Which final-result metric the scaling analyses use, and the scale to extrapolate to. */
const analysis = z.strictObject({
  metric: z.string().min(1),
  mode: z.enum(['min', 'max']).default('min'),
  /** Scale value to extrapolate each variant to (default: the largest rung). */
  targetScale: z.number().positive().optional(),
  /** R² a rung must reach against the largest rung to count as consistent. */
  threshold: z.number().gt(0).lte(1).default(0.9),
});

const memoryQuantity = z
  .string()
  .regex(/^[0-9]+(\.[0-9]+)?(Ki|Mi|Gi|Ti|K|M|G|T)?$/, 'must be a Kubernetes quantity like 512Mi or 2Gi');

export const sweepSpecSchema = z.strictObject({
  name,
  project: name.default('default'),
  description: z.string().max(2000).optional(),
  /**
   * Job kind, as known to `python -m ladder_jobs kinds`. Exactly one of `kind` and `command`;
   * a parsed command sweep has kind "command".
   */
  kind: z.string().regex(/^[a-z][a-z0-9_]*$/, 'must be a job kind name like ttt or synthetic').optional(),
  /**
   * Bring your own job: the program and its arguments, run as a list (never through a shell).
   * `{key}` takes that (dotted) key of the trial's config, `{args}` becomes `--key=value` for
   * every key, `{{`/`}}` are literal braces. The config is also written as JSON to $LADDER_CONFIG.
   */
  command: z.array(z.string().refine((a) => !a.includes('\0'), 'must not contain a NUL character')).optional(),
  /**
   * Where the command runs (local executor). In a file it is relative to the spec file; the CLI
   * makes it absolute at submit and records its code version in `workdirVersion`.
   */
  workdir: z.string().min(1, 'must not be empty').refine((a) => !a.includes('\0'), 'must not contain a NUL character').optional(),
  /**
   * The code version of `workdir` (a content hash of its files), part of every trial's identity.
   * Filled in at submit by the CLI; a client of the API may send its own (e.g. a commit).
   */
  workdirVersion: z.string().regex(/^[A-Za-z0-9:+._-]{1,200}$/, 'must be 1-200 letters, digits or :+._-').optional(),
  /** Container image the command runs in on Kubernetes (required there). */
  image: z.string().regex(/^[^\s]{1,512}$/, 'must be an image reference without spaces (at most 512 characters)').optional(),
  /** Plain, non-secret environment variables for the command (stored with the sweep, shown in the UI). */
  env: z
    .record(
      z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/, 'must be an environment variable name (letters, digits, _)'),
      z.string().refine((a) => !a.includes('\0'), 'must not contain a NUL character'),
    )
    .optional(),
  /** Config shared by every trial; may name a preset. */
  base: configObject.default({}),
  /** Cartesian grid: every combination of the listed values becomes a variant. Keys may be dotted paths. */
  grid: z.record(z.string().min(1), z.array(configValue).min(1, 'must list at least one value')).optional(),
  /**
   * Random search over distributions and/or ASHA on a resource key (core/spec/search.ts); random
   * points are crossed with the grid and the listed variants.
   */
  search: searchBlockSchema(configValue, MAX_SEED).optional(),
  /** Listed variants, crossed with the grid. */
  variants: z
    .array(z.strictObject({ name: z.string().min(1).max(80), config: configObject.default({}) }))
    .min(1)
    .optional(),
  /** Seeds: a count n (seeds 0..n-1) or an explicit list. */
  seeds: z
    .union([
      z.number().int().positive().max(1000),
      z.array(z.number().int().nonnegative().max(MAX_SEED, `must be at most ${MAX_SEED}`)).min(1),
    ])
    .default(1),
  /** The scale axis: the config key that grows and its rungs, smallest first. */
  scale: z
    .strictObject({
      key: z.string().min(1),
      rungs: z.array(rung).min(1, 'must list at least one rung'),
    })
    .optional(),
  promotion: promotion.optional(),
  analysis: analysis.optional(),
  resources: z
    .strictObject({
      gpus: z.number().int().nonnegative().default(0),
      cpu: z.number().positive().default(1),
      memory: memoryQuantity.default('2Gi'),
    })
    .default({ gpus: 0, cpu: 1, memory: '2Gi' }),
  /** Trials running at once. */
  concurrency: z.number().int().positive().max(10_000).default(4),
  /** Extra attempts after a retryable failure. */
  retries: z.number().int().nonnegative().max(20).default(2),
  /** Per attempt, in seconds. */
  timeoutSeconds: z.number().int().positive().default(3600),
  /** Recurring runs: metrics compared run over run, webhook, overlap (core/spec/schedule.ts). */
  schedule: scheduleBlockSchema.optional(),
});

export type SweepSpecInput = z.input<typeof sweepSpecSchema>;
/** A parsed spec always has a kind: a built-in one, or COMMAND_KIND with a `command`. */
export type SweepSpec = Omit<z.output<typeof sweepSpecSchema>, 'kind'> & { kind: string };

/** Whether the sweep runs the user's own command rather than a built-in kind. */
export function isCommandSpec(spec: Pick<SweepSpec, 'command'>): spec is { command: string[] } {
  return spec.command !== undefined;
}

export interface SpecIssue {
  /** Dotted path to the field, e.g. `scale.rungs[1].value`; empty for the whole spec. */
  path: string;
  message: string;
}

export class SpecError extends Error {
  constructor(readonly issues: SpecIssue[]) {
    super(
      issues.length === 1
        ? `invalid sweep spec: ${formatIssue(issues[0]!)}`
        : `invalid sweep spec (${issues.length} problems): ${issues.map(formatIssue).join('; ')}`,
    );
    this.name = 'SpecError';
  }
}

function formatIssue(issue: SpecIssue): string {
  return issue.path ? `${issue.path}: ${issue.message}` : issue.message;
}

export function formatPath(path: ReadonlyArray<PropertyKey>): string {
  let out = '';
  for (const part of path) {
    if (typeof part === 'number') out += `[${part}]`;
    else out += out ? `.${String(part)}` : String(part);
  }
  return out;
}

export interface ParseOptions {
  /** Operator limits; read from the environment when not given. */
  limits?: SpecLimits;
  /** Operator limits on command sweeps; read from the environment when not given. */
  commandLimits?: CommandLimits;
}

/**
 * Validates an already-parsed object, the job kind's config keys and types included.
 * Throws SpecError listing every problem with its path.
 */
export function parseSweepSpec(input: unknown, options: ParseOptions = {}): SweepSpec {
  const spec = parseSweepSpecShape(input, options);
  const issues = kindIssues(spec);
  if (issues.length) throw new SpecError(issues);
  return spec;
}

/**
 * Everything but the job kind: structure, bounds, operator limits and the trial count. Exposed
 * for tests of the spec's own grammar, which use made-up kinds and keys.
 */
export function parseSweepSpecShape(input: unknown, options: ParseOptions = {}): SweepSpec {
  const limits = options.limits ?? readSpecLimits();
  // Before zod: its record parser assigns user keys onto plain objects, and the walk bounds the
  // work everything after it does.
  const hostile = boundsIssues(input);
  if (hostile.length) throw new SpecError(hostile);
  const parsed = sweepSpecSchema.safeParse(input);
  if (!parsed.success) {
    const issues: SpecIssue[] = [];
    for (const issue of parsed.error.issues) {
      if (issue.code === 'unrecognized_keys') {
        for (const key of issue.keys) {
          issues.push({ path: formatPath([...issue.path, key]), message: 'unknown key' });
        }
      } else {
        issues.push({ path: formatPath(issue.path), message: issue.message });
      }
    }
    // Reported with the rest, so a spec missing both is told about kind/command at once.
    if (isPlainRecord(input) && input.kind === undefined && input.command === undefined) issues.push(NEITHER_KIND_NOR_COMMAND);
    throw new SpecError(issues);
  }
  const extra: SpecIssue[] = commandIssues(parsed.data, options.commandLimits ?? readCommandLimits());
  const spec: SweepSpec = { ...parsed.data, kind: parsed.data.kind ?? COMMAND_KIND };
  const searchProblems = searchIssues(spec);
  extra.push(...searchProblems);
  if (spec.search?.asha && searchProblems.length === 0) {
    // ASHA is the scale ladder plus a promotion rule; written into the spec, every part that reads
    // those (planner, rung promotion, analyses, budget) works on it unchanged.
    const ladder = ashaLadder(spec.search.asha);
    spec.scale = ladder.scale;
    spec.promotion = ladder.promotion;
  }
  // Drawn only within the trial limit, so a huge `samples` is refused by its count, not hashed first.
  if (spec.search?.random && searchProblems.length === 0 && countTrials(spec) <= limits.LADDER_MAX_TRIALS_PER_SWEEP) {
    try {
      samplePoints(spec.search);
    } catch (err) {
      if (!(err instanceof SampleError)) throw err;
      extra.push({ path: 'search.samples', message: err.message });
    }
  }
  if (spec.scale) {
    const names = rungNames(spec);
    const seen = new Set<string>();
    names.forEach((n, i) => {
      if (seen.has(n)) extra.push({ path: `scale.rungs[${i}]`, message: `duplicate rung "${n}"` });
      seen.add(n);
    });
    if (spec.grid && Object.hasOwn(spec.grid, spec.scale.key)) {
      extra.push({ path: `grid.${spec.scale.key}`, message: 'the scale key cannot also be a grid axis' });
    }
  }
  for (const [key, values] of Object.entries(spec.grid ?? {})) {
    // Repeated values would plan identical trials that race each other for the same identity.
    const seen = new Set<string>();
    values.forEach((v, i) => {
      const id = canonicalJson(v);
      if (seen.has(id)) extra.push({ path: `grid.${key}[${i}]`, message: `duplicate value ${id}` });
      seen.add(id);
    });
  }
  if (Array.isArray(spec.seeds) && new Set(spec.seeds).size !== spec.seeds.length) {
    extra.push({ path: 'seeds', message: 'seeds must be distinct' });
  }
  if (spec.variants) {
    const seen = new Set<string>();
    spec.variants.forEach((v, i) => {
      if (seen.has(v.name)) extra.push({ path: `variants[${i}].name`, message: `duplicate variant "${v.name}"` });
      seen.add(v.name);
    });
  }
  extra.push(...limitIssues(spec, limits));
  if (extra.length) throw new SpecError(extra);
  return spec;
}

/** Parses YAML or JSON text (JSON is YAML) and validates it. */
export function parseSweepSpecText(text: string, options: ParseOptions = {}): SweepSpec {
  return parseSweepSpec(specTextToObject(text), options);
}

/** YAML/JSON text to a plain object, bounded and without tags; throws SpecError. */
export function specTextToObject(text: string): Record<string, unknown> {
  if (typeof text !== 'string') throw new SpecError([{ path: '', message: 'a sweep spec must be text (YAML or JSON)' }]);
  const bytes = Buffer.byteLength(text, 'utf8');
  if (bytes > MAX_SPEC_BYTES) {
    throw new SpecError([{ path: '', message: `the spec is ${bytes} bytes; the limit is ${MAX_SPEC_BYTES} (256 KiB)` }]);
  }
  let doc: unknown;
  try {
    const lineCounter = new YAML.LineCounter();
    const parsed = YAML.parseDocument(text, { lineCounter, prettyErrors: false, uniqueKeys: true });
    if (parsed.errors[0]) throw parsed.errors[0];
    // A tag asks the parser for a non-JSON type (!!binary, !!set, !!js/function): a spec never
    // needs one, and an unknown tag would otherwise silently become a string.
    let tagged: { tag: string; path: string; at: number } | undefined;
    YAML.visit(parsed, {
      Node(_key, node, path) {
        if (!node.tag) return undefined;
        tagged = { tag: node.tag, path: yamlPath(path, node), at: node.range?.[0] ?? 0 };
        return YAML.visit.BREAK;
      },
    });
    if (tagged) {
      const { line, col } = lineCounter.linePos(tagged.at);
      throw new SpecError([
        { path: tagged.path, message: `YAML tag ${tagged.tag} is not allowed in a sweep spec (line ${line}, column ${col})` },
      ]);
    }
    if (parsed.warnings[0]) throw parsed.warnings[0];
    doc = parsed.toJS({ maxAliasCount: 100 });
  } catch (err) {
    if (err instanceof SpecError) throw err;
    const message = err instanceof RangeError ? 'nested too deeply' : (err as Error).message.split('\n')[0];
    throw new SpecError([{ path: '', message: `not valid YAML or JSON: ${message}` }]);
  }
  if (doc === null || typeof doc !== 'object' || Array.isArray(doc)) {
    throw new SpecError([{ path: '', message: 'a sweep spec must be a mapping (an object)' }]);
  }
  return doc as Record<string, unknown>;
}

/** The spec path of a YAML node from the ancestors YAML.visit gives. */
function yamlPath(ancestors: readonly unknown[], node: unknown): string {
  const parts: Array<string | number> = [];
  const chain = [...ancestors, node];
  for (let i = 0; i < chain.length - 1; i++) {
    const here = chain[i];
    const next = chain[i + 1];
    if (YAML.isPair(here) && YAML.isScalar(here.key) && next === here.value) parts.push(String(here.key.value));
    else if (YAML.isSeq(here)) parts.push(here.items.indexOf(next as never));
  }
  return formatPath(parts);
}

const isPlainRecord = (v: unknown): v is Record<string, unknown> => {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) return false;
  const proto = Object.getPrototypeOf(v) as unknown;
  return proto === Object.prototype || proto === null;
};

/**
 * One bounded walk over the raw input: forbidden or overlong keys, overlong strings, nesting and
 * size, and values JSON cannot carry (Date, Map, Buffer...). Iterative, so depth cannot blow the
 * stack, and it stops at the size bound, so its own cost is bounded too.
 */
function boundsIssues(input: unknown): SpecIssue[] {
  const issues: SpecIssue[] = [];
  const stack: Array<{ value: unknown; path: Array<string | number> }> = [{ value: input, path: [] }];
  let nodes = 0;
  while (stack.length && issues.length < 20) {
    const { value, path } = stack.pop()!;
    if (++nodes > MAX_SPEC_NODES) {
      issues.push({ path: '', message: `the spec has more than ${MAX_SPEC_NODES} values` });
      break;
    }
    if (typeof value === 'string') {
      if (value.length > MAX_STRING_LENGTH) {
        issues.push({ path: formatPath(path), message: `string of ${value.length} characters; the limit is ${MAX_STRING_LENGTH}` });
      }
      continue;
    }
    if (typeof value !== 'object' || value === null) continue;
    if (path.length >= MAX_SPEC_DEPTH) {
      issues.push({ path: formatPath(path), message: `nested deeper than ${MAX_SPEC_DEPTH} levels` });
      continue;
    }
    if (Array.isArray(value)) {
      if (nodes + value.length > MAX_SPEC_NODES) {
        issues.push({ path: formatPath(path), message: `the spec has more than ${MAX_SPEC_NODES} values` });
        break;
      }
      value.forEach((v, i) => stack.push({ value: v, path: [...path, i] }));
      continue;
    }
    if (!isPlainRecord(value)) {
      issues.push({ path: formatPath(path), message: 'must be plain JSON (an object, list, string, number, boolean or null)' });
      continue;
    }
    const keys = Object.keys(value);
    if (nodes + keys.length > MAX_SPEC_NODES) {
      issues.push({ path: formatPath(path), message: `the spec has more than ${MAX_SPEC_NODES} values` });
      break;
    }
    for (const key of keys) {
      if (FORBIDDEN_KEYS.has(key)) {
        issues.push({ path: formatPath([...path, key]), message: `"${key}" is not allowed as a key` });
      } else if (key.length > MAX_KEY_LENGTH) {
        issues.push({ path: formatPath(path), message: `a key of ${key.length} characters; the limit is ${MAX_KEY_LENGTH}` });
      } else {
        stack.push({ value: value[key], path: [...path, key] });
      }
    }
  }
  return issues;
}

/** Problems with a dotted config path (grid key, scale key), or none. */
function dottedPathIssues(where: string, dotted: string): SpecIssue[] {
  const segments = dotted.split('.');
  if (segments.some((s) => s === '')) return [{ path: where, message: `"${dotted}" has an empty path segment` }];
  const bad = segments.find((s) => FORBIDDEN_KEYS.has(s));
  return bad ? [{ path: where, message: `"${bad}" is not allowed as a path segment` }] : [];
}

/** Trials the spec plans (variants × random samples × seeds × rungs), from its sizes alone; may be Infinity. */
export function countTrials(spec: Pick<SweepSpec, 'variants' | 'grid' | 'seeds' | 'scale' | 'search'>): number {
  let n = spec.variants?.length ?? 1;
  for (const values of Object.values(spec.grid ?? {})) n *= values.length;
  if (spec.search?.random) n *= spec.search.samples ?? 1;
  n *= typeof spec.seeds === 'number' ? spec.seeds : spec.seeds.length;
  n *= spec.scale?.rungs.length ?? 1;
  return n;
}

/** Throws SpecError when the spec plans more trials than the operator allows. */
export function assertTrialCount(spec: SweepSpec, limits: SpecLimits = readSpecLimits()): void {
  const issue = trialCountIssue(spec, limits);
  if (issue) throw new SpecError([issue]);
}

function trialCountIssue(spec: SweepSpec, limits: SpecLimits): SpecIssue | undefined {
  const count = countTrials(spec);
  const max = limits.LADDER_MAX_TRIALS_PER_SWEEP;
  if (count <= max) return undefined;
  const shown = count < 1e15 ? String(count) : count.toExponential(2);
  return {
    path: '',
    message: `the spec plans ${shown} trials (variants × samples × seeds × rungs); the limit is ${max} per sweep (LADDER_MAX_TRIALS_PER_SWEEP)`,
  };
}

const MEMORY_UNITS: Record<string, number> = { '': 1, K: 1e3, M: 1e6, G: 1e9, T: 1e12, Ki: 1024, Mi: 1024 ** 2, Gi: 1024 ** 3, Ti: 1024 ** 4 };

/** Bytes of a Kubernetes memory quantity (already matched by memoryQuantity). */
export function memoryBytes(quantity: string): number {
  const m = /^([0-9]+(?:\.[0-9]+)?)(Ki|Mi|Gi|Ti|K|M|G|T)?$/.exec(quantity);
  if (!m) return Number.NaN;
  return Number(m[1]) * MEMORY_UNITS[m[2] ?? '']!;
}

function showBytes(bytes: number): string {
  for (const unit of ['Ti', 'Gi', 'Mi', 'Ki'] as const) {
    if (bytes >= MEMORY_UNITS[unit]! && bytes % MEMORY_UNITS[unit]! === 0) return `${bytes / MEMORY_UNITS[unit]!}${unit}`;
  }
  return `${bytes} bytes`;
}

function limitIssues(spec: SweepSpec, limits: SpecLimits): SpecIssue[] {
  const issues: SpecIssue[] = [];
  for (const key of Object.keys(spec.grid ?? {})) issues.push(...dottedPathIssues(`grid.${key}`, key));
  for (const key of Object.keys(spec.search?.random ?? {})) issues.push(...dottedPathIssues(`search.random.${key}`, key));
  if (spec.search?.asha) issues.push(...dottedPathIssues('search.asha.resource', spec.search.asha.resource));
  else if (spec.scale) issues.push(...dottedPathIssues('scale.key', spec.scale.key));
  const { gpus, cpu, memory } = spec.resources;
  if (gpus > limits.LADDER_MAX_GPUS_PER_TRIAL) {
    issues.push({ path: 'resources.gpus', message: `at most ${limits.LADDER_MAX_GPUS_PER_TRIAL} per trial (operator limit LADDER_MAX_GPUS_PER_TRIAL)` });
  }
  if (cpu > limits.LADDER_MAX_CPU_PER_TRIAL) {
    issues.push({ path: 'resources.cpu', message: `at most ${limits.LADDER_MAX_CPU_PER_TRIAL} per trial (operator limit LADDER_MAX_CPU_PER_TRIAL)` });
  }
  if (!(memoryBytes(memory) <= limits.LADDER_MAX_MEMORY_PER_TRIAL)) {
    issues.push({
      path: 'resources.memory',
      message: `${memory} is more than the ${showBytes(limits.LADDER_MAX_MEMORY_PER_TRIAL)} a trial may ask for (operator limit LADDER_MAX_MEMORY_PER_TRIAL)`,
    });
  }
  if (spec.timeoutSeconds > limits.LADDER_MAX_TIMEOUT_SECONDS) {
    issues.push({ path: 'timeoutSeconds', message: `at most ${limits.LADDER_MAX_TIMEOUT_SECONDS} (operator limit LADDER_MAX_TIMEOUT_SECONDS)` });
  }
  const count = trialCountIssue(spec, limits);
  if (count) issues.push(count);
  return issues;
}

/**
 * Checks every config the spec writes against the job kind's declared keys and types, as the job
 * itself would at start (exit 2), so a typo fails at submit instead of once per trial.
 */
function kindIssues(spec: SweepSpec): SpecIssue[] {
  // A command's config is the user's business: any keys, any types.
  if (isCommandSpec(spec)) return [];
  const kind = jobKind(spec.kind);
  if (!kind) return [{ path: 'kind', message: `unknown job kind "${spec.kind}" (known: ${jobKindNames().join(', ')})` }];
  const issues: SpecIssue[] = [];
  const checkConfig = (where: string, config: Record<string, unknown>) => {
    for (const [key, value] of Object.entries(config)) issues.push(...keyValueIssues(spec.kind, kind, `${where}.${key}`, key, value));
  };
  checkConfig('base', spec.base);
  spec.variants?.forEach((v, i) => checkConfig(`variants[${i}].config`, v.config));
  for (const [key, values] of Object.entries(spec.grid ?? {})) {
    issues.push(...dottedKeyIssues(spec.kind, kind, `grid.${key}`, key, values, (i) => `grid.${key}[${i}]`));
  }
  for (const [key, d] of Object.entries(spec.search?.random ?? {})) {
    const where = `search.random.${key}`;
    if (d.type === 'choice') {
      issues.push(...dottedKeyIssues(spec.kind, kind, where, key, d.values, (i) => `${where}.values[${i}]`));
      continue;
    }
    if ((d.type === 'uniform' || d.type === 'loguniform') && !key.includes('.') && keyType(kind, key) === 'int') {
      issues.push({ path: `${where}.type`, message: `${d.type} draws floats, but "${key}" is an int key of kind "${spec.kind}" (use type: int)` });
      continue;
    }
    issues.push(...dottedKeyIssues(spec.kind, kind, where, key, [d.low, d.high], (i) => `${where}.${i === 0 ? 'low' : 'high'}`));
  }
  const asha = spec.search?.asha;
  if (asha) {
    // The ladder's rungs are minResource·eta^k: checking both ends checks them all (eta is an int).
    issues.push(
      ...dottedKeyIssues(spec.kind, kind, 'search.asha.resource', asha.resource, [asha.minResource, asha.maxResource], (i) =>
        i === 0 ? 'search.asha.minResource' : 'search.asha.maxResource',
      ),
    );
  } else if (spec.scale) {
    const { key, rungs } = spec.scale;
    const values = rungs.map((r) => (typeof r === 'object' ? r.value : r));
    issues.push(
      ...dottedKeyIssues(spec.kind, kind, 'scale.key', key, values, (i) =>
        typeof rungs[i] === 'object' ? `scale.rungs[${i}].value` : `scale.rungs[${i}]`,
      ),
    );
    rungs.forEach((r, i) => {
      if (typeof r === 'object' && r.config) checkConfig(`scale.rungs[${i}].config`, r.config);
    });
  }
  return issues;
}

function keyValueIssues(kindName: string, kind: JobKind, path: string, key: string, value: unknown): SpecIssue[] {
  const type = keyType(kind, key);
  if (!type) return [{ path, message: unknownKeyMessage(kindName, kind) }];
  const problem = valueProblem(kindName, kind, type, value);
  return problem ? [{ path, message: problem }] : [];
}

/** A grid or scale key: its first segment must be a key of the kind; a dotted one needs an object there. */
function dottedKeyIssues(
  kindName: string,
  kind: JobKind,
  where: string,
  dotted: string,
  values: unknown[],
  valuePath: (i: number) => string,
): SpecIssue[] {
  const [first, ...rest] = dotted.split('.');
  const type = keyType(kind, first!);
  if (!type) return [{ path: where, message: `"${first}": ${unknownKeyMessage(kindName, kind)}` }];
  if (rest.length) {
    return type === 'object' || type === 'any'
      ? []
      : [{ path: where, message: `"${first}" is a ${type} key of kind "${kindName}"; a dotted path needs an object key` }];
  }
  const issues: SpecIssue[] = [];
  values.forEach((value, i) => {
    const problem = valueProblem(kindName, kind, type, value);
    if (problem) issues.push({ path: valuePath(i), message: problem });
  });
  return issues;
}

const NEITHER_KIND_NOR_COMMAND: SpecIssue = {
  path: 'kind',
  message: 'give either kind (a built-in job kind) or command (your own program)',
};

/**
 * Exactly one of `kind` and `command`, the command's own rules, and the fields that only a
 * command sweep has.
 */
function commandIssues(spec: z.output<typeof sweepSpecSchema>, limits: CommandLimits): SpecIssue[] {
  const issues: SpecIssue[] = [];
  const onlyForCommand = ['workdir', 'workdirVersion', 'image', 'env'] as const;
  if (spec.command === undefined) {
    if (spec.kind === undefined) {
      issues.push(NEITHER_KIND_NOR_COMMAND);
    } else if (spec.kind === COMMAND_KIND) {
      issues.push({ path: 'command', message: `kind "${COMMAND_KIND}" runs your own program: give its command (a list of arguments)` });
    }
    for (const key of onlyForCommand) {
      if (spec[key] !== undefined) issues.push({ path: key, message: `only a sweep with a command takes ${key} (kind "${spec.kind}" is built in)` });
    }
    return issues;
  }
  if (spec.kind !== undefined && spec.kind !== COMMAND_KIND) {
    issues.push({ path: 'command', message: `give either kind or command, not both (kind "${spec.kind}" is a built-in job kind)` });
  }
  const { command } = spec;
  if (command.length === 0) {
    issues.push({ path: 'command', message: 'must not be empty: give the program and its arguments, e.g. [python, train.py, "{args}"]' });
  } else if (command[0] === '' || /^\s|\s$/.test(command[0]!)) {
    issues.push({ path: 'command[0]', message: 'the program must be a name or path without leading or trailing spaces' });
  }
  if (command.length > limits.LADDER_MAX_COMMAND_ARGS) {
    issues.push({ path: 'command', message: `${command.length} arguments; the limit is ${limits.LADDER_MAX_COMMAND_ARGS} (LADDER_MAX_COMMAND_ARGS)` });
  }
  for (const [index, message] of templateProblems(command)) issues.push({ path: `command[${index}]`, message });
  const env = Object.keys(spec.env ?? {});
  if (env.length > limits.LADDER_MAX_JOB_ENV) {
    issues.push({ path: 'env', message: `${env.length} variables; the limit is ${limits.LADDER_MAX_JOB_ENV} (LADDER_MAX_JOB_ENV)` });
  }
  for (const name of env) {
    // Case-insensitive: a job that reads ladder_ingest_url by mistake must not find one of ours.
    if (name.toUpperCase().startsWith(RESERVED_ENV_PREFIX)) {
      issues.push({ path: `env.${name}`, message: `names starting with ${RESERVED_ENV_PREFIX} belong to Ladder's job protocol and cannot be set` });
    }
  }
  return issues;
}

/**
 * Problems a spec has only for a given executor, for the submit path to check before anything is
 * stored: a command sweep on Kubernetes needs an image to run in.
 */
export function executorIssues(spec: SweepSpec, executor: string): SpecIssue[] {
  if (executor === 'kubernetes' && isCommandSpec(spec) && !spec.image) {
    return [{ path: 'image', message: 'a sweep with a command needs an image to run on Kubernetes (a digest-pinned repo@sha256:…)' }];
  }
  return [];
}

export function rungNames(spec: SweepSpec): string[] {
  if (!spec.scale) return ['default'];
  return spec.scale.rungs.map((r) => (typeof r === 'object' ? r.name : String(r)));
}
