/**
 * Pure helpers of the capacity page (pages/CapacityPage.tsx): chart rows per step, and the
 * threshold lines to draw, read with the same parser the runner checks them with.
 */
import { parseThreshold } from '../../loadtests/capacity/thresholds';

export interface CapacityStepView {
  index: number;
  generators: number;
  offered: number;
  achieved: number;
  p50Ms: number | null;
  p95Ms: number | null;
  p99Ms: number | null;
  errorRate: number;
  passed: boolean;
  incomplete: string | null;
}

export interface ChartRow {
  offered: number;
  achieved: number | null;
  p50: number | null;
  p95: number | null;
  p99: number | null;
  passed: boolean;
}

/**
 * One row per measured step, by offered rate (a search visits rates out of order). Incomplete
 * steps are no measurement and are left out; at a rate measured twice the later step wins.
 */
export function capacityChartRows(steps: readonly CapacityStepView[], generators?: number): ChartRow[] {
  const byRate = new Map<number, ChartRow>();
  for (const s of steps) {
    if (s.incomplete || (generators !== undefined && s.generators !== generators)) continue;
    byRate.set(s.offered, { offered: s.offered, achieved: s.achieved, p50: s.p50Ms, p95: s.p95Ms, p99: s.p99Ms, passed: s.passed });
  }
  return [...byRate.values()].sort((a, b) => a.offered - b.offered);
}

export type ThresholdLine = { chart: 'latency'; label: string; ms: number } | { chart: 'throughput'; label: string; factor: number } | { chart: 'throughput'; label: string; rate: number };

/** The latency limits (horizontal lines) and achieved-rate limits (a line of slope factor, or a level). */
export function thresholdLines(thresholds: readonly string[]): ThresholdLine[] {
  const out: ThresholdLine[] = [];
  for (const text of thresholds) {
    let t;
    try {
      t = parseThreshold(text);
    } catch {
      continue; // stored runs were validated; an unreadable one is simply not drawn
    }
    if (t.metric.kind === 'latency') out.push({ chart: 'latency', label: t.text, ms: t.value });
    else if (t.metric.kind === 'achieved') out.push(t.relativeToOffered ? { chart: 'throughput', label: t.text, factor: t.value } : { chart: 'throughput', label: t.text, rate: t.value });
  }
  return out;
}

/** Distinct generator counts of a run's steps, ascending (a scaling run has several). */
export function generatorCounts(steps: readonly CapacityStepView[]): number[] {
  return [...new Set(steps.map((s) => s.generators))].sort((a, b) => a - b);
}
