/**
 * Extrapolation of one variant's metric to a larger scale, with an honest interval and a
 * backtest that shows how good such extrapolations have been on this very sweep.
 *
 * - Points: the mean over seeds at each rung. Weights: 1 / variance of that mean (s²/n) when
 *   every rung has ≥ 2 seeds (floored at 1e-6 of the largest variance so a rung whose seeds
 *   happen to agree exactly cannot take all the weight), else 1 for every rung (mixing
 *   estimated and unit weights would compare apples with pears).
 * - Fit: `fitScalingLaw` (power law with offset, falling back to a pure power law).
 * - Interval: a *prediction* interval for what the sweep would observe at the target — the mean
 *   over `predictSeeds` seeds (default: as many as the largest rung ran) — not only for the
 *   fitted curve. Two parts:
 *   1. curve uncertainty, from a bootstrap of the fit. With ≥ 2 seeds at some rung, each
 *      replicate redraws the seed noise of every rung and refits (the model choice is redone per
 *      replicate, so model uncertainty is in it; refused refits are dropped and counted). With
 *      one seed per rung, a residual bootstrap: fitted values plus resampled residuals, inflated
 *      by √(n/(n−p)) for the p fitted parameters;
 *   2. the seed noise of the predicted mean: σ²/m, σ² the largest rung's (shrunk) seed variance,
 *      or the residual variance with one seed per rung.
 *   Each side's half-width is t·√(max(v, (d/z)²) + σ²/m), v the bootstrap variance and d that
 *   side's percentile distance from the prediction (which keeps the skew of an extrapolated power
 *   law); Student's t on the degrees of freedom of σ² (instead of z) pays for estimating the noise
 *   from a few seeds. The percentile bootstrap of the curve alone covered 78% of observed means
 *   for a nominal 90% (README); this covers 89–90%. With exactly p rungs and one seed the fit interpolates and
 *   there is no noise estimate: the interval is zero-width (`intervalMethod` says so).
 * - Backtest: leave the largest rung out, extrapolate to it from the rest (same method), and
 *   compare with what was measured. Null (with `backtestSkipped`) when the remaining rungs
 *   cannot be fitted.
 */
import { fitScalingLaw, predictScalingLaw, type ScalingModel, type ScalingParams, type ScalingPoint } from './scaling-law';
import { hashString, mixSeed, mulberry32, randomIndex } from './rng';
import { mean, normalQuantile, percentileInterval, sampleVariance, studentTQuantile } from './stats';
import type { Interval, Observation } from './types';

export { fitScalingLaw, predictScalingLaw } from './scaling-law';
export type { ScalingFit, ScalingModel, ScalingParams, ScalingPoint, FitOptions } from './scaling-law';

export interface ExtrapolationOptions {
  /** Bootstrap replicates. Default 500. */
  bootstrap?: number;
  /** Confidence level of the interval. Default 0.9. */
  level?: number;
  /** PRNG seed. Default 0. */
  seed?: number;
  /** Run the leave-largest-out backtest (doubles the work). Default true. */
  backtest?: boolean;
  /**
   * The interval predicts the mean over this many seeds at the target. Default: the number of
   * seeds at the largest rung (what the sweep would run there).
   */
  predictSeeds?: number;
}

export interface Backtest {
  heldOutScale: number;
  predicted: number;
  actual: number;
  /** predicted − actual, in the metric's units. */
  error: number;
  interval: Interval;
  withinInterval: boolean;
}

export type IntervalMethod = 'seed-bootstrap' | 'residual-bootstrap' | 'none (exact fit, one seed)';

export type VariantExtrapolation =
  | {
      ok: true;
      model: ScalingModel;
      params: ScalingParams;
      rmse: number;
      target: number;
      prediction: number;
      /** Prediction interval for the mean over `predictSeeds` seeds at `target` (module comment). */
      interval: Interval;
      intervalMethod: IntervalMethod;
      predictSeeds: number;
      /** Seed sd assumed at the target (0 when unknown: exact fit). */
      noiseSd: number;
      /** Bootstrap replicates whose refit succeeded (of `bootstrap`). */
      bootstrapFits: number;
      backtest: Backtest | null;
      backtestSkipped?: string;
    }
  | { ok: false; reason: string };

interface Rung {
  scale: number;
  values: number[];
}

export function rungsOf(obs: readonly Observation[]): Rung[] {
  const by = new Map<number, number[]>();
  for (const o of [...obs].sort((a, b) => a.seed - b.seed)) {
    if (!Number.isFinite(o.value)) continue;
    const list = by.get(o.scale) ?? [];
    list.push(o.value);
    by.set(o.scale, list);
  }
  return [...by.entries()].map(([scale, values]) => ({ scale, values })).sort((a, b) => a.scale - b.scale);
}

