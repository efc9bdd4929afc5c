/**
 * Scaling-law fits: L(N) = a·N^(−b) + c ("power-offset"), or L(N) = a·N^(−b) ("power").
 *
 * Power-offset is fitted by weighted nonlinear least squares (minimise Σ wᵢ (yᵢ − L(Nᵢ))²) with
 * ml-levenberg-marquardt, in a well-conditioned parametrisation: x = N / N₀ (N₀ the smallest
 * scale, so x ≥ 1 and x^(−b) ∈ (0, 1]) and y standardised by its mean and spread, so the three
 * parameters are all O(1) whatever the units. The initial guess comes from profiling b: for a
 * fixed b the model is linear in (a, c), solved in closed form on a log-spaced grid of b; LM then
 * polishes all three jointly (with the analytic Jacobian). Parameters are mapped back to N and y
 * units at the end.
 *
 * The offset model is refused as degenerate when b lands outside (0.01, 5] (b → 0 is the
 * "a huge, c hugely negative" ridge where the data are just linear in log N; b > 5 means the
 * curve is flat after the first rung, a step rather than a law), when the result is not finite,
 * or when fewer than 3 distinct scales exist (3 parameters). Then the log-space alternative is
 * tried: a pure power law, the weighted line log L = log a − b·log N (needs L > 0, 2 scales,
 * and b > 0, and the line must explain ≥ 90% of the variance of log L). The weights of that line are wᵢ·yᵢ² (delta method: var(log y) ≈ var(y)/y²).
 *
 * `rmse` is the unweighted root-mean-square residual in the metric's units.
 */
import { levenbergMarquardt } from 'ml-levenberg-marquardt';
import { fmt } from './stats';

export interface ScalingPoint {
  scale: number;
  value: number;
  /** Relative weight, e.g. 1 / variance of the point; default 1. */
  weight?: number;
}

export type ScalingModel = 'power-offset' | 'power';

export interface ScalingParams {
  a: number;
  b: number;
  c: number;
}

export type ScalingFit =
  | { ok: true; model: ScalingModel; params: ScalingParams; rmse: number }
  | { ok: false; reason: string };

export interface FitOptions {
  /** 'auto' (default): power-offset, falling back to pure power when the offset fit is degenerate. */
  model?: ScalingModel | 'auto';
}

/** L(N) for fitted parameters. */
export function predictScalingLaw(params: ScalingParams, scale: number): number {
  return params.a * Math.pow(scale, -params.b) + params.c;
}

const B_MIN = 0.01;
const MIN_LOG_R2 = 0.9;
const B_MAX = 5;
const B_GRID = Array.from({ length: 48 }, (_, i) => B_MIN * Math.pow(B_MAX / B_MIN, i / 47));

interface Prepared {
  x: number[]; // N / N0
  y: number[];
  w: number[];
  n0: number;
  distinct: number;
}

function prepare(points: readonly ScalingPoint[]): Prepared | string {
  if (points.length === 0) return 'no points to fit';
  for (const p of points) {
    if (!Number.isFinite(p.scale) || p.scale <= 0) return `scale ${p.scale} is not a positive number`;
    if (!Number.isFinite(p.value)) return `value ${p.value} at scale ${p.scale} is not finite`;
    if (p.weight !== undefined && !(Number.isFinite(p.weight) && p.weight > 0)) return `weight ${p.weight} at scale ${p.scale} is not a positive number`;
  }
  const n0 = Math.min(...points.map((p) => p.scale));
  const wRaw = points.map((p) => p.weight ?? 1);
  const wMean = wRaw.reduce((s, v) => s + v, 0) / wRaw.length;
  return {
    x: points.map((p) => p.scale / n0),
    y: points.map((p) => p.value),
    // Only relative weights matter; normalising keeps the objective O(1) for the tolerances.
    w: wRaw.map((v) => v / wMean),
    n0,
    distinct: new Set(points.map((p) => p.scale)).size,
  };
}

