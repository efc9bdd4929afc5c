/**
 * One step: a load profile run by every generator at its share of the rate, their histograms
 * and counts merged, the thresholds checked on the merged figures.
 */
import { runArrivalRate, type ExecutorCounts, type ExecutorResult } from './executor';
import { decodeHistogram, encodeHistogram, mergeHistograms, percentileMs, summarize, type LatencySummary } from './histogram';
import { offeredRate, type LoadProfile, type Scenario } from './scenario';
import { buildOperation, type GeneratorSecrets, type GeneratorSlot, type Prepared } from './targets';
import { compare, evaluateThresholds, type Threshold, type ThresholdResult } from './thresholds';

/** What a generator returns for a step (plain JSON: it crosses a process boundary). */
export interface GeneratorReport extends ExecutorCounts {
  slot: GeneratorSlot;
  offered: number;
  durationS: number;
  elapsedS: number;
  histogram: string;
  errors: Array<{ message: string; count: number }>;
  stoppedEarly: ExecutorResult['stoppedEarly'];
  extra: Record<string, number>;
}

export interface StepRecord {
  /** Offered rate, ops/s, all generators together (the mean for a ramping profile). */
  offered: number;
  /** Succeeded operations ÷ the step's duration. */
  achieved: number;
  durationS: number;
  planned: number;
  started: number;
  succeeded: number;
  failed: number;
  dropped: number;
  errorRate: number;
  droppedRate: number;
  p50Ms: number;
  p95Ms: number;
  p99Ms: number;
  latency: LatencySummary;
  thresholds: ThresholdResult[];
  passed: boolean;
  /** Set when a generator died or stopped heartbeating: the step is not a measurement, and failed. */
  incomplete: string | null;
  stoppedEarly: ExecutorResult['stoppedEarly'];
  generators: Array<{ index: number; offered: number; started: number; succeeded: number; failed: number; dropped: number }>;
  errors: Array<{ message: string; count: number }>;
  extra: Record<string, number>;
  /** The merged latency histogram (HDR, compressed base64, µs), to merge or re-read later. */
  histogram: string;
}

/** Stops a step once its errors/dropped thresholds are clearly broken, so a dead target fails fast. */
export function abortCheck(thresholds: readonly Threshold[], after: number) {
  const rules = thresholds.filter((t) => t.metric.kind === 'errors' || t.metric.kind === 'dropped');
  return (c: ExecutorCounts): boolean => {
    const done = c.succeeded + c.failed;
    if (done + c.dropped < after) return false;
    return rules.some((t) => !compare(t.metric.kind === 'errors' ? (done ? c.failed / done : 0) : c.dropped / Math.max(1, c.planned), t.op, t.value));
  };
}

/** Runs one generator's share of a step in this process. */
export async function runGenerator(
  scenario: Scenario,
  prepared: Prepared,
  load: LoadProfile,
  slot: GeneratorSlot,
  options: { signal?: AbortSignal; onTick?: (c: ExecutorCounts) => void; secrets?: GeneratorSecrets } = {},
): Promise<GeneratorReport> {
  const built = buildOperation(scenario, prepared, slot, options.secrets);
  const abort = scenario.abortOnFail ? abortCheck(scenario.thresholds, scenario.abortAfter) : () => false;
  try {
    const r = await runArrivalRate({
      load,
      operation: built.operation,
      signal: options.signal,
      onTick: (c) => {
        options.onTick?.(c);
        return abort(c);
      },
    });
    const extra = built.finish && !options.signal?.aborted ? await built.finish() : {};
    const { histogram, ...counts } = r;
    return { ...counts, slot, offered: offeredRate(load), histogram: encodeHistogram(histogram), extra };
  } finally {
    await built.close();
  }
}

/** Merges the generators' reports into one step and checks the thresholds. */
export function mergeStep(thresholds: readonly Threshold[], reports: readonly GeneratorReport[], incomplete: string | null): StepRecord {
  const sum = (k: 'planned' | 'started' | 'succeeded' | 'failed' | 'dropped' | 'offered') => reports.reduce((s, r) => s + r[k], 0);
  const histogram = mergeHistograms(reports.map((r) => decodeHistogram(r.histogram)));
  const durationS = Math.max(0, ...reports.map((r) => r.durationS));
  const offered = sum('offered');
  const started = sum('started');
  const succeeded = sum('succeeded');
  const failed = sum('failed');
  const planned = sum('planned');
  const achieved = durationS > 0 ? succeeded / durationS : 0;
  const errorRate = started ? failed / started : 0;
  const droppedRate = planned ? sum('dropped') / planned : 0;
  const latency = summarize(histogram);
  const results = evaluateThresholds(thresholds, {
    offered,
    achieved,
    errorRate,
    droppedRate,
    mean: latency.meanMs,
    max: latency.maxMs,
    percentile: (p) => percentileMs(histogram, p),
  });
  const errors = new Map<string, number>();
  for (const r of reports) for (const e of r.errors) errors.set(e.message, (errors.get(e.message) ?? 0) + e.count);
  const extra: Record<string, number> = {};
  for (const r of reports) for (const [k, v] of Object.entries(r.extra)) extra[k] = (extra[k] ?? 0) + v; // counts and rates of concurrent generators both add up
  return {
    offered,
    achieved,
    durationS,
    planned,
    started,
    succeeded,
    failed,
    dropped: sum('dropped'),
    errorRate,
    droppedRate,
    p50Ms: latency.p50Ms,
    p95Ms: latency.p95Ms,
    p99Ms: latency.p99Ms,
    latency,
    thresholds: results,
    passed: !incomplete && reports.length > 0 && results.every((r) => r.passed),
    incomplete,
    stoppedEarly: reports.find((r) => r.stoppedEarly)?.stoppedEarly ?? null,
    generators: reports.map((r) => ({ index: r.slot.index, offered: r.offered, started: r.started, succeeded: r.succeeded, failed: r.failed, dropped: r.dropped })),
    errors: [...errors].map(([message, count]) => ({ message, count })),
    extra,
    histogram: encodeHistogram(histogram),
  };
}
