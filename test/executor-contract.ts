/**
 * The contract every executor passes (local, Kubernetes, simulated), as node:test cases.
 *
 *     executorContract('local', async () => ({ executor, cleanup, runsOf, leftRunning }));
 *
 * The jobs are of kind `synthetic` (jobs/ladder_jobs/kinds/synthetic.py), kept short so that the
 * whole suite runs in seconds. `setup` runs once per case; `cleanup` after it.
 *
 * `runsOf` and `leftRunning` look past the executor's own bookkeeping (processes, Jobs and pods,
 * the simulation's internals): a status() that says "cancelled" or a submit() that returns an
 * equal ref proves nothing about what actually ran.
 *
 * The `wait` cases run where the executor offers wait(), and are skipped (with that reason)
 * where it does not.
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { afterEach, beforeEach, describe, it } from 'node:test';

import {
  type ExecutionRef,
  type ExecutionStatus,
  type Executor,
  type JobLaunch,
  type Resources,
  isTerminal,
} from '../workers/executors/types';

export interface ContractSetup {
  executor: Executor;
  cleanup(): Promise<void>;
  /** How many times the job of this execution was started (processes spawned, pods created...). */
  runsOf(launch: JobLaunch): Promise<number>;
  /** Whether anything of the execution still runs (a process, a pod, a simulated run or its POSTs). */
  leftRunning(ref: ExecutionRef): Promise<boolean>;
  /**
   * Whether logs() carries the job's own output. False only where no job output exists (pods
   * faked by KWOK run no container); then the contract checks logs() resolves, not its content.
   */
  logsShowJobOutput?: boolean;
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** Polls status until it is terminal; throws with the last status after timeoutMs. */
export async function waitForTerminal(
  executor: Executor,
  ref: ExecutionRef,
  timeoutMs = 30_000,
  pollMs = 50,
): Promise<ExecutionStatus> {
  return waitForStatus(executor, ref, isTerminal, timeoutMs, pollMs);
}

/** Polls status until `predicate` holds; throws with the last status after timeoutMs. */
export async function waitForStatus(
  executor: Executor,
  ref: ExecutionRef,
  predicate: (s: ExecutionStatus) => boolean,
  timeoutMs = 30_000,
  pollMs = 50,
): Promise<ExecutionStatus> {
  const deadline = Date.now() + timeoutMs;
  let last: ExecutionStatus | undefined;
  for (;;) {
    last = await executor.status(ref);
    if (predicate(last)) return last;
    if (Date.now() >= deadline) {
      throw new Error(`${ref.executionId}: no matching status within ${timeoutMs} ms; last ${JSON.stringify(last)}`);
    }
    await sleep(pollMs);
  }
}

/** Polls `check` until it holds; throws naming `what` after timeoutMs. */
async function waitUntil(what: string, check: () => Promise<boolean>, timeoutMs: number, pollMs = 50): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() >= deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(pollMs);
  }
}

/** Fluent builder of JobLaunch fixtures: `aLaunch().withConfig({ steps: 5 }).attempt(2).build()`. */
export class LaunchBuilder {
  private trialId = `t-${randomUUID().slice(0, 12)}`;
  private attemptNo = 1;
  private kind = 'synthetic';
  private config: Record<string, unknown> = { steps: 5 };
  private resources: Resources = { gpus: 0, cpu: 1, memory: '1Gi' };
  private env: Record<string, string> = {};
  private labels: Record<string, string> = { sweep: 'contract-test' };

