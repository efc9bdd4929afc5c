/**
 * Small descriptive statistics used by the analyses. Written out (rather than pulled from a
 * library) because each is a few lines with a textbook formula, and the edge cases matter for
 * this project: every function returns `null` instead of NaN when its value is undefined
 * (constant vector, too few points), so callers and JSON output never carry NaN.
 * Each is checked against scipy/numpy reference values in `stats.test.ts`.
 */
import type { Interval, Mode } from './types';

export function mean(xs: readonly number[]): number {
  let s = 0;
  for (const x of xs) s += x;
  return s / xs.length;
}

/** Sample variance (ddof = 1); 0 for fewer than 2 values. */
export function sampleVariance(xs: readonly number[]): number {
  if (xs.length < 2) return 0;
  const m = mean(xs);
  let s = 0;
  for (const x of xs) s += (x - m) ** 2;
  return s / (xs.length - 1);
}

/** Quantile with linear interpolation between order statistics (numpy's default, "type 7"). */
export function quantileSorted(sorted: readonly number[], p: number): number {
  const n = sorted.length;
  if (n === 0) return Number.NaN;
  const h = (n - 1) * Math.min(1, Math.max(0, p));
  const lo = Math.floor(h);
  const hi = Math.min(n - 1, lo + 1);
  return sorted[lo]! + (h - lo) * (sorted[hi]! - sorted[lo]!);
}

/**
 * Percentile interval at `level` (e.g. 0.9 → the 5th and 95th percentiles) of bootstrap
 * replicates; null when there are none. Non-finite replicates are ignored.
 */
export function percentileInterval(replicates: readonly number[], level: number): Interval | null {
  const xs = replicates.filter(Number.isFinite).sort((a, b) => a - b);
  if (xs.length === 0) return null;
  const tail = (1 - level) / 2;
  return [quantileSorted(xs, tail), quantileSorted(xs, 1 - tail)];
}

/** Pearson's r; null when n < 2 or either vector is constant. */
export function pearson(x: readonly number[], y: readonly number[]): number | null {
  const n = x.length;
  if (n < 2 || y.length !== n) return null;
  const mx = mean(x);
  const my = mean(y);
  let sxy = 0;
  let sxx = 0;
  let syy = 0;
  for (let i = 0; i < n; i++) {
    const dx = x[i]! - mx;
    const dy = y[i]! - my;
    sxy += dx * dy;
    sxx += dx * dx;
    syy += dy * dy;
  }
  // A vector whose spread is float noise around its mean counts as constant.
  const tiny = (v: number, m: number) => v <= 1e-24 * n * Math.max(1, m * m);
  if (tiny(sxx, mx) || tiny(syy, my)) return null;
  const r = sxy / Math.sqrt(sxx * syy);
  return Math.max(-1, Math.min(1, r));
}

/**
 * Coefficient of determination of the least-squares line y ≈ α + βx. For simple linear
 * regression with an intercept, R² = 1 − SS_res/SS_tot = r² exactly, and it is symmetric in x
 * and y; this is the "R²" Apollo reports between small- and large-model results.
 */
export function rSquared(x: readonly number[], y: readonly number[]): number | null {
  const r = pearson(x, y);
  return r === null ? null : r * r;
}

/** Ranks 1..n with ties given the average of the ranks they span (scipy's rankdata 'average'). */
export function averageRanks(x: readonly number[]): number[] {
  const order = x.map((v, i) => i).sort((a, b) => x[a]! - x[b]!);
  const ranks = new Array<number>(x.length);
  let i = 0;
  while (i < order.length) {
    let j = i;
    while (j + 1 < order.length && x[order[j + 1]!] === x[order[i]!]) j++;
    const r = (i + j) / 2 + 1;
    for (let k = i; k <= j; k++) ranks[order[k]!] = r;
    i = j + 1;
  }
  return ranks;
}

/** Spearman's ρ: Pearson's r of the average ranks (correct with ties). */
export function spearman(x: readonly number[], y: readonly number[]): number | null {
  if (x.length < 2 || y.length !== x.length) return null;
  return pearson(averageRanks(x), averageRanks(y));
}

/**
 * Kendall's τ-b, which corrects for ties in either vector:
 * (n_c − n_d) / √((n₀ − n₁)(n₀ − n₂)), n₀ = n(n−1)/2, n₁, n₂ the tied pairs in x and y.
 * O(n²), fine for the tens of variants a sweep has. Null when either vector is all ties.
 */
export function kendallTauB(x: readonly number[], y: readonly number[]): number | null {
  const n = x.length;
  if (n < 2 || y.length !== n) return null;
  let concordant = 0;
  let discordant = 0;
  let tiesX = 0;
  let tiesY = 0;
  for (let i = 0; i < n; i++) {
    for (let j = i + 1; j < n; j++) {
      const dx = Math.sign(x[i]! - x[j]!);
      const dy = Math.sign(y[i]! - y[j]!);
      if (dx === 0) tiesX++;
      if (dy === 0) tiesY++;
      if (dx !== 0 && dy !== 0) {
        if (dx === dy) concordant++;
        else discordant++;
      }
    }
  }
  const n0 = (n * (n - 1)) / 2;
  const denom = Math.sqrt((n0 - tiesX) * (n0 - tiesY));
  if (denom === 0) return null;
  return (concordant - discordant) / denom;
}

/**
 * Indexes of the k best entries by `mode`, ties broken by index (so the result is deterministic
 * and matches the promotion rule's tie-break by variant order).
 */
export function topKIndexes(values: readonly number[], k: number, mode: Mode): number[] {
  return values
    .map((v, i) => i)
    .sort((a, b) => (mode === 'min' ? values[a]! - values[b]! : values[b]! - values[a]!) || a - b)
    .slice(0, Math.max(0, Math.min(k, values.length)));
}

/**
 * Top-k agreement: |top-k(x) ∩ top-k(y)| / k, with k capped at the vector length. 1 means the
 * same k variants would be promoted from either rung, whatever their order within the top k.
 */
export function topKAgreement(x: readonly number[], y: readonly number[], k: number, mode: Mode): number | null {
  const kk = Math.min(k, x.length);
  if (kk < 1 || y.length !== x.length) return null;
  const a = new Set(topKIndexes(x, kk, mode));
  let shared = 0;
  for (const i of topKIndexes(y, kk, mode)) if (a.has(i)) shared++;
  return shared / kk;
}

/** Compact human form of a scale value: 1e8, 3e5, 350, 0.5. */
export function formatScale(n: number): string {
  if (!Number.isFinite(n)) return String(n);
  if (n !== 0 && (Math.abs(n) >= 1e4 || Math.abs(n) < 1e-3)) {
    const [m, e] = n.toExponential().split('e');
    return `${Number(Number(m).toPrecision(4))}e${Number(e)}`;
  }
  return String(Number(n.toPrecision(4)));
}

/** A number rounded to `digits` significant digits for reasons and logs. */
export function fmt(n: number, digits = 3): string {
  return String(Number(n.toPrecision(digits)));
}