/** Rung means with the weights described in the module comment. */
export function rungPoints(rungs: readonly Rung[]): ScalingPoint[] {
  const allSeeded = rungs.every((r) => r.values.length >= 2);
  const v = seedVariances(rungs);
  return rungs.map((r, i) => ({
    scale: r.scale,
    value: mean(r.values),
    weight: allSeeded && v[i]! > 0 ? r.values.length / v[i]! : 1,
  }));
}

/**
 * Per-rung seed variance, shrunk toward the pooled one with PRIOR_DF pseudo-degrees of freedom
 * (0 where nothing can be estimated). Used both for the weights and the bootstrap's noise.
 */
export function seedVariances(rungs: readonly Rung[]): number[] {
  const df = rungs.map((r) => Math.max(0, r.values.length - 1));
  const ss = rungs.map((r) => sampleVariance(r.values) * Math.max(0, r.values.length - 1));
  const totalDf = df.reduce((s, x) => s + x, 0);
  const pooled = totalDf > 0 ? ss.reduce((s, x) => s + x, 0) / totalDf : 0;
  return rungs.map((_, i) => (ss[i]! + PRIOR_DF * pooled) / (df[i]! + PRIOR_DF));
}

/**
 * Pseudo-degrees of freedom of the pooled seed variance in the per-rung weights. Inverse-variance
 * weights estimated from 3 seeds (2 df) are so noisy that they hurt the fit (measured: the 90%
 * interval covered 77% instead of 89% with unit weights); shrinking toward the pooled variance
 * keeps a real per-rung difference in noise while damping the luck of a few seeds.
 */
const PRIOR_DF = 4;

function extrapolateRungs(rungs: Rung[], target: number, opts: ExtrapolationOptions, seed: number, withBacktest: boolean): VariantExtrapolation {
  if (!(Number.isFinite(target) && target > 0)) return { ok: false, reason: `target scale ${target} is not a positive number` };
  if (rungs.length === 0) return { ok: false, reason: 'no finite observations' };
  const B = opts.bootstrap ?? 500;
  const level = opts.level ?? 0.9;
  const points = rungPoints(rungs);
  const fit = fitScalingLaw(points);
  if (!fit.ok) return fit;
  const prediction = predictScalingLaw(fit.params, target);

  const rand = mulberry32(seed);
  const reps: number[] = [];
  const seeded = rungs.some((r) => r.values.length >= 2) && rungs.some((r) => r.values.some((x) => x !== r.values[0]));
  const nParams = fit.model === 'power-offset' ? 3 : 2;
  let method: IntervalMethod = seeded ? 'seed-bootstrap' : 'residual-bootstrap';
  if (!seeded && points.length <= nParams) method = 'none (exact fit, one seed)';
  const fitted = points.map((p) => predictScalingLaw(fit.params, p.scale));
  const inflate = points.length > nParams ? Math.sqrt(points.length / (points.length - nParams)) : 0;
  const residuals = points.map((p, i) => (p.value - fitted[i]!) * inflate);
  // Seed noise: standardised deviations from the rung means, pooled over rungs (so the interval's
  // width rests on every seed, not on the 2 degrees of freedom of one rung), each rescaled by
  // √(n/(n−1)) so their variance is unbiased; a replicate rung mean is its mean plus its shrunk
  // seed sd times the mean of n drawn deviations.
  const noise = seedVariances(rungs);
  const pool: number[] = [];
  rungs.forEach((r, i) => {
    const n = r.values.length;
    if (n < 2 || !(noise[i]! > 0)) return;
    for (const x of r.values) pool.push(((x - points[i]!.value) / Math.sqrt(noise[i]!)) * Math.sqrt(n / (n - 1)));
  });
  if (method !== 'none (exact fit, one seed)') {
    for (let b = 0; b < B; b++) {
      let values: number[];
      if (seeded) {
        values = rungs.map((r, i) => {
          const n = r.values.length;
          let s = 0;
          for (let k = 0; k < n; k++) s += pool[randomIndex(rand, pool.length)]!;
          return points[i]!.value + Math.sqrt(noise[i]!) * (s / n);
        });
      } else {
        values = fitted.map((f) => f + residuals[randomIndex(rand, residuals.length)]!);
      }
      const refit = fitScalingLaw(points.map((p, i) => ({ ...p, value: values[i]! })));
      if (refit.ok) reps.push(predictScalingLaw(refit.params, target));
    }
  }
  const predictSeeds = Math.max(1, Math.round(opts.predictSeeds ?? rungs[rungs.length - 1]!.values.length));
  let noiseVar = 0;
  let df = 0;
  if (seeded) {
    noiseVar = noise[noise.length - 1]!;
    df = rungs.reduce((s, r) => s + Math.max(0, r.values.length - 1), 0);
  } else if (method === 'residual-bootstrap') {
    df = points.length - nParams;
    noiseVar = points.reduce((s, p, i) => s + (p.value - fitted[i]!) ** 2, 0) / df;
  }
  const interval = predictionInterval(prediction, reps, noiseVar / predictSeeds, df, level);
  let backtest: Backtest | null = null;
  let backtestSkipped: string | undefined;
  if (withBacktest) {
    const held = rungs[rungs.length - 1]!;
    const rest = rungs.slice(0, -1);
    const bt = rest.length >= 2 ? extrapolateRungs(rest, held.scale, opts, mixSeed(seed, 0xb7), false) : null;
    if (bt === null) backtestSkipped = `too few rungs to hold one out (${rungs.length})`;
    else if (!bt.ok) backtestSkipped = `fit without the largest rung refused: ${bt.reason}`;
    else {
      const actual = mean(held.values);
      backtest = {
        heldOutScale: held.scale,
        predicted: bt.prediction,
        actual,
        error: bt.prediction - actual,
        interval: bt.interval,
        withinInterval: actual >= bt.interval[0] && actual <= bt.interval[1],
      };
    }
  }
  return {
    ok: true,
    model: fit.model,
    params: fit.params,
    rmse: fit.rmse,
    target,
    prediction,
    interval,
    intervalMethod: method,
    predictSeeds,
    noiseSd: Math.sqrt(noiseVar),
    bootstrapFits: reps.length,
    backtest,
    ...(backtestSkipped ? { backtestSkipped } : {}),
  };
}

