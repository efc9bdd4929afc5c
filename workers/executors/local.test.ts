import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { getEventListeners, setMaxListeners } from 'node:events';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, describe, it } from 'node:test';
import { promisify } from 'node:util';

import { aLaunch, executorContract, waitForStatus, waitForTerminal } from '../../test/executor-contract';
import { LocalExecutor, type LocalExecutorOptions, processGroupAlive, REPO_ROOT } from './local';
import { type ExecutionRef, isTerminal } from './types';

const tempRoots: string[] = [];

function newRunRoot(): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ladder-local-exec-'));
  tempRoots.push(dir);
  return dir;
}

function pidOf(ref: ExecutionRef): number {
  return Number(ref.handle.pid);
}

/** Kills whatever is left of the jobs under runRoot, then removes it. */
function destroyRunRoot(runRoot: string): void {
  const execRoot = path.join(runRoot, 'exec');
  for (const id of fs.existsSync(execRoot) ? fs.readdirSync(execRoot) : []) {
    const pidFile = path.join(execRoot, id, 'pid');
    if (!fs.existsSync(pidFile)) continue;
    const pid = Number(fs.readFileSync(pidFile, 'utf8').trim());
    if (processGroupAlive(pid)) {
      try {
        process.kill(-pid, 'SIGKILL');
      } catch {
        /* gone */
      }
    }
  }
  fs.rmSync(runRoot, { recursive: true, force: true });
}

after(() => {
  for (const dir of tempRoots) destroyRunRoot(dir);
});

function newExecutor(options: LocalExecutorOptions = {}): LocalExecutor {
  return new LocalExecutor({ runRoot: newRunRoot(), gpus: [], killGraceMs: 5_000, ...options });
}

/** Environment of the job's wrapper shell (what python inherited), from /proc. */
function jobEnv(ref: ExecutionRef): Map<string, string> {
  const raw = fs.readFileSync(`/proc/${pidOf(ref)}/environ`, 'utf8');
  const env = new Map<string, string>();
  for (const entry of raw.split('\0')) {
    const eq = entry.indexOf('=');
    if (eq > 0) env.set(entry.slice(0, eq), entry.slice(eq + 1));
  }
  return env;
}
const hasProc = fs.existsSync('/proc/self/environ');

const LONG = { steps: 10_000, step_sleep: 0.2 };

/**
 * A python that appends "<trial>-a<attempt>" to a file before it execs the real one, so the
 * contract counts the job processes that actually started, not the refs submit() returned.
 */
function countingPython(runRoot: string): { python: string; runsOf: (executionId: string) => number } {
  const starts = path.join(runRoot, 'python-starts');
  const python = path.join(runRoot, 'counting-python');
  const real = process.env.LADDER_PYTHON ?? 'python3';
  const quote = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;
  fs.writeFileSync(python, `#!/bin/sh\necho "$LADDER_TRIAL_ID-a$LADDER_ATTEMPT" >> ${quote(starts)}\nexec ${quote(real)} "$@"\n`, { mode: 0o755 });
  return {
    python,
    runsOf: (executionId) =>
      fs.existsSync(starts) ? fs.readFileSync(starts, 'utf8').split('\n').filter((l) => l === executionId).length : 0,
  };
}

executorContract('local', async () => {
  const runRoot = newRunRoot();
  const counting = countingPython(runRoot);
  const executor = newExecutor({ runRoot, python: counting.python });
  return {
    executor,
    cleanup: async () => destroyRunRoot(executor.runRoot),
    runsOf: async (launch) => counting.runsOf(launch.executionId),
    leftRunning: async (ref) => processGroupAlive(pidOf(ref)),
  };
});

