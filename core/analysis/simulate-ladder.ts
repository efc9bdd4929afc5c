/**
 * Figures for the synthetic ladder (issue 7): simulates the `synthetic` job's closed form in
 * TypeScript and compares a top-3 promotion ladder with the full grid.
 *
 *   npx tsx core/analysis/simulate-ladder.ts
 *
 * Model (jobs/ladder_jobs/kinds/synthetic.py, final loss): L = (c + a·N^(−α)) · lrFactor · widthFactor
 * + noise·gauss, with c = 1.5, a = 50, α = 0.3, lrFactor = 1 + 0.1·|log10(lr / 3e-4)|,
 * widthFactor = 1 + 0.05·(√(256 / width) − 1). 12 variants (lr × width) × 3 seeds × 4 rungs
 * (N = 1e5 … 1e8). The ladder runs every variant at rung 0 and promotes the top 3 by mean loss
 * to each next rung; the full grid runs everything (a ladder trial's result is the full grid's
 * same trial, as trial identity guarantees). Trial cost: ∝ N^0.5 GPU-seconds, or ∝ 2^rung
 * (steps doubling per rung). Over 20 simulator seeds it prints the winner-match rate, the share
 * of GPU-seconds saved, and the leave-largest-out backtest of the ladder's extrapolations.
 */
import { budgetReport, type BudgetTrial } from './budget';
import { analyzeConsistency } from './consistency';
import { extrapolateVariant } from './extrapolation';
import { decidePromotion } from './promotion';
import { gaussian, mixSeed, mulberry32 } from './rng';
import { mean } from './stats';
import type { Observation } from './types';

const SCALES = [1e5, 1e6, 1e7, 1e8];
const SEEDS = 3;
const LRS = [1e-4, 3e-4, 1e-3, 3e-3];
const WIDTHS = [128, 256, 512];
const VARIANTS = LRS.flatMap((lr) => WIDTHS.map((width) => ({ name: `lr=${lr},width=${width}`, lr, width })));

function finalLoss(n: number, lr: number, width: number): number {
  const base = 1.5 + 50 * n ** -0.3;
  return base * (1 + 0.1 * Math.abs(Math.log10(lr / 3e-4))) * (1 + 0.05 * (Math.sqrt(256 / width) - 1));
}

interface SimResult {
  winnerMatch: boolean;
  savedSqrt: number;
  savedDoubling: number;
  backtests: { error: number; width: number; inside: boolean }[];
  criticalRung: number | null;
}

function simulate(simSeed: number, noise: number): SimResult {
  const rand = mulberry32(mixSeed(simSeed, 0x51));
  // The full grid's results; the ladder reads the subset it runs.
  const full: Observation[] = [];
  for (const s of SCALES) for (const v of VARIANTS) for (let k = 0; k < SEEDS; k++) full.push({ variant: v.name, scale: s, seed: k, value: finalLoss(s, v.lr, v.width) + noise * gaussian(rand) });
  const at = (variant: string, scale: number) => full.filter((o) => o.variant === variant && o.scale === scale);

  let active = VARIANTS.map((v) => v.name);
  const ladder: Observation[] = [];
  const ran: { rung: number; variant: string }[] = [];
  SCALES.forEach((s, rung) => {
    for (const v of active) {
      ladder.push(...at(v, s));
      ran.push({ rung, variant: v });
    }
    if (rung + 1 < SCALES.length) {
      const scores = active.map((v, i) => ({ variantIndex: i, variantName: v, mean: mean(at(v, s).map((o) => o.value)), count: SEEDS }));
      active = decidePromotion(scores, { metric: 'loss', mode: 'min', topK: 3 })
        .filter((d) => d.promoted)
        .map((d) => d.variantName);
    }
  });
  const top = SCALES[SCALES.length - 1]!;
  const best = (names: string[]) => names.map((v) => ({ v, m: mean(at(v, top).map((o) => o.value)) })).sort((a, b) => a.m - b.m)[0]!.v;
  const winnerMatch = best(active) === best(VARIANTS.map((v) => v.name));

  const saved = (cost: (rung: number) => number) => {
    const trials: BudgetTrial[] = [];
    SCALES.forEach((s, rung) => {
      for (const v of VARIANTS) {
        const runs = ran.some((r) => r.rung === rung && r.variant === v.name);
        for (let k = 0; k < SEEDS; k++) trials.push({ rungIndex: rung, scale: s, variant: v.name, seed: k, status: runs ? 'succeeded' : 'skipped', gpuSeconds: runs ? cost(rung) : 0, wallSeconds: runs ? cost(rung) : 0, gpus: 1 });
      }
    });
    return budgetReport(trials, { variants: VARIANTS.length, seeds: SEEDS, rungs: SCALES.length }).savedShare!;
  };

  const backtests = active.map((v) => {
    const e = extrapolateVariant(ladder.filter((o) => o.variant === v), top, { bootstrap: 200, seed: simSeed });
    if (!e.ok || !e.backtest) throw new Error(`no backtest for ${v}: ${e.ok ? e.backtestSkipped : e.reason}`);
    return { error: e.backtest.error, width: e.backtest.interval[1] - e.backtest.interval[0], inside: e.backtest.withinInterval };
  });
  const c = analyzeConsistency(full, { mode: 'min', bootstrap: 0 });
  return {
    winnerMatch,
    savedSqrt: saved((rung) => Math.sqrt(SCALES[rung]!) / 10),
    savedDoubling: saved((rung) => 60 * 2 ** rung),
    backtests,
    criticalRung: c.criticalRung.scale,
  };
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
};
const pct = (x: number) => `${(100 * x).toFixed(1)}%`;

const rows: string[][] = [];
for (const noise of [0.01, 0.03, 0.1]) {
  const sims = Array.from({ length: 20 }, (_, i) => simulate(i, noise));
  const bts = sims.flatMap((s) => s.backtests);
  const medErr = median(bts.map((b) => Math.abs(b.error)));
  const medWidth = median(bts.map((b) => b.width));
  const crit = sims.map((s) => (s.criticalRung === null ? 'none' : String(s.criticalRung)));
  const critMode = [...new Set(crit)].map((c) => `${c}×${crit.filter((x) => x === c).length}`).join(' ');
  rows.push([
    String(noise),
    `${sims.filter((s) => s.winnerMatch).length}/20`,
    pct(mean(sims.map((s) => s.savedSqrt))),
    pct(mean(sims.map((s) => s.savedDoubling))),
    medErr.toPrecision(3),
    medWidth.toPrecision(3),
    (medErr / medWidth).toFixed(2),
    `${pct(bts.filter((b) => b.inside).length / bts.length)} (${bts.length})`,
    critMode,
  ]);
}
const header = ['noise', 'winner match', 'saved (cost∝N^0.5)', 'saved (cost∝2^rung)', 'median |err|', 'median 90% width', '|err|/width', 'backtests inside', 'critical rung (full grid)'];
const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
const line = (cells: string[]) => cells.map((c, i) => c.padEnd(widths[i]!)).join('  ');
console.log('Synthetic ladder: 12 variants × 3 seeds × 4 rungs (1e5..1e8), top-3 promotion, 20 simulator seeds per row');
console.log(line(header));
console.log(line(widths.map((w) => '-'.repeat(w))));
for (const r of rows) console.log(line(r));
console.log('backtest: each promoted variant fitted on rungs 1e5..1e7 (power law with offset, 3 seeds, seed bootstrap) and predicted at 1e8');
