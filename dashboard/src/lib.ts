/**
 * Pure helpers of the dashboard (no DOM, no React): durations and times, leaderboard shaping,
 * chart series building, heatmap colours. Unit-tested in test/browser/dashboard-lib.test.ts.
 */
import type { LeaderboardRow, ScalingAnalysis, StatusCounts } from './queries';
import { NO_VALUE } from '../../core/format';
import type { TrialStatus } from './generated/graphql';

// Numbers read the same here as in the CLI and the analyses' texts: one home, core/format.ts.
export { formatInterval, formatMeanStd, formatNumber, formatScale, formatShare, NO_VALUE } from '../../core/format';
// Which metric a sweep is read by: one rule, shared with the CLI and the stored analysis.
export { chooseMetric } from '../../core/sweeps/metric-choice';

/** The statuses in the order the pages show them (the type itself comes from the schema). */
export const TRIAL_STATUSES = ['planned', 'running', 'succeeded', 'failed', 'cancelled', 'skipped'] as const satisfies readonly TrialStatus[];
export type { LeaderboardRow, StatusCounts, TrialStatus };

export function formatSeconds(seconds: number | null | undefined): string {
  if (seconds === null || seconds === undefined || !Number.isFinite(seconds)) return NO_VALUE;
  if (seconds < 60) return `${seconds.toFixed(1)} s`;
  if (seconds < 3600) return `${(seconds / 60).toFixed(1)} min`;
  return `${(seconds / 3600).toFixed(1)} h`;
}

export function formatTime(iso: string | null | undefined): string {
  if (!iso) return NO_VALUE;
  const d = new Date(iso);
  return Number.isNaN(d.getTime()) ? NO_VALUE : d.toISOString().replace('T', ' ').slice(0, 19);
}

/** Fraction of a rung's (or sweep's) trials that are done (succeeded, failed, cancelled, skipped). */
export function doneFraction(counts: StatusCounts, total: number): number {
  if (total <= 0) return 0;
  return (counts.succeeded + counts.failed + counts.cancelled + counts.skipped) / total;
}

/**
 * The metrics of a trial result: `result.metrics` (the job protocol's shape, what the leaderboard
 * reads), else the result's own top-level numeric keys.
 */
export function resultMetrics(result: unknown): Record<string, number> {
  if (!result || typeof result !== 'object' || Array.isArray(result)) return {};
  const r = result as Record<string, unknown>;
  const source = r.metrics && typeof r.metrics === 'object' && !Array.isArray(r.metrics) ? (r.metrics as Record<string, unknown>) : r;
  const out: Record<string, number> = {};
  for (const [k, v] of Object.entries(source)) if (typeof v === 'number' && Number.isFinite(v)) out[k] = v;
  return out;
}

/** Numeric metric names of trial results, most frequent first then alphabetical. */
export function metricNames(results: readonly unknown[]): string[] {
  const seen = new Map<string, number>();
  for (const r of results) for (const k of Object.keys(resultMetrics(r))) seen.set(k, (seen.get(k) ?? 0) + 1);
  return [...seen.entries()].sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0])).map(([k]) => k);
}

export interface PivotRow {
  variantIndex: number;
  variantName: string;
  /** By rung index. */
  cells: Record<number, LeaderboardRow>;
}

export interface Pivot {
  rungs: { rungIndex: number; rungName: string; scaleValue: number | null }[];
  rows: PivotRow[];
}

/** Leaderboard rows (variants × rungs) as one row per variant with a cell per rung. */
export function pivotLeaderboard(rows: readonly LeaderboardRow[]): Pivot {
  const rungs = new Map<number, Pivot['rungs'][number]>();
  const variants = new Map<number, PivotRow>();
  for (const r of rows) {
    if (!rungs.has(r.rungIndex)) rungs.set(r.rungIndex, { rungIndex: r.rungIndex, rungName: r.rungName, scaleValue: r.scaleValue });
    let v = variants.get(r.variantIndex);
    if (!v) variants.set(r.variantIndex, (v = { variantIndex: r.variantIndex, variantName: r.variantName, cells: {} }));
    v.cells[r.rungIndex] = r;
  }
  return {
    rungs: [...rungs.values()].sort((a, b) => a.rungIndex - b.rungIndex),
    rows: [...variants.values()].sort((a, b) => a.variantIndex - b.variantIndex),
  };
}

