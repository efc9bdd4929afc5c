/**
 * Scaling consistency between rungs (Apollo, "Scaling Consistency"): do the design decisions
 * that win on small runs still win on large ones?
 *
 * For each rung (distinct scale value) we take the vector of per-variant results, each the mean
 * over seeds, and compare every pair of rungs on the variants present at both:
 *  - R² of the least-squares line between the two vectors (Apollo's measure; = Pearson r² for
 *    simple linear regression with an intercept, so it is symmetric and invariant to any affine
 *    map of either rung — a metric that shifts or rescales with scale still scores 1);
 *  - Pearson's r (keeps the sign R² loses: an anti-correlated rung has R² near 1 but r near −1);
 *  - Spearman's ρ (average ranks for ties) and Kendall's τ-b: rank agreement, robust to outliers;
 *  - top-k agreement: the share of the k best variants (by `mode`) that both rungs share, i.e.
 *    whether a top-k promotion from one rung picks what the other would.
 * A pair with fewer than 3 shared variants gets null everywhere: two points always fit a line.
 *
 * Uncertainty: a percentile bootstrap over seeds. Each replicate resamples, with replacement,
 * the seeds of every (variant, rung) cell independently (a cell with one seed stays fixed, so
 * single-seed sweeps get zero-width intervals: there is no seed noise to measure) and recomputes
 * R². The PRNG is seeded, so the same input gives the same interval.
 *
 * Critical rung: the smallest rung whose R² against the largest rung clears `threshold`, and so
 * does every rung between it and the largest (a rung with too few shared variants counts as not
 * clearing: consistency there is unknown). Above it, small-run findings transfer.
 */
import { mixSeed, mulberry32, randomIndex } from './rng';
import { kendallTauB, mean, pearson, percentileInterval, rSquared, spearman, topKAgreement, fmt, formatScale } from './stats';
import type { Interval, Mode, Observation } from './types';

export interface ConsistencyOptions {
  mode: Mode;
  /** R² the critical rung must clear against the largest rung. Default 0.9. */
  threshold?: number;
  /** k of the top-k agreement. Default 3. */
  topK?: number;
  /** Bootstrap replicates for the R² intervals (0 disables: intervals are null). Default 1000. */
  bootstrap?: number;
  /** PRNG seed of the bootstrap. Default 0. */
  seed?: number;
  /** Confidence level of the percentile intervals. Default 0.9. */
  level?: number;
}

export interface CriticalRung {
  /** The scale value of the critical rung; null when none clears (see `reason`). */
  scale: number | null;
  r2: number | null;
  interval: Interval | null;
  reason: string;
}

/** Matrices are indexed [i][j] like `rungs`; they are symmetric, null where undefined. */
export interface ConsistencyResult {
  rungs: number[];
  variants: string[];
  /** Per-variant mean over seeds at each rung, [variant][rung], null where not run. */
  means: (number | null)[][];
  r2: (number | null)[][];
  pearson: (number | null)[][];
  spearman: (number | null)[][];
  kendall: (number | null)[][];
  topKAgreement: (number | null)[][];
  r2Interval: (Interval | null)[][];
  criticalRung: CriticalRung;
}

/** Observations grouped as cells[variant][rung] = finite values over seeds. */
export interface Grid {
  rungs: number[];
  variants: string[];
  cells: number[][][];
}

/**
 * Groups observations by variant and rung; non-finite values are dropped (a diverged or
 * missing metric is not a number we can average). Variants are sorted by name and rungs
 * ascending, so the output does not depend on input order.
 */
export function toGrid(obs: readonly Observation[]): Grid {
  const finite = obs.filter((o) => Number.isFinite(o.value) && Number.isFinite(o.scale));
  const rungs = [...new Set(finite.map((o) => o.scale))].sort((a, b) => a - b);
  const variants = [...new Set(finite.map((o) => o.variant))].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  const vi = new Map(variants.map((v, i) => [v, i]));
  const ri = new Map(rungs.map((r, i) => [r, i]));
  const cells = variants.map(() => rungs.map(() => [] as number[]));
  // Sorting by seed fixes the order the bootstrap resamples from.
  for (const o of [...finite].sort((a, b) => a.seed - b.seed)) cells[vi.get(o.variant)!]![ri.get(o.scale)!]!.push(o.value);
  return { rungs, variants, cells };
}

function cellMeans(cells: number[][][]): (number | null)[][] {
  return cells.map((row) => row.map((vals) => (vals.length ? mean(vals) : null)));
}

