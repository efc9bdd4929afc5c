/**
 * The whole scaling analysis of one sweep as one JSON-serialisable object: what
 * `ladder analyze --json` prints, what the `analyses` table stores, what GraphQL exposes.
 * Pure (no clock, no I/O): the same observations give the same object, byte for byte.
 *
 * Field names are a contract (CLI, GraphQL, dashboard): `verdict`, `rungs`, `consistency.r2`,
 * `consistency.spearman`, `consistency.againstLargest`, `criticalRung`, `fits`, `target`,
 * `targetSource`, `targetNote`, `extrapolations`, `budget`.
 */
import { budgetReport, type BudgetReport } from './budget';
import { analyzeConsistency, type CriticalRung, type RungComparison } from './consistency';
import { analyzeExtrapolation, nextRungScale, type VariantExtrapolation } from './extrapolation';
import { formatScale } from './stats';
import { sweepVerdict, type PromotionSummary } from './verdict';
import type { ScalingFit } from './scaling-law';
import type { Interval, Mode, Observation } from './types';

export interface SweepAnalysisInput {
  observations: Observation[];
  mode: Mode;
  metric: string;
  /** Scale to extrapolate to; default one rung step past the largest (`nextRungScale`). */
  target?: number;
  /** Where `target` came from, for `targetNote`. Default 'requested'. */
  targetFrom?: 'spec' | 'requested';
  /** Promotion decisions so far, for the verdict. */
  promotions?: readonly PromotionSummary[];
  /** Imported results: the verdict leaves out promotion and budget. */
  imported?: boolean;
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
  /** One plain-language sentence or three: see verdict.ts. */
  verdict: string;
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
    /** Each rung below the largest against the largest: sign, winner, top-k, consistent or why not. */
    againstLargest: RungComparison[];
    topK: number;
    threshold: number;
    level: number;
  };
  criticalRung: CriticalRung;
  /** Per variant: the scaling-law fit over all rungs, or the reason it was refused. */
  fits: Record<string, ScalingFit>;
  /** The scale the extrapolations are at; null when there is no step to take (one rung). */
  target: number | null;
  /** 'spec' (analysis.targetScale), 'requested' (--target), 'next-rung' (one step past the largest), 'none'. */
  targetSource: 'spec' | 'requested' | 'next-rung' | 'none';
  /** e.g. "target 1e9: one step past the largest rung". */
  targetNote: string;
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
  const target = input.target ?? nextRungScale(c.rungs);
  const targetSource = input.target !== undefined ? (input.targetFrom ?? 'requested') : target === null ? 'none' : 'next-rung';
  const targetNote =
    target === null
      ? 'no target: a step past the largest rung needs 2 rungs'
      : `target ${formatScale(target)}: ${targetSource === 'spec' ? 'from the spec (analysis.targetScale)' : targetSource === 'requested' ? 'as requested' : 'one step past the largest rung'}`;
  const extrapolations =
    target === null ? {} : analyzeExtrapolation(obs, { target, level, seed, bootstrap: input.bootstrap?.extrapolation ?? 500 });
  const fits: Record<string, ScalingFit> = {};
  for (const [v, e] of Object.entries(extrapolations)) {
    fits[v] = e.ok ? { ok: true, model: e.model, params: e.params, rmse: e.rmse } : { ok: false, reason: e.reason };
  }
  const result: SweepAnalysisResult = {
    verdict: '',
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
      againstLargest: c.againstLargest,
      topK,
      threshold,
      level,
    },
    criticalRung: c.criticalRung,
    fits,
    target,
    targetSource,
    targetNote,
    extrapolations,
  };
  if (input.budget && !input.imported) result.budget = budgetReport(...input.budget);
  result.verdict = sweepVerdict({
    mode: input.mode,
    rungs: c.rungs,
    variants: c.variants,
    means: c.means,
    threshold,
    againstLargest: c.againstLargest,
    criticalRung: c.criticalRung,
    target,
    extrapolations,
    budget: result.budget,
    promotions: input.promotions,
    imported: input.imported,
  });
  return result;
}
