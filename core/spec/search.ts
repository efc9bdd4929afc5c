/**
 * The spec's `search` block: random search over distributions and asynchronous successive
 * halving (ASHA) on a resource key, as an alternative to, or crossed with, `grid`.
 *
 * Random samples are drawn at plan time from a hash of (search seed, key, draw number), never
 * from a generator's running state: the same spec always yields the same points, and a sample's
 * value for one key does not move when another key or more samples are added, so trials already
 * run keep their identities and are reused. Drawn floats are rounded to 6 significant digits,
 * which makes a sample's config (and so its identity) independent of the last bit of a libm.
 *
 * ASHA is not a second promotion engine: it becomes the spec's scale axis (one rung per resource
 * level, minResource·eta^k up to maxResource) and its promotion rule (the best 1/eta of a rung).
 * The existing rung machinery skips what is not promoted once a rung is complete; the sweep
 * workflow additionally promotes early, as results arrive (workflows/index.ts).
 *
 * This module imports only types from spec.ts (spec.ts builds its schema from this one).
 */
import { createHash } from 'node:crypto';
import { z } from 'zod';
import { canonicalJson } from './identity';
import type { SpecIssue, SweepSpec } from './spec';

/** Samples drawn per attempt budget: a draw that repeats an earlier point is redrawn, this many times per sample at most. */
export const MAX_DRAWS_PER_SAMPLE = 20;
/** Rungs an ASHA ladder may have (minResource·eta^k ≤ maxResource). */
export const MAX_ASHA_RUNGS = 20;
/** Values one plan may draw (samples × random keys): bounds the hashing a spec can ask for. */
export const MAX_SAMPLED_VALUES = 200_000;
/** Significant digits a drawn float keeps. */
export const SAMPLE_DIGITS = 6;

const finite = z.number().refine(Number.isFinite, 'must be a finite number');

const DISTRIBUTION_TYPES = ['uniform', 'loguniform', 'int', 'choice'] as const;

/** One key's distribution. `int` draws integers in [low, high], both included. */
export function distributionSchema(value: z.ZodType<unknown>) {
  return z.discriminatedUnion(
    'type',
    [
      z.strictObject({ type: z.literal('uniform'), low: finite, high: finite }),
      z.strictObject({ type: z.literal('loguniform'), low: finite, high: finite }),
      z.strictObject({ type: z.literal('int'), low: finite, high: finite }),
      z.strictObject({ type: z.literal('choice'), values: z.array(value) }),
    ],
    { error: () => `type must be one of ${DISTRIBUTION_TYPES.join(', ')}` },
  );
}

const ashaSchema = z.strictObject({
  /** The config key that grows from rung to rung (e.g. steps); a dotted path may be given. */
  resource: z.string().min(1),
  minResource: z.number().positive().refine(Number.isFinite, 'must be a finite number'),
  maxResource: z.number().positive().refine(Number.isFinite, 'must be a finite number'),
  /** Each rung has eta times the resource of the one below and keeps its best 1/eta. */
  eta: z.number().int().min(2).max(100).default(3),
  /** The final-result metric that ranks trials on a rung. */
  metric: z.string().min(1),
  mode: z.enum(['min', 'max']).default('min'),
});

/**
 * The `search` block's schema, built with spec.ts's config-value schema (choice values are config
 * values) so the two cannot drift apart.
 */
export function searchBlockSchema(value: z.ZodType<unknown>, maxSeed: number) {
  return z.strictObject({
    /** Seed of the sampler (not of the trials: those are `seeds`). */
    seed: z.number().int().nonnegative().max(maxSeed).default(0),
    /** Random points to draw; each is crossed with the grid and the listed variants. */
    samples: z.number().int().positive().max(1_000_000).optional(),
    /** Config key (dotted paths allowed) → distribution. */
    random: z.record(z.string().min(1), distributionSchema(value)).optional(),
    asha: ashaSchema.optional(),
  });
}

export type SearchBlock = z.output<ReturnType<typeof searchBlockSchema>>;
export type Distribution = NonNullable<SearchBlock['random']>[string];
export type AshaBlock = NonNullable<SearchBlock['asha']>;

