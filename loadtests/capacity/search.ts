/**
 * The capacity search: the offered rate doubles from `start` until a step breaks a threshold
 * (or `max` holds), then bisects between the last passing and the first failing rate until they
 * are within `precision`. The knee is the highest rate that held every threshold. Pure apart from
 * `runStep`: the capacity workflow (workflows/capacity.ts) runs it in Temporal's sandbox.
 */
import type { StepRecord } from './step';

export interface SearchOptions {
  start: number;
  max: number;
  precision: number;
  maxSteps: number;
  signal?: AbortSignal;
}

export type StopReason = 'converged' | 'reached max' | 'first step failed' | 'target down' | 'incomplete step' | 'max steps' | 'cancelled';

/** What the search reads of a step (the workflow holds steps without their histograms). */
export type SearchStep = Pick<StepRecord, 'passed' | 'incomplete' | 'started' | 'succeeded'>;

export interface SearchOutcome<S extends SearchStep = StepRecord> {
  steps: S[];
  /** Highest passing offered rate; null when the first step failed. */
  knee: number | null;
  /** True when the knee is only a lower bound (max reached, or steps ran out before a failure). */
  kneeIsLowerBound: boolean;
  stopReason: StopReason;
}

export async function capacitySearch<S extends SearchStep>(runStep: (rate: number) => Promise<S>, options: SearchOptions): Promise<SearchOutcome<S>> {
  const steps: S[] = [];
  let lastPass: number | null = null;
  let firstFail: number | null = null;
  let rate = options.start;
  const done = (stopReason: StopReason): SearchOutcome<S> => ({ steps, knee: lastPass, kneeIsLowerBound: firstFail === null && lastPass !== null, stopReason });
  while (steps.length < options.maxSteps) {
    if (options.signal?.aborted) return done('cancelled');
    const step = await runStep(rate);
    steps.push(step);
    if (options.signal?.aborted) return done('cancelled');
    if (step.incomplete) return done('incomplete step');
    if (step.passed) lastPass = rate;
    else {
      firstFail = rate;
      // Nothing answered: a refused connection or a 5xx wall, which a lower rate will not cure.
      if (step.started > 0 && step.succeeded === 0) return done('target down');
      if (lastPass === null) return done('first step failed');
    }
    if (firstFail === null) {
      if (rate >= options.max) return done('reached max');
      rate = Math.min(rate * 2, options.max);
      continue;
    }
    if (firstFail - lastPass! <= options.precision * lastPass!) return done('converged');
    rate = (lastPass! + firstFail) / 2;
  }
  return done('max steps');
}
