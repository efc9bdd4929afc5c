/** Plain-text rendering for the CLI: progress, leaderboards, lists. */
import { and, eq } from 'drizzle-orm';
import type { PromotionDecision } from '../core/analysis/promotion';
import { formatInterval, formatMeanStd, formatNumber, formatScale, formatShare } from '../core/format';
import type { Db } from '../core/db/client';
import { analyses } from '../core/db/schema';
import type { LiveProgress } from '../core/sweeps/live';
import type { LeaderboardRow, RungProgress, getSweep } from '../core/sweeps/store';

type SweepRow = NonNullable<Awaited<ReturnType<typeof getSweep>>>;

const BAR_WIDTH = 24;

/** `42s`, `3m05s`, `2h07m`: wall durations at a glance. */
export function formatDuration(seconds: number): string {
  const s = Math.max(0, Math.round(seconds));
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s`;
  return `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, '0')}m`;
}

/** Elapsed time, the ETA as a duration and a clock time, and the running trials' latest step. */
export function formatLiveParts(live: LiveProgress, now = new Date()): string {
  const parts: string[] = [];
  if (live.elapsedSeconds !== null) parts.push(`elapsed ${formatDuration(live.elapsedSeconds)}`);
  if (live.etaSeconds !== null && live.etaSeconds > 0) {
    const at = new Date(now.getTime() + live.etaSeconds * 1000).toTimeString().slice(0, 8);
    parts.push(`ETA ~${formatDuration(live.etaSeconds)} (${at})`);
  }
  if (live.running.length) {
    const steps = live.running.map((r) => `${r.variantName} step ${r.step ?? '–'}`);
    const more = live.runningTotal - live.running.length;
    parts.push(`running: ${steps.join(', ')}${more > 0 ? ` +${more}` : ''}`);
  }
  return parts.join(' · ');
}

export function formatProgressLine(progress: RungProgress[], live?: LiveProgress): string {
  const total = progress.reduce((s, r) => s + r.total, 0);
  const finished = progress.reduce((s, r) => s + r.counts.succeeded + r.counts.failed + r.counts.cancelled + r.counts.skipped, 0);
  const filled = total ? Math.round((finished / total) * BAR_WIDTH) : 0;
  const bar = `[${'#'.repeat(filled)}${'.'.repeat(BAR_WIDTH - filled)}]`;
  const rungs = progress
    .map((r) => {
      const parts = [`${r.counts.succeeded}✓`];
      if (r.counts.running) parts.push(`${r.counts.running}▶`);
      if (r.counts.failed) parts.push(`${r.counts.failed}✗`);
      if (r.counts.skipped) parts.push(`${r.counts.skipped} skipped`);
      if (r.counts.cancelled) parts.push(`${r.counts.cancelled} cancelled`);
      return `${r.rungName}: ${parts.join(' ')}/${r.total}`;
    })
    .join('  ');
  const extra = live ? formatLiveParts(live) : '';
  return `${bar} ${finished}/${total}  ${rungs}${extra ? `  ${extra}` : ''}`;
}

export interface FailureReport {
  trialId: string;
  variantName: string;
  rungName: string;
  seed: number;
  attempts: number;
  maxAttempts: number;
  reason: string | null;
  /** Last log lines; null when the log cannot be read from here (with why in `logNote`). */
  log: string[] | null;
  logNote?: string;
}

/** Failed trials with their reason and last log lines; `total` counts those not shown too. */
export function formatFailures(reports: FailureReport[], total: number): string {
  if (total === 0) return '';
  const out = [`failed trials: ${total}${total > reports.length ? ` (newest ${reports.length} shown)` : ''}`];
  for (const f of reports) {
    out.push(`✗ ${f.trialId} (${f.variantName}, ${f.rungName}, seed ${f.seed}) failed after ${f.attempts}/${f.maxAttempts} attempts: ${f.reason ?? 'no reason recorded'}`);
    if (f.log === null) out.push(`    (${f.logNote ?? 'log not available'})`);
    else if (f.log.length === 0) out.push('    (log is empty)');
    else for (const line of f.log) out.push(`    | ${line.length > 200 ? `${line.slice(0, 200)}…` : line}`);
  }
  out.push(`full log: ladder logs TRIAL [--attempt N]`);
  return out.join('\n');
}

export function table(header: string[], rows: string[][]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]) => cells.map((c, i) => c.padEnd(widths[i]!)).join('  ').trimEnd();
  return [line(header), line(widths.map((w) => '-'.repeat(w))), ...rows.map(line)].join('\n');
}

/** Variants as rows, rungs as columns: `mean ± std (n)`. */
export function formatLeaderboard(metric: string, rows: LeaderboardRow[]): string {
  if (rows.length === 0) return `no succeeded trials report ${metric} yet`;
  const rungs = [...new Map(rows.map((r) => [r.rungIndex, r.rungName])).entries()].sort((a, b) => a[0] - b[0]);
  const variants = [...new Map(rows.map((r) => [r.variantIndex, r.variantName])).entries()].sort((a, b) => a[0] - b[0]);
  const cell = new Map(rows.map((r) => [`${r.variantIndex}/${r.rungIndex}`, r]));
  const body = variants.map(([vi, name]) => [
    name,
    ...rungs.map(([ri]) => {
      const r = cell.get(`${vi}/${ri}`);
      if (!r || r.count === 0) return '';
      return `${formatMeanStd(r.mean, r.count > 1 ? r.std : null)} (${r.count})`;
    }),
  ]);
  return `${metric}: mean ± std over seeds (n)\n${table(['variant', ...rungs.map(([, n]) => n)], body)}`;
}

export function formatSweepList(rows: SweepRow[]): string {
  if (rows.length === 0) return 'no sweeps yet';
  return table(
    ['id', 'kind', 'status', 'created'],
    rows.map((s) => [s.id, s.kind, s.status, s.createdAt.toISOString().replace('T', ' ').slice(0, 19)]),
  );
}

export function formatSweepStatus(sweep: SweepRow, progress: RungProgress[]): string {
  const head = [
    `sweep     ${sweep.id}`,
    `project   ${sweep.projectId}`,
    `kind      ${sweep.kind}`,
    `status    ${sweep.status}`,
    `code      ${sweep.codeVersion}`,
    `created   ${sweep.createdAt.toISOString()}`,
    sweep.finishedAt ? `finished  ${sweep.finishedAt.toISOString()}` : '',
  ].filter(Boolean);
  const body = table(
    ['rung', 'planned', 'running', 'succeeded', 'failed', 'cancelled', 'skipped', 'wall s', 'GPU s'],
    progress.map((r) => [
      r.rungName,
      String(r.counts.planned),
      String(r.counts.running),
      String(r.counts.succeeded),
      String(r.counts.failed),
      String(r.counts.cancelled),
      String(r.counts.skipped),
      r.wallSeconds.toFixed(1),
      r.gpuSeconds.toFixed(1),
    ]),
  );
  return `${head.join('\n')}\n\n${body}`;
}

/** One line per rung saying which variants moved up, from the stored promotion analyses. */
export async function promotionLines(db: Db, sweepId: string): Promise<string[]> {
  const rows = await db
    .select()
    .from(analyses)
    .where(and(eq(analyses.sweepId, sweepId), eq(analyses.kind, 'promotion')))
    .orderBy(analyses.rungIndex);
  return rows.map((row) => {
    const { decisions } = row.data as { decisions: PromotionDecision[] };
    const promoted = decisions.filter((d) => d.promoted).map((d) => d.variantName);
    const ranked = decisions.filter((d) => d.rank !== null).length;
    return `promoted after rung ${row.rungIndex}: ${promoted.join('; ') || 'none'} (${promoted.length} of ${ranked} ranked)`;
  });
}

type Analysis = import('../core/analysis/sweep-analysis').SweepAnalysisResult;

function matrix(title: string, rungs: number[], m: (number | null)[][]): string {
  const labels = rungs.map(formatScale);
  return `${title}\n${table(['', ...labels], m.map((row, i) => [labels[i]!, ...row.map((v) => (v === null ? '–' : v.toFixed(3)))]))}`;
}

/**
 * The scaling analysis as text: the verdict first, then the numbers behind it (each rung against
 * the largest, the matrices, fits and prediction intervals, budget).
 */
export function formatAnalysis(a: Analysis): string {
  const out: string[] = [a.verdict, '', `metric ${a.metric} (${a.mode === 'min' ? 'lower' : 'higher'} is better) over rungs ${a.rungs.map(formatScale).join(', ')}`];
  const vs = a.consistency.againstLargest;
  if (vs.length) {
    const largest = formatScale(a.rungs[a.rungs.length - 1]!);
    const k = a.consistency.topK;
    const rows = vs.map((c) => [
      formatScale(c.scale),
      c.r2 === null ? '–' : c.r2.toFixed(3),
      c.interval ? formatInterval(c.interval, 2) : (c.intervalNote ?? '–'),
      c.pearson === null ? '–' : c.pearson.toFixed(3),
      c.spearman === null ? '–' : c.spearman.toFixed(3),
      c.sameWinner === null ? '–' : c.sameWinner ? 'yes' : `no (${c.winner} → ${c.largestWinner})`,
      c.topKAgreement === null ? '–' : formatShare(c.topKAgreement),
      c.consistent ? 'yes' : `no: ${c.why}`,
    ]);
    out.push('', `each rung against ${largest} (consistent: r > 0, R² ≥ ${a.consistency.threshold}, same winner)`);
    out.push(table(['rung', 'R²', `${Math.round(a.consistency.level * 100)}% interval`, 'Pearson r', 'Spearman ρ', 'same winner', `top-${k} shared`, 'consistent'], rows));
  }
  if (a.rungs.length >= 2) {
    out.push('', matrix('R² between rungs (per-variant means over seeds)', a.rungs, a.consistency.r2));
    out.push('', matrix('Spearman rank correlation', a.rungs, a.consistency.spearman));
  }
  const cr = a.criticalRung;
  out.push('', `critical rung: ${cr.scale === null ? 'none' : formatScale(cr.scale)} — ${cr.reason}`);
  const rows = Object.entries(a.extrapolations).map(([variant, e]) => {
    if (!e.ok) return [variant, '', '', '', '', `refused: ${e.reason}`];
    const p = e.params;
    const fit = e.model === 'power-offset' ? `${formatNumber(p.a, 3)}·N^-${formatNumber(p.b, 3)} + ${formatNumber(p.c, 3)}` : `${formatNumber(p.a, 3)}·N^-${formatNumber(p.b, 3)}`;
    const bt = e.backtest ? `${e.backtest.error >= 0 ? '+' : ''}${formatNumber(e.backtest.error, 4)} ${e.backtest.withinInterval ? 'inside' : 'OUTSIDE'}` : (e.backtestSkipped ?? '');
    const exact = !(e.interval[0] < e.interval[1]);
    return [variant, fit, formatNumber(e.prediction), exact ? 'none' : formatInterval(e.interval, 4), bt, exact ? 'exact fit through one seed per rung: no noise estimate' : ''];
  });
  if (rows.length) {
    const seeds = Object.values(a.extrapolations).flatMap((e) => (e.ok ? [e.predictSeeds] : []))[0];
    const what = seeds ? `${Math.round(a.consistency.level * 100)}% prediction interval of the mean over ${seeds} seed${seeds === 1 ? '' : 's'}` : 'interval';
    out.push('', `extrapolation — ${a.targetNote}; ${what}`);
    out.push(table(['variant', 'fit L(N)', 'prediction', 'interval', 'backtest (largest rung left out)', 'note'], rows));
  } else {
    out.push('', `extrapolation: ${a.targetNote}`);
  }
  if (a.budget && a.budget.spent > 0) {
    const b = a.budget;
    const grid = b.fullGrid === null ? 'a full grid would cost an unknown amount' : `a full grid would cost ${formatNumber(b.fullGrid)}; saved ${b.savedShare === null ? 'unknown' : formatShare(b.savedShare)}`;
    out.push('', `budget: spent ${formatNumber(b.spent)} ${b.unit}; ${grid}`);
    for (const note of b.notes) out.push(`  note: ${note}`);
  }
  return out.join('\n');
}