/** The rungs of an ASHA ladder: minResource·eta^k below maxResource, then maxResource. */
export function ashaRungs(asha: AshaBlock): number[] {
  const rungs: number[] = [];
  for (let r = asha.minResource; r < asha.maxResource && rungs.length <= MAX_ASHA_RUNGS; r *= asha.eta) {
    rungs.push(Number(r.toPrecision(12)));
  }
  rungs.push(asha.maxResource);
  return rungs;
}

/** What an ASHA block makes of the spec's scale axis and promotion rule. */
export function ashaLadder(asha: AshaBlock): { scale: { key: string; rungs: number[] }; promotion: { metric: string; mode: 'min' | 'max'; fraction: number } } {
  return {
    scale: { key: asha.resource, rungs: ashaRungs(asha) },
    promotion: { metric: asha.metric, mode: asha.mode, fraction: 1 / asha.eta },
  };
}

/** Whether two dotted config paths write into the same place (equal, or one inside the other). */
function overlaps(a: string, b: string): boolean {
  return a === b || a.startsWith(`${b}.`) || b.startsWith(`${a}.`);
}

/**
 * Problems with a parsed spec's `search` block, each with its path. Checks only the block and how
 * it meets the rest of the spec; the job kind's key types are checked in spec.ts with the others.
 */
export function searchIssues(spec: Pick<SweepSpec, 'search' | 'grid' | 'scale' | 'promotion'>): SpecIssue[] {
  const search = spec.search;
  if (!search) return [];
  const issues: SpecIssue[] = [];
  const { random, asha } = search;
  if (!random && !asha) issues.push({ path: 'search', message: 'give random (with samples), asha, or both' });
  if (random && search.samples === undefined) issues.push({ path: 'search.samples', message: 'random search needs samples: how many points to draw' });
  if (!random && search.samples !== undefined) issues.push({ path: 'search.samples', message: 'samples needs random: the distributions to draw from' });
  const gridKeys = Object.keys(spec.grid ?? {});
  if (random) {
    const keys = Object.keys(random);
    if (keys.length === 0) issues.push({ path: 'search.random', message: 'must name at least one key' });
    for (const key of keys) {
      const where = `search.random.${key}`;
      const d = random[key]!;
      issues.push(...distributionIssues(where, d));
      const grid = gridKeys.find((g) => overlaps(g, key));
      if (grid !== undefined) issues.push({ path: where, message: `"${key}" is also a grid axis (grid.${grid}): give each key one source` });
      const other = keys.find((k) => k !== key && overlaps(k, key));
      if (other !== undefined && key.length > other.length) issues.push({ path: where, message: `"${key}" writes inside search.random.${other}` });
    }
    if (search.samples !== undefined && search.samples * keys.length > MAX_SAMPLED_VALUES) {
      issues.push({ path: 'search.samples', message: `${search.samples} samples × ${keys.length} keys is more than ${MAX_SAMPLED_VALUES} drawn values` });
    } else if (search.samples !== undefined && keys.length > 0 && issues.length === 0) {
      const size = discreteSize(Object.values(random));
      if (size !== null && size < search.samples) {
        issues.push({ path: 'search.samples', message: `${search.samples} samples, but the space has only ${size} distinct points: lower samples or use a grid` });
      }
    }
  }
  if (asha) {
    if (!(asha.minResource < asha.maxResource)) {
      issues.push({ path: 'search.asha.maxResource', message: `must be greater than minResource (${asha.minResource})` });
    } else if (Math.log(asha.maxResource / asha.minResource) / Math.log(asha.eta) >= MAX_ASHA_RUNGS) {
      issues.push({ path: 'search.asha', message: `minResource·eta^k up to maxResource makes more than ${MAX_ASHA_RUNGS} rungs: raise eta or minResource` });
    }
    const grid = gridKeys.find((g) => overlaps(g, asha.resource));
    if (grid !== undefined) issues.push({ path: 'search.asha.resource', message: `"${asha.resource}" is also a grid axis (grid.${grid}); ASHA sets it per rung` });
    const sampled = Object.keys(random ?? {}).find((k) => overlaps(k, asha.resource));
    if (sampled !== undefined) issues.push({ path: 'search.asha.resource', message: `"${asha.resource}" is also sampled (search.random.${sampled}); ASHA sets it per rung` });
    if (issues.length === 0) {
      // A parsed spec carries the ladder ASHA made, so parsing it again must accept exactly that.
      const ladder = ashaLadder(asha);
      if (spec.scale && canonicalJson(spec.scale) !== canonicalJson(ladder.scale)) {
        issues.push({ path: 'scale', message: 'search.asha makes the resource ladder the scale axis; a sweep has one scale axis (remove scale)' });
      }
      if (spec.promotion && canonicalJson(spec.promotion) !== canonicalJson(ladder.promotion)) {
        issues.push({ path: 'promotion', message: 'search.asha promotes the best 1/eta of each rung itself (remove promotion)' });
      }
    }
  }
  return issues;
}

