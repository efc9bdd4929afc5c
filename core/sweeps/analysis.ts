/**
 * The database side of the scaling analyses: loading a sweep's results as observations, running
 * the pure analyses of `core/analysis/`, and storing the outcome in the `analyses` table (kind
 * `scaling`, one row per sweep), where GraphQL and the CLI read it.
 */
import { and, eq, isNotNull, sql } from 'drizzle-orm';
import type { PromotionDecision } from '../analysis/promotion';
import { analyzeSweep } from '../analysis/sweep-analysis';
import type { Mode, Observation } from '../analysis/types';
import type { Db } from '../db/client';
import { analyses, trials } from '../db/schema';
import type { SweepSpec } from '../spec/spec';
import { planVariants, seedList } from '../spec/planner';
import { metricValue } from './metric';
import { chooseMetric, specDeclaresMetric, type MetricChoice } from './metric-choice';
import { requireSweep, resultMetricNames } from './store';

export const SCALING_ANALYSIS = 'scaling';

export interface AnalysisSettings {
  metric: string;
  mode: Mode;
  /** The spec's analysis.targetScale. */
  target?: number;
  threshold: number;
}

/** What the stored analysis is computed with: the chosen metric and mode, the spec's target and threshold. */
export function analysisSettings(spec: SweepSpec, choice: MetricChoice = chooseMetric(spec)): AnalysisSettings {
  const { metric, mode } = choice;
  return { metric, mode, target: spec.analysis?.targetScale, threshold: spec.analysis?.threshold ?? 0.9 };
}

/** The sweep's metric by `chooseMetric`, asking the database for reported metrics only when the spec names none. */
export async function sweepMetric(db: Db, sweepId: string, spec: SweepSpec): Promise<MetricChoice> {
  return chooseMetric(spec, specDeclaresMetric(spec) ? [] : await resultMetricNames(db, sweepId));
}

/** Per succeeded trial with a numeric scale: (variant, scale, seed, metric value). */
export async function loadObservations(db: Db, sweepId: string, metric: string, uptoRung?: number): Promise<Observation[]> {
  const value = metricValue(metric);
  const rows = await db
    .select({ variant: trials.variantName, scale: trials.scaleValue, seed: trials.seed, value })
    .from(trials)
    .where(
      and(
        eq(trials.sweepId, sweepId),
        eq(trials.status, 'succeeded'),
        isNotNull(trials.scaleValue),
        uptoRung === undefined ? undefined : sql`${trials.rungIndex} <= ${uptoRung}`,
      ),
    )
    .orderBy(trials.rungIndex, trials.variantIndex, trials.seed);
  return rows
    .filter((r): r is { variant: string; scale: number; seed: number; value: number } => r.scale !== null && r.value !== null && Number.isFinite(r.value))
    .map((r) => ({ variant: r.variant, scale: r.scale, seed: r.seed, value: r.value }));
}

export interface RungPromotion {
  rungIndex: number;
  rule: unknown;
  decisions: PromotionDecision[];
}

/** The analysis of a sweep as stored and printed: the scaling analyses plus promotion decisions. */
export type SweepAnalysis = ReturnType<typeof analyzeSweep> & { promotions: RungPromotion[] };

/**
 * Bootstrap sizes for analyses run after every rung: a few seconds per sweep instead of ~10 s,
 * with interval endpoints stable to about a percent of their width.
 */
const BOOTSTRAP = { consistency: 500, extrapolation: 300 };

/**
 * Computes the analysis of a sweep. With no overrides the result is stored as the sweep's
 * analysis; overrides (another metric, a target scale) answer the question without replacing it.
 */
export async function refreshSweepAnalysis(
  db: Db,
  sweepId: string,
  overrides: { metric?: string; mode?: Mode; target?: number } = {},
): Promise<SweepAnalysis> {
  const sweep = await requireSweep(db, sweepId);
  const spec = sweep.spec as SweepSpec;
  const settings = analysisSettings(spec, await sweepMetric(db, sweepId, spec));
  const metric = overrides.metric ?? settings.metric;
  const mode = overrides.mode ?? settings.mode;
  const target = overrides.target ?? settings.target;
  const targetFrom = overrides.target !== undefined ? 'requested' : 'spec';
  const imported = sweep.status === 'imported';

  const [observations, trialRows, promotionRows] = await Promise.all([
    loadObservations(db, sweepId, metric),
    db
      .select({
        rungIndex: trials.rungIndex,
        scale: trials.scaleValue,
        variant: trials.variantName,
        seed: trials.seed,
        status: trials.status,
        gpuSeconds: trials.gpuSeconds,
        wallSeconds: trials.wallSeconds,
        reusedFrom: trials.reusedFrom,
      })
      .from(trials)
      .where(eq(trials.sweepId, sweepId)),
    db
      .select({ rungIndex: analyses.rungIndex, data: analyses.data })
      .from(analyses)
      .where(and(eq(analyses.sweepId, sweepId), eq(analyses.kind, 'promotion')))
      .orderBy(analyses.rungIndex),
  ]);
  const gpus = spec.resources.gpus;
  const promotions = promotionRows.map((r) => ({ rungIndex: r.rungIndex, ...(r.data as { rule: unknown; decisions: PromotionDecision[] }) }));
  const scaling = analyzeSweep({
    observations,
    metric,
    mode,
    target,
    targetFrom,
    promotions,
    imported,
    threshold: settings.threshold,
    bootstrap: BOOTSTRAP,
    budget: [
      // Reused trials cost this sweep nothing, whatever they cost the sweep that ran them.
      trialRows.map((t) => ({ ...t, gpus, status: t.reusedFrom ? 'reused' : t.status })),
      { variants: planVariants(spec).length, seeds: seedList(spec).length, rungs: spec.scale?.rungs.length ?? 1 },
    ],
  });
  const analysis: SweepAnalysis = { ...scaling, promotions };
  const isDefault = overrides.metric === undefined && overrides.mode === undefined && overrides.target === undefined;
  if (isDefault) await storeAnalysis(db, sweepId, SCALING_ANALYSIS, -1, analysis);
  return analysis;
}

export async function storeAnalysis(db: Db, sweepId: string, kind: string, rungIndex: number, data: unknown): Promise<void> {
  await db
    .insert(analyses)
    .values({ sweepId, kind, rungIndex, data })
    .onConflictDoUpdate({ target: [analyses.sweepId, analyses.kind, analyses.rungIndex], set: { data, createdAt: new Date() } });
}

export async function storedAnalysis(db: Db, sweepId: string, kind = SCALING_ANALYSIS): Promise<unknown | null> {
  const [row] = await db
    .select({ data: analyses.data })
    .from(analyses)
    .where(and(eq(analyses.sweepId, sweepId), eq(analyses.kind, kind), eq(analyses.rungIndex, -1)));
  return row?.data ?? null;
}