  /** Sets the trial id (the execution id follows: `<trialId>-a<attempt>`). */
  trial(trialId: string): this {
    this.trialId = trialId;
    return this;
  }
  attempt(n: number): this {
    this.attemptNo = n;
    return this;
  }
  ofKind(kind: string): this {
    this.kind = kind;
    return this;
  }
  /** Merges into the config (default `{ steps: 5 }`). */
  withConfig(config: Record<string, unknown>): this {
    this.config = { ...this.config, ...config };
    return this;
  }
  /** Replaces the whole config. */
  withExactConfig(config: Record<string, unknown>): this {
    this.config = { ...config };
    return this;
  }
  withGpus(gpus: number): this {
    this.resources = { ...this.resources, gpus };
    return this;
  }
  withEnv(env: Record<string, string>): this {
    this.env = { ...this.env, ...env };
    return this;
  }
  withLabels(labels: Record<string, string>): this {
    this.labels = { ...this.labels, ...labels };
    return this;
  }
  build(): JobLaunch {
    return {
      executionId: `${this.trialId}-a${this.attemptNo}`,
      trialId: this.trialId,
      attempt: this.attemptNo,
      kind: this.kind,
      config: { ...this.config },
      resources: { ...this.resources },
      env: { LADDER_TRIAL_ID: this.trialId, LADDER_ATTEMPT: String(this.attemptNo), ...this.env },
      labels: { ...this.labels },
    };
  }
}

export function aLaunch(): LaunchBuilder {
  return new LaunchBuilder();
}

/** A job that runs until cancelled (but stops within ~0.2 s of SIGTERM). */
const LONG_CONFIG = { steps: 10_000, step_sleep: 0.2 };

/** Upper bound on any wait() that should end: a hang fails the case instead of stalling the suite. */
const WAIT_LIMIT_MS = 30_000;
/**
 * How much later than a 50 ms status() poller wait() may see a job end. Generous for a loaded
 * machine, and still far below what a fallback poll of several seconds would take.
 */
const PROMPT_MS = 1_500;
/** "At once" for a wait() on a job that is already over (no job has to end, nothing to learn). */
const AT_ONCE_MS = 1_000;

/** wait() that must end by itself within WAIT_LIMIT_MS (a timed-out wait may still look terminal). */
async function waitBounded(executor: Executor, ref: ExecutionRef): Promise<ExecutionStatus> {
  const signal = AbortSignal.timeout(WAIT_LIMIT_MS);
  const status = await executor.wait!(ref, signal);
  assert.equal(signal.aborted, false, `wait() of ${ref.executionId} did not end within ${WAIT_LIMIT_MS} ms; last ${JSON.stringify(status)}`);
  return status;
}

/** Resolves (never rejects) once `p` settles, with how long that took from `since`. */
async function timed<T>(p: Promise<T>, since = performance.now()): Promise<{ value: T; ms: number }> {
  const value = await p;
  return { value, ms: performance.now() - since };
}

