/**
 * The sweep spec: what a user writes (YAML or JSON) to ask for a sweep.
 *
 * Validation is strict on purpose: a typo in a key would otherwise silently run the default,
 * and a sweep costs GPU hours. Every problem is reported with the path to the field.
 */
import { z } from 'zod';
import YAML from 'yaml';
import { canonicalJson } from './identity';

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
  /** Job kind, as known to `python -m ladder_jobs kinds`. */
  kind: z.string().regex(/^[a-z][a-z0-9_]*$/, 'must be a job kind name like ttt or synthetic'),
  /** Config shared by every trial; may name a preset. */
  base: configObject.default({}),
  /** Cartesian grid: every combination of the listed values becomes a variant. Keys may be dotted paths. */
  grid: z.record(z.string().min(1), z.array(configValue).min(1, 'must list at least one value')).optional(),
  /** Listed variants, crossed with the grid. */
  variants: z
    .array(z.strictObject({ name: z.string().min(1).max(80), config: configObject.default({}) }))
    .min(1)
    .optional(),
  /** Seeds: a count n (seeds 0..n-1) or an explicit list. */
  seeds: z
    .union([z.number().int().positive().max(1000), z.array(z.number().int().nonnegative()).min(1)])
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
});

export type SweepSpecInput = z.input<typeof sweepSpecSchema>;
export type SweepSpec = z.output<typeof sweepSpecSchema>;

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

/** Validates an already-parsed object. Throws SpecError listing every problem with its path. */
export function parseSweepSpec(input: unknown): SweepSpec {
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
    throw new SpecError(issues);
  }
  const spec = parsed.data;
  const extra: SpecIssue[] = [];
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
  if (extra.length) throw new SpecError(extra);
  return spec;
}

/** Parses YAML or JSON text (JSON is YAML) and validates it. */
export function parseSweepSpecText(text: string): SweepSpec {
  let doc: unknown;
  try {
    doc = YAML.parse(text);
  } catch (err) {
    throw new SpecError([{ path: '', message: `not valid YAML or JSON: ${(err as Error).message.split('\n')[0]}` }]);
  }
  if (doc === null || typeof doc !== 'object' || Array.isArray(doc)) {
    throw new SpecError([{ path: '', message: 'a sweep spec must be a mapping (an object)' }]);
  }
  return parseSweepSpec(doc);
}

export function rungNames(spec: SweepSpec): string[] {
  if (!spec.scale) return ['default'];
  return spec.scale.rungs.map((r) => (typeof r === 'object' ? r.name : String(r)));
}
