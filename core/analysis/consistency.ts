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
 * the seeds of every (variant, rung) cell independently and recomputes R². The PRNG is seeded, so
 * the same input gives the same interval. A pair where every cell has one seed has no seed noise
 * to resample: its interval is null (not a zero-width one that reads as exact) and
 * `intervalNote` says why.
 *
 * Critical rung: the smallest rung that is *consistent* with the largest, and so is every rung
 * between them (a rung with too few shared variants counts as not consistent: it is unknown).
 * Consistent means all of:
 *  - Pearson r > 0: R² alone loses the sign, and an exactly reversed ranking (r = −1) has R² = 1;
 *  - R² ≥ `threshold`;
 *  - the same winner (top-1): a researcher acts on the winner, and a high R² driven by one
 *    far-off variant can hide a changed winner (e.g. Spearman 0.4 with R² 0.97).
 * Each rung's comparison with the largest (`againstLargest`) also says whether the top-k agree.
 */
import { mixSeed, mulberry32, randomIndex } from './rng';
import { kendallTauB, mean, pearson, percentileInterval, rSquared, spearman, topKAgreement, topKIndexes, fmt, formatScale } from './stats';
import type { Interval, Mode, Observation } from './types';
import { formatAgainst } from '../format';

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

/** One rung compared with the largest rung, over the variants run at both. */
export interface RungComparison {
  scale: number;
  /** Variants present at both rungs; below 3 every statistic is null. */
  shared: number;
  r2: number | null;
  /** Bootstrap interval of R²; null with one seed per cell (see `intervalNote`) or without a bootstrap. */
  interval: Interval | null;
  intervalNote?: string;
  pearson: number | null;
  spearman: number | null;
  /** The best variant at this rung and at the largest, among the shared ones (by `mode`). */
  winner: string | null;
  largestWinner: string | null;
  sameWinner: boolean | null;
  /** |top-k here ∩ top-k at the largest| / k, k = `topK` capped at `shared`. */
  topKAgreement: number | null;
  consistent: boolean;
  /** Why the rung is not consistent ('' when it is). */
  why: string;
}

export interface CriticalRung {
  /** The scale value of the critical rung; null when none is consistent (see `reason`). */
  scale: number | null;
  r2: number | null;
  interval: Interval | null;
  /** Why there is no interval (e.g. one seed), when there is none. */
  intervalNote?: string;
  pearson: number | null;
  spearman: number | null;
  sameWinner: boolean | null;
  topKAgreement: number | null;
  /** k of `topKAgreement`. */
  topK: number;
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
  /** Every rung below the largest against the largest, ascending (empty with < 2 rungs). */
  againstLargest: RungComparison[];
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

/** Shown instead of an interval when the seeds cannot measure one. */
export const ONE_SEED_NOTE = 'interval needs ≥ 2 seeds';

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
      const iv = r2[i]![j] === null || !seedNoiseAt(cells, i, j) ? null : percentileInterval(reps[i]![j]!, level);
      r2Interval[i]![j] = iv;
      r2Interval[j]![i] = iv;
    }
  }

  const againstLargest = compareWithLargest({ rungs, variants, cells, means, r2, r2Interval, pearson: pear, spearman: spear, mode: opts.mode, threshold, topK, bootstrapped: B > 0 });
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
    againstLargest,
    criticalRung: findCriticalRung(rungs, againstLargest, threshold, topK),
  };
}

/** Whether any cell of the variants shared by rungs i and j has ≥ 2 seeds (something to resample). */
function seedNoiseAt(cells: number[][][], i: number, j: number): boolean {
  return cells.some((row) => row[i]!.length > 0 && row[j]!.length > 0 && (row[i]!.length > 1 || row[j]!.length > 1));
}

interface CompareInput {
  rungs: number[];
  variants: string[];
  cells: number[][][];
  means: (number | null)[][];
  r2: (number | null)[][];
  r2Interval: (Interval | null)[][];
  pearson: (number | null)[][];
  spearman: (number | null)[][];
  mode: Mode;
  threshold: number;
  topK: number;
  bootstrapped: boolean;
}

