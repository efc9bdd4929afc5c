/**
 * Run-over-run comparison of a scheduled sweep: pure, so the rules are tested without a database.
 *
 * A run's results are one entry per (variant, rung, metric): the seeds' values and their mean.
 * Each entry is compared with the same (variant, rung, metric) of the latest `baselineRuns`
 * earlier runs that have it. Per metric, either a tolerance (the mean moved past
 * max(tolerance × |baseline|, absoluteTolerance)) or Welch's t-test of this run's seeds against
 * the baseline runs' seeds (p < alpha) decides; the direction says which way is worse.
 */
import { mean, sampleVariance, studentTCdf } from '../analysis/stats';
import { DEFAULT_ALPHA, DEFAULT_TOLERANCE, type ScheduleBlock, type ScheduleMetric } from '../spec/schedule';

export interface RunResult {
  variant: string;
  rung: string;
  metric: string;
  mean: number;
  /** One value per succeeded seed. */
  values: number[];
}

export interface PastRun {
  runId: number;
  results: readonly RunResult[];
}

export interface Finding {
  kind: 'regression' | 'improvement';
  variant: string;
  rung: string;
  metric: string;
  direction: 'min' | 'max';
  value: number;
  baseline: number;
  method: 'tolerance' | 'welch';
  threshold: number | null;
  pValue: number | null;
  baselineRuns: number[];
}

const key = (r: Pick<RunResult, 'variant' | 'rung' | 'metric'>) => JSON.stringify([r.variant, r.rung, r.metric]);

/** Two-sided p-value of Welch's t-test; null when neither sample has a spread to test with. */
export function welchPValue(a: readonly number[], b: readonly number[]): number | null {
  if (a.length < 2 || b.length < 2) return null;
  const va = sampleVariance(a) / a.length;
  const vb = sampleVariance(b) / b.length;
  const diff = mean(a) - mean(b);
  if (va + vb === 0) return diff === 0 ? 1 : 0;
  const t = diff / Math.sqrt(va + vb);
  // Welch–Satterthwaite degrees of freedom.
  const df = (va + vb) ** 2 / ((va * va) / (a.length - 1) + (vb * vb) / (b.length - 1));
  return 2 * (1 - studentTCdf(Math.abs(t), df));
}

/**
 * Findings of `current` against `past` (newest first). Entries missing from every earlier run
 * are new and compared next time; a metric the schedule block does not list is not compared.
 */
export function compareRun(block: Pick<ScheduleBlock, 'metrics' | 'baselineRuns'>, current: readonly RunResult[], past: readonly PastRun[]): Finding[] {
  const rules = new Map<string, ScheduleMetric>(block.metrics.map((m) => [m.metric, m]));
  const history = new Map<string, { runId: number; result: RunResult }[]>();
  for (const run of past) {
    for (const r of run.results) {
      const list = history.get(key(r)) ?? [];
      if (list.length < block.baselineRuns) list.push({ runId: run.runId, result: r });
      history.set(key(r), list);
    }
  }
  const findings: Finding[] = [];
  for (const r of current) {
    const rule = rules.get(r.metric);
    const before = history.get(key(r));
    if (!rule || !before?.length || !Number.isFinite(r.mean)) continue;
    const baseline = mean(before.map((b) => b.result.mean));
    const delta = r.mean - baseline;
    const worse = rule.direction === 'min' ? delta > 0 : delta < 0;
    const base = { variant: r.variant, rung: r.rung, metric: r.metric, direction: rule.direction, value: r.mean, baseline, baselineRuns: before.map((b) => b.runId) };
    if (rule.test === 'welch') {
      const p = welchPValue(r.values, before.flatMap((b) => b.result.values));
      if (p !== null && p < (rule.alpha ?? DEFAULT_ALPHA) && delta !== 0) {
        findings.push({ ...base, kind: worse ? 'regression' : 'improvement', method: 'welch', threshold: rule.alpha ?? DEFAULT_ALPHA, pValue: p });
      }
      continue;
    }
    const relative = rule.tolerance ?? (rule.absoluteTolerance === undefined ? DEFAULT_TOLERANCE : 0);
    const threshold = Math.max(relative * Math.abs(baseline), rule.absoluteTolerance ?? 0);
    if (Math.abs(delta) > threshold) {
      findings.push({ ...base, kind: worse ? 'regression' : 'improvement', method: 'tolerance', threshold, pValue: null });
    }
  }
  return findings;
}
