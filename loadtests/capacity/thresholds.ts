/**
 * Step thresholds, k6-style strings:
 *
 *   p95 < 250ms          latency percentile (p50 p90 p95 p99 p99.9 …, mean, max), in ms or s
 *   errors < 0.1%        failed ÷ started operations (a fraction or a percentage)
 *   dropped < 1%         operations not started because maxInFlight were in flight, ÷ planned
 *   achieved >= 0.95 * offered    completed operations/s against the offered rate
 *   achieved >= 100      … or an absolute rate
 */
export type ThresholdMetric = { kind: 'latency'; stat: 'mean' | 'max' | number } | { kind: 'errors' } | { kind: 'dropped' } | { kind: 'achieved' };
export type Comparator = '<' | '<=' | '>' | '>=';

export interface Threshold {
  text: string;
  metric: ThresholdMetric;
  op: Comparator;
  /** Latency in ms, a fraction for errors/dropped, ops/s for achieved (unless relative). */
  value: number;
  /** achieved only: value is a factor of the offered rate. */
  relativeToOffered: boolean;
}

/** What a threshold is checked against: one step's merged figures. */
export interface StepFigures {
  offered: number;
  achieved: number;
  errorRate: number;
  droppedRate: number;
  mean: number;
  max: number;
  percentile(p: number): number;
}

export interface ThresholdResult {
  threshold: string;
  actual: number;
  limit: number;
  passed: boolean;
}

const FORM = /^\s*([a-z][a-z0-9.]*)\s*(<=|>=|<|>)\s*(.+?)\s*$/;

export function parseThreshold(text: string): Threshold {
  const m = FORM.exec(text);
  if (!m) throw new Error(`"${text}" is not a threshold like "p95 < 250ms", "errors < 0.1%" or "achieved >= 0.95 * offered"`);
  const [, name, op, rhs] = m as unknown as [string, string, Comparator, string];
  const base = { text: text.trim(), op, relativeToOffered: false };
  const number = (s: string, what: string) => {
    const n = Number(s);
    if (s === '' || !Number.isFinite(n) || n < 0) throw new Error(`"${text}": ${what} must be a non-negative number, not "${s}"`);
    return n;
  };
  if (name === 'errors' || name === 'dropped') {
    const pct = /^(.*?)\s*%$/.exec(rhs);
    const value = pct ? number(pct[1]!, name) / 100 : number(rhs, name);
    if (value > 1) throw new Error(`"${text}": ${name} is a fraction (0–1) or a percentage`);
    return { ...base, metric: { kind: name }, value };
  }
  if (name === 'achieved') {
    const rel = /^(.*?)\s*\*\s*offered$/.exec(rhs);
    return rel ? { ...base, metric: { kind: 'achieved' }, value: number(rel[1]!, 'the factor'), relativeToOffered: true } : { ...base, metric: { kind: 'achieved' }, value: number(rhs, 'the rate') };
  }
  const stat = name === 'mean' || name === 'max' ? name : /^p(\d{1,2}(?:\.\d+)?|100)$/.exec(name) ? Number(name.slice(1)) : undefined;
  if (stat === undefined) throw new Error(`"${text}": unknown metric "${name}" (p50…p99.9, mean, max, errors, dropped, achieved)`);
  const unit = /^(\d+(?:\.\d+)?)\s*(ms|s)$/.exec(rhs);
  if (!unit) throw new Error(`"${text}": a latency limit needs a unit, like 250ms or 1.5s`);
  return { ...base, metric: { kind: 'latency', stat }, value: Number(unit[1]) * (unit[2] === 's' ? 1000 : 1) };
}

function actualOf(t: Threshold, f: StepFigures): { actual: number; limit: number } {
  switch (t.metric.kind) {
    case 'errors':
      return { actual: f.errorRate, limit: t.value };
    case 'dropped':
      return { actual: f.droppedRate, limit: t.value };
    case 'achieved':
      return { actual: f.achieved, limit: t.relativeToOffered ? t.value * f.offered : t.value };
    case 'latency': {
      const stat = t.metric.stat;
      return { actual: stat === 'mean' ? f.mean : stat === 'max' ? f.max : f.percentile(stat), limit: t.value };
    }
  }
}

export function compare(actual: number, op: Comparator, limit: number): boolean {
  if (!Number.isFinite(actual)) return false;
  return op === '<' ? actual < limit : op === '<=' ? actual <= limit : op === '>' ? actual > limit : actual >= limit;
}

export function evaluateThresholds(thresholds: readonly Threshold[], figures: StepFigures): ThresholdResult[] {
  return thresholds.map((t) => {
    const { actual, limit } = actualOf(t, figures);
    return { threshold: t.text, actual, limit, passed: compare(actual, t.op, limit) };
  });
}
