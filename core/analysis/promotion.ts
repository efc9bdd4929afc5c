/**
 * Promotion between rungs: which variants move up the scale ladder.
 * A pure function so the rule can be tested alone and recorded with its reasons.
 */

export interface PromotionRule {
  metric: string;
  mode: 'min' | 'max';
  topK?: number;
  fraction?: number;
}

export interface VariantScore {
  variantIndex: number;
  variantName: string;
  /** Mean of the metric over seeds; null when no seed produced it. */
  mean: number | null;
  count: number;
}

export interface PromotionDecision extends VariantScore {
  rank: number | null;
  promoted: boolean;
  reason: string;
}

export function decidePromotion(scores: VariantScore[], rule: PromotionRule): PromotionDecision[] {
  const ranked = scores
    .filter((s) => s.mean !== null && Number.isFinite(s.mean))
    .sort((a, b) => (rule.mode === 'min' ? a.mean! - b.mean! : b.mean! - a.mean!) || a.variantIndex - b.variantIndex);
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
