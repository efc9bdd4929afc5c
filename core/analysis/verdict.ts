/**
 * The one plain-language verdict of a sweep's scaling analysis: does a small rung already predict
 * the largest, what did the ladder promote and spend, and what is predicted beyond the largest
 * rung. `ladder analyze`, the end of `ladder sweep submit --wait` and the stored analysis (field
 * `verdict`, for GraphQL and the dashboard) all take it from here, so they never disagree.
 */
import type { BudgetReport } from './budget';
import type { CriticalRung, RungComparison } from './consistency';
import type { VariantExtrapolation } from './extrapolation';
import { fmt, formatInterval, formatScale, formatShare } from './stats';
import type { Mode } from './types';
import { formatAgainst } from '../format';

/** What the verdict needs of a promotion record: per decision, whether it moved up and was ranked. */
export interface PromotionSummary {
  rungIndex: number;
  decisions: readonly { promoted: boolean; rank: number | null }[];
}

export interface VerdictInput {
  mode: Mode;
  rungs: readonly number[];
  variants: readonly string[];
  /** [variant][rung] means, to know which variants reached the largest rung. */
  means: readonly (readonly (number | null)[])[];
  threshold: number;
  againstLargest: readonly RungComparison[];
  criticalRung: CriticalRung;
  target: number | null;
  extrapolations: Readonly<Record<string, VariantExtrapolation>>;
  budget?: BudgetReport;
  promotions?: readonly PromotionSummary[];
  /** Results loaded from elsewhere: nothing was promoted or spent here, so say nothing about it. */
  imported?: boolean;
}

/** At most this many rungs are named when none predicts the largest (the nearest first). */
const MAX_RUNGS_NAMED = 3;

export function sweepVerdict(a: VerdictInput): string {
  return [consistencySentence(a), spendSentence(a), predictionSentence(a)].filter(Boolean).join(' ');
}

function statsText(c: RungComparison, k: number): string {
  const kk = Math.min(k, c.shared);
  const parts = [`R² ${fmt(c.r2!, 2)}`];
  if (c.intervalNote) parts.push(`${c.intervalNote} for an interval`);
  if (c.spearman !== null) parts.push(`ρ ${fmt(c.spearman, 2)}`);
  parts.push(c.sameWinner ? 'same winner' : 'the winner changes');
  if (c.topKAgreement !== null) parts.push(c.topKAgreement === 1 ? `top-${kk} agree` : `top-${kk} share ${Math.round(c.topKAgreement * kk)} of ${kk}`);
  return parts.join(', ');
}

function consistencySentence(a: VerdictInput): string {
  const cr = a.criticalRung;
  if (a.rungs.length < 2 || a.againstLargest.every((c) => c.shared < 3)) return `Consistency unknown: ${cr.reason}.`;
  const largest = formatScale(a.rungs[a.rungs.length - 1]!);
  if (cr.scale !== null) {
    const at = a.againstLargest.find((c) => c.scale === cr.scale)!;
    let s = `Rankings at ${formatScale(cr.scale)} already predict ${largest} (${statsText(at, cr.topK)}).`;
    // The case a researcher must not miss: a fit that passes while the winner moves.
    const misleading = a.againstLargest.filter((c) => c.scale < cr.scale! && c.pearson !== null && c.pearson > 0 && c.r2 !== null && c.r2 >= a.threshold && c.sameWinner === false);
    for (const c of misleading) s += ` At ${formatScale(c.scale)} R² ${formatAgainst(c.r2!, a.threshold)} clears ${a.threshold} but the winner changes (${c.winner} → ${c.largestWinner}).`;
    return s;
  }
  const reasons = [...a.againstLargest]
    .reverse()
    .filter((c) => c.why)
    .slice(0, MAX_RUNGS_NAMED)
    .map((c) => `${formatScale(c.scale)}: ${c.why}`);
  return `No rung below ${largest} predicts it: ${reasons.join('; ')}.`;
}

function spendSentence(a: VerdictInput): string {
  if (a.imported) return '';
  const parts: string[] = [];
  const promos = (a.promotions ?? []).filter((p) => p.decisions.some((d) => d.rank !== null));
  if (promos.length) {
    parts.push(`Promoted ${promos.map((p) => `${p.decisions.filter((d) => d.promoted).length} of ${p.decisions.filter((d) => d.rank !== null).length}`).join(', then ')}`);
  }
  const b = a.budget;
  if (b && b.spent > 0) {
    const what = b.unit === 'gpu-seconds' ? 'GPU time' : 'device time (a CPU job counts as one device)';
    if (b.fullGrid !== null && b.fullGrid > 0) parts.push(`spent ${formatShare(b.spent / b.fullGrid)} of the full grid's ${what}`);
    else parts.push(`spent ${fmt(b.spent)} ${b.unit} (the full grid's cost is unknown)`);
  }
  if (!parts.length) return '';
  const s = parts.join('; ');
  return `${s[0]!.toUpperCase()}${s.slice(1)}.`;
}

function predictionSentence(a: VerdictInput): string {
  if (a.target === null) return '';
  const top = a.rungs.length - 1;
  const atLargest = new Set(a.variants.filter((_, v) => a.means[v]?.[top] !== null && a.means[v]?.[top] !== undefined));
  const candidates = Object.entries(a.extrapolations).filter(([v]) => atLargest.has(v));
  const ok = candidates.flatMap(([v, e]) => (e.ok ? [{ v, e }] : []));
  const target = formatScale(a.target);
  if (!ok.length) {
    const refused = candidates.find(([, e]) => !e.ok)?.[1];
    return refused && !refused.ok ? `No prediction at ${target}: ${refused.reason}.` : '';
  }
  const best = ok.reduce((x, y) => ((a.mode === 'min' ? y.e.prediction < x.e.prediction : y.e.prediction > x.e.prediction) ? y : x));
  const e = best.e;
  const iv = e.interval[0] < e.interval[1] ? ` ${formatInterval(e.interval)}` : ' (no interval: an exact fit through one seed per rung)';
  return `Predicted at ${target}: ${best.v} → ${fmt(e.prediction)}${iv}${heldOutCheck(e, a.rungs.length)}.`;
}

/** Whether the curve's form was checked: the same fit without the largest rung, against it. */
function heldOutCheck(e: Extract<VariantExtrapolation, { ok: true }>, rungs: number): string {
  const bt = e.backtest;
  if (bt === null) {
    return rungs < 3
      ? `; with ${rungs} rungs no rung is held out, so the curve's form is unchecked`
      : `; the curve's form is unchecked (${e.backtestSkipped ?? 'no held-out fit'})`;
  }
  const held = formatScale(bt.heldOutScale);
  return bt.withinInterval
    ? `; fitted without ${held}, the curve predicted ${held} within its interval`
    : `; but fitted without ${held}, the curve predicted ${fmt(bt.predicted)} ${formatInterval(bt.interval)} at ${held} where ${fmt(bt.actual)} was measured, so treat this prediction with care`;
}