export type SortKey = { by: 'variant' } | { by: 'rung'; rungIndex: number };

/**
 * Sorts pivot rows: by variant name, or by the mean at one rung (best first for the mode;
 * variants without a value at that rung last). `descending` reverses the order of valued rows.
 */
export function sortPivotRows(rows: readonly PivotRow[], key: SortKey, mode: 'min' | 'max', descending = false): PivotRow[] {
  const out = [...rows];
  if (key.by === 'variant') {
    out.sort((a, b) => a.variantName.localeCompare(b.variantName, undefined, { numeric: true }));
    return descending ? out.reverse() : out;
  }
  const val = (r: PivotRow) => r.cells[key.rungIndex]?.mean ?? null;
  out.sort((a, b) => {
    const va = val(a);
    const vb = val(b);
    if (va === null || vb === null) return va === null ? (vb === null ? a.variantIndex - b.variantIndex : 1) : -1;
    const d = mode === 'min' ? va - vb : vb - va;
    return (descending ? -d : d) || a.variantIndex - b.variantIndex;
  });
  return out;
}

export type { ScalingAnalysis };

/** "lower is better" / "higher is better": said on every ranked table. */
export function betterText(mode: 'min' | 'max'): string {
  return mode === 'min' ? 'lower is better' : 'higher is better';
}

/**
 * Wall-clock time left, from each rung's mean wall time per finished trial × its trials still
 * to run ÷ the trials run at once. Null while a rung with work left has no finished trial; GPU
 * seconds would be 0 for every CPU sweep, so they are not used.
 */
export function wallClockEta(
  rungs: readonly { counts: StatusCounts; wallSeconds: number }[],
  concurrency: number,
): number | null {
  const parallel = Number.isFinite(concurrency) && concurrency >= 1 ? concurrency : 1;
  let total = 0;
  for (const r of rungs) {
    const left = r.counts.planned + r.counts.running;
    if (left === 0) continue;
    const finished = r.counts.succeeded + r.counts.failed;
    if (finished === 0 || !(r.wallSeconds > 0)) return null;
    total += ((r.wallSeconds / finished) * left) / Math.min(parallel, left);
  }
  return total;
}

export interface XY {
  x: number;
  y: number;
  /** Sample standard deviation over seeds, when there are ≥ 2. */
  sd?: number;
}

export interface ScalingSeries {
  variant: string;
  /** Observed means over seeds, one per rung with a value. */
  observed: XY[];
  /** The fitted law from the smallest rung to the target (empty without a fit). */
  fit: XY[];
  /** Prediction at the target with its interval, when the extrapolation succeeded. */
  prediction: { x: number; y: number; lo: number; hi: number } | null;
  /** The band from the largest observed rung to the target: [x, lo, hi] (empty when target ≤ that rung). */
  band: { x: number; lo: number; hi: number }[];
}

/** Log-spaced points from `from` to `to` (inclusive), `n` ≥ 2 of them. */
export function logSpace(from: number, to: number, n: number): number[] {
  if (!(from > 0) || !(to > 0) || n < 2) return [from, to];
  const a = Math.log10(from);
  const b = Math.log10(to);
  return Array.from({ length: n }, (_, i) => Math.pow(10, a + ((b - a) * i) / (n - 1)));
}

/** Spread over seeds of one variant at one scale (the leaderboard's sample std and count). */
export interface SeedSpread {
  variantName: string;
  scaleValue: number | null;
  std: number | null;
  count: number;
}

/**
 * One series per variant for the scaling plot: means against scale (with ± 1 sd over seeds where
 * `spread` has it), fitted law, extrapolation band.
 */
