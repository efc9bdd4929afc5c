/**
 * Pure helpers of the capacity page (pages/CapacityPage.tsx): chart rows per step, and the
 * threshold lines to draw, read with the same parser the runner checks them with.
 */
import { parseThreshold } from '../../loadtests/capacity/thresholds';
import type { CapacityStep } from './queries';

/** The fields of a step the charts read (the step type itself is generated from the schema). */
export type CapacityStepView = Pick<CapacityStep, 'index' | 'generators' | 'offered' | 'achieved' | 'p50Ms' | 'p95Ms' | 'p99Ms' | 'errorRate' | 'passed' | 'incomplete'>;

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

// A capacity run's `host` and `scaling` are JSON in the schema, so they arrive as `unknown`:
// read field by field, and a field of the wrong type reads as missing rather than breaking the page.
const field = (o: unknown, key: string): unknown => (o && typeof o === 'object' && !Array.isArray(o) ? (o as Record<string, unknown>)[key] : undefined);
const finite = (v: unknown): number | null => (typeof v === 'number' && Number.isFinite(v) ? v : null);

/** The 1-minute load average of the host when the run started, if recorded. */
export function hostLoadStart(host: unknown): number | null {
  const l = field(host, 'loadavgStart');
  return Array.isArray(l) ? finite(l[0]) : null;
}

export interface ReplicaScaling {
  forRate: number | null;
  replicas: number | null;
  level: number | null;
  replicasInterval: [number | null, number | null];
  notes: string[];
}

/** The replicas estimate of a run (`scaling`), or null when the run has none. */
export function replicaScaling(scaling: unknown): ReplicaScaling | null {
  if (!scaling || typeof scaling !== 'object') return null;
  const iv = field(scaling, 'replicasInterval');
  const notes = field(scaling, 'notes');
  return {
    forRate: finite(field(scaling, 'forRate')),
    replicas: finite(field(scaling, 'replicas')),
    level: finite(field(scaling, 'level')),
    replicasInterval: Array.isArray(iv) ? [finite(iv[0]), finite(iv[1])] : [null, null],
    notes: Array.isArray(notes) ? notes.filter((n): n is string => typeof n === 'string') : [],
  };
}
