/** Plain-text rendering for the CLI: progress, leaderboards, lists. */
import { and, eq } from 'drizzle-orm';
import type { PromotionDecision } from '../core/analysis/promotion';
import type { Db } from '../core/db/client';
import { analyses } from '../core/db/schema';
import type { LeaderboardRow, RungProgress, getSweep } from '../core/sweeps/store';

type SweepRow = NonNullable<Awaited<ReturnType<typeof getSweep>>>;

const BAR_WIDTH = 24;

export function formatProgressLine(progress: RungProgress[]): string {
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
  return `${bar} ${finished}/${total}  ${rungs}`;
}

function fmt(value: number | null, digits = 4): string {
  if (value === null || !Number.isFinite(value)) return '–';
  return Math.abs(value) >= 1e4 || (Math.abs(value) < 1e-3 && value !== 0) ? value.toExponential(2) : value.toFixed(digits);
}

function table(header: string[], rows: string[][]): string {
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
      return r.count > 1 ? `${fmt(r.mean)} ± ${fmt(r.std)} (${r.count})` : `${fmt(r.mean)} (1)`;
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

function scaleLabel(n: number): string {
  return Math.abs(n) >= 1e4 ? n.toExponential(0).replace('e+', 'e') : String(n);
}

function matrix(title: string, rungs: number[], m: (number | null)[][]): string {
  const labels = rungs.map(scaleLabel);
  return `${title}\n${table(['', ...labels], m.map((row, i) => [labels[i]!, ...row.map((v) => (v === null ? '–' : v.toFixed(3)))]))}`;
}

/** The scaling analysis as text: consistency matrices, critical rung, fits, extrapolations, budget. */
export function formatAnalysis(a: Analysis): string {
  const out: string[] = [`metric ${a.metric} (${a.mode === 'min' ? 'lower' : 'higher'} is better) over rungs ${a.rungs.map(scaleLabel).join(', ')}`];
  if (a.rungs.length >= 2) {
    out.push('', matrix('R² between rungs (per-variant means over seeds)', a.rungs, a.consistency.r2));
    out.push('', matrix('Spearman rank correlation', a.rungs, a.consistency.spearman));
  }
  const cr = a.criticalRung;
  out.push('', `critical rung: ${cr.scale === null ? 'none' : scaleLabel(cr.scale)} — ${cr.reason}`);
  const rows = Object.entries(a.extrapolations).map(([variant, e]) => {
    if (!e.ok) return [variant, '', '', '', '', `refused: ${e.reason}`];
    const p = e.params;
    const fit = e.model === 'power-offset' ? `${fmt(p.a, 3)}·N^-${fmt(p.b, 3)} + ${fmt(p.c, 3)}` : `${fmt(p.a, 3)}·N^-${fmt(p.b, 3)}`;
    const bt = e.backtest ? `${e.backtest.error >= 0 ? '+' : ''}${fmt(e.backtest.error, 4)} ${e.backtest.withinInterval ? 'inside' : 'OUTSIDE'}` : (e.backtestSkipped ?? '');
    return [variant, fit, fmt(e.prediction), `[${fmt(e.interval[0])}, ${fmt(e.interval[1])}]`, bt, ''];
  });
  if (rows.length) {
    out.push('', `extrapolation to ${a.target === null ? '–' : scaleLabel(a.target)}`);
    out.push(table(['variant', 'fit L(N)', 'prediction', 'interval', 'backtest (largest rung left out)', 'note'], rows));
  }
  if (a.budget) {
    const b = a.budget;
    const share = b.savedShare === null ? 'unknown' : `${(b.savedShare * 100).toFixed(1)}%`;
    out.push('', `budget: spent ${b.spent.toFixed(1)} ${b.unit}; a full grid would cost ${b.fullGrid === null ? 'unknown' : b.fullGrid.toFixed(1)}; saved ${share}`);
    for (const note of b.notes) out.push(`  note: ${note}`);
  }
  return out.join('\n');
}
