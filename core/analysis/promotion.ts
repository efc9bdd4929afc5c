/**
 * Promotion between rungs: which variants move up the scale ladder.
 * A pure function so the rule can be tested alone and recorded with its reasons.
 *
 * Rules (exactly one per sweep):
 *  - `topK`: the k best means at this rung;
 *  - `fraction`: the best share of the scored variants (successive halving uses 0.5), ≥ 1;
 *  - `intervalOverlap: true`: every variant whose predicted interval at the next rung overlaps
 *    the best variant's (best by predicted mean, among variants that have an interval). It keeps
 *    the variants we cannot yet tell apart from the winner, instead of a fixed number. The
 *    intervals come from `predictNextRung`.
 *
 * ASHA (a spec's `search.asha`) is the `fraction: 1/eta` rule applied to a complete rung, plus
 * `decideAshaPromotions` while the rung is still running: the same ranking, on what has finished.
 */
import { extrapolateVariant, rungsOf } from './extrapolation';
import { mixSeed, hashString, mulberry32, randomIndex } from './rng';
import { fmt, formatScale, mean, percentileInterval } from './stats';
import type { Interval, Observation } from './types';

export interface PromotionRule {
  metric: string;
  mode: 'min' | 'max';
  topK?: number;
  fraction?: number;
  /** Keep every variant whose next-rung interval overlaps the best one's. */
  intervalOverlap?: boolean;
}

export interface VariantScore {
  variantIndex: number;
  variantName: string;
  /** Mean of the metric over seeds; null when no seed produced it. */
  mean: number | null;
  count: number;
  /** Predicted interval of the metric at the next rung (for the `intervalOverlap` rule). */
  interval?: [number, number];
}

export interface PromotionDecision extends VariantScore {
  rank: number | null;
  promoted: boolean;
  reason: string;
}

/** Variants with a score, best first by the rule's mode; ties go to the earlier variant. */
function rankScores<S extends VariantScore>(scores: readonly S[], mode: 'min' | 'max'): S[] {
  return scores
    .filter((s) => s.mean !== null && Number.isFinite(s.mean))
    .sort((a, b) => (mode === 'min' ? a.mean! - b.mean! : b.mean! - a.mean!) || a.variantIndex - b.variantIndex);
}

export function decidePromotion(scores: VariantScore[], rule: PromotionRule): PromotionDecision[] {
  if (rule.intervalOverlap) return decideByOverlap(scores, rule);
  const ranked = rankScores(scores, rule.mode);
  const keep =
    rule.topK !== undefined
      ? Math.min(rule.topK, ranked.length)
      : // The epsilon absorbs float error: 0.07 * 100 is 7.000000000000001, which must keep 7, not 8.
        Math.max(1, Math.ceil((rule.fraction ?? 1) * ranked.length - 1e-9));
  const ruleText = rule.topK !== undefined ? `top ${rule.topK}` : `best ${Math.round((rule.fraction ?? 1) * 100)}%`;
  const rankOf = new Map(ranked.map((s, i) => [s.variantIndex, i + 1]));
  return scores
    .map((s) => {
      const rank = rankOf.get(s.variantIndex) ?? null;
      if (rank === null) {
        return { ...s, rank, promoted: false, reason: `no successful trial reported ${rule.metric}` };
      }
      const promoted = rank <= keep;
      const verdict = promoted ? 'within' : 'outside';
      return { ...s, rank, promoted, reason: `rank ${rank} of ${ranked.length} by ${rule.mode} ${rule.metric}, ${verdict} ${ruleText}` };
    })
    .sort((a, b) => a.variantIndex - b.variantIndex);
}

/**
 * ASHA's asynchronous promotion from one rung (Li et al., "A System for Massively Parallel
 * Hyperparameter Tuning", 2020): of the k variants finished on the rung with a score, the best
 * floor(k/eta) may move up; those not moved up yet are returned, best first, at most `max`.
 * Floor, not the complete rung's ceiling: the first finished variant must not go up on its own.
 * Once the rung is complete the `fraction: 1/eta` rule promotes the rest of its best (≥ 1), so
 * every variant in the rung's final top share runs above it, plus any that led early on.
 */
export function decideAshaPromotions(
  finished: readonly VariantScore[],
  promoted: ReadonlySet<number>,
  rule: { mode: 'min' | 'max'; eta: number },
  max = Number.POSITIVE_INFINITY,
): number[] {
  const ranked = rankScores(finished, rule.mode);
  const allowed = Math.floor(ranked.length / rule.eta + 1e-9);
  return ranked
    .slice(0, allowed)
    .map((s) => s.variantIndex)
    .filter((v) => !promoted.has(v))
    .slice(0, Math.max(0, max));
}

const fmtInterval = (iv: Interval) => `[${fmt(iv[0], 4)}, ${fmt(iv[1], 4)}]`;
const overlaps = (a: Interval, b: Interval) => a[0] <= b[1] && b[0] <= a[1];
const validInterval = (iv: Interval | undefined): iv is Interval =>
  Array.isArray(iv) && Number.isFinite(iv[0]) && Number.isFinite(iv[1]) && iv[0] <= iv[1];