function distributionIssues(where: string, d: Distribution): SpecIssue[] {
  if (d.type === 'choice') {
    if (d.values.length === 0) return [{ path: `${where}.values`, message: 'must list at least one value' }];
    const seen = new Set<string>();
    const issues: SpecIssue[] = [];
    d.values.forEach((v, i) => {
      const id = canonicalJson(v);
      if (seen.has(id)) issues.push({ path: `${where}.values[${i}]`, message: `duplicate value ${id}` });
      seen.add(id);
    });
    return issues;
  }
  const issues: SpecIssue[] = [];
  if (d.type === 'int') {
    if (!Number.isSafeInteger(d.low)) issues.push({ path: `${where}.low`, message: `must be an integer for an int distribution (got ${d.low})` });
    if (!Number.isSafeInteger(d.high)) issues.push({ path: `${where}.high`, message: `must be an integer for an int distribution (got ${d.high})` });
  }
  if (d.type === 'loguniform' && !(d.low > 0)) issues.push({ path: `${where}.low`, message: `must be > 0 for a loguniform distribution (got ${d.low})` });
  if (!(d.low < d.high)) issues.push({ path: where, message: `low (${d.low}) must be below high (${d.high})` });
  return issues;
}

/** Distinct points of a space made only of int and choice keys; null when any key is continuous. */
function discreteSize(dists: Distribution[]): number | null {
  let n = 1;
  for (const d of dists) {
    if (d.type === 'choice') n *= d.values.length;
    else if (d.type === 'int') n *= d.high - d.low + 1;
    else return null;
  }
  return n;
}

/** A uniform number in [0, 1) from (seed, key, draw): 53 bits of a SHA-256. */
function unitDraw(seed: number, key: string, draw: number): number {
  const h = createHash('sha256').update(`ladder-search/v1\0${seed}\0${key}\0${draw}`).digest();
  return (h.readUInt32BE(0) * 2 ** 21 + (h.readUInt32BE(4) >>> 11)) / 2 ** 53;
}

const round = (x: number) => Number(x.toPrecision(SAMPLE_DIGITS));

function drawValue(d: Distribution, u: number): unknown {
  switch (d.type) {
    case 'uniform':
      return Math.min(d.high, Math.max(d.low, round(d.low + u * (d.high - d.low))));
    case 'loguniform': {
      const x = Math.exp(Math.log(d.low) + u * (Math.log(d.high) - Math.log(d.low)));
      return Math.min(d.high, Math.max(d.low, round(x)));
    }
    case 'int':
      return Math.min(d.high, d.low + Math.floor(u * (d.high - d.low + 1)));
    case 'choice':
      return d.values[Math.min(d.values.length - 1, Math.floor(u * d.values.length))];
  }
}

export class SampleError extends Error {}

/**
 * The random points of a search block, in order: each an ordered list of (key, value), keys
 * sorted. A draw that repeats an earlier point is replaced by the next draw, so every point is
 * distinct; throws SampleError when too many draws repeat (a space with few distinct points).
 */
export function samplePoints(search: SearchBlock): Array<Array<[string, unknown]>> {
  if (!search.random || !search.samples) return [];
  const keys = Object.keys(search.random).sort();
  const points: Array<Array<[string, unknown]>> = [];
  const seen = new Set<string>();
  const budget = search.samples * MAX_DRAWS_PER_SAMPLE;
  for (let draw = 0; points.length < search.samples; draw++) {
    if (draw >= budget) {
      throw new SampleError(`only ${points.length} distinct points in ${budget} draws; lower samples or widen the distributions`);
    }
    const point = keys.map((k): [string, unknown] => [k, drawValue(search.random![k]!, unitDraw(search.seed, k, draw))]);
    const id = canonicalJson(point);
    if (seen.has(id)) continue;
    seen.add(id);
    points.push(point);
  }
  return points;
}