/**
 * Combines the bootstrap of the curve with the noise of the predicted mean (module comment).
 * Zero-width when nothing was estimated (no replicates and no noise: the exact-fit case).
 */
export function predictionInterval(prediction: number, curveReplicates: readonly number[], meanNoiseVar: number, df: number, level: number): Interval {
  const curve = percentileInterval(curveReplicates, level) ?? [prediction, prediction];
  if (!(df > 0) || !(meanNoiseVar >= 0)) return curve;
  const z = normalQuantile((1 + level) / 2);
  const t = studentTQuantile((1 + level) / 2, df);
  // The bootstrap variance floors each side: with few replicates or a skewed fit one percentile
  // distance can be tiny, and intervals from it alone covered 86% instead of 90%.
  const curveVar = curveReplicates.length > 1 ? sampleVariance(curveReplicates.filter(Number.isFinite)) : 0;
  const half = (d: number) => t * Math.sqrt(Math.max(curveVar, (Math.max(0, d) / z) ** 2) + meanNoiseVar);
  return [prediction - half(prediction - curve[0]), prediction + half(curve[1] - prediction)];
}

/**
 * Fits one variant's observations (all of one variant; the `variant` field is ignored) and
 * predicts the metric at `target`, with a bootstrap interval and a leave-largest-out backtest.
 */
export function extrapolateVariant(obs: readonly Observation[], target: number, opts: ExtrapolationOptions = {}): VariantExtrapolation {
  return extrapolateRungs(rungsOf(obs), target, opts, mixSeed(opts.seed ?? 0, 0xe7), opts.backtest ?? true);
}

export interface AnalyzeExtrapolationOptions extends ExtrapolationOptions {
  /** Scale to extrapolate to. Default: `nextRungScale` of the observed scales. */
  target?: number;
}

/**
 * One rung step past the largest, on the scale's own spacing: arithmetic when there are ≥ 3
 * rungs and their differences agree within 10% (e.g. 1000, 2000, 3000 → 4000), else geometric
 * with the ratio of the last two (1e5, 1e6, 1e7 → 1e8; two rungs are read as geometric, the
 * usual spacing of a scale axis). Null with fewer than 2 positive rungs: there is no step.
 * Extrapolating to the largest rung would only repeat observed data.
 */
export function nextRungScale(scales: readonly number[]): number | null {
  const rungs = [...new Set(scales.filter((s) => Number.isFinite(s) && s > 0))].sort((a, b) => a - b);
  if (rungs.length < 2) return null;
  const last = rungs[rungs.length - 1]!;
  const prev = rungs[rungs.length - 2]!;
  const diffs = rungs.slice(1).map((r, i) => r - rungs[i]!);
  const arithmetic = rungs.length >= 3 && Math.max(...diffs) <= 1.1 * Math.min(...diffs);
  return arithmetic ? last + (last - prev) : last * (last / prev);
}

/**
 * Per-variant extrapolation, keyed by variant name (sorted). Each variant's bootstrap stream is
 * derived from the seed and the variant's name, so adding a variant does not change the others.
 */
export function analyzeExtrapolation(obs: readonly Observation[], opts: AnalyzeExtrapolationOptions = {}): Record<string, VariantExtrapolation> {
  const target = opts.target ?? nextRungScale(obs.map((o) => o.scale)) ?? Number.NaN;
  const byVariant = new Map<string, Observation[]>();
  for (const o of obs) {
    const list = byVariant.get(o.variant) ?? [];
    list.push(o);
    byVariant.set(o.variant, list);
  }
  const out: Record<string, VariantExtrapolation> = {};
  for (const v of [...byVariant.keys()].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0))) {
    out[v] = extrapolateRungs(rungsOf(byVariant.get(v)!), target, opts, mixSeed(opts.seed ?? 0, 0xe7, hashString(v)), opts.backtest ?? true);
  }
  return out;
}
