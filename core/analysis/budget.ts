/**
 * Budget accounting: what a sweep spent per rung, and what running every variant × seed at
 * every rung (the "full grid") would have cost, so a ladder sweep can say how much it saved.
 *
 * - Cost of a trial: its GPU-seconds when it requested GPUs, else its wall seconds. A CPU-only
 *   trial thus counts as one device for its wall time; when any trial that ran is CPU-only the
 *   unit is reported as 'device-seconds' instead of 'gpu-seconds'.
 * - Trials that did not run cost 0: 'planned', 'skipped' (not promoted) and 'reused' (result
 *   reused from an earlier trial of the same identity — the caller maps a succeeded trial with
 *   `reusedFrom` to status 'reused'). Everything else (succeeded, failed, cancelled, running)
 *   ran and counts what it recorded.
 * - Full grid: Σ over the plan's rungs of meanCostPerTrial(rung) × variants × seeds, the mean
 *   taken over the trials that ran at that rung. A rung where nothing ran gets its mean cost
 *   extrapolated from the growth between the two previous rungs' means (geometric: the ratio
 *   last/previous per rung); with fewer than two earlier measured rungs the full grid is unknown
 *   (null) and `notes` says why.
 */

export interface BudgetTrial {
  rungIndex: number;
  scale: number | null;
  variant: string;
  seed: number;
  status: string;
  gpuSeconds: number;
  wallSeconds: number;
  gpus: number;
}

export interface BudgetPlan {
  variants: number;
  seeds: number;
  rungs: number;
}

export interface RungBudget {
  rungIndex: number;
  scale: number | null;
  /** Trials recorded at this rung (any status). */
  trials: number;
  /** Trials that ran (cost counted). */
  ran: number;
  spent: number;
  /** Mean cost of a trial that ran; null when none ran. */
  meanCostPerTrial: number | null;
  /** The cost per trial used for the full grid: measured, extrapolated, or null. */
  gridCostPerTrial: number | null;
  estimated: boolean;
}

export interface BudgetReport {
  perRung: RungBudget[];
  spent: number;
  fullGrid: number | null;
  saved: number | null;
  savedShare: number | null;
  unit: 'gpu-seconds' | 'device-seconds';
  notes: string[];
}

const NOT_RUN = new Set(['planned', 'skipped', 'reused']);

export function trialCost(t: Pick<BudgetTrial, 'gpus' | 'gpuSeconds' | 'wallSeconds'>): number {
  const c = t.gpus > 0 ? t.gpuSeconds : t.wallSeconds;
  return Number.isFinite(c) && c > 0 ? c : 0;
}

export function budgetReport(trials: readonly BudgetTrial[], plan: BudgetPlan): BudgetReport {
  const nRungs = Math.max(plan.rungs, ...trials.map((t) => t.rungIndex + 1), 0);
  const notes: string[] = [];
  let cpu = false;
  const perRung: RungBudget[] = Array.from({ length: nRungs }, (_, r) => {
    const at = trials.filter((t) => t.rungIndex === r);
    const ran = at.filter((t) => !NOT_RUN.has(t.status));
    if (ran.some((t) => !(t.gpus > 0))) cpu = true;
    const spent = ran.reduce((s, t) => s + trialCost(t), 0);
    const meanCost = ran.length ? spent / ran.length : null;
    const scale = at.find((t) => t.scale !== null)?.scale ?? null;
    return { rungIndex: r, scale, trials: at.length, ran: ran.length, spent, meanCostPerTrial: meanCost, gridCostPerTrial: meanCost, estimated: false };
  });
  for (const rung of perRung) {
    if (rung.meanCostPerTrial !== null) continue;
    const known = perRung.filter((p) => p.rungIndex < rung.rungIndex && p.gridCostPerTrial !== null);
    const last = known[known.length - 1];
    const prev = known[known.length - 2];
    if (last && prev && prev.gridCostPerTrial! > 0) {
      const growth = (last.gridCostPerTrial! / prev.gridCostPerTrial!) ** (1 / (last.rungIndex - prev.rungIndex));
      rung.gridCostPerTrial = last.gridCostPerTrial! * growth ** (rung.rungIndex - last.rungIndex);
      rung.estimated = true;
      notes.push(`rung ${rung.rungIndex}: nothing ran; cost per trial extrapolated from rungs ${prev.rungIndex}→${last.rungIndex} (×${growth.toPrecision(3)} a rung)`);
    } else {
      notes.push(`rung ${rung.rungIndex}: nothing ran and fewer than two earlier rungs were measured, so the full grid's cost is unknown`);
    }
  }
  const spent = perRung.reduce((s, r) => s + r.spent, 0);
  const gridRungs = perRung.slice(0, Math.max(plan.rungs, 0));
  const fullGrid =
    gridRungs.length > 0 && gridRungs.every((r) => r.gridCostPerTrial !== null)
      ? gridRungs.reduce((s, r) => s + r.gridCostPerTrial! * plan.variants * plan.seeds, 0)
      : null;
  const saved = fullGrid === null ? null : fullGrid - spent;
  const savedShare = fullGrid === null || saved === null || !(fullGrid > 0) ? null : saved / fullGrid;
  if (cpu) notes.push('some trials ran without GPUs: their wall seconds count as one device each');
  return { perRung, spent, fullGrid, saved, savedShare, unit: cpu ? 'device-seconds' : 'gpu-seconds', notes };
}
