/**
 * Extrapolation of one variant's metric to a larger scale, with an honest interval and a
 * backtest that shows how good such extrapolations have been on this very sweep.
 *
 * - Points: the mean over seeds at each rung. Weights: 1 / variance of that mean (s²/n) when
 *   every rung has ≥ 2 seeds (floored at 1e-6 of the largest variance so a rung whose seeds
 *   happen to agree exactly cannot take all the weight), else 1 for every rung (mixing
 *   estimated and unit weights would compare apples with pears).
 * - Fit: `fitScalingLaw` (power law with offset, falling back to a pure power law).
 * - Interval: percentile bootstrap of the prediction. With ≥ 2 seeds at some rung, each replicate
 *   resamples the seeds within every rung and refits (the model choice is redone per replicate,
 *   so model uncertainty is in the interval; replicates whose fit is refused are dropped and
 *   counted). With one seed per rung, a residual bootstrap: fitted values plus resampled
 *   residuals, inflated by √(n/(n−p)) for the p fitted parameters. With exactly p rungs and one
 *   seed the fit interpolates and there is no noise estimate: the interval is zero-width
 *   (`intervalMethod` says so, and the README warns).
 * - Backtest: leave the largest rung out, extrapolate to it from the rest (same method), and
 *   compare with what was measured. Null (with `backtestSkipped`) when the remaining rungs
 *   cannot be fitted.
 */
import { fitScalingLaw, predictScalingLaw, type ScalingModel, type ScalingParams, type ScalingPoint } from './scaling-law';
import { hashString, mixSeed, mulberry32, randomIndex } from './rng';
import { mean, percentileInterval, sampleVariance } from './stats';
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
      interval: Interval;
      intervalMethod: IntervalMethod;
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
  const interval: Interval = percentileInterval(reps, level) ?? [prediction, prediction];

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
    bootstrapFits: reps.length,
    backtest,
    ...(backtestSkipped ? { backtestSkipped } : {}),
  };
}

/**
 * Fits one variant's observations (all of one variant; the `variant` field is ignored) and
 * predicts the metric at `target`, with a bootstrap interval and a leave-largest-out backtest.
 */
export function extrapolateVariant(obs: readonly Observation[], target: number, opts: ExtrapolationOptions = {}): VariantExtrapolation {
  return extrapolateRungs(rungsOf(obs), target, opts, mixSeed(opts.seed ?? 0, 0xe7), opts.backtest ?? true);
}

export interface AnalyzeExtrapolationOptions extends ExtrapolationOptions {
  /**
   * Scale to extrapolate to. Default: the largest observed scale. Ladder cannot know the next
   * rung of a finished sweep, so without a target the "extrapolation" is the fit's estimate at
   * the largest rung (useful with the backtest); pass `target` (the CLI's --target) to look beyond.
   */
  target?: number;
}

/**
 * Per-variant extrapolation, keyed by variant name (sorted). Each variant's bootstrap stream is
 * derived from the seed and the variant's name, so adding a variant does not change the others.
 */
export function analyzeExtrapolation(obs: readonly Observation[], opts: AnalyzeExtrapolationOptions = {}): Record<string, VariantExtrapolation> {
  const scales = obs.filter((o) => Number.isFinite(o.scale)).map((o) => o.scale);
  const target = opts.target ?? (scales.length ? Math.max(...scales) : Number.NaN);
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
