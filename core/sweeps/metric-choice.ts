/**
 * The one rule for which final-result metric a sweep is read by when nobody names one: the
 * stored analysis (core/sweeps/analysis.ts), `ladder results` / `ladder analyze` and the
 * dashboard's leaderboard all call `chooseMetric`, so they rank by the same metric.
 *
 * Pure and dependency-free: the dashboard bundles this file and passes it the spec as the JSON
 * GraphQL returned, so the spec is read defensively (`unknown`, never trusted to be well formed).
 */
import type { Mode } from '../analysis/types';

/** The metric a sweep falls back to when its spec declares none and its results report it (or nothing yet). */
export const DEFAULT_METRIC = 'loss';
/** A metric nobody declared a direction for is taken as a loss: lower is better. */
export const DEFAULT_MODE: Mode = 'min';

export interface MetricChoice {
  metric: string;
  mode: Mode;
  /** Where the choice came from, for help texts ("from the spec's analysis block"). */
  source: 'analysis' | 'promotion' | 'default' | 'results';
}

function declared(block: unknown): { metric: string; mode: Mode } | null {
  if (!block || typeof block !== 'object' || Array.isArray(block)) return null;
  const { metric, mode } = block as { metric?: unknown; mode?: unknown };
  if (typeof metric !== 'string' || metric === '') return null;
  return { metric, mode: mode === 'max' || mode === 'min' ? mode : DEFAULT_MODE };
}

/**
 * The spec's `analysis` metric, else its `promotion` metric, else `loss` when the results report
 * it or report nothing, else the alphabetically first metric the results report (sorted here, so
 * every caller agrees whatever order it lists them in).
 */
export function chooseMetric(spec: unknown, reported: readonly string[] = []): MetricChoice {
  const s = spec && typeof spec === 'object' ? (spec as { analysis?: unknown; promotion?: unknown }) : {};
  const fromAnalysis = declared(s.analysis);
  if (fromAnalysis) return { ...fromAnalysis, source: 'analysis' };
  const fromPromotion = declared(s.promotion);
  if (fromPromotion) return { ...fromPromotion, source: 'promotion' };
  if (reported.length === 0 || reported.includes(DEFAULT_METRIC)) return { metric: DEFAULT_METRIC, mode: DEFAULT_MODE, source: 'default' };
  return { metric: [...reported].sort()[0]!, mode: DEFAULT_MODE, source: 'results' };
}

/** Whether the spec names the metric itself (then no query for the reported metrics is needed). */
export function specDeclaresMetric(spec: unknown): boolean {
  const source = chooseMetric(spec).source;
  return source === 'analysis' || source === 'promotion';
}