describe('LocalExecutor', () => {
  it('writes the execution state folder and the offline output of the job', async () => {
    const executor = newExecutor();
    const launch = aLaunch().withConfig({ steps: 12 }).build();
    const ref = await executor.submit(launch);
    const dir = executor.execDir(launch.executionId);
    assert.deepEqual(JSON.parse(fs.readFileSync(path.join(dir, 'config.json'), 'utf8')), launch.config);
    assert.equal(JSON.parse(fs.readFileSync(path.join(dir, 'launch.json'), 'utf8')).launch.executionId, launch.executionId);
    assert.equal(Number(fs.readFileSync(path.join(dir, 'pid'), 'utf8')), pidOf(ref));
    const status = await waitForTerminal(executor, ref);
    assert.equal(status.state, 'succeeded', await executor.logs(ref));
    assert.equal(status.exitCode, 0);
    assert.ok(status.startedAt instanceof Date && status.finishedAt instanceof Date);
    assert.equal(fs.readFileSync(path.join(dir, 'exit'), 'utf8').trim(), '0');
    const metricsText = fs.readFileSync(path.join(dir, 'output', 'metrics.jsonl'), 'utf8');
    const points = metricsText.trim().split('\n').map((l) => JSON.parse(l));
    const lossSteps = points.filter((p) => p.name === 'loss').map((p) => p.step);
    assert.deepEqual(lossSteps, Array.from({ length: 12 }, (_, i) => i + 1), `${metricsText}\n${await executor.logs(ref)}`);
    const result = JSON.parse(fs.readFileSync(path.join(dir, 'output', 'result.json'), 'utf8'));
    assert.equal(typeof result.metrics.loss, 'number');
    assert.equal(result.config.steps, 12);
  });

  it('the exit code survives the worker: a new worker process reads the status of a dead one\'s job', async () => {
    const runRoot = newRunRoot();
    // It crashes at step 100, ~10 s in: long enough that the new worker below sees it still
    // running even on a loaded machine (a 0.5 s window used to be a flake).
    const launch = aLaunch().withConfig({ steps: 200, step_sleep: 0.1, fail_attempts: 1 }).build();
    // A separate node process submits and exits at once (the "old worker").
    const script = `
      const { LocalExecutor } = require(${JSON.stringify(path.join(__dirname, 'local.ts'))});
      new LocalExecutor({ runRoot: process.argv[1], gpus: [] })
        .submit(JSON.parse(process.argv[2]))
        .then((ref) => { process.stdout.write(JSON.stringify(ref)); process.exit(0); });
    `;
    const { stdout } = await promisify(execFile)(
      process.execPath,
      ['--import', 'tsx', '-e', script, runRoot, JSON.stringify(launch)],
      { cwd: REPO_ROOT, timeout: 20_000 },
    );
    const ref = JSON.parse(stdout) as ExecutionRef;
    assert.equal(ref.executionId, launch.executionId);
    const newWorker = new LocalExecutor({ runRoot, gpus: [] });
    // The job outlived the process that started it.
    const running = await newWorker.status(ref);
    assert.equal(running.state, 'running', JSON.stringify(running));
    // wait() of the new worker follows a job it did not spawn (files and the safety poll).
    const status = await newWorker.wait(ref, AbortSignal.timeout(60_000));
    assert.equal(status.state, 'failed', await newWorker.logs(ref));
    assert.equal(status.exitCode, 1);
    assert.equal(status.retryable, true);
    assert.equal(status.reason, 'exit 1');
    // Submit through the new worker finds the old execution instead of starting another.
    assert.deepEqual(await newWorker.submit(launch), ref);
    // And a third instance agrees.
    assert.equal((await new LocalExecutor({ runRoot, gpus: [] }).status(ref)).exitCode, 1);
  });

  it('assigns distinct GPUs through CUDA_VISIBLE_DEVICES and refuses a job when none is free', { skip: !hasProc && 'needs /proc' }, async () => {
    const executor = newExecutor({ gpus: ['0', '1'] });
    const a = await executor.submit(aLaunch().withGpus(1).withConfig(LONG).build());
    const b = await executor.submit(aLaunch().withGpus(1).withConfig(LONG).build());
    const ga = jobEnv(a).get('CUDA_VISIBLE_DEVICES');
    const gb = jobEnv(b).get('CUDA_VISIBLE_DEVICES');
    assert.deepEqual([ga, gb].sort(), ['0', '1']);
    assert.deepEqual(a.handle.gpus, [ga]);
    // CPU jobs see no GPU at all when the machine has some.
    const cpu = await executor.submit(aLaunch().withGpus(0).withConfig(LONG).build());
    assert.equal(jobEnv(cpu).get('CUDA_VISIBLE_DEVICES'), '');
    // Both GPUs busy: a third GPU job is refused (the activity retries later), nothing is started.
    const third = aLaunch().withGpus(1).withConfig(LONG).build();
    await assert.rejects(executor.submit(third), /not enough free GPUs/);
    assert.equal((await executor.status({ executor: 'local', executionId: third.executionId, handle: {} })).reason, 'unknown-execution');
    // Two GPUs for one job: more than are free.
    await assert.rejects(executor.submit(aLaunch().withGpus(2).build()), /GPU/);
    // A new worker over the same runRoot sees the same slots in use.
    const other = new LocalExecutor({ runRoot: executor.runRoot, gpus: ['0', '1'] });
    await assert.rejects(other.submit(third), /not enough free GPUs/);
    // Once one ends its GPU is free again.
    await executor.cancel(a);
    const c = await executor.submit(third);
    assert.equal(jobEnv(c).get('CUDA_VISIBLE_DEVICES'), ga);
    await Promise.all([executor.cancel(b), executor.cancel(c), executor.cancel(cpu)]);
  });

  it('runs a GPU job on CPU when the machine has no GPU, and warns once', async () => {
    const warnings: string[] = [];
    const executor = newExecutor({ gpus: [], warn: (m) => warnings.push(m) });
    const refs = await Promise.all([1, 2].map(() => executor.submit(aLaunch().withGpus(1).withConfig({ steps: 3 }).build())));
    for (const ref of refs) assert.equal((await waitForTerminal(executor, ref)).state, 'succeeded');
    assert.equal(warnings.length, 1);
    assert.match(warnings[0]!, /no.*GPU|has none/i);
  });

  it('shares the checkpoint dir between attempts of a trial, so a retry resumes', async () => {
    const executor = newExecutor();
    const base = aLaunch().withConfig({ steps: 20, fail_attempts: 1 });
    const first = await executor.submit(base.attempt(1).build());
    const s1 = await waitForTerminal(executor, first);
    assert.equal(s1.state, 'failed', await executor.logs(first));
    const second = await executor.submit(base.attempt(2).build());
    const s2 = await waitForTerminal(executor, second);
    assert.equal(s2.state, 'succeeded', await executor.logs(second));
    const launch2 = base.attempt(2).build();
    const ckpt = executor.checkpointDir(launch2.trialId);
    assert.ok(fs.readdirSync(ckpt).length > 0, 'checkpoint dir is empty');
    assert.match(await executor.logs(second), /resuming synthetic from checkpoint at step 10/);
    // Output dirs are per execution.
    assert.notEqual(executor.execDir(first.executionId), executor.execDir(second.executionId));
  });

  it('gives the job a filtered environment plus the protocol variables', { skip: !hasProc && 'needs /proc' }, async () => {
    const saved = { db: process.env.DATABASE_URL, secret: process.env.LADDER_INGEST_SECRET };
    process.env.DATABASE_URL = 'postgres://user:password@db/ladder';
    process.env.LADDER_INGEST_SECRET = 'top-secret';
    try {
      const executor = newExecutor();
      const launch = aLaunch()
        .withConfig(LONG)
        .withEnv({ LADDER_INGEST_TOKEN: 'tok-123' })
        .build();
      const ref = await executor.submit(launch);
      const env = jobEnv(ref);
      assert.equal(env.has('DATABASE_URL'), false);
      assert.equal(env.has('LADDER_INGEST_SECRET'), false);
      assert.equal(env.get('PATH'), process.env.PATH);
      assert.equal(env.get('LADDER_TRIAL_ID'), launch.trialId);
      assert.equal(env.get('LADDER_ATTEMPT'), '1');
      assert.equal(env.get('LADDER_INGEST_TOKEN'), 'tok-123');
      assert.equal(env.get('LADDER_CHECKPOINT_DIR'), executor.checkpointDir(launch.trialId));
      assert.equal(env.get('LADDER_OUTPUT_DIR'), path.join(executor.execDir(launch.executionId), 'output'));
      assert.equal(env.get('PYTHONPATH')!.split(path.delimiter)[0], path.join(REPO_ROOT, 'jobs'));
      assert.equal(env.get('PYTHONUNBUFFERED'), '1');
      // Math libraries get the CPUs the spec asked for (unless the worker pins them itself).
      const cpus = String(Math.max(1, Math.floor(launch.resources.cpu)));
      assert.equal(env.get('OMP_NUM_THREADS'), process.env.OMP_NUM_THREADS ?? cpus);
      assert.equal(env.has('CUDA_VISIBLE_DEVICES'), false); // no GPUs on this executor
      await executor.cancel(ref);
    } finally {
      if (saved.db === undefined) delete process.env.DATABASE_URL;
      else process.env.DATABASE_URL = saved.db;
      if (saved.secret === undefined) delete process.env.LADDER_INGEST_SECRET;
      else process.env.LADDER_INGEST_SECRET = saved.secret;
    }
  });

  it('a SIGTERM from outside (not a cancel) is recorded as exit 143, retryable', async () => {
    const executor = newExecutor();
    const ref = await executor.submit(aLaunch().withConfig(LONG).build());
    await waitForStatus(executor, ref, (s) => s.state === 'running');
    await new Promise((r) => setTimeout(r, 500)); // the job installs its handler at start
    process.kill(-pidOf(ref), 'SIGTERM');
    const status = await waitForTerminal(executor, ref, 10_000);
    assert.equal(status.state, 'failed', await executor.logs(ref));
    assert.equal(status.exitCode, 143);
    assert.equal(status.retryable, true);
  });

  it('a job killed with nothing recorded is failed, reason lost, retryable', async () => {
    const executor = newExecutor();
    const ref = await executor.submit(aLaunch().withConfig(LONG).build());
    await waitForStatus(executor, ref, (s) => s.state === 'running');
    process.kill(-pidOf(ref), 'SIGKILL');
    const status = await waitForTerminal(executor, ref, 10_000);
    assert.deepEqual([status.state, status.reason, status.retryable], ['failed', 'lost', true]);
  });

  it('cancel escalates to SIGKILL after killGraceMs when the job ignores SIGTERM', async () => {
    // A "python" that ignores SIGTERM (a stuck job): a shell trapping TERM, sleeping in a loop.
    const runRoot = newRunRoot();
    const fakePython = path.join(runRoot, 'stubborn-python');
    fs.writeFileSync(fakePython, "#!/bin/sh\ntrap '' TERM\nwhile :; do sleep 0.1; done\n", { mode: 0o755 });
    const executor = new LocalExecutor({ runRoot, gpus: [], python: fakePython, killGraceMs: 500 });
    const ref = await executor.submit(aLaunch().build());
    await waitForStatus(executor, ref, (s) => s.state === 'running');
    await new Promise((r) => setTimeout(r, 200));
    const t0 = Date.now();
    await executor.cancel(ref);
    assert.ok(Date.now() - t0 >= 450, 'cancel returned before the grace period');
    assert.equal(processGroupAlive(pidOf(ref)), false);
    assert.equal((await executor.status(ref)).state, 'cancelled');
  });

  it('logs returns the tail of job.log', async () => {
    const executor = newExecutor();
    const ref = await executor.submit(aLaunch().withConfig({ not_a_key: true }).build());
    await waitForTerminal(executor, ref);
    const full = await executor.logs(ref);
    assert.match(full, /not_a_key/);
    const tail = await executor.logs(ref, 20);
    assert.equal(tail, full.slice(-20));
  });

  it('rejects execution ids that are not safe folder names', async () => {
    const executor = newExecutor();
    const launch = { ...aLaunch().build(), executionId: '../escape' };
    await assert.rejects(executor.submit(launch), /invalid executionId/);
    const status = await executor.status({ executor: 'local', executionId: '../escape', handle: {} });
    assert.equal(status.reason, 'unknown-execution');
  });
});