export function scalingSeries(analysis: ScalingAnalysis, spread: readonly SeedSpread[] = []): ScalingSeries[] {
  const sd = new Map(spread.filter((s) => s.count >= 2 && s.std !== null).map((s) => [`${s.variantName}\u0000${s.scaleValue}`, s.std!]));
  return analysis.variants.map((variant, vi) => {
    const row = analysis.consistency.means[vi] ?? [];
    const observed: XY[] = [];
    analysis.rungs.forEach((x, ri) => {
      const y = row[ri];
      if (typeof y !== 'number' || !Number.isFinite(y)) return;
      const e = sd.get(`${variant}\u0000${x}`);
      observed.push(e === undefined ? { x, y } : { x, y, sd: e });
    });
    const ex = analysis.extrapolations.find((e) => e.variant === variant);
    const fitted = analysis.fits.find((f) => f.variant === variant);
    const params = (ex?.ok ? ex.params : null) ?? (fitted?.ok ? fitted.params : null);
    const [lo, hi] = ex?.interval ?? [];
    const prediction = ex?.ok && ex.target !== null && ex.prediction !== null && lo !== undefined && hi !== undefined ? { x: ex.target, y: ex.prediction, lo, hi } : null;
    const xs = observed.map((p) => p.x);
    const lastX = xs.length ? Math.max(...xs) : null;
    const fit: XY[] = [];
    if (params && xs.length) {
      const end = Math.max(lastX!, prediction?.x ?? lastX!);
      for (const x of logSpace(Math.min(...xs), end, 24)) fit.push({ x, y: params.a * Math.pow(x, -params.b) + params.c });
    }
    const band: ScalingSeries['band'] = [];
    if (prediction && lastX !== null && prediction.x > lastX) {
      const lastY = observed.find((p) => p.x === lastX)!.y;
      band.push({ x: lastX, lo: lastY, hi: lastY }, { x: prediction.x, lo: prediction.lo, hi: prediction.hi });
    }
    return { variant, observed, fit, prediction, band };
  });
}

/**
 * Colour of a correlation-like value in [-1, 1] (null → grey): white at 0, blue towards 1,
 * red towards -1.
 */
export function heatColor(value: number | null | undefined): string {
  if (value === null || value === undefined || !Number.isFinite(value)) return '#e5e7eb';
  const v = Math.max(-1, Math.min(1, value));
  const t = Math.abs(v);
  const [r, g, b] = v >= 0 ? [37, 99, 235] : [220, 38, 38];
  const mix = (c: number) => Math.round(255 + (c - 255) * t);
  return `rgb(${mix(r)}, ${mix(g)}, ${mix(b)})`;
}

/** A readable text colour on `heatColor(value)`. */
export function heatTextColor(value: number | null | undefined): string {
  return value !== null && value !== undefined && Math.abs(value) > 0.55 ? '#fff' : '#111827';
}

/** Categorical colours for series (variant i → PALETTE[i % length]). */
export const PALETTE = ['#2563eb', '#dc2626', '#16a34a', '#9333ea', '#ea580c', '#0891b2', '#ca8a04', '#db2777', '#4b5563', '#65a30d'];

export function seriesColor(i: number): string {
  return PALETTE[((i % PALETTE.length) + PALETTE.length) % PALETTE.length]!;
}

/**
 * Dash patterns for series (variant i → DASHES[i % length]); with the palette, two lines differ
 * in colour or pattern up to 10 × 4 variants, and close colours get different patterns.
 */
export const DASHES = ['', '8 3', '2 3', '10 3 2 3'];

export function seriesDash(i: number): string {
  return DASHES[((i % DASHES.length) + DASHES.length) % DASHES.length]!;
}

/** Parses `#/sweeps/<id>`, `#/trials/<id>`, `#/capacity[/<id>]`, anything else → the sweeps list. */
export type Route = { page: 'sweeps' } | { page: 'sweep'; id: string } | { page: 'trial'; id: string } | { page: 'capacity'; id: string | null };

export function parseRoute(hash: string): Route {
  const parts = hash.replace(/^#\/?/, '').split('/').filter(Boolean).map(decodeURIComponent);
  if (parts[0] === 'sweeps' && parts[1]) return { page: 'sweep', id: parts[1] };
  if (parts[0] === 'trials' && parts[1]) return { page: 'trial', id: parts[1] };
  if (parts[0] === 'capacity') return { page: 'capacity', id: parts[1] ?? null };
  return { page: 'sweeps' };
}
