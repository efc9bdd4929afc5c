/**
 * Activities of adaptive search (a spec's `search.asha`): which variants the sweep workflow may
 * promote to the next rung now, while the rung below is still running. Read-only: a promotion is
 * just the workflow running a variant's planned trials on the next rung early; the complete
 * rung's decision, with its skips and its record, stays `finishRung`'s (core/trials/state.ts).
 *
 * Registered beside `createActivities` where the worker builds its activities.
 */
import { ApplicationFailure } from '@temporalio/common';
import { and, asc, eq, inArray, sql } from 'drizzle-orm';
import { decideAshaPromotions } from '../core/analysis/promotion';
import type { Db } from '../core/db/client';
import { FINISHED_TRIAL_STATUSES, trials } from '../core/db/schema';
import { variantScoreColumns } from '../core/sweeps/metric';
import { createTrialState, SweepNotFoundError, type TrialAttemptRef } from '../core/trials/state';

/** Variants one call promotes at most (its result stays small whatever the window). */
export const MAX_PROMOTIONS_PER_CALL = 256;

export interface AshaPromotionsInput {
  sweepId: string;
  /** The lowest rung still running; rungs below it are complete and decided by finishRung. */
  fromRung: number;
  /** promoted[r]: variant indices already promoted into rung r (early, by earlier calls). */
  promoted: number[][];
  /** Variants to promote at most (the workflow's free slots). */
  max: number;
}

export interface AshaPromotion {
  /** The rung the variant moves up to. */
  rung: number;
  variantIndex: number;
  /** Its planned trials on that rung (one per seed), with the attempt to run. */
  attempts: TrialAttemptRef[];
}

function checkInput(input: unknown): AshaPromotionsInput {
  const bad = (field: string, why: string): never => {
    throw ApplicationFailure.nonRetryable(`ashaPromotions: ${field} ${why}`, 'BadInput');
  };
  const { sweepId, fromRung, promoted, max } = (input ?? {}) as Partial<Record<keyof AshaPromotionsInput, unknown>>;
  if (typeof sweepId !== 'string' || sweepId.length === 0) bad('sweepId', 'must be a non-empty string');
  if (!Number.isSafeInteger(fromRung) || (fromRung as number) < 0) bad('fromRung', 'must be an integer >= 0');
  if (!Number.isSafeInteger(max) || (max as number) < 0) bad('max', 'must be an integer >= 0');
  if (!Array.isArray(promoted) || !promoted.every((r) => Array.isArray(r) && r.every((v) => Number.isSafeInteger(v)))) {
    bad('promoted', 'must be a list of lists of variant indices');
  }
  return { sweepId: sweepId as string, fromRung: fromRung as number, promoted: promoted as number[][], max: Math.min(max as number, MAX_PROMOTIONS_PER_CALL) };
}

export function createSearchActivities(deps: { db: Db }) {
  const { db } = deps;
  const state = createTrialState(db);

  return {
    /**
     * ASHA's early promotions, highest rung first (a variant near the top finishes the search
     * sooner): per rung from the top down to `fromRung`, the variants whose every trial there is
     * finished are ranked, and those within the best floor(k/eta) not promoted yet move up.
     */
    async ashaPromotions(raw: AshaPromotionsInput): Promise<AshaPromotion[]> {
      const input = checkInput(raw);
      let spec;
      try {
        ({ spec } = await state.sweepInfo(input.sweepId));
      } catch (err) {
        if (err instanceof SweepNotFoundError) throw ApplicationFailure.nonRetryable(err.message, 'NotFound');
        throw err;
      }
      const asha = spec.search?.asha;
      const rungs = spec.scale?.rungs.length ?? 1;
      if (!asha || input.max === 0) return [];
      const out: AshaPromotion[] = [];
      for (let rung = rungs - 2; rung >= input.fromRung && out.length < input.max; rung--) {
        const scores = await db
          .select({
            ...variantScoreColumns(asha.metric),
            done: sql<boolean>`bool_and(${inArray(trials.status, [...FINISHED_TRIAL_STATUSES])})`,
          })
          .from(trials)
          .where(and(eq(trials.sweepId, input.sweepId), eq(trials.rungIndex, rung)))
          .groupBy(trials.variantIndex, trials.variantName);
        const finished = scores.filter((s) => s.done);
        const already = new Set(input.promoted[rung + 1] ?? []);
        const chosen = decideAshaPromotions(finished, already, asha, input.max - out.length);
        if (chosen.length === 0) continue;
        const planned = await db
          .select({ id: trials.id, variantIndex: trials.variantIndex, attempts: trials.attempts })
          .from(trials)
          .where(and(eq(trials.sweepId, input.sweepId), eq(trials.rungIndex, rung + 1), inArray(trials.variantIndex, chosen), eq(trials.status, 'planned')))
          .orderBy(asc(trials.variantIndex), asc(trials.seed), asc(trials.id));
        for (const variantIndex of chosen) {
          const attempts = planned.filter((t) => t.variantIndex === variantIndex).map((t) => ({ trialId: t.id, attempt: t.attempts + 1 }));
          out.push({ rung: rung + 1, variantIndex, attempts });
        }
      }
      return out;
    },
  };
}

export type SearchActivities = ReturnType<typeof createSearchActivities>;