describe('LocalExecutor.wait', { timeout: 180_000 }, () => {
  /** Far beyond how long the event-driven paths take; a wait that needs the safety poll hits it. */
  const WAIT_BOUND_MS = 10_000;
  const bounded = () => AbortSignal.timeout(WAIT_BOUND_MS);
  const count = (kind: string) => process.getActiveResourcesInfo().filter((r) => r === kind).length;

  it('for its own job, resolves on the process exit even when the job leaves no exit file', async () => {
    // A 60 s safety poll: only the exit event can end this wait within the bound.
    const executor = newExecutor({ waitPollMs: 60_000 });
    const ref = await executor.submit(aLaunch().withConfig(LONG).build());
    await waitForStatus(executor, ref, (s) => s.state === 'running');
    const signal = bounded();
    const waiting = executor.wait(ref, signal);
    process.kill(-pidOf(ref), 'SIGKILL'); // the wrapper dies too: no `exit` file, no file event
    const status = await waiting;
    assert.equal(signal.aborted, false, 'only the time limit ended the wait');
    assert.deepEqual([status.state, status.reason, status.retryable], ['failed', 'lost', true], JSON.stringify(status));
    assert.equal(executor.pendingWaits, 0);
  });

  it("for another worker's job, resolves when the exit file appears, without waiting for the poll", async () => {
    const runRoot = newRunRoot();
    const starter = new LocalExecutor({ runRoot, gpus: [] });
    const ref = await starter.submit(aLaunch().withConfig({ steps: 10, step_sleep: 0.1, fail_attempts: 1 }).build());
    // A separate instance did not spawn the job: it has only the files to go by.
    const follower = new LocalExecutor({ runRoot, gpus: [], waitPollMs: 60_000 });
    assert.equal(isTerminal(await follower.status(ref)), false, 'the job ended before the follower waited');
    const signal = bounded();
    const status = await follower.wait(ref, signal);
    assert.equal(signal.aborted, false, 'only the time limit ended the wait');
    assert.deepEqual([status.state, status.exitCode, status.reason], ['failed', 1, 'exit 1'], JSON.stringify(status));
    assert.equal(follower.pendingWaits, 0);
  });

  it("for another worker's job that dies leaving nothing, the safety poll resolves it as lost", async () => {
    const runRoot = newRunRoot();
    const starter = new LocalExecutor({ runRoot, gpus: [] });
    const ref = await starter.submit(aLaunch().withConfig(LONG).build());
    await waitForStatus(starter, ref, (s) => s.state === 'running');
    const follower = new LocalExecutor({ runRoot, gpus: [], waitPollMs: 200 });
    const signal = bounded();
    const waiting = follower.wait(ref, signal);
    process.kill(-pidOf(ref), 'SIGKILL');
    const status = await waiting;
    assert.equal(signal.aborted, false, 'only the time limit ended the wait');
    assert.deepEqual([status.state, status.reason], ['failed', 'lost'], JSON.stringify(status));
  });

  it('10,000 aborted waits, on its own job and on a foreign one, leave no listener, watcher or timer', async () => {
    const executor = newExecutor();
    const ref = await executor.submit(aLaunch().withConfig(LONG).build());
    await waitForStatus(executor, ref, (s) => s.state === 'running');
    const follower = new LocalExecutor({ runRoot: executor.runRoot, gpus: [] });
    const before = { timers: count('Timeout'), watchers: count('FSEventWrap') };
    for (const waiter of [executor, follower]) {
      for (let i = 0; i < 10_000; i++) {
        const controller = new AbortController();
        const pending = waiter.wait(ref, controller.signal);
        await new Promise((r) => setImmediate(r)); // past the subscriptions
        assert.equal(waiter.pendingWaits, 1);
        controller.abort();
        const s = await pending;
        if (s.state !== 'running') assert.fail(`wait ${i}: ${JSON.stringify(s)}`);
      }
      assert.equal(waiter.pendingWaits, 0);
    }
    // Process-wide counts: an earlier test's watcher or timer may close meanwhile, so fewer is
    // fine; a leak of even one of the 20,000 waits shows as more.
    // A closed watcher leaves the active list when libuv runs its close callback, one turn later.
    await new Promise((r) => setImmediate(r));
    const after = { timers: count('Timeout'), watchers: count('FSEventWrap') };
    assert.ok(after.timers <= before.timers && after.watchers <= before.watchers, `before ${JSON.stringify(before)}, after ${JSON.stringify(after)}`);
    await executor.cancel(ref);
  });

  it('many waits sharing one long-lived signal leave no listener on it once the job ends', async () => {
    const executor = newExecutor();
    const ref = await executor.submit(aLaunch().withConfig(LONG).build());
    await waitForStatus(executor, ref, (s) => s.state === 'running');
    const follower = new LocalExecutor({ runRoot: executor.runRoot, gpus: [] });
    const shared = new AbortController();
    setMaxListeners(0, shared.signal); // thousands of listeners on purpose: the count is asserted below
    const waits = [
      ...Array.from({ length: 5_000 }, () => executor.wait(ref, shared.signal)),
      ...Array.from({ length: 500 }, () => follower.wait(ref, shared.signal)),
    ];
    assert.equal(getEventListeners(shared.signal, 'abort').length, waits.length);
    await executor.cancel(ref);
    const statuses = await Promise.all(waits);
    assert.ok(statuses.every((s) => s.state === 'cancelled'), JSON.stringify(statuses.find((s) => s.state !== 'cancelled')));
    assert.equal(getEventListeners(shared.signal, 'abort').length, 0);
    assert.equal(executor.pendingWaits + follower.pendingWaits, 0);
  });
});