export function executorContract(name: string, setup: () => Promise<ContractSetup>): void {
  describe(`executor contract: ${name}`, () => {
    let ctx: ContractSetup;
    beforeEach(async () => {
      ctx = await setup();
    });
    afterEach(async () => {
      await ctx.cleanup();
    });

    it('runs a short synthetic job to succeeded', async () => {
      const launch = aLaunch().withConfig({ steps: 5 }).build();
      const ref = await ctx.executor.submit(launch);
      assert.equal(ref.executor, ctx.executor.name);
      assert.equal(ref.executionId, launch.executionId);
      JSON.parse(JSON.stringify(ref.handle)); // serialisable
      const status = await waitForTerminal(ctx.executor, ref);
      assert.equal(status.state, 'succeeded', JSON.stringify(status));
      // Terminal is final.
      assert.equal((await ctx.executor.status(ref)).state, 'succeeded');
    });

    it('submit is idempotent per executionId: an equal ref, one run', async () => {
      const launch = aLaunch().withConfig({ steps: 20, step_sleep: 0.02 }).build();
      const [a, b] = await Promise.all([ctx.executor.submit(launch), ctx.executor.submit(launch)]);
      assert.deepEqual(a, b);
      const c = await ctx.executor.submit(launch);
      assert.deepEqual(c, a);
      // A ref that went through JSON (heartbeat details) works the same.
      const viaJson = JSON.parse(JSON.stringify(a)) as ExecutionRef;
      const status = await waitForTerminal(ctx.executor, viaJson);
      assert.equal(status.state, 'succeeded', JSON.stringify(status));
      // Submitting a finished execution again finds it; nothing new starts.
      const d = await ctx.executor.submit(launch);
      assert.deepEqual(d, a);
      assert.equal((await ctx.executor.status(d)).state, 'succeeded');
      assert.equal(await ctx.runsOf(launch), 1, 'the job was started more than once');
    });

    it('a failing attempt is failed and retryable; the next attempt succeeds', async () => {
      const base = aLaunch().withConfig({ steps: 6, fail_attempts: 1 });
      const first = await ctx.executor.submit(base.attempt(1).build());
      const s1 = await waitForTerminal(ctx.executor, first);
      assert.equal(s1.state, 'failed', JSON.stringify(s1));
      assert.equal(s1.retryable, true);
      assert.notEqual(s1.reason, 'bad-config');
      const second = await ctx.executor.submit(base.attempt(2).build());
      assert.notEqual(second.executionId, first.executionId);
      const s2 = await waitForTerminal(ctx.executor, second);
      assert.equal(s2.state, 'succeeded', JSON.stringify(s2));
    });

    it('a bad config (unknown key) is failed, not retryable, reason bad-config', async () => {
      const ref = await ctx.executor.submit(aLaunch().withConfig({ no_such_knob: 1 }).build());
      const status = await waitForTerminal(ctx.executor, ref);
      assert.equal(status.state, 'failed', JSON.stringify(status));
      assert.equal(status.retryable, false);
      assert.equal(status.reason, 'bad-config');
    });

    it('a wrong type is a bad config too', async () => {
      const ref = await ctx.executor.submit(aLaunch().withConfig({ steps: 'many' }).build());
      const status = await waitForTerminal(ctx.executor, ref);
      assert.equal(status.state, 'failed', JSON.stringify(status));
      assert.equal(status.reason, 'bad-config');
      assert.equal(status.retryable, false);
    });

    it('a long job is running; cancel makes it cancelled for good', async () => {
      const launch = aLaunch().withConfig(LONG_CONFIG).build();
      const ref = await ctx.executor.submit(launch);
      const running = await waitForStatus(ctx.executor, ref, (s) => s.state === 'running' || isTerminal(s), 15_000);
      assert.equal(running.state, 'running', JSON.stringify(running));
      await sleep(300); // let it get going (the Python job installs its SIGTERM handler)
      assert.equal((await ctx.executor.status(ref)).state, 'running');
      assert.equal(await ctx.leftRunning(ref), true, 'leftRunning() sees the running job');
      assert.equal(await ctx.runsOf(launch), 1);
      await ctx.executor.cancel(ref);
      const status = await waitForTerminal(ctx.executor, ref, 15_000);
      assert.equal(status.state, 'cancelled', JSON.stringify(status));
      await waitUntil('nothing of the cancelled job left running', async () => !(await ctx.leftRunning(ref)), 15_000);
      await sleep(300);
      assert.equal((await ctx.executor.status(ref)).state, 'cancelled');
      // Cancel again: no error, still cancelled.
      await ctx.executor.cancel(ref);
      assert.equal((await ctx.executor.status(ref)).state, 'cancelled');
      // Submitting the same execution again does not revive it.
      await ctx.executor.submit(launch);
      assert.equal((await ctx.executor.status(ref)).state, 'cancelled');
      assert.equal(await ctx.leftRunning(ref), false, 'a second submit revived the cancelled job');
      // At most the one run: on Kubernetes, deleting the Job also deletes the pods that counted it.
      const runsAfter = await ctx.runsOf(launch);
      assert.ok(runsAfter <= 1, `a second submit started another run (${runsAfter} runs)`);
    });

    it('cancel of a finished execution is a no-op', async () => {
      const ref = await ctx.executor.submit(aLaunch().withConfig({ steps: 3 }).build());
      assert.equal((await waitForTerminal(ctx.executor, ref)).state, 'succeeded');
      await ctx.executor.cancel(ref);
      await ctx.executor.cancel(ref);
      assert.equal((await ctx.executor.status(ref)).state, 'succeeded');
    });

    it('cancel and status of an unknown execution: resolve, failed + retryable', async () => {
      const ref: ExecutionRef = {
        executor: ctx.executor.name,
        executionId: `never-submitted-${randomUUID().slice(0, 8)}-a1`,
        handle: {},
      };
      await ctx.executor.cancel(ref);
      await ctx.executor.cancel(ref);
      const status = await ctx.executor.status(ref);
      assert.equal(status.state, 'failed');
      assert.equal(status.retryable, true);
      assert.equal(status.reason, 'unknown-execution');
    });

    it('wait resolves with the terminal status of jobs that exit 0, 1 and 2', { timeout: 120_000 }, async (t) => {
      if (!ctx.executor.wait) return t.skip('this executor offers no wait()');
      // Still running when wait() starts (the simulated executor runs them at 1/100 speed or faster).
      const ok = await ctx.executor.submit(aLaunch().withConfig({ steps: 5, step_sleep: 0.2 }).build());
      const crash = await ctx.executor.submit(aLaunch().withConfig({ steps: 6, step_sleep: 0.2, fail_attempts: 1 }).build());
      const bad = await ctx.executor.submit(aLaunch().withConfig({ no_such_knob: 1 }).build());
      const [s0, s1, s2] = await Promise.all([ok, crash, bad].map((ref) => waitBounded(ctx.executor, ref)));
      assert.equal(s0!.state, 'succeeded', JSON.stringify(s0));
      assert.deepEqual([s1!.state, s1!.retryable], ['failed', true], JSON.stringify(s1));
      assert.notEqual(s1!.reason, 'bad-config');
      assert.deepEqual([s2!.state, s2!.reason, s2!.retryable], ['failed', 'bad-config', false], JSON.stringify(s2));
      // What wait() said is what status() says.
      for (const [ref, s] of [[ok, s0], [crash, s1], [bad, s2]] as const) {
        assert.equal((await ctx.executor.status(ref)).state, s!.state);
      }
    });

    it('wait sees a job end about as soon as a fast status() poll does', { timeout: 120_000 }, async (t) => {
      if (!ctx.executor.wait) return t.skip('this executor offers no wait()');
      // Several jobs, so that a wait() that only polls slowly cannot be lucky every time.
      const lateness: number[] = [];
      for (let i = 0; i < 3; i++) {
        const ref = await ctx.executor.submit(aLaunch().withConfig({ steps: 5, step_sleep: 0.02 }).build());
        let polledAt: number | undefined;
        let stop = false;
        const poller = (async () => {
          while (!stop) {
            if (isTerminal(await ctx.executor.status(ref))) {
              polledAt = performance.now();
              return;
            }
            await sleep(50);
          }
        })();
        const waited = await timed(waitBounded(ctx.executor, ref), 0);
        const bound = performance.now() + WAIT_LIMIT_MS;
        while (polledAt === undefined && performance.now() < bound) await sleep(20);
        stop = true;
        await poller;
        assert.equal(waited.value.state, 'succeeded', JSON.stringify(waited.value));
        assert.ok(polledAt !== undefined, 'the status() poll never saw the job end');
        lateness.push(waited.ms - polledAt);
      }
      t.diagnostic(`wait() minus a 50 ms status() poll, ms: ${lateness.map((ms) => ms.toFixed(1)).join(', ')}`);
      for (const ms of lateness) assert.ok(ms < PROMPT_MS, `wait() resolved ${ms.toFixed(0)} ms after a 50 ms status() poll saw the end`);
    });

    it('wait resolves at once on a job that is already over, and on an unknown one', { timeout: 60_000 }, async (t) => {
      if (!ctx.executor.wait) return t.skip('this executor offers no wait()');
      const ref = await ctx.executor.submit(aLaunch().withConfig({ steps: 3 }).build());
      assert.equal((await waitForTerminal(ctx.executor, ref)).state, 'succeeded');
      const again = await timed(waitBounded(ctx.executor, ref));
      assert.equal(again.value.state, 'succeeded');
      assert.ok(again.ms < AT_ONCE_MS, `wait() on a finished job took ${again.ms.toFixed(0)} ms`);
      const unknown: ExecutionRef = { executor: ctx.executor.name, executionId: `never-submitted-${randomUUID().slice(0, 8)}-a1`, handle: {} };
      const u = await timed(waitBounded(ctx.executor, unknown));
      assert.deepEqual([u.value.state, u.value.reason, u.value.retryable], ['failed', 'unknown-execution', true]);
      assert.ok(u.ms < AT_ONCE_MS, `wait() on an unknown execution took ${u.ms.toFixed(0)} ms`);
    });

    it('an aborted wait resolves with a non-terminal status and leaves the job running', { timeout: 60_000 }, async (t) => {
      if (!ctx.executor.wait) return t.skip('this executor offers no wait()');
      const ref = await ctx.executor.submit(aLaunch().withConfig(LONG_CONFIG).build());
      await waitForStatus(ctx.executor, ref, (s) => s.state === 'running' || isTerminal(s), 15_000);
      // Aborted while waiting.
      const controller = new AbortController();
      const pending = ctx.executor.wait(ref, controller.signal);
      await sleep(200);
      controller.abort();
      const s = await pending;
      assert.equal(isTerminal(s), false, `aborted wait: ${JSON.stringify(s)}`);
      // Aborted before it began.
      const pre = await ctx.executor.wait(ref, AbortSignal.abort());
      assert.equal(isTerminal(pre), false, `pre-aborted wait: ${JSON.stringify(pre)}`);
      assert.equal((await ctx.executor.status(ref)).state, 'running');
      assert.equal(await ctx.leftRunning(ref), true, 'an aborted wait stopped the job');
      await ctx.executor.cancel(ref);
    });

    it('wait resolves cancelled when the job is cancelled, during the wait or before it', { timeout: 60_000 }, async (t) => {
      if (!ctx.executor.wait) return t.skip('this executor offers no wait()');
      const ref = await ctx.executor.submit(aLaunch().withConfig(LONG_CONFIG).build());
      await waitForStatus(ctx.executor, ref, (s) => s.state === 'running' || isTerminal(s), 15_000);
      await sleep(300); // the Python job installs its SIGTERM handler at start
      const during = timed(waitBounded(ctx.executor, ref), 0);
      await ctx.executor.cancel(ref);
      // The reference: when a 50 ms status() poll sees the cancel.
      await waitForTerminal(ctx.executor, ref, 15_000);
      const polledAt = performance.now();
      const { value: s, ms: waitedAt } = await during;
      assert.equal(s.state, 'cancelled', JSON.stringify(s));
      assert.ok(waitedAt - polledAt < PROMPT_MS, `wait() saw the cancel ${(waitedAt - polledAt).toFixed(0)} ms after a status() poll did`);
      const after = await timed(waitBounded(ctx.executor, ref));
      assert.equal(after.value.state, 'cancelled', JSON.stringify(after.value));
      assert.ok(after.ms < AT_ONCE_MS, `wait() after the cancel took ${after.ms.toFixed(0)} ms`);
    });

    it('logs (when offered) show why a job failed, tail the end, and resolve for unknown executions', async (t) => {
      if (!ctx.executor.logs) return t.skip('this executor offers no logs()');
      const ref = await ctx.executor.submit(aLaunch().withConfig({ no_such_knob: 1 }).build());
      await waitForTerminal(ctx.executor, ref);
      const full = await ctx.executor.logs(ref);
      assert.equal(typeof full, 'string');
      if (ctx.logsShowJobOutput === false) {
        t.diagnostic('no job output exists here (logsShowJobOutput: false): content not checked');
      } else {
        // The job's own complaint, naming the key: what a user opens the logs for.
        assert.match(full, /no_such_knob/, `logs: ${JSON.stringify(full)}`);
        const tail = await ctx.executor.logs(ref, 10);
        assert.equal(tail.length, 10, `tail: ${JSON.stringify(tail)}`);
        assert.ok(full.endsWith(tail), `tail ${JSON.stringify(tail)} is not the end of the logs`);
      }
      assert.ok((await ctx.executor.logs(ref, 10)).length <= 10);
      const unknown = await ctx.executor.logs({ executor: ctx.executor.name, executionId: 'nope-a1', handle: {} });
      assert.equal(typeof unknown, 'string');
    });
  });
}
