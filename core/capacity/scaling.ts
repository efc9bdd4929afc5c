/**
 * "How many replicas for N ops/s": the knees of searches repeated with 1, 2, 4 … generators (or
 * replicas) fitted with the scaling-law code of core/analysis. The fitted quantity is the cost
 * of one operation, 1/knee (seconds per op/s of capacity), against replicas N:
 *
 *   1/capacity(N) = a·N^(−b) + c
 *
 * the same L(N) = a·N^(−b) + c the sweeps fit. c is the part no replica count removes (the shared
 * database, a single API): capacity saturates at 1/c, and a rate above it has no answer. The
 * interval is extrapolateVariant's prediction interval at each N, turned into capacity bounds.
 */
import { extrapolateVariant } from '../analysis/extrapolation';
import { predictScalingLaw, type ScalingModel, type ScalingParams } from '../analysis/scaling-law';
import type { Observation } from '../analysis/types';

export interface ScalingSample {
  /** Generators (or replicas) of the search. */
  replicas: number;
  /** Its knee, ops/s; null when the first step failed (dropped from the fit). */
  knee: number | null;
  /** The search hit search.max: the knee is only a lower bound (the fit underestimates). */
  kneeIsLowerBound: boolean;
  repeat: number;
}

export interface ScalingAnswer {
  samples: ScalingSample[];
  /** The question asked: replicas for this many ops/s. */
  forRate: number;
  fit: { ok: true; model: ScalingModel; params: ScalingParams; intervalMethod: string; saturatesAt: number | null } | { ok: false; reason: string };
  /** Fewest replicas whose fitted capacity reaches forRate; null when the fit never does (within MAX_REPLICAS). */
  replicas: number | null;
  /** Fewest replicas whose capacity interval's upper / lower bound reaches forRate (the interval on `replicas`). */
  replicasInterval: [number | null, number | null];
  /** Fitted capacity (ops/s) and its interval at `replicas`. */
  capacityAt: { replicas: number; capacity: number; interval: [number, number] } | null;
  level: number;
  notes: string[];
}

/** Largest replica count the answer looks at. */
export const MAX_REPLICAS = 4096;
const LEVEL = 0.9;
const BOOTSTRAP = 200;

export function fitCapacityScaling(samples: readonly ScalingSample[], forRate: number, seed = 0): ScalingAnswer {
  const notes: string[] = [];
  const usable = samples.filter((s) => s.knee !== null && s.knee > 0);
  if (usable.length < samples.length) notes.push(`${samples.length - usable.length} search(es) without a knee left out`);
  if (usable.some((s) => s.kneeIsLowerBound)) notes.push('some knees are lower bounds (search.max held): capacity is underestimated');
  const obs: Observation[] = usable.map((s) => ({ variant: 'capacity', scale: s.replicas, seed: s.repeat, value: 1 / s.knee! }));
  const base = { samples: [...samples], forRate, level: LEVEL, notes };
  const none = (reason: string): ScalingAnswer => ({ ...base, fit: { ok: false, reason }, replicas: null, replicasInterval: [null, null], capacityAt: null });
  if (!(forRate > 0) || !Number.isFinite(forRate)) return none('forRate must be a positive number');
  if (new Set(usable.map((s) => s.replicas)).size < 2) return none('needs knees at 2 or more replica counts');

  const memo = new Map<number, ReturnType<typeof extrapolateVariant>>();
  const at = (n: number) => {
    let e = memo.get(n);
    if (!e) memo.set(n, (e = extrapolateVariant(obs, n, { bootstrap: BOOTSTRAP, level: LEVEL, seed, backtest: false })));
    return e;
  };
  const first = at(Math.max(...usable.map((s) => s.replicas)));
  if (!first.ok) return none(first.reason);
  const { model, params, intervalMethod } = first;
  // Seconds per op can only fall to c: capacity's ceiling. A pure power law has none.
  const saturatesAt = params.c > 0 ? 1 / params.c : null;
  const capacity = (n: number) => {
    const cost = predictScalingLaw(params, n);
    return cost > 0 ? 1 / cost : Number.POSITIVE_INFINITY;
  };
  const bound = (n: number, side: 0 | 1): number => {
    const e = at(n);
    if (!e.ok) return Number.NaN;
    const cost = e.interval[side === 0 ? 1 : 0]; // the lower capacity bound is the higher cost
    return cost > 0 ? 1 / cost : Number.POSITIVE_INFINITY;
  };
  /** Smallest n in [1, MAX_REPLICAS] with f(n) ≥ forRate, assuming f rises with n. */
  const smallest = (f: (n: number) => number): number | null => {
    if (!(f(MAX_REPLICAS) >= forRate)) return null;
    let lo = 1;
    let hi = MAX_REPLICAS;
    while (lo < hi) {
      const mid = Math.floor((lo + hi) / 2);
      if (f(mid) >= forRate) hi = mid;
      else lo = mid + 1;
    }
    return lo;
  };
  const replicas = smallest(capacity);
  const optimistic = smallest((n) => bound(n, 1));
  const conservative = smallest((n) => bound(n, 0));
  if (replicas === null) notes.push(saturatesAt !== null ? `the fit saturates at ${saturatesAt.toFixed(1)} ops/s, below ${forRate}` : `more than ${MAX_REPLICAS} replicas`);
  if (intervalMethod === 'none (exact fit, one seed)') notes.push('exact fit (one search per replica count and as many counts as parameters): no interval; use repeats ≥ 2 or more counts');
  const at1 = replicas ?? Math.max(...usable.map((s) => s.replicas));
  const e = at(at1);
  return {
    ...base,
    fit: { ok: true, model, params, intervalMethod, saturatesAt },
    replicas,
    replicasInterval: [optimistic, conservative],
    capacityAt: e.ok ? { replicas: at1, capacity: capacity(at1), interval: [bound(at1, 0), bound(at1, 1)] } : null,
  };
}
