/**
 * Sweeps through Temporal onto a real control plane with KWOK fake GPU nodes (4 nodes × 8 GPUs).
 *
 * Metrics: KWOK pods run nothing, so when a Job completes, the SIMULATED executor's push path
 * (workers/executors/simulated.ts) posts the synthetic metrics and result to the ingest API on
 * the pod's behalf (`withSimulatedIngest`, kwok-sim.ts). Everything else — Jobs, pods, scheduling
 * against GPU capacity, failures, preemption, deletion — is the real Kubernetes machinery.
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import * as path from 'node:path';
import { after, afterEach, before, describe, it } from 'node:test';
import { and, eq, inArray } from 'drizzle-orm';
import * as k8s from '@kubernetes/client-node';
import { analyses, events, isFinishedSweep, metricPoints, sweeps, trials } from '../../core/db/schema';
import { cancelSweep, launchSweep, type LaunchContext } from '../../core/sweeps/launch';
import { SpecError, type SweepSpecInput } from '../../core/spec/spec';
import { jobNameFor, KubernetesExecutor } from '../../workers/executors/kubernetes';
import type { JobLaunch } from '../../workers/executors/types';
import type { LadderWorker } from '../../workers/worker';
import { createTestStack, eventually, sleep, waitForSweepWithin, type TestStack } from '../harness';
import { FAKE_NODE_LABEL, FAKE_NODE_TAINT, startCluster, type TestCluster } from './cluster';
import { kwokAnnotations, withSimulatedIngest } from './kwok-sim';

const IMAGE = 'registry.invalid/ladder/jobs@sha256:' + '1'.repeat(64);
// A user's image for a `command` sweep: different from the executor's own, so the Job shows whose it runs.
const BYO_IMAGE = 'registry.invalid/team/train@sha256:' + '2'.repeat(64);
const NS = 'sweeps';

describe('kubernetes sweeps (KWOK, 4 × 8 GPUs)', { concurrency: false }, () => {
  let cluster: TestCluster;
  let stack: TestStack;
  let ctx: LaunchContext;
  let batch: k8s.BatchV1Api;
  let core: k8s.CoreV1Api;
  const executors: KubernetesExecutor[] = [];
  let worker: LadderWorker | undefined;

  const newExecutor = () => {
    const ex = new KubernetesExecutor({
      kubeConfig: cluster.kubeConfig(),
      namespace: NS,
      image: IMAGE,
      nodeSelector: { [FAKE_NODE_LABEL]: 'gpu' },
      tolerations: [{ key: FAKE_NODE_TAINT, operator: 'Exists', effect: 'NoSchedule' }],
      podAnnotations: kwokAnnotations(),
    });
    executors.push(ex);
    return ex;
  };
  const spec = (name: string, o: Partial<SweepSpecInput>): SweepSpecInput => ({
    name,
    kind: 'synthetic',
    base: { steps: 8, step_sleep: 0.5 },
    resources: { gpus: 2, cpu: 1, memory: '1Gi' },
    concurrency: 32,
    retries: 2,
    timeoutSeconds: 600,
    ...o,
  });
  const sweepJobs = async (sweepId: string) =>
    (await batch.listNamespacedJob({ namespace: NS, labelSelector: `ladder.dev/sweep=${sweepId}` })).items;

  before(async () => {
    cluster = await startCluster({ nodes: 4, gpusPerNode: 8 });
    await cluster.createNamespace(NS);
    batch = cluster.kubeConfig().makeApiClient(k8s.BatchV1Api);
    core = cluster.kubeConfig().makeApiClient(k8s.CoreV1Api);
    stack = await createTestStack('k8s');
    ctx = { db: stack.database.db, temporal: stack.temporal, taskQueue: stack.taskQueue, codeVersion: 'test-code' };
  });
  // A test that fails before its own shutdown would leave its worker polling the shared task
  // queue, taking the next test's tasks with a closed executor (what made later tests hang or
  // count Jobs created by someone else): every test's worker stops before the next test starts.
  afterEach(async () => {
    await worker?.shutdown().catch(() => {});
    worker = undefined;
  });
  after(async () => {
    await worker?.shutdown().catch(() => {});
    await Promise.all(executors.map((e) => e.close()));
    await stack?.close();
    await cluster?.stop();
  });

  it('24 trials × 2 GPUs on 32 GPUs: never more than 16 running; KWOK-failed pods are retried', { timeout: 600_000 }, async () => {
    const executor = withSimulatedIngest(newExecutor());
    worker = await stack.startWorker({ executor });
    // 12 of the 24 trials fail their first attempt (KWOK's fail stage, exit code 1).
    const sweep = await launchSweep(ctx, {
      spec: spec('gpu-capacity', { grid: { lr: [1e-4, 3e-4, 1e-3, 3e-3, 1e-2, 3e-2], fail_attempts: [0, 1] }, seeds: 2 }),
    });
    assert.equal(sweep.trials, 24);
    // A poll can miss a moment but never invents one: it checks the upper bound only. That the
    // cluster filled up is the scheduler's own record (below), not a window the poll must hit.
    let maxRunning = 0;
    let done = false;
    const watcher = (async () => {
      while (!done) {
        const pods = (await core.listNamespacedPod({ namespace: NS, labelSelector: `ladder.dev/sweep=${sweep.id}` })).items;
        maxRunning = Math.max(maxRunning, pods.filter((p) => p.status?.phase === 'Running').length);
        await sleep(100);
      }
    })();
    const status = await waitForSweepWithin(ctx, sweep.id, 300_000).finally(() => (done = true));
    await watcher;
    assert.equal(status, 'succeeded');
    assert.ok(maxRunning <= 16, `max running ${maxRunning}`);
    // Pods of this sweep waited for GPUs: the scheduler recorded that none were free.
    const podNames = new Set(
      (await core.listNamespacedPod({ namespace: NS, labelSelector: `ladder.dev/sweep=${sweep.id}` })).items.map((p) => p.metadata!.name!),
    );
    const unschedulable = (await core.listNamespacedEvent({ namespace: NS, fieldSelector: 'reason=FailedScheduling' })).items.filter(
      (e) => podNames.has(e.involvedObject.name ?? '') && /Insufficient nvidia\.com\/gpu/.test(e.message ?? ''),
    );
    assert.ok(unschedulable.length > 0, 'no pod of the sweep ever waited for GPUs (FailedScheduling: Insufficient nvidia.com/gpu)');
    const rows = await stack.database.db.select().from(trials).where(eq(trials.sweepId, sweep.id));
    assert.equal(rows.filter((r) => r.status === 'succeeded').length, 24);
    const retried = rows.filter((r) => (r.config as { fail_attempts: number }).fail_attempts === 1);
    assert.equal(retried.length, 12);
    for (const r of retried) assert.equal(r.attempts, 2, `${r.id} attempts`);
    const failures = await stack.database.db.select().from(events).where(eq(events.type, 'trial.attempt.failed'));
    const mine = failures.filter((e) => e.sweepId === sweep.id);
    assert.equal(mine.length, 12);
    for (const e of mine) assert.equal((e.data as { reason: string }).reason, 'exit 1');
    // One Job per attempt: 24 + 12.
    assert.equal((await sweepJobs(sweep.id)).length, 36);
    await worker.shutdown();
    worker = undefined;
  });

  it('a preempted pod (DisruptionTarget, deleted) is retried as a preemption', { timeout: 600_000 }, async () => {
    const executor = withSimulatedIngest(newExecutor());
    worker = await stack.startWorker({ executor });
    const sweep = await launchSweep(ctx, { spec: spec('preempt', { base: { steps: 10, step_sleep: 1 } }) });
    const pod = await eventually('a running pod', async () => {
      const pods = (await core.listNamespacedPod({ namespace: NS, labelSelector: `ladder.dev/sweep=${sweep.id}` })).items;
      return pods.find((p) => p.status?.phase === 'Running');
    }, 60_000);
    const name = pod.metadata!.name!;
    // What the scheduler's preemption and the kubelet do: DisruptionTarget, phase Failed, delete.
    const now = new Date();
    await core.patchNamespacedPodStatus(
      {
        name,
        namespace: NS,
        body: {
          status: {
            phase: 'Failed',
            conditions: [
              { type: 'DisruptionTarget', status: 'True', reason: 'PreemptionByScheduler', message: 'preempted by test', lastTransitionTime: now },
            ],
            containerStatuses: [
              { name: 'job', image: IMAGE, imageID: '', ready: false, restartCount: 0, state: { terminated: { exitCode: 137, reason: 'Error', startedAt: now, finishedAt: now } } },
            ],
          },
        },
      },
      k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.StrategicMergePatch),
    );
    await core.deleteNamespacedPod({ name, namespace: NS });
    assert.equal(await waitForSweepWithin(ctx, sweep.id, 300_000), 'succeeded');
    const [row] = await stack.database.db.select().from(trials).where(eq(trials.sweepId, sweep.id));
    assert.equal(row!.attempts, 2);
    const failed = (await stack.database.db.select().from(events).where(eq(events.trialId, row!.id))).filter(
      (e) => e.type === 'trial.attempt.failed',
    );
    assert.equal(failed.length, 1);
    assert.equal((failed[0]!.data as { state: string }).state, 'preempted');
    await worker.shutdown();
    worker = undefined;
  });

  it('cancelling the sweep deletes every Job', { timeout: 600_000 }, async () => {
    const executor = withSimulatedIngest(newExecutor());
    worker = await stack.startWorker({ executor });
    // steps × step_sleep = 2000 s: KWOK keeps these pods running until they are deleted.
    const sweep = await launchSweep(ctx, { spec: spec('cancel', { base: { steps: 10_000, step_sleep: 0.2 }, grid: { lr: [1e-4, 3e-4, 1e-3, 3e-3, 1e-2, 3e-2] } }) });
    await eventually('6 Jobs', async () => (await sweepJobs(sweep.id)).length === 6, 60_000);
    await eventually('a running pod', async () => {
      const pods = (await core.listNamespacedPod({ namespace: NS, labelSelector: `ladder.dev/sweep=${sweep.id}` })).items;
      return pods.some((p) => p.status?.phase === 'Running');
    }, 60_000);
    assert.equal(await cancelSweep(ctx, sweep.id), 'cancelling');
    assert.equal(await waitForSweepWithin(ctx, sweep.id, 300_000), 'cancelled');
    await eventually('no Jobs left', async () => (await sweepJobs(sweep.id)).length === 0, 60_000);
    await eventually('no pods left', async () => (await core.listNamespacedPod({ namespace: NS, labelSelector: `ladder.dev/sweep=${sweep.id}` })).items.length === 0, 60_000);
    await worker.shutdown();
    worker = undefined;
  });

  it('a worker restarted mid-sweep resumes without duplicate Jobs', { timeout: 600_000 }, async () => {
    const a = newExecutor();
    worker = await stack.startWorker({ executor: withSimulatedIngest(a) });
    const sweep = await launchSweep(ctx, { spec: spec('restart', { base: { steps: 10, step_sleep: 1 }, grid: { lr: [1e-4, 3e-4, 1e-3, 3e-3, 1e-2, 3e-2] }, seeds: 2 }) });
    await eventually('12 Jobs', async () => (await sweepJobs(sweep.id)).length === 12, 60_000);
    await worker.shutdown();
    await a.close();
    const b = newExecutor();
    worker = await stack.startWorker({ executor: withSimulatedIngest(b) });
    assert.equal(await waitForSweepWithin(ctx, sweep.id, 300_000), 'succeeded');
    const rows = await stack.database.db.select().from(trials).where(eq(trials.sweepId, sweep.id));
    for (const r of rows) assert.equal(r.attempts, 1, `${r.id} attempts`);
    assert.equal((await sweepJobs(sweep.id)).length, 12);
    assert.equal(a.createdCount + b.createdCount, 12, `created ${a.createdCount} + ${b.createdCount}`);
    await worker.shutdown();
    worker = undefined;
  });

  it('a SIGKILLed worker process: the sweep completes, one Job per attempt, every trial once, no duplicate metrics', { timeout: 600_000 }, async (t) => {
    // Its own task queue, so no worker of another test (in-process, possibly still polling
    // after a failure) can take its tasks: only the two child processes below serve it.
    const taskQueue = `${stack.taskQueue}-sigkill`;
    const kctx: LaunchContext = { ...ctx, taskQueue };
    const children: ChildProcess[] = [];
    const spawnWorker = async (label: string): Promise<ChildProcess> => {
      const child = spawn(process.execPath, ['--import', 'tsx', path.join(__dirname, 'worker-process.ts')], {
        cwd: path.join(__dirname, '..', '..'),
        env: {
          ...process.env,
          DATABASE_URL: stack.databaseUrl,
          TEMPORAL_ADDRESS: stack.temporalAddress,
          LADDER_TASK_QUEUE: taskQueue,
          LADDER_INGEST_URL: stack.ingestUrl,
          LADDER_INGEST_SECRET: stack.ingestSecret,
          KUBECONFIG: cluster.kubeconfigPath,
          LADDER_K8S_NAMESPACE: NS,
          LADDER_JOB_IMAGE: IMAGE,
        },
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      children.push(child);
      let stderr = '';
      child.stderr!.on('data', (d: Buffer) => (stderr = (stderr + d.toString()).slice(-4000)));
      await new Promise<void>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`worker ${label} not ready in 120 s: ${stderr}`)), 120_000);
        child.stdout!.on('data', (d: Buffer) => {
          if (d.toString().includes('ready')) {
            clearTimeout(timer);
            resolve();
          }
        });
        child.once('exit', (code, signal) => {
          clearTimeout(timer);
          reject(new Error(`worker ${label} exited (${code ?? signal}) before it was ready: ${stderr}`));
        });
      });
      return child;
    };
    t.after(() => {
      for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
    });
    const first = await spawnWorker('A');
    // 12 trials, 6 at a time, each running 10 s on KWOK: the kill lands while 6 Jobs run and 6
    // trials have not started, so the second worker both resumes and launches. The learning
    // rates differ from the other tests': an identical trial would be reused, not run.
    const sweep = await launchSweep(kctx, {
      spec: spec('sigkill', { base: { steps: 10, step_sleep: 1 }, grid: { lr: [2e-4, 5e-4, 2e-3, 5e-3, 2e-2, 5e-2] }, seeds: 2, concurrency: 6 }),
    });
    assert.equal(sweep.trials, 12);
    await eventually('6 Jobs of the first worker', async () => {
      const [row] = await stack.database.db.select().from(sweeps).where(eq(sweeps.id, sweep.id));
      if (row && isFinishedSweep(row.status)) throw new Error(`sweep ended ${row.status} before the kill (trials reused?)`);
      return (await sweepJobs(sweep.id)).length >= 6;
    }, 120_000);
    first.kill('SIGKILL');
    await new Promise((r) => (first.exitCode !== null || first.signalCode !== null ? r(null) : first.once('exit', r)));
    assert.equal(first.signalCode, 'SIGKILL');
    await spawnWorker('B');
    let status: string;
    try {
      status = await waitForSweepWithin(kctx, sweep.id, 300_000);
    } catch (e) {
      // Who polls the queue tells a stuck worker from a stolen task.
      const pollers = await Promise.all(
        // TaskQueueType 1 = WORKFLOW, 2 = ACTIVITY (temporal.api.enums.v1).
        ([['workflow', 1], ['activity', 2]] as const).map(async ([name, taskQueueType]) => {
          const res = await stack.temporal.workflowService.describeTaskQueue({ namespace: 'default', taskQueue: { name: taskQueue }, taskQueueType });
          return `${name}: ${(res.pollers ?? []).map((p) => p.identity).join(', ') || 'none'}`;
        }),
      );
      throw new Error(`${(e as Error).message}\npollers of ${taskQueue}: ${pollers.join('; ')}`);
    }
    assert.equal(status, 'succeeded');
    // Every trial exactly once: one row each, succeeded, on its first attempt.
    const rows = await stack.database.db.select().from(trials).where(eq(trials.sweepId, sweep.id));
    assert.equal(rows.length, 12);
    for (const r of rows) {
      assert.equal(r.status, 'succeeded', `${r.id} status`);
      assert.equal(r.attempts, 1, `${r.id} attempts`);
      assert.ok(r.result, `${r.id} has a result`);
    }
    // One Job per attempt, counted by label on the API server (not by either worker's count).
    const jobs = await sweepJobs(sweep.id);
    const perAttempt = new Map<string, number>();
    for (const j of jobs) {
      const key = `${j.metadata!.labels!['ladder.dev/trial']}/${j.metadata!.labels!['ladder.dev/attempt']}`;
      perAttempt.set(key, (perAttempt.get(key) ?? 0) + 1);
    }
    assert.equal(jobs.length, 12, `Jobs: ${[...perAttempt].join(' ')}`);
    assert.deepEqual([...perAttempt.values()], Array(12).fill(1));
    // No duplicate metric rows: one point per (trial, name, step), all 10 steps of loss present
    // and no others (a re-run attempt posting again would add rows past the count, or conflict).
    const points = await stack.database.db.select().from(metricPoints).where(inArray(metricPoints.trialId, rows.map((r) => r.id)));
    const seen = new Set<string>();
    for (const p of points) {
      const key = `${p.trialId}/${p.name}/${p.step}`;
      assert.ok(!seen.has(key), `duplicate metric row ${key}`);
      seen.add(key);
    }
    for (const r of rows) assert.equal(points.filter((p) => p.trialId === r.id && p.name === 'loss').length, 10, `${r.id} loss points`);
  });

  it('pods post metrics with the token of their own Secret, which is the only place the token is', { timeout: 600_000 }, async () => {
    const seen: string[] = [];
    // Recorded, not thrown: a throw inside status() would only make the activity retry until
    // the test's timeout, while a recorded problem fails the test as soon as the sweep ends.
    const problems: string[] = [];
    const check = (ok: boolean, what: string) => {
      if (!ok) problems.push(what);
    };
    // What the kubelet does for the pod: resolve LADDER_INGEST_TOKEN from the pod's own spec.
    const tokenOfPod = async (launch: JobLaunch): Promise<string> => {
      const jobName = jobNameFor(launch.executionId);
      const [pod] = (await core.listNamespacedPod({ namespace: NS, labelSelector: `batch.kubernetes.io/job-name=${jobName}` })).items;
      if (!pod) return (problems.push(`no pod of ${jobName}`), '');
      const env = pod.spec!.containers.find((c) => c.name === 'job')?.env?.filter((e) => e.name === 'LADDER_INGEST_TOKEN') ?? [];
      check(env.length === 1 && env[0]!.value === undefined, `${jobName}: LADDER_INGEST_TOKEN is set once, from a Secret, never in plain text`);
      const ref = env.find((e) => e.valueFrom?.secretKeyRef)?.valueFrom!.secretKeyRef;
      if (!ref) return (problems.push(`${jobName}: no secretKeyRef for the token`), '');
      check(ref.name === jobName, `${jobName}: the token comes from the Job's own Secret, not ${ref.name}`);
      const secret = await core.readNamespacedSecret({ name: ref.name!, namespace: NS });
      const token = Buffer.from(secret.data?.[ref.key!] ?? '', 'base64').toString('utf8');
      check(token.length > 0, `${jobName}: the Secret holds a token`);
      // The token appears nowhere else the pod or its Job can be read.
      const job = await batch.readNamespacedJob({ name: jobName, namespace: NS });
      if (token) check(!JSON.stringify(pod).includes(token) && !JSON.stringify(job).includes(token), `${jobName}: token only in the Secret`);
      seen.push(launch.trialId);
      return token;
    };
    worker = await stack.startWorker({ executor: withSimulatedIngest(newExecutor(), { tokenOf: tokenOfPod }) });
    const sweep = await launchSweep(ctx, { spec: spec('secret-token', { base: { steps: 6, step_sleep: 0.1 }, grid: { lr: [1e-4, 1e-3, 1e-2] }, retries: 0 }) });
    const status = await waitForSweepWithin(ctx, sweep.id, 240_000);
    assert.deepEqual(problems, []);
    assert.equal(status, 'succeeded');
    const rows = await stack.database.db.select().from(trials).where(eq(trials.sweepId, sweep.id));
    assert.equal(rows.length, 3);
    for (const r of rows) {
      assert.ok(seen.includes(r.id), `${r.id} pushed with its pod's token`);
      assert.ok(r.result, `${r.id} has the result its pod posted`);
      const n = await stack.database.db.select().from(metricPoints).where(and(eq(metricPoints.trialId, r.id), eq(metricPoints.name, 'loss')));
      assert.equal(n.length, 6, `${r.id} loss points`);
    }
    await worker.shutdown();
    worker = undefined;
  });

  it('a `command` sweep runs the user\'s program in its image on the GPU nodes, climbs 2 rungs with promotion; without an image it is refused at launch', { timeout: 600_000 }, async () => {
    const kctx: LaunchContext = { ...ctx, executor: 'kubernetes' };
    // A value a shell would split or expand: it must reach the container as these exact characters.
    const env = { DATASET: 'digits', NOTE: 'héllo wörld $(id) `x`' };
    const byo = {
      name: 'byo-k8s',
      command: ['python', 'train.py', '{args}'],
      image: BYO_IMAGE,
      env,
      // KWOK reads steps × step_sleep (2 s) from the config like any launch's; noise 0 keeps the
      // simulated ranking of the two rates fixed (lr 3e-4 is the synthetic curve's optimum).
      base: { steps: 4, step_sleep: 0.5, noise: 0 },
      grid: { lr: [0.0003, 0.03] },
      seeds: 2,
      scale: { key: 'width', rungs: [{ name: 's', value: 64 }, { name: 'l', value: 256 }] },
      promotion: { metric: 'val_loss', mode: 'min' as const, topK: 1 },
      resources: { gpus: 2, cpu: 1, memory: '1Gi' },
      concurrency: 8,
      retries: 1,
      timeoutSeconds: 600,
    };

    // Refused before anything is stored: the executor named in the context is Kubernetes.
    const { image: _image, ...noImage } = byo;
    await assert.rejects(launchSweep(kctx, { spec: { ...noImage, name: 'byo-k8s-no-image' } }), (e: unknown) => {
      assert.ok(e instanceof SpecError, `a SpecError, got ${String(e)}`);
      assert.deepEqual(e.issues.map((i) => i.path), ['image']);
      return true;
    });
    assert.equal((await stack.database.db.select().from(sweeps).where(eq(sweeps.name, 'byo-k8s-no-image'))).length, 0, 'nothing stored');

    worker = await stack.startWorker({ executor: withSimulatedIngest(newExecutor()) });
    const sweep = await launchSweep(kctx, { spec: byo });
    assert.equal(sweep.spec.kind, 'command');
    assert.equal(sweep.trials, 8);
    assert.equal(await waitForSweepWithin(kctx, sweep.id, 300_000), 'succeeded');

    // Every trial's outcome: 4 ran on rung s; of rung l only the promoted rate (both seeds) ran.
    const rows = await stack.database.db.select().from(trials).where(eq(trials.sweepId, sweep.id));
    const outcome = rows
      .map((r) => `${r.rungName} lr=${(r.config as { lr: number }).lr} seed=${r.seed}: ${r.status}${r.exitReason ? ` (${r.exitReason})` : ''}`)
      .sort();
    assert.deepEqual(outcome, [
      'l lr=0.0003 seed=0: succeeded',
      'l lr=0.0003 seed=1: succeeded',
      'l lr=0.03 seed=0: skipped (not promoted)',
      'l lr=0.03 seed=1: skipped (not promoted)',
      's lr=0.0003 seed=0: succeeded',
      's lr=0.0003 seed=1: succeeded',
      's lr=0.03 seed=0: succeeded',
      's lr=0.03 seed=1: succeeded',
    ]);
    for (const r of rows.filter((t) => t.status === 'succeeded')) {
      assert.equal(r.attempts, 1, `${r.id} attempts`);
      assert.equal(typeof (r.result as { metrics?: { val_loss?: unknown } } | null)?.metrics?.val_loss, 'number', `${r.id} has a val_loss`);
    }
    const [promotion] = await stack.database.db
      .select()
      .from(analyses)
      .where(and(eq(analyses.sweepId, sweep.id), eq(analyses.kind, 'promotion'), eq(analyses.rungIndex, 0)));
    assert.ok(promotion, 'the promotion decision after rung s is stored');
    const decisions = (promotion.data as { decisions: Array<{ variantIndex: number; promoted: boolean }> }).decisions;
    const bestVariant = rows.find((r) => (r.config as { lr: number }).lr === 0.0003)!.variantIndex;
    assert.deepEqual(
      decisions.map((d) => [d.variantIndex, d.promoted]).sort(),
      [[bestVariant, true], [1 - bestVariant, false]].sort(),
    );

    // The Jobs as the API server holds them: one per trial that ran, each running the user's
    // argument list (not a shell, not the job module) in the spec's image with the spec's env.
    const jobs = await sweepJobs(sweep.id);
    assert.equal(jobs.length, 6);
    const argv = (lr: string, width: number, seed: number) =>
      ['python', 'train.py', `--lr=${lr}`, '--noise=0', `--seed=${seed}`, '--step_sleep=0.5', '--steps=4', `--width=${width}`].join(' ');
    const commands: string[] = [];
    for (const job of jobs) {
      const pod = job.spec!.template.spec!;
      assert.equal(pod.containers.length, 1);
      const c = pod.containers[0]!;
      assert.equal(c.image, BYO_IMAGE, `${job.metadata!.name}: the spec's image`);
      assert.equal(c.args, undefined, 'the whole argument list is the command, nothing appended');
      commands.push(c.command!.join(' '));
      // Each argument is its own list item: the Job holds 8, never one string for a shell.
      assert.equal(c.command!.length, 8);
      const byName = new Map((c.env ?? []).map((e) => [e.name, e]));
      assert.equal(byName.size, (c.env ?? []).length, `${job.metadata!.name}: no variable set twice`);
      assert.equal(byName.get('DATASET')?.value, env.DATASET);
      assert.equal(byName.get('NOTE')?.value, env.NOTE);
      assert.equal(byName.get('LADDER_CONFIG')?.value, '/config/config.json');
      assert.equal(byName.get('LADDER_TRIAL_ID')?.value, job.metadata!.labels!['ladder.dev/trial']);
      assert.ok(byName.get('LADDER_INGEST_TOKEN')?.valueFrom?.secretKeyRef, 'the token comes from the Secret');
      assert.equal(byName.get('LADDER_INGEST_TOKEN')?.value, undefined);
      // The config file the command is told about is mounted from the attempt's Secret.
      assert.ok(c.volumeMounts?.some((m) => m.mountPath === '/config'), 'the config volume is mounted');
    }
    assert.deepEqual(commands.sort(), [
      argv('0.0003', 256, 0),
      argv('0.0003', 256, 1),
      argv('0.0003', 64, 0),
      argv('0.0003', 64, 1),
      argv('0.03', 64, 0),
      argv('0.03', 64, 1),
    ].sort());
    await worker.shutdown();
    worker = undefined;
  });
});
