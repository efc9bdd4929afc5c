/**
 * Small descriptive statistics used by the analyses. Written out (rather than pulled from a
 * library) because each is a few lines with a textbook formula, and the edge cases matter for
 * this project: every function returns `null` instead of NaN when its value is undefined
 * (constant vector, too few points), so callers and JSON output never carry NaN.
 * Each is checked against scipy/numpy reference values in `stats.test.ts`.
 */
import { formatNumber } from '../format';
import type { Interval, Mode } from './types';

// Formatting has one home (core/format.ts); the analyses import it from here as they always have.
export { formatInterval, formatScale, formatShare } from '../format';

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

/** A number at `digits` significant digits for the analyses' reason texts (the shared rule, 3 digits by default). */
export function fmt(n: number, digits = 3): string {
  return formatNumber(n, digits);
}

/** ln Γ(x) for x > 0 (Lanczos, g = 7, n = 9; ~15 significant digits). */
function logGamma(x: number): number {
  const c = [0.99999999999980993, 676.5203681218851, -1259.1392167224028, 771.32342877765313, -176.61502916214059, 12.507343278686905, -0.13857109526572012, 9.9843695780195716e-6, 1.5056327351493116e-7];
  if (x < 0.5) return Math.log(Math.PI / Math.sin(Math.PI * x)) - logGamma(1 - x);
  const z = x - 1;
  let a = c[0]!;
  const t = z + 7.5;
  for (let i = 1; i < 9; i++) a += c[i]! / (z + i);
  return 0.5 * Math.log(2 * Math.PI) + (z + 0.5) * Math.log(t) - t + Math.log(a);
}

/** Continued fraction of the regularised incomplete beta (modified Lentz). */
function betaContinuedFraction(a: number, b: number, x: number): number {
  const tiny = 1e-300;
  let c = 1;
  let d = 1 - ((a + b) * x) / (a + 1);
  if (Math.abs(d) < tiny) d = tiny;
  d = 1 / d;
  let h = d;
  for (let m = 1; m <= 300; m++) {
    const m2 = 2 * m;
    let aa = (m * (b - m) * x) / ((a + m2 - 1) * (a + m2));
    d = 1 + aa * d;
    if (Math.abs(d) < tiny) d = tiny;
    c = 1 + aa / c;
    if (Math.abs(c) < tiny) c = tiny;
    d = 1 / d;
    h *= d * c;
    aa = (-(a + m) * (a + b + m) * x) / ((a + m2) * (a + m2 + 1));
    d = 1 + aa * d;
    if (Math.abs(d) < tiny) d = tiny;
    c = 1 + aa / c;
    if (Math.abs(c) < tiny) c = tiny;
    d = 1 / d;
    const del = d * c;
    h *= del;
    if (Math.abs(del - 1) < 1e-15) break;
  }
  return h;
}

/** Regularised incomplete beta I_x(a, b). */
function incompleteBeta(x: number, a: number, b: number): number {
  if (x <= 0) return 0;
  if (x >= 1) return 1;
  const front = Math.exp(logGamma(a + b) - logGamma(a) - logGamma(b) + a * Math.log(x) + b * Math.log(1 - x));
  return x < (a + 1) / (a + b + 2) ? (front * betaContinuedFraction(a, b, x)) / a : 1 - (front * betaContinuedFraction(b, a, 1 - x)) / b;
}

/** P(T ≤ t) for Student's t with `df` > 0 degrees of freedom. */
export function studentTCdf(t: number, df: number): number {
  const tail = 0.5 * incompleteBeta(df / (df + t * t), df / 2, 0.5);
  return t >= 0 ? 1 - tail : tail;
}

/**
 * The p-quantile of Student's t with `df` degrees of freedom (bisection on the CDF, to ~1e-10):
 * the multiplier of a prediction interval whose noise scale is itself estimated from `df` degrees
 * of freedom. Infinity for df ≤ 0 (nothing estimated, no finite interval).
 */
export function studentTQuantile(p: number, df: number): number {
  if (!(df > 0)) return Number.POSITIVE_INFINITY;
  if (p === 0.5) return 0;
  if (p < 0.5) return -studentTQuantile(1 - p, df);
  let lo = 0;
  let hi = 1;
  while (studentTCdf(hi, df) < p) hi *= 2;
  for (let i = 0; i < 200 && hi - lo > 1e-12 * hi; i++) {
    const mid = (lo + hi) / 2;
    if (studentTCdf(mid, df) < p) lo = mid;
    else hi = mid;
  }
  return (lo + hi) / 2;
}

/** The p-quantile of the standard normal (Acklam's rational approximation, relative error < 1.2e-9). */
export function normalQuantile(p: number): number {
  if (!(p > 0 && p < 1)) return p === 0 ? Number.NEGATIVE_INFINITY : p === 1 ? Number.POSITIVE_INFINITY : Number.NaN;
  const a = [-3.969683028665376e1, 2.209460984245205e2, -2.759285104469687e2, 1.38357751867269e2, -3.066479806614716e1, 2.506628277459239];
  const b = [-5.447609879822406e1, 1.615858368580409e2, -1.556989798598866e2, 6.680131188771972e1, -1.328068155288572e1];
  const c = [-7.784894002430293e-3, -3.223964580411365e-1, -2.400758277161838, -2.549732539343734, 4.374664141464968, 2.938163982698783];
  const d = [7.784695709041462e-3, 3.224671290700398e-1, 2.445134137142996, 3.754408661907416];
  const low = 0.02425;
  if (p < low) {
    const q = Math.sqrt(-2 * Math.log(p));
    return (((((c[0]! * q + c[1]!) * q + c[2]!) * q + c[3]!) * q + c[4]!) * q + c[5]!) / ((((d[0]! * q + d[1]!) * q + d[2]!) * q + d[3]!) * q + 1);
  }
  if (p > 1 - low) return -normalQuantile(1 - p);
  const q = p - 0.5;
  const r = q * q;
  return ((((((a[0]! * r + a[1]!) * r + a[2]!) * r + a[3]!) * r + a[4]!) * r + a[5]!) * q) / (((((b[0]! * r + b[1]!) * r + b[2]!) * r + b[3]!) * r + b[4]!) * r + 1);
}
