/**
 * Figures for promotion ladders: how often a ladder keeps the truly best variant, beside how often
 * the full grid finds it, and what the ladder saves, measured from simulated run costs.
 *
 *   npx tsx core/analysis/simulate-ladder.ts [simulations per cell, default 300]
 *
 * 12 variants (lr × width) × 3 seeds × 4 rungs (N = 1e5 … 1e8), final loss
 * L = (1.5 + 50·N^(−0.3)) · m_v(N) + noise·gauss. Scenarios for m_v(N):
 *  - `same ranking`: the synthetic job's closed form (lr and width effects multiply the base), so
 *    the ranking is the same at every scale — the easy case;
 *  - `crossing curves`: wider models start worse and improve faster (their factor falls with N),
 *    so the width ranking flips between 1e6 and 1e7;
 *  - `late bloomer`: one variant (lr=1e-4,width=512) ranks 4th–5th of 12 at 1e5 and is the best
 *    from 1e7 on — the case a narrow ladder loses.
 * The truth is the variant with the lowest noiseless loss at 1e8; "full grid" picks the lowest
 * noisy mean at 1e8 over all variants, a ladder the lowest among those it promoted there (a
 * ladder trial's result is the full grid's same trial, as trial identity guarantees). A trial's
 * cost is √(N/1e5) · lognormal(σ = 0.3) seconds; saved = 1 − Σ ladder costs / Σ full-grid costs.
 */
import { decidePromotion, type PromotionRule } from './promotion';
import { gaussian, mixSeed, mulberry32 } from './rng';
import { formatShare, mean } from './stats';

const SCALES = [1e5, 1e6, 1e7, 1e8];
const SEEDS = 3;
const LRS = [1e-4, 3e-4, 1e-3, 3e-3];
const WIDTHS = [128, 256, 512];
const VARIANTS = LRS.flatMap((lr) => WIDTHS.map((width) => ({ name: `lr=${lr},width=${width}`, lr, width })));

const lrFactor = (lr: number) => 1 + 0.1 * Math.abs(Math.log10(lr / 3e-4));
const base = (n: number) => 1.5 + 50 * n ** -0.3;

export const SCENARIOS: Record<string, (n: number, lr: number, width: number) => number> = {
  'same ranking': (n, lr, width) => base(n) * lrFactor(lr) * (1 + 0.05 * (Math.sqrt(256 / width) - 1)),
  // Width factor 1 + 0.015·log2(width/256)·(log10 N − 6.5): wider is worse below N ≈ 3e6, better above.
  'crossing curves': (n, lr, width) => base(n) * lrFactor(lr) * (1 - 0.015 * Math.log2(width / 256) * (Math.log10(n) - 6.5)),
  'late bloomer': (n, lr, width) => {
    if (lr === 1e-4 && width === 512) return base(n) * (0.95 + 0.08 * (1e5 / n) ** 0.4);
    return base(n) * lrFactor(lr) * (1 + 0.05 * (Math.sqrt(256 / width) - 1));
  },
};

export const RULES: Record<string, Omit<PromotionRule, 'metric' | 'mode'>> = {
  'top-2': { topK: 2 },
  'top-3': { topK: 3 },
  'top-6': { topK: 6 },
  'best 50%': { fraction: 0.5 },
};

export interface CellResult {
  ladderTrueBest: number;
  gridTrueBest: number;
  saved: number;
}

export function simulateCell(scenario: string, rule: Omit<PromotionRule, 'metric' | 'mode'>, noise: number, sims: number, seed = 0): CellResult {
  const law = SCENARIOS[scenario]!;
  const top = SCALES.length - 1;
  const truth = VARIANTS.map((v) => law(SCALES[top]!, v.lr, v.width));
  const trueBest = truth.indexOf(Math.min(...truth));
  let ladderHits = 0;
  let gridHits = 0;
  const saved: number[] = [];
  for (let s = 0; s < sims; s++) {
    const rand = mulberry32(mixSeed(seed, s, 0x5a));
    // value[v][rung][seed], cost[v][rung][seed]: the full grid, of which a ladder reads a subset.
    const value = VARIANTS.map((v) => SCALES.map((n) => Array.from({ length: SEEDS }, () => law(n, v.lr, v.width) + noise * gaussian(rand))));
    const cost = VARIANTS.map(() => SCALES.map((n) => Array.from({ length: SEEDS }, () => Math.sqrt(n / 1e5) * Math.exp(0.3 * gaussian(rand)))));
    const meanAt = (v: number, r: number) => mean(value[v]![r]!);
    const argBest = (vs: number[]) => vs.reduce((a, b) => (meanAt(b, top) < meanAt(a, top) ? b : a));
    let active = VARIANTS.map((_, i) => i);
    let spent = 0;
    SCALES.forEach((_, r) => {
      for (const v of active) spent += cost[v]![r]!.reduce((x, y) => x + y, 0);
      if (r < top) {
        const scores = active.map((v) => ({ variantIndex: v, variantName: VARIANTS[v]!.name, mean: meanAt(v, r), count: SEEDS }));
        active = decidePromotion(scores, { metric: 'loss', mode: 'min', ...rule })
          .filter((d) => d.promoted)
          .map((d) => d.variantIndex);
      }
    });
    const full = cost.flat(2).reduce((x, y) => x + y, 0);
    if (argBest(active) === trueBest) ladderHits++;
    if (argBest(VARIANTS.map((_, i) => i)) === trueBest) gridHits++;
    saved.push(1 - spent / full);
  }
  return { ladderTrueBest: ladderHits / sims, gridTrueBest: gridHits / sims, saved: mean(saved) };
}

if (require.main === module) {
  const sims = Number(process.argv[2] ?? 300);
  const header = ['scenario', 'noise', 'rule', 'P(ladder: true best)', 'P(full grid: true best)', 'saved (measured)'];
  const rows: string[][] = [];
  for (const scenario of Object.keys(SCENARIOS)) {
    for (const noise of [0.01, 0.03]) {
      for (const [name, rule] of Object.entries(RULES)) {
        const c = simulateCell(scenario, rule, noise, sims);
        rows.push([scenario, String(noise), name, formatShare(c.ladderTrueBest), formatShare(c.gridTrueBest), formatShare(c.saved)]);
      }
    }
  }
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (cells: string[]) => cells.map((c, i) => c.padEnd(widths[i]!)).join(' | ');
  console.log(`12 variants × ${SEEDS} seeds × 4 rungs (1e5..1e8), ${sims} simulations per row`);
  console.log(line(header));
  console.log(line(widths.map((w) => '-'.repeat(w))));
  for (const r of rows) console.log(line(r));
}
