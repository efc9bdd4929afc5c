/**
 * Orchestration overhead: how long Ladder takes to run N trials whose jobs do (almost) nothing,
 * against the floor of starting the same number of processes with the same concurrency.
 *
 *   npx tsx loadtests/bench-orchestration.ts [--trials 200] [--concurrency 16] [--poll 200[,50]] [--reps 3]
 *       [--big-trials 10000] [--big-concurrency 200] [--big-poll 50] [--json]
 *
 * --big-trials runs, after the rounds, one simulated-executor sweep of that many zero-second
 * trials (a grid × seeds, so it may exceed the 1000-seed limit; 0 skips it) and reports its
 * trials/s over the first and the last tenth of trials to finish, the in-process worker's RSS and
 * heap (after a full collection) before and after, the SQL statements per trial (every query through the shared pool:
 * worker and ingest; statements inside transactions are not counted) and the Temporal history
 * events per trial (all runs of the sweep workflow). --json prints, as the last line, one JSON
 * object with every figure.
 *
 * --poll lists the worker's pollIntervalMs values to run the sweeps with (the test harness default
 * is 200 ms; an activity notices a job's exit up to one interval late, so it bounds per-trial
 * latency). --reps is the number of rounds; each round runs every baseline and every sweep once,
 * interleaved, and the figures are medians over rounds.
 *
 * Full path, per trial: Postgres → Temporal sweepWorkflow → trialWorkflow → local executor (a real
 * `/bin/sh` wrapper + `python -m ladder_jobs run --kind synthetic`, config {steps: 1}) → the job
 * POSTs its metrics and result to the ingest HTTP route → Postgres → the activity sees the exit
 * (polling every `pollIntervalMs`) → the trial and then the sweep are closed.
 * The same sweep is also run with the simulated executor (no process at all) to separate the
 * Temporal/Postgres overhead from the cost of processes.
 *
 * Baselines, measured in the same run with the same number of processes and concurrency:
 *   node -e 0                bare process spawns
 *   python3 -c 0             a Python start: the floor for any real job
 *   job alone (offline)      `python -m ladder_jobs run` itself, offline (writes files, no HTTP)
 *
 * Starts its own Postgres and Temporal dev server (through test/harness.ts) unless
 * LADDER_TEST_PG_URL and LADDER_TEST_TEMPORAL_ADDRESS are set. Exits non-zero when a check fails
 * (a sweep that did not succeed, a trial without its metrics or result).
 */
