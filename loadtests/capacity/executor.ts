/**
 * The open-model arrival-rate executor (k6's constant- and ramping-arrival-rate): operation i
 * starts when the profile's cumulative planned count passes i, whether or not earlier ones have
 * answered, so a slow target shows up as latency and errors, never as a generator that quietly
 * slows down. An operation due while `maxInFlight` are still in flight is dropped and counted.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { newHistogram, recordMs, type LatencyHistogram } from './histogram';
import { plannedOperations, profileDurationMs, type LoadProfile } from './scenario';

/** One operation; rejects (or throws) on failure. `signal` aborts at the timeout or at a stop. */
export type Operation = (signal: AbortSignal, index: number) => Promise<void>;

export interface ExecutorOptions {
  load: LoadProfile;
  operation: Operation;
  /** Stops scheduling and aborts in-flight operations (a cancelled run). */
  signal?: AbortSignal;
  /** Called about once a second with the counts so far; return true to stop the step early (abort-on-fail). */
  onTick?: (counts: ExecutorCounts) => boolean | void;
  /** Scheduler granularity (default 5 ms): due operations are started in one go per wake-up. */
  tickMs?: number;
}

export interface ExecutorCounts {
  planned: number;
  started: number;
  succeeded: number;
  failed: number;
  dropped: number;
  inFlight: number;
}

export interface ExecutorResult extends ExecutorCounts {
  /** The profile's duration, s (also when stopped early: `stoppedEarly` says so). */
  durationS: number;
  /** Seconds from the first start to the last answer. */
  elapsedS: number;
  /** Latency of succeeded operations. */
  histogram: LatencyHistogram;
  /** First few distinct error messages with counts (operations throw their own texts, never a token). */
  errors: Array<{ message: string; count: number }>;
  stoppedEarly: 'abort-on-fail' | 'cancelled' | null;
}

const MAX_ERROR_KINDS = 10;

export async function runArrivalRate(options: ExecutorOptions): Promise<ExecutorResult> {
  const { load, operation } = options;
  const tickMs = options.tickMs ?? 5;
  const totalMs = profileDurationMs(load);
  const histogram = newHistogram();
  const errors = new Map<string, number>();
  const counts: ExecutorCounts = { planned: 0, started: 0, succeeded: 0, failed: 0, dropped: 0, inFlight: 0 };
  const inFlight = new Set<Promise<void>>();
  const stop = new AbortController();
  const onOuterAbort = () => stop.abort();
  options.signal?.addEventListener('abort', onOuterAbort, { once: true });
  let stoppedEarly: ExecutorResult['stoppedEarly'] = options.signal?.aborted ? 'cancelled' : null;

  const noteError = (err: unknown) => {
    const text = String((err as Error)?.message ?? err).slice(0, 200);
    if (errors.has(text) || errors.size < MAX_ERROR_KINDS) errors.set(text, (errors.get(text) ?? 0) + 1);
    else errors.set('(other errors)', (errors.get('(other errors)') ?? 0) + 1);
  };

  const launch = (index: number) => {
    counts.started++;
    counts.inFlight++;
    const signal = AbortSignal.any([stop.signal, AbortSignal.timeout(load.timeout)]);
    const t0 = performance.now();
    const p = (async () => {
      try {
        await operation(signal, index);
        if (signal.aborted) throw signal.reason ?? new Error('aborted');
        counts.succeeded++;
        recordMs(histogram, performance.now() - t0);
      } catch (err) {
        counts.failed++;
        noteError(!signal.aborted ? err : stop.signal.aborted ? new Error('stopped before it answered') : new Error(`no answer within the timeout (${load.timeout} ms)`));
      } finally {
        counts.inFlight--;
      }
    })();
    inFlight.add(p);
    void p.finally(() => inFlight.delete(p));
  };

  const t0 = performance.now();
  let nextTick = 1000;
  while (!stop.signal.aborted) {
    const now = performance.now() - t0;
    const due = Math.floor(plannedOperations(load, now) + 1e-9);
    while (counts.planned < due) {
      const index = counts.planned++;
      if (counts.inFlight >= load.maxInFlight) counts.dropped++;
      else launch(index);
    }
    if (now >= nextTick) {
      nextTick += 1000;
      if (options.onTick?.({ ...counts })) {
        stoppedEarly = 'abort-on-fail';
        break;
      }
    }
    if (now >= totalMs) break;
    await sleep(Math.min(tickMs, Math.max(0, totalMs - now)));
  }
  if (options.signal?.aborted) stoppedEarly = 'cancelled';
  // Operations started in time still count: wait for them up to their own timeout, then stop them.
  if (stoppedEarly) stop.abort();
  await Promise.race([Promise.allSettled([...inFlight]), sleep(load.timeout + 1000)]);
  stop.abort();
  await Promise.allSettled([...inFlight]);
  options.signal?.removeEventListener('abort', onOuterAbort);
  return {
    ...counts,
    durationS: totalMs / 1000,
    elapsedS: (performance.now() - t0) / 1000,
    histogram,
    errors: [...errors].map(([message, count]) => ({ message, count })),
    stoppedEarly,
  };
}