function compareWithLargest(c: CompareInput): RungComparison[] {
  const top = c.rungs.length - 1;
  const out: RungComparison[] = [];
  for (let i = 0; i < top; i++) {
    const names: string[] = [];
    const x: number[] = [];
    const y: number[] = [];
    c.means.forEach((row, v) => {
      if (row[i] !== null && row[i] !== undefined && row[top] !== null && row[top] !== undefined) {
        names.push(c.variants[v]!);
        x.push(row[i]!);
        y.push(row[top]!);
      }
    });
    const enough = names.length >= MIN_SHARED;
    const winner = enough ? names[topKIndexes(x, 1, c.mode)[0]!]! : null;
    const largestWinner = enough ? names[topKIndexes(y, 1, c.mode)[0]!]! : null;
    const r2 = c.r2[i]![top] ?? null;
    const r = c.pearson[i]![top] ?? null;
    const sameWinner = enough ? winner === largestWinner : null;
    let why = '';
    if (!enough) why = `${names.length} shared variant(s), consistency needs ${MIN_SHARED}`;
    else if (r2 === null || r === null) why = 'a rung where every variant scored the same has no ranking';
    else if (!(r > 0)) why = `R² ${fmt(r2, 2)} but the ranking is reversed (r ${fmt(r, 2)})`;
    else if (r2 < c.threshold) why = `R² ${formatAgainst(r2, c.threshold)} < ${c.threshold}`;
    else if (!sameWinner) why = `R² ${formatAgainst(r2, c.threshold)} clears ${c.threshold} but the winner changes (${winner} at ${formatScale(c.rungs[i]!)}, ${largestWinner} at ${formatScale(c.rungs[top]!)})`;
    const interval = c.r2Interval[i]![top] ?? null;
    out.push({
      scale: c.rungs[i]!,
      shared: names.length,
      r2,
      interval,
      ...(interval === null && r2 !== null && c.bootstrapped ? { intervalNote: ONE_SEED_NOTE } : {}),
      pearson: r,
      spearman: c.spearman[i]![top] ?? null,
      winner,
      largestWinner,
      sameWinner,
      topKAgreement: enough ? topKAgreement(x, y, c.topK, c.mode) : null,
      consistent: why === '',
      why,
    });
  }
  return out;
}

/** See the module comment: the smallest rung from which every rung up to the largest is consistent. */
export function findCriticalRung(rungs: readonly number[], againstLargest: readonly RungComparison[], threshold: number, topK: number): CriticalRung {
  const none = { scale: null, r2: null, interval: null, pearson: null, spearman: null, sameWinner: null, topKAgreement: null, topK };
  if (rungs.length < 2 || againstLargest.every((c) => c.shared < MIN_SHARED)) {
    return { ...none, reason: `needs at least 2 rungs with ${MIN_SHARED} shared variants` };
  }
  let critical: RungComparison | null = null;
  for (let i = againstLargest.length - 1; i >= 0 && againstLargest[i]!.consistent; i--) critical = againstLargest[i]!;
  if (critical === null) {
    const below = againstLargest[againstLargest.length - 1]!;
    return { ...none, reason: `no rung below the largest is consistent with it (${formatScale(below.scale)}: ${below.why})` };
  }
  const kk = Math.min(topK, critical.shared);
  const ivText = critical.interval ? ` [${fmt(critical.interval[0], 2)}, ${fmt(critical.interval[1], 2)}]` : critical.intervalNote ? ` (${critical.intervalNote})` : '';
  const topText = critical.topKAgreement === 1 ? `top-${kk} agree` : `top-${kk} share ${Math.round(critical.topKAgreement! * kk)} of ${kk}`;
  return {
    scale: critical.scale,
    r2: critical.r2,
    interval: critical.interval,
    ...(critical.intervalNote ? { intervalNote: critical.intervalNote } : {}),
    pearson: critical.pearson,
    spearman: critical.spearman,
    sameWinner: critical.sameWinner,
    topKAgreement: critical.topKAgreement,
    topK,
    reason: `R² ${formatAgainst(critical.r2!, threshold)}${ivText} against ${formatScale(rungs[rungs.length - 1]!)} clears ${threshold}, ρ ${fmt(critical.spearman ?? Number.NaN, 2)}, same winner, ${topText}`,
  };
}