/** The two vectors of means over the variants present at both rungs i and j. */
function sharedVectors(means: (number | null)[][], i: number, j: number): [number[], number[]] {
  const x: number[] = [];
  const y: number[] = [];
  for (const row of means) {
    const a = row[i];
    const b = row[j];
    if (a !== null && a !== undefined && b !== null && b !== undefined) {
      x.push(a);
      y.push(b);
    }
  }
  return [x, y];
}

const MIN_SHARED = 3;

function pairMatrix(
  means: (number | null)[][],
  nRungs: number,
  f: (x: number[], y: number[]) => number | null,
): (number | null)[][] {
  const m: (number | null)[][] = Array.from({ length: nRungs }, () => new Array<number | null>(nRungs).fill(null));
  for (let i = 0; i < nRungs; i++) {
    for (let j = i; j < nRungs; j++) {
      const [x, y] = sharedVectors(means, i, j);
      const v = x.length >= MIN_SHARED ? f(x, y) : null;
      m[i]![j] = v;
      m[j]![i] = v;
    }
  }
  return m;
}

export function analyzeConsistency(obs: readonly Observation[], opts: ConsistencyOptions): ConsistencyResult {
  const threshold = opts.threshold ?? 0.9;
  const topK = opts.topK ?? 3;
  const B = opts.bootstrap ?? 1000;
  const level = opts.level ?? 0.9;
  const { rungs, variants, cells } = toGrid(obs);
  const n = rungs.length;
  const means = cellMeans(cells);

  const r2 = pairMatrix(means, n, rSquared);
  const pear = pairMatrix(means, n, pearson);
  const spear = pairMatrix(means, n, spearman);
  const kend = pairMatrix(means, n, kendallTauB);
  const topk = pairMatrix(means, n, (x, y) => topKAgreement(x, y, topK, opts.mode));

  // Bootstrap over seeds: one resampled means matrix per replicate, then every pair's R².
  const reps: number[][][] = Array.from({ length: n }, () => Array.from({ length: n }, () => [] as number[]));
  const rand = mulberry32(mixSeed(opts.seed ?? 0, 0xc0));
  for (let b = 0; b < B; b++) {
    const bm = cells.map((row) =>
      row.map((vals) => {
        if (vals.length === 0) return null;
        let s = 0;
        for (let k = 0; k < vals.length; k++) s += vals[randomIndex(rand, vals.length)]!;
        return s / vals.length;
      }),
    );
    for (let i = 0; i < n; i++) {
      for (let j = i; j < n; j++) {
        if (r2[i]![j] === null) continue;
        const [x, y] = sharedVectors(bm, i, j);
        const v = rSquared(x, y);
        if (v !== null) reps[i]![j]!.push(v);
      }
    }
  }
  const r2Interval: (Interval | null)[][] = Array.from({ length: n }, () => new Array<Interval | null>(n).fill(null));
  for (let i = 0; i < n; i++) {
    for (let j = i; j < n; j++) {
      const iv = r2[i]![j] === null ? null : percentileInterval(reps[i]![j]!, level);
      r2Interval[i]![j] = iv;
      r2Interval[j]![i] = iv;
    }
  }

  return {
    rungs,
    variants,
    means,
    r2,
    pearson: pear,
    spearman: spear,
    kendall: kend,
    topKAgreement: topk,
    r2Interval,
    criticalRung: findCriticalRung(rungs, r2, r2Interval, threshold),
  };
}

/** See the module comment: smallest rung from which every rung up to the largest clears. */
export function findCriticalRung(
  rungs: readonly number[],
  r2: readonly (readonly (number | null)[])[],
  r2Interval: readonly (readonly (Interval | null)[])[],
  threshold: number,
): CriticalRung {
  const top = rungs.length - 1;
  const below = Array.from({ length: Math.max(0, top) }, (_, i) => r2[i]?.[top] ?? null);
  if (top < 1 || below.every((v) => v === null)) {
    return { scale: null, r2: null, interval: null, reason: `needs at least 2 rungs with ${MIN_SHARED} shared variants` };
  }
  let critical: number | null = null;
  for (let i = top - 1; i >= 0; i--) {
    const v = below[i];
    if (v === null || v === undefined || v < threshold) break;
    critical = i;
  }
  const largest = formatScale(rungs[top]!);
  if (critical === null) {
    return { scale: null, r2: null, interval: null, reason: `no rung below the largest clears ${threshold}` };
  }
  const v = below[critical]!;
  const iv = r2Interval[critical]?.[top] ?? null;
  const ivText = iv ? ` [${fmt(iv[0], 2)}, ${fmt(iv[1], 2)}]` : '';
  return {
    scale: rungs[critical]!,
    r2: v,
    interval: iv,
    reason: `R² ${fmt(v, 2)}${ivText} against ${largest} clears ${threshold}`,
  };
}