/** Weighted least squares of y on [f, 1]: returns [A, C, SSE]. */
function linearFit(f: readonly number[], y: readonly number[], w: readonly number[]): [number, number, number] | null {
  let sw = 0, sf = 0, sy = 0, sff = 0, sfy = 0;
  for (let i = 0; i < y.length; i++) {
    sw += w[i]!;
    sf += w[i]! * f[i]!;
    sy += w[i]! * y[i]!;
    sff += w[i]! * f[i]! * f[i]!;
    sfy += w[i]! * f[i]! * y[i]!;
  }
  const det = sw * sff - sf * sf;
  if (!(Math.abs(det) > 1e-14 * sw * sff)) return null;
  const A = (sw * sfy - sf * sy) / det;
  const C = (sy - A * sf) / sw;
  let sse = 0;
  for (let i = 0; i < y.length; i++) sse += w[i]! * (y[i]! - A * f[i]! - C) ** 2;
  return [A, C, sse];
}

function rmseOf(p: Prepared, params: ScalingParams): number {
  let s = 0;
  for (let i = 0; i < p.y.length; i++) s += (p.y[i]! - predictScalingLaw(params, p.x[i]! * p.n0)) ** 2;
  return Math.sqrt(s / p.y.length);
}

function fitPowerOffset(p: Prepared): ScalingFit {
  if (p.distinct < 3) return { ok: false, reason: `power law with offset needs at least 3 distinct scales, got ${p.distinct}` };
  const ym = p.y.reduce((s, v) => s + v, 0) / p.y.length;
  const ys = Math.max(...p.y.map((v) => Math.abs(v - ym)));
  if (!(ys > 1e-12 * Math.max(1, Math.abs(ym)))) return { ok: false, reason: 'flat data: the values do not change with scale' };
  const yn = p.y.map((v) => (v - ym) / ys);
  const lx = p.x.map(Math.log);

  // Profile b on a grid for the initial guess.
  let best: { b: number; A: number; C: number; sse: number } | null = null;
  for (const b of B_GRID) {
    const r = linearFit(lx.map((l) => Math.exp(-b * l)), yn, p.w);
    if (r && (best === null || r[2] < best.sse)) best = { b, A: r[0], C: r[1], sse: r[2] };
  }
  if (best === null) return { ok: false, reason: 'singular fit: the scales cannot separate the power term from the offset' };

  // Weights enter by scaling residuals: the library's own `weights` option is applied
  // inconsistently between its step and its error measure (v5.1), so it stays at 1 and the
  // data index i is the abscissa, with sqrt(wᵢ) folded into both the data and the model.
  const sw = p.w.map(Math.sqrt);
  const idx = p.x.map((_, i) => i);
  const model = ([A, b, C]: number[]) => (i: number) => sw[i]! * (A! * Math.exp(-b! * lx[i]!) + C!);
  const jac = ([A, b]: number[]) => (i: number) => {
    const e = Math.exp(-b! * lx[i]!);
    return [sw[i]! * e, -sw[i]! * A! * lx[i]! * e, sw[i]!];
  };
  let params = [best.A, best.b, best.C];
  let sse = best.sse;
  try {
    // The library stops only on an absolute error tolerance or the iteration cap, so it runs in
    // short rounds until a round no longer improves the objective.
    for (let round = 0; round < 20; round++) {
      const r = levenbergMarquardt({ x: idx, y: yn.map((v, i) => sw[i]! * v) }, model, {
        initialValues: params,
        jacobianFunction: jac,
        maxIterations: 4,
        errorTolerance: 1e-28,
        damping: 1e-3,
        minValues: [-1e12, 0, -1e12],
        maxValues: [1e12, 50, 1e12],
      });
      const improved = r.parameterError < sse;
      if (improved) params = r.parameterValues;
      const gain = sse - r.parameterError;
      if (improved) sse = r.parameterError;
      if (!improved || gain <= 1e-13 * Math.max(sse, 1e-300) || sse < 1e-26) break;
    }
  } catch (e) {
    return { ok: false, reason: `fit failed: ${(e as Error).message}` };
  }
  const [A, b, C] = params as [number, number, number];
  if (![A, b, C].every(Number.isFinite)) return { ok: false, reason: 'singular fit: non-finite parameters' };
  if (b <= B_MIN * 0.999) return { ok: false, reason: `degenerate fit: exponent b = ${fmt(b)} ≤ ${B_MIN} (the data are not curving like a power law)` };
  if (b > B_MAX) return { ok: false, reason: `degenerate fit: exponent b = ${fmt(b, 4)} > ${B_MAX} (a step, not a power law)` };
  const params0: ScalingParams = { a: A * ys * Math.pow(p.n0, b), b, c: C * ys + ym };
  if (![params0.a, params0.c].every(Number.isFinite)) return { ok: false, reason: 'singular fit: parameters overflow' };
  return { ok: true, model: 'power-offset', params: params0, rmse: rmseOf(p, params0) };
}

