/**
 * The whole scaling analysis of one sweep as one JSON-serialisable object: what
 * `ladder analyze --json` prints, what the `analyses` table stores, what GraphQL exposes.
 * Pure (no clock, no I/O): the same observations give the same object, byte for byte.
 *
 * Field names are a contract (CLI, GraphQL, dashboard): `rungs`, `consistency.r2`,
 * `consistency.spearman`, `criticalRung`, `fits`, `extrapolations`, `budget`.
 */
import { budgetReport, type BudgetReport } from './budget';
import { analyzeConsistency, type CriticalRung } from './consistency';
import { analyzeExtrapolation, type VariantExtrapolation } from './extrapolation';
import type { ScalingFit } from './scaling-law';
import type { Interval, Mode, Observation } from './types';

export interface SweepAnalysisInput {
  observations: Observation[];
  mode: Mode;
  metric: string;
  /** Scale to extrapolate to; default the largest observed scale. */
  target?: number;
  /** Critical-rung R² threshold; default 0.9. */
  threshold?: number;
  /** PRNG seed of every bootstrap; default 0. */
  seed?: number;
  /** k of the top-k agreement; default 3. */
  topK?: number;
  /** Interval level; default 0.9. */
  level?: number;
  /** Bootstrap replicates of the consistency intervals (default 1000) and of extrapolations (default 500). */
  bootstrap?: { consistency?: number; extrapolation?: number };
  /** Arguments of `budgetReport` (trials, plan); the budget is omitted without them. */
  budget?: Parameters<typeof budgetReport>;
}

export interface SweepAnalysisResult {
  metric: string;
  mode: Mode;
  /** Distinct scale values, ascending; every matrix below is indexed like this. */
  rungs: number[];
  variants: string[];
  consistency: {
    /** Per-variant means over seeds, [variant][rung], indexed like `variants` × `rungs`. */
    means: (number | null)[][];
    r2: (number | null)[][];
    r2Interval: (Interval | null)[][];
    pearson: (number | null)[][];
    spearman: (number | null)[][];
    kendall: (number | null)[][];
    topKAgreement: (number | null)[][];
    topK: number;
    threshold: number;
    level: number;
  };
  criticalRung: CriticalRung;
  /** Per variant: the scaling-law fit over all rungs, or the reason it was refused. */
  fits: Record<string, ScalingFit>;
  /** The scale the extrapolations are at. */
  target: number | null;
  /** Per variant: prediction and interval at `target`, with the backtest, or a refusal. */
  extrapolations: Record<string, VariantExtrapolation>;
  budget?: BudgetReport;
}

export function analyzeSweep(input: SweepAnalysisInput): SweepAnalysisResult {
  const threshold = input.threshold ?? 0.9;
  const topK = input.topK ?? 3;
  const level = input.level ?? 0.9;
  const seed = input.seed ?? 0;
  const obs = input.observations.filter((o) => Number.isFinite(o.value) && Number.isFinite(o.scale));
  const c = analyzeConsistency(obs, { mode: input.mode, threshold, topK, level, seed, bootstrap: input.bootstrap?.consistency ?? 1000 });
  const target = input.target ?? (c.rungs.length ? c.rungs[c.rungs.length - 1]! : null);
  const extrapolations =
    target === null ? {} : analyzeExtrapolation(obs, { target, level, seed, bootstrap: input.bootstrap?.extrapolation ?? 500 });
  const fits: Record<string, ScalingFit> = {};
  for (const [v, e] of Object.entries(extrapolations)) {
    fits[v] = e.ok ? { ok: true, model: e.model, params: e.params, rmse: e.rmse } : { ok: false, reason: e.reason };
  }
  const result: SweepAnalysisResult = {
    metric: input.metric,
    mode: input.mode,
    rungs: c.rungs,
    variants: c.variants,
    consistency: {
      means: c.means,
      r2: c.r2,
      r2Interval: c.r2Interval,
      pearson: c.pearson,
      spearman: c.spearman,
      kendall: c.kendall,
      topKAgreement: c.topKAgreement,
      topK,
      threshold,
      level,
    },
    criticalRung: c.criticalRung,
    fits,
    target,
    extrapolations,
  };
  if (input.budget) result.budget = budgetReport(...input.budget);
  return result;
}