import { execFileSync, spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import v8 from 'node:v8';
import vm from 'node:vm';
import { launchSweep, waitForSweep, type LaunchContext } from '../core/sweeps/launch';
import { sweepWorkflowId } from '../workflows';
import type { SweepSpecInput } from '../core/spec/spec';
import { createTestStack, REPO_ROOT, type TestStack } from '../test/harness';
import type { Executor } from '../workers/executors/types';
import { check, CheckFailed, fmt, intFlag, median, percentile, printTable, runPool } from './common';

/** A full collection before each heap reading, so the memory figure is live data, not garbage
 * waiting for the next collection (without it the heap "grows" with the sweep's length). */
function collectGarbage(): void {
  v8.setFlagsFromString('--expose-gc');
  (vm.runInNewContext('gc') as () => void)();
}

function resolvePython(command: string): string {
  try {
    const exe = execFileSync(command, ['-c', 'import sys; print(sys.executable)'], { encoding: 'utf8' }).trim();
    return exe || command;
  } catch {
    return command;
  }
}

interface Options {
  trials: number;
  concurrency: number;
  polls: number[];
  reps: number;
  bigTrials: number;
  bigConcurrency: number;
  bigPoll: number;
  json: boolean;
}

function parseOptions(): Options {
  const { values } = parseArgs({
    options: {
      trials: { type: 'string', default: '200' },
      concurrency: { type: 'string', default: '16' },
      poll: { type: 'string', default: '200' },
      reps: { type: 'string', default: '3' },
      'big-trials': { type: 'string', default: '10000' },
      'big-concurrency': { type: 'string', default: '200' },
      'big-poll': { type: 'string', default: '50' },
      json: { type: 'boolean', default: false },
      help: { type: 'boolean', default: false },
    },
  });
  if (values.help) {
    console.log(
      'usage: npx tsx loadtests/bench-orchestration.ts [--trials 200] [--concurrency 16] [--poll 200[,50,...]] [--reps 3] ' +
        '[--big-trials 10000] [--big-concurrency 200] [--big-poll 50] [--json]',
    );
    process.exit(0);
  }
  const polls = values.poll.split(',').map((p) => intFlag('poll', p.trim()));
  const trials = intFlag('trials', values.trials);
  if (trials > 1000) throw new Error('--trials must be at most 1000 (the spec allows at most 1000 seeds)');
  return {
    trials,
    concurrency: intFlag('concurrency', values.concurrency),
    polls: [...new Set(polls)],
    reps: intFlag('reps', values.reps),
    bigTrials: intFlag('big-trials', values['big-trials'], 0),
    bigConcurrency: intFlag('big-concurrency', values['big-concurrency']),
    bigPoll: intFlag('big-poll', values['big-poll']),
    json: values.json,
  };
}

interface Measured {
  label: string;
  totalsS: number[];
  /** Per-item wall times in ms, pooled over repetitions. */
  itemMs: number[];
}

/** Spawns `count` processes with at most `concurrency` alive; every one must exit 0. */
async function spawnMany(
  count: number,
  concurrency: number,
  command: string,
  args: (i: number) => string[],
  env?: (i: number) => NodeJS.ProcessEnv,
): Promise<{ totalS: number; itemMs: number[] }> {
  const itemMs: number[] = [];
  const t0 = performance.now();
  await runPool(count, concurrency, async (i) => {
    const s = performance.now();
    await new Promise<void>((resolve, reject) => {
      const child = spawn(command, args(i), { stdio: ['ignore', 'ignore', 'pipe'], env: env ? env(i) : process.env });
      let stderr = '';
      child.stderr.on('data', (c: Buffer) => (stderr = (stderr + c.toString()).slice(-2000)));
      child.once('error', reject);
      child.once('close', (code, signal) =>
        code === 0
          ? resolve()
          : reject(new CheckFailed(`${command} ${args(i).join(' ')} exited ${code ?? signal}${stderr ? `:\n${stderr.trimEnd()}` : ''}`)),
      );
    });
    itemMs.push(performance.now() - s);
  });
  return { totalS: (performance.now() - t0) / 1000, itemMs };
}

function syntheticSpec(name: string, trials: number, concurrency: number): SweepSpecInput {
  return {
    name,
    kind: 'synthetic',
    base: { steps: 1 },
    seeds: trials,
    concurrency,
    retries: 0,
    timeoutSeconds: 600,
  };
}

/** Runs one sweep and checks that every trial succeeded once and stored its metrics and result. */
async function timedSweep(
  stack: TestStack,
  ctx: LaunchContext,
  name: string,
  trials: number,
  concurrency: number,
  spec: SweepSpecInput = syntheticSpec(name, trials, concurrency),
): Promise<SweepFigures> {
  const sql0 = sqlStatements;
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  const sweep = await launchSweep(ctx, { spec, rerun: true });
  const status = await waitForSweep(ctx, sweep.id);
  const totalS = (performance.now() - t0) / 1000;
  const cpu = process.cpuUsage(cpu0);
  const sql = sqlStatements - sql0;
  let historyEvents = 0;
  for await (const wf of stack.temporal.workflow.list({ query: `WorkflowId = '${sweepWorkflowId(sweep.id)}'` })) {
    historyEvents += (await stack.temporal.workflow.getHandle(wf.workflowId, wf.runId).fetchHistory()).events?.length ?? 0;
  }

  const { rows } = await stack.database.pool.query<{
    id: string;
    status: string;
    attempts: number;
    exit_reason: string | null;
    has_result: boolean;
    points: number;
    trial_ms: number | null;
    finished_ms: number | null;
  }>(
    `select t.id, t.status, t.attempts, t.exit_reason, t.result is not null as has_result,
            (select count(*)::int from metric_points m where m.trial_id = t.id) as points,
            (extract(epoch from (t.finished_at - t.started_at)) * 1000)::float8 as trial_ms,
            (extract(epoch from t.finished_at) * 1000)::float8 as finished_ms
       from trials t where t.sweep_id = $1`,
    [sweep.id],
  );
  check(rows.length === trials, `sweep ${sweep.id} has ${rows.length} trials, expected ${trials}`);
  for (const r of rows) {
    check(r.status === 'succeeded' && r.attempts === 1, `trial ${r.id}: ${r.status} after ${r.attempts} attempt(s)${r.exit_reason ? ` (${r.exit_reason})` : ''}`);
    check(r.has_result, `trial ${r.id} has no result`);
    check(r.points > 0, `trial ${r.id} stored no metric points`);
  }
  check(status === 'succeeded', `sweep ${sweep.id} ended ${status}`);
  return {
    totalS,
    itemMs: rows.map((r) => r.trial_ms ?? Number.NaN).filter(Number.isFinite),
    finishedMs: rows.map((r) => r.finished_ms ?? Number.NaN).filter(Number.isFinite).sort((a, b) => a - b),
    sqlPerTrial: sql / trials,
    cpuMsPerTrial: (cpu.user + cpu.system) / 1000 / trials,
    historyEventsPerTrial: historyEvents / trials,
  };
}

interface SweepFigures {
  totalS: number;
  itemMs: number[];
  /** finished_at of every trial, ascending (ms since the epoch). */
  finishedMs: number[];
  sqlPerTrial: number;
  /** CPU of this process (worker, ingest API, bench) per trial; Temporal and Postgres run elsewhere. */
  cpuMsPerTrial: number;
  historyEventsPerTrial: number;
}

/** Statements sent through the shared pool (worker activities and the ingest routes). */
let sqlStatements = 0;

/** Trials/s over the first and the last tenth of trials to finish. */
function tenths(finishedMs: number[]): { first: number; last: number } {
  const k = Math.floor(finishedMs.length / 10);
  if (k < 2) return { first: Number.NaN, last: Number.NaN };
  const n = finishedMs.length;
  return {
    first: (k - 1) / ((finishedMs[k - 1]! - finishedMs[0]!) / 1000),
    last: (k - 1) / ((finishedMs[n - 1]! - finishedMs[n - k]!) / 1000),
  };
}

/** A grid × seeds spec of `trials` zero-second trials (seeds alone stop at 1000). */
function bigSpec(name: string, trials: number, concurrency: number): SweepSpecInput {
  const variants = Math.ceil(trials / 1000);
  if (trials % variants !== 0) throw new Error(`--big-trials must split into ${variants} equal variants (use a multiple of ${variants})`);
  return {
    ...syntheticSpec(name, trials / variants, concurrency),
    grid: { lr: Array.from({ length: variants }, (_, i) => 1e-4 * (i + 1)) },
  };
}

async function main(): Promise<void> {
  const opts = parseOptions();
  // Without LADDER_PYTHON, use the interpreter python3 resolves to: a shim (pyenv, asdf) on PATH
  // would add its own start-up (tens of ms) to every job and every baseline spawn.
  const python = (process.env.LADDER_PYTHON ??= resolvePython('python3'));
  const { trials: n, concurrency: c } = opts;
  console.log(
    `bench-orchestration: ${n} trials of kind synthetic {steps: 1}, concurrency ${c}, ` +
      `worker pollIntervalMs ${opts.polls.join(' and ')} (bounds the latency a trial waits after its job exits), ` +
      `${opts.reps} round(s), ${os.cpus().length} CPUs, python ${python}`,
  );

  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'ladder-bench-orch-'));
  const jobConfig = path.join(tmp, 'config.json');
  fs.writeFileSync(jobConfig, JSON.stringify({ steps: 1 }));
  const stack = await createTestStack('bench_orch');
  // Count every statement through the shared pool: the in-process worker and the ingest routes use it.
  const pool = stack.database.pool;
  const query = pool.query.bind(pool) as (...args: unknown[]) => unknown;
  (pool as unknown as { query: (...args: unknown[]) => unknown }).query = (...args: unknown[]) => {
    sqlStatements++;
    return query(...args);
  };
  let closed = false;
  const close = async () => {
    if (closed) return;
    closed = true;
    await stack.close();
    fs.rmSync(tmp, { recursive: true, force: true });
  };
  const onSignal = (sig: NodeJS.Signals) => {
    console.error(`\n${sig}: cleaning up`);
    close().finally(() => process.exit(130));
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);

  try {
    const ctx: LaunchContext = { db: stack.database.db, temporal: stack.temporal, taskQueue: stack.taskQueue, codeVersion: 'bench' };
    let sweepNo = 0;
    let jobRep = 0;
    const jobEnv = (dir: string) => (i: number): NodeJS.ProcessEnv => ({
      PATH: process.env.PATH,
      HOME: process.env.HOME,
      PYTHONPATH: path.join(REPO_ROOT, 'jobs'),
      PYTHONUNBUFFERED: '1',
      LADDER_TRIAL_ID: `bench-${i}`,
      LADDER_OUTPUT_DIR: path.join(dir, `job-${i}`, 'output'),
      LADDER_CHECKPOINT_DIR: path.join(dir, `job-${i}`, 'checkpoints'),
    });

    interface Run extends Measured {
      once(): Promise<{ totalS: number; itemMs: number[] } | SweepFigures>;
      sweeps?: SweepFigures[];
    }
    const sweepRun = (label: string, executor: () => Executor, pollIntervalMs: number): Run => ({
      label,
      totalsS: [],
      itemMs: [],
      async once() {
        // A fresh worker per measurement, so local and simulated runs can interleave.
        const worker = await stack.startWorker({ executor: executor(), pollIntervalMs });
        try {
          // Untimed warm-up: the first workflow tasks of a fresh worker pay for isolates and connections.
          await timedSweep(stack, ctx, `warmup-${++sweepNo}`, Math.min(c, n), c);
          return await timedSweep(stack, ctx, `bench-${++sweepNo}`, n, c);
        } finally {
          await worker.shutdown();
        }
      },
    });
    const runs: Run[] = [
      { label: 'baseline: node -e 0', totalsS: [], itemMs: [], once: () => spawnMany(n, c, process.execPath, () => ['-e', '0']) },
      { label: 'baseline: python3 -c 0', totalsS: [], itemMs: [], once: () => spawnMany(n, c, python, () => ['-c', '0']) },
      {
        // The job itself without any orchestrator: offline mode (no ingest URL), own folders per process.
        label: 'baseline: job alone (offline)',
        totalsS: [],
        itemMs: [],
        once: () =>
          spawnMany(n, c, python, () => ['-m', 'ladder_jobs', 'run', '--kind', 'synthetic', '--config', jobConfig], jobEnv(path.join(tmp, `rep-${++jobRep}`))),
      },
      ...opts.polls.flatMap((poll) => [
        sweepRun(`sweep, local executor, poll ${poll} ms`, () => stack.localExecutor(), poll),
        sweepRun(`sweep, simulated executor, poll ${poll} ms`, () => stack.simulatedExecutor(), poll),
      ]),
    ];

    // Rounds: every run once per round, interleaved, so that a machine that gets busier or
    // quieter over time (it is shared) moves baselines and sweeps alike.
    for (let round = 1; round <= opts.reps; round++) {
      const line: string[] = [];
      for (const run of runs) {
        const out = await run.once();
        run.totalsS.push(out.totalS);
        run.itemMs.push(...out.itemMs);
        if ('sqlPerTrial' in out) (run.sweeps ??= []).push(out);
        line.push(`${run.label.replace(/^baseline: /, '')} ${fmt(out.totalS)} s`);
      }
      console.log(`round ${round}/${opts.reps}: ${line.join(' | ')}`);
    }

    const [nodeB, pyB, jobB] = runs as [Run, Run, Run];
    /** Median over rounds of the per-round ratio run/baseline. */
    const ratio = (run: Run, base: Run) => median(run.totalsS.map((t, i) => t / base.totalsS[i]!));
    console.log('');
    console.log(
      `${n} items, concurrency ${c}, ${opts.reps} round(s). total = median over rounds of the wall time ` +
        `(sweeps: launch → sweep closed); ms/item = total / ${n}; item p50/p95 = wall time of one process ` +
        `(baselines) or one trial, started → finished (sweeps), pooled over rounds; ÷ = median over rounds of total / baseline total`,
    );
    printTable(
      ['run', 'total s', 'items/s', 'ms/item', 'item p50 ms', 'item p95 ms', '÷ node -e 0', '÷ python3 -c 0', '÷ job alone'],
      runs.map((m) => {
        const total = median(m.totalsS);
        return [
          m.label,
          fmt(total),
          fmt(n / total, 1),
          fmt((total * 1000) / n, 1),
          fmt(median(m.itemMs), 0),
          fmt(percentile(m.itemMs, 95), 0),
          `${fmt(ratio(m, nodeB))}x`,
          `${fmt(ratio(m, pyB))}x`,
          `${fmt(ratio(m, jobB))}x`,
        ];
      }),
    );

    const figures: Record<string, number | string | boolean> = {
      trials: n,
      concurrency: c,
      rounds: opts.reps,
      cpus: os.cpus().length,
      nodeSpawnsPerS: n / median(nodeB.totalsS),
      pythonSpawnsPerS: n / median(pyB.totalsS),
      jobAlonePerS: n / median(jobB.totalsS),
    };
    const firstOf = (prefix: string) => runs.find((r) => r.label.startsWith(prefix))!;
    const local = firstOf('sweep, local executor');
    const simulated = firstOf('sweep, simulated executor');
    figures.localTrialsPerS = n / median(local.totalsS);
    figures.simulatedTrialsPerS = n / median(simulated.totalsS);
    figures.localRatioToJobAlone = ratio(local, jobB);
    figures.simulatedRatioToNodeSpawns = median(nodeB.totalsS.map((t, i) => t / simulated.totalsS[i]!));
    const per = (run: Run, key: 'sqlPerTrial' | 'cpuMsPerTrial' | 'historyEventsPerTrial') => median((run.sweeps ?? []).map((f) => f[key]));
    figures.sqlStatementsPerTrial = per(simulated, 'sqlPerTrial');
    figures.cpuMsPerTrial = per(simulated, 'cpuMsPerTrial');
    figures.historyEventsPerTrial = per(simulated, 'historyEventsPerTrial');
    figures.localSqlStatementsPerTrial = per(local, 'sqlPerTrial');
    figures.localCpuMsPerTrial = per(local, 'cpuMsPerTrial');
    console.log('');
    console.log(
      `simulated executor, per trial (median over rounds): ${fmt(figures.sqlStatementsPerTrial as number, 2)} SQL statements, ` +
        `${fmt(figures.cpuMsPerTrial as number, 2)} ms CPU of this process, ${fmt(figures.historyEventsPerTrial as number, 2)} history events; ` +
        `simulated trials/s ÷ node -e 0 spawns/s: ${fmt(figures.simulatedRatioToNodeSpawns as number)}x`,
    );

    if (opts.bigTrials > 0) {
      const worker = await stack.startWorker({ executor: stack.simulatedExecutor(), pollIntervalMs: opts.bigPoll });
      try {
        await timedSweep(stack, ctx, `warmup-${++sweepNo}`, opts.bigConcurrency, opts.bigConcurrency);
        collectGarbage();
        const before = process.memoryUsage();
        const big = await timedSweep(stack, ctx, `big-${++sweepNo}`, opts.bigTrials, opts.bigConcurrency, bigSpec(`big-${sweepNo}`, opts.bigTrials, opts.bigConcurrency));
        collectGarbage();
        const after = process.memoryUsage();
        const t = tenths(big.finishedMs);
        Object.assign(figures, {
          bigTrials: opts.bigTrials,
          bigConcurrency: opts.bigConcurrency,
          bigPollMs: opts.bigPoll,
          bigTrialsPerS: opts.bigTrials / big.totalS,
          bigFirstTenthTrialsPerS: t.first,
          bigLastTenthTrialsPerS: t.last,
          bigSqlStatementsPerTrial: big.sqlPerTrial,
          bigCpuMsPerTrial: big.cpuMsPerTrial,
          bigHistoryEventsPerTrial: big.historyEventsPerTrial,
          rssStartMiB: before.rss / 2 ** 20,
          rssEndMiB: after.rss / 2 ** 20,
          heapStartMiB: before.heapUsed / 2 ** 20,
          heapEndMiB: after.heapUsed / 2 ** 20,
        });
        console.log(
          `big sweep: ${opts.bigTrials} simulated trials at concurrency ${opts.bigConcurrency}, poll ${opts.bigPoll} ms: ` +
            `${fmt(opts.bigTrials / big.totalS, 1)} trials/s (first tenth ${fmt(t.first, 1)}, last tenth ${fmt(t.last, 1)}), ` +
            `${fmt(big.sqlPerTrial)} SQL/trial, ${fmt(big.cpuMsPerTrial)} ms CPU/trial, ${fmt(big.historyEventsPerTrial)} history events/trial; ` +
            `process RSS ${fmt(before.rss / 2 ** 20, 0)} → ${fmt(after.rss / 2 ** 20, 0)} MiB, heap ${fmt(before.heapUsed / 2 ** 20, 0)} → ${fmt(after.heapUsed / 2 ** 20, 0)} MiB`,
        );
      } finally {
        await worker.shutdown();
      }
    }
    figures.loadAverage = os.loadavg().map((l) => l.toFixed(2)).join(' ');
    console.log(`load average (1, 5, 15 min): ${figures.loadAverage}`);
    if (opts.json) console.log(JSON.stringify(figures));
  } finally {
    await close();
  }
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    console.error(err instanceof CheckFailed ? `CHECK FAILED: ${err.message}` : err);
    process.exit(1);
  },
);