function fitPower(p: Prepared): ScalingFit {
  if (p.distinct < 2) return { ok: false, reason: `power law needs at least 2 distinct scales, got ${p.distinct}` };
  if (p.y.some((v) => v <= 0)) return { ok: false, reason: 'power law without offset needs positive values' };
  const ly = p.y.map(Math.log);
  const lx = p.x.map(Math.log);
  const r = linearFit(lx, ly, p.w.map((w, i) => w * p.y[i]! * p.y[i]!));
  if (!r) return { ok: false, reason: 'singular fit' };
  const b = -r[0];
  if (Math.abs(b) < 1e-9) return { ok: false, reason: 'flat data: the values do not change with scale' };
  if (!(b > 0)) return { ok: false, reason: `degenerate fit: exponent b = ${fmt(b)} ≤ 0 (values grow with scale)` };
  if (b > B_MAX) return { ok: false, reason: `degenerate fit: exponent b = ${fmt(b)} > ${B_MAX}` };
  // A fallback must still look like a power law: the log-log line explains ≥ MIN_LOG_R2 of the
  // variance of log L (a step or a curve bending the wrong way does not).
  const lw = p.w.map((w, i) => w * p.y[i]! * p.y[i]!);
  const lwSum = lw.reduce((s, v) => s + v, 0);
  const lyMean = ly.reduce((s, v, i) => s + lw[i]! * v, 0) / lwSum;
  const ssTot = ly.reduce((s, v, i) => s + lw[i]! * (v - lyMean) ** 2, 0);
  const r2 = ssTot > 0 ? 1 - r[2] / ssTot : 0;
  if (r2 < MIN_LOG_R2) return { ok: false, reason: `poor fit: the log-log line explains ${fmt(r2 * 100, 2)}% of the variance (< ${MIN_LOG_R2 * 100}%)` };
  const params: ScalingParams = { a: Math.exp(r[1] + b * Math.log(p.n0)), b, c: 0 };
  if (!Number.isFinite(params.a)) return { ok: false, reason: 'singular fit: parameters overflow' };
  return { ok: true, model: 'power', params, rmse: rmseOf(p, params) };
}

/** Fits a scaling law to (scale, value) points; see the module comment for the method. */
export function fitScalingLaw(points: readonly ScalingPoint[], opts: FitOptions = {}): ScalingFit {
  const p = prepare(points);
  if (typeof p === 'string') return { ok: false, reason: p };
  const which = opts.model ?? 'auto';
  if (which === 'power') return fitPower(p);
  const offset = fitPowerOffset(p);
  if (offset.ok || which === 'power-offset') return offset;
  if (/^flat data/.test(offset.reason)) return offset;
  const power = fitPower(p);
  if (power.ok) return power;
  return { ok: false, reason: `${offset.reason}; pure power law: ${power.reason}` };
}