/** The `intervalOverlap` rule; ranks are by mean like the other rules. */
function decideByOverlap(scores: VariantScore[], rule: PromotionRule): PromotionDecision[] {
  const ranked = rankScores(scores, rule.mode);
  const rankOf = new Map(ranked.map((s, i) => [s.variantIndex, i + 1]));
  const best = ranked.find((s) => validInterval(s.interval));
  return scores
    .map((s) => {
      const rank = rankOf.get(s.variantIndex) ?? null;
      if (rank === null) return { ...s, rank, promoted: false, reason: `no successful trial reported ${rule.metric}` };
      if (!validInterval(s.interval)) return { ...s, rank, promoted: false, reason: `rank ${rank} of ${ranked.length}: no prediction interval at the next rung` };
      const b = best!;
      if (b.variantIndex === s.variantIndex) {
        return { ...s, rank, promoted: true, reason: `rank ${rank} of ${ranked.length} by ${rule.mode} ${rule.metric}: the best, interval ${fmtInterval(s.interval)}` };
      }
      const promoted = overlaps(s.interval, b.interval!);
      const verdict = promoted ? 'overlaps' : 'does not overlap';
      return {
        ...s,
        rank,
        promoted,
        reason: `rank ${rank} of ${ranked.length} by ${rule.mode} ${rule.metric}: interval ${fmtInterval(s.interval)} ${verdict} the best's (${b.variantName}) ${fmtInterval(b.interval!)}`,
      };
    })
    .sort((a, b) => a.variantIndex - b.variantIndex);
}

export interface NextRungOptions {
  /** Bootstrap replicates. Default 500. */
  bootstrap?: number;
  /** Interval level. Default 0.9. */
  level?: number;
  seed?: number;
}

export interface NextRungPrediction {
  mean: number | null;
  interval: Interval | null;
  /** 'extrapolation': fitted scaling law at the next scale; 'current-rung': the current rung's mean (rank transfer); 'none'. */
  basis: 'extrapolation' | 'current-rung' | 'none';
  reason: string;
}

/**
 * Predicts each variant's metric at the next rung (`nextScale`) from the rungs run so far, for
 * the `intervalOverlap` rule. Only variants present at the current (largest) rung get a
 * prediction: the others were not promoted before.
 *
 * - With ≥ 3 rungs and a scaling-law fit for every such variant: the extrapolation to
 *   `nextScale` and its bootstrap interval (see extrapolation.ts).
 * - Otherwise, for all variants alike: the current rung's mean and the percentile bootstrap
 *   interval of that mean over seeds. This rests on rank transfer — the assumption (Apollo's
 *   scaling consistency) that differences between variants carry over to the next rung, so
 *   comparing intervals at the current rung compares them at the next. Values are then in
 *   current-rung units, which is fine for overlap but not a forecast of the next rung's level.
 * One basis for all variants, so intervals compared by the rule are on the same footing.
 */
export function predictNextRung(obs: readonly Observation[], nextScale: number, opts: NextRungOptions = {}): Record<string, NextRungPrediction> {
  const finite = obs.filter((o) => Number.isFinite(o.value) && Number.isFinite(o.scale));
  const out: Record<string, NextRungPrediction> = {};
  if (finite.length === 0) return out;
  const current = Math.max(...finite.map((o) => o.scale));
  const byVariant = new Map<string, Observation[]>();
  for (const o of finite) byVariant.set(o.variant, [...(byVariant.get(o.variant) ?? []), o]);
  const names = [...byVariant.keys()].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  const active = names.filter((v) => byVariant.get(v)!.some((o) => o.scale === current));
  for (const v of names) if (!active.includes(v)) out[v] = { mean: null, interval: null, basis: 'none', reason: `not run at the current rung ${formatScale(current)}` };

  const level = opts.level ?? 0.9;
  const B = opts.bootstrap ?? 500;
  const rungCount = new Set(finite.map((o) => o.scale)).size;
  let fallback = rungCount < 3 ? `${rungCount} rung(s) so far, a scaling-law fit needs 3` : '';
  const fits: Record<string, NextRungPrediction> = {};
  if (!fallback) {
    for (const v of active) {
      const e = extrapolateVariant(byVariant.get(v)!, nextScale, { bootstrap: B, level, seed: mixSeed(opts.seed ?? 0, hashString(v)), backtest: false });
      if (!e.ok) {
        fallback = `no scaling-law fit for ${v}: ${e.reason}`;
        break;
      }
      fits[v] = { mean: e.prediction, interval: e.interval, basis: 'extrapolation', reason: `${e.model} fit extrapolated to ${formatScale(nextScale)} (${e.intervalMethod})` };
    }
  }
  for (const v of active) {
    if (!fallback) {
      out[v] = fits[v]!;
      continue;
    }
    const values = rungsOf(byVariant.get(v)!).find((r) => r.scale === current)!.values;
    const m = mean(values);
    const rand = mulberry32(mixSeed(opts.seed ?? 0, hashString(v), 0x9e));
    const reps: number[] = [];
    if (values.length > 1) {
      for (let b = 0; b < B; b++) {
        let s = 0;
        for (let k = 0; k < values.length; k++) s += values[randomIndex(rand, values.length)]!;
        reps.push(s / values.length);
      }
    }
    out[v] = {
      mean: m,
      interval: percentileInterval(reps, level) ?? [m, m],
      basis: 'current-rung',
      reason: `current rung ${formatScale(current)} mean over ${values.length} seed(s), assuming ranks transfer (${fallback})`,
    };
  }
  return Object.fromEntries(Object.keys(out).sort((a, b) => (a < b ? -1 : a > b ? 1 : 0)).map((k) => [k, out[k]!]));
}
