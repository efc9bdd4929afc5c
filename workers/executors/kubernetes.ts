/**
 * KubernetesExecutor: one `batch/v1` Job per trial attempt.
 *
 * Objects per attempt (both in `namespace`, both named `jobNameFor(executionId)`):
 * - the Job (`backoffLimit: 0`: Temporal owns retries; `restartPolicy: Never`;
 *   `activeDeadlineSeconds` from the trial's timeout; `ttlSecondsAfterFinished`; a
 *   `podFailurePolicy` whose rule 0 matches the `DisruptionTarget` pod condition (preemption,
 *   eviction) and rule 1 exit code 2 (bad config), both `FailJob` by default so that the Job's
 *   Failed condition says which one happened);
 * - ONE Secret, owned by the Job, holding `config.json` (mounted alone at /config) and the
 *   per-trial ingest token (env `LADDER_INGEST_TOKEN` from `secretKeyRef`, never plain text in
 *   the pod spec, never in a ConfigMap, not mounted as a file). One Secret instead of a ConfigMap
 *   plus a Secret is a third fewer API writes per attempt (test/k8s/README.md has the figures).
 * The owner reference makes the garbage collector delete the Secret with the Job (cancel, TTL).
 *
 * Idempotency: the name is derived from the execution id alone (sanitised to DNS-1123, ≤ 63
 * characters, with a stable hash suffix), so a retried submit gets 409 AlreadyExists and reads
 * the Job that is there. The Secret is created after the Job (it needs the Job's uid) and
 * tolerates 409, so a submit interrupted between the two calls is completed by the next; until
 * then the pod waits for its Secret (the kubelet retries the mount).
 *
 * Connections: API calls share one keep-alive HTTPS agent (`keepAliveApi`). The client library
 * makes a new agent, so a new TLS handshake with the client certificate, for every request;
 * that handshake was most of the CPU per Job.
 *
 * Status comes from ONE informer on Jobs and ONE on Pods per executor (list + watch with
 * resourceVersion resume, relist on 410; restarted after errors), filtered by the label
 * `app.kubernetes.io/managed-by=ladder`; a direct GET is made only for a Job the cache does not
 * have (just created by another replica, or unknown).
 *
 * Mapping: what the Job and its pods say is mapped by the pure `jobStatus` in
 * `kubernetes/status.ts` (its header holds the table, one unit test per row). Before it, the
 * executor's own memory decides (first match wins):
 * - cancelled by this executor → cancelled (in-memory tombstone: after a worker restart a
 *   cancelled, deleted Job is 'unknown-execution', which is retryable and harmless);
 * - a terminal status already seen → that status;
 * - a Job gone while we watched it → failed 'job-deleted' (retryable);
 * - a Job neither cached nor found by a GET (404) → failed 'unknown-execution' (retryable).
 * A Job whose image pull failed is deleted once its status says so.
 * Terminal statuses are remembered, so a Job removed later by its TTL still reads as it ended.
 *
 * `wait` resolves from the same informer events (plus a slow re-check for the time-based rules:
 * the image-pull grace), so an attempt's end is seen within one watch event, not a poll.
 *
 * Units: `kubernetes/names.ts` (names, labels), `kubernetes/manifest.ts` (the Job and Secret as
 * data), `kubernetes/status.ts` (the mapping), `kubernetes/informers.ts` (the watches),
 * `kubernetes/api.ts` (kept-alive clients); this file holds the executor's state and its calls.
 */
import * as k8s from '@kubernetes/client-node';
import { type ExecutionRef, type ExecutionStatus, type Executor, type JobLaunch, isTerminal } from './types';
import { apiCode, keepAliveApi } from './kubernetes/api';
import { type CachedInformer, startInformers } from './kubernetes/informers';
import { type ManifestOptions, jobManifest, secretManifest } from './kubernetes/manifest';
import { DIGEST_PINNED, EXECUTION_ID_ANNOTATION, JOB_CONTAINER, jobNameFor, jobNameOfPod } from './kubernetes/names';
import { imagePullFailing, jobFailed, jobFinished, jobStatus, sawTermination } from './kubernetes/status';

export { keepAliveApi } from './kubernetes/api';
export type { CheckpointVolume } from './kubernetes/manifest';
export {
  EXECUTION_ID_ANNOTATION,
  JOB_CONTAINER,
  KUEUE_QUEUE_LABEL,
  MANAGED_BY_LABEL,
  MANAGED_BY_VALUE,
  SECRET_CONFIG_KEY,
  SECRET_TOKEN_KEY,
  jobNameFor,
  labelKey,
  labelValue,
} from './kubernetes/names';

export interface KubernetesExecutorOptions extends ManifestOptions {
  /** Default: `loadFromDefault()` (KUBECONFIG, ~/.kube/config, or in-cluster service account). */
  kubeConfig?: k8s.KubeConfig;
  namespace: string;
  /** Propagation of cancel's delete. Default Background. */
  deletePropagation?: 'Background' | 'Foreground';
  /** How long an image pull may fail before the attempt is failed. Default 120000. */
  imagePullGraceMs?: number;
  /** Most concurrent API connections (kept alive, reused). Default 64. */
  maxSockets?: number;
  /** How often `wait` re-checks without an event (time-based rules, e.g. the image-pull grace). Default 5000. */
  waitRecheckMs?: number;
}

export interface KubernetesHandle {
  namespace: string;
  jobName: string;
}

interface PodTrack {
  pods: Map<string, k8s.V1Pod>;
  imagePullSince?: number;
}

export class KubernetesExecutor implements Executor {
  readonly name = 'kubernetes';
  readonly namespace: string;
  private readonly kc: k8s.KubeConfig;
  private readonly batch: k8s.BatchV1Api;
  private readonly core: k8s.CoreV1Api;
  private readonly opts: KubernetesExecutorOptions;
  private jobInformer?: CachedInformer<k8s.V1Job>;
  private podInformer?: CachedInformer<k8s.V1Pod>;
  private started?: Promise<void>;
  private stopped = false;
  /** Jobs we created or read, until the informer has them. */
  private readonly recent = new Map<string, k8s.V1Job>();
  private readonly pods = new Map<string, PodTrack>();
  private readonly terminal = new Map<string, ExecutionStatus>();
  private readonly cancelled = new Set<string>();
  /** Jobs the informer saw deleted while not terminal (and not cancelled by us). */
  private readonly vanished = new Set<string>();
  /** `wait` callers per Job name, woken by informer events of the Job or its pods. */
  private readonly waiters = new Map<string, Set<() => void>>();
  /** Number of Jobs this executor created (not the 409 repeats); for tests and figures. */
  createdCount = 0;

  constructor(options: KubernetesExecutorOptions) {
    if (!options.allowUnpinnedImage && !DIGEST_PINNED.test(options.image)) {
      throw new Error(`KubernetesExecutor: image must be digest-pinned (repo@sha256:<64 hex>), got '${options.image}'`);
    }
    this.opts = options;
    this.namespace = options.namespace;
    if (options.kubeConfig) this.kc = options.kubeConfig;
    else {
      this.kc = new k8s.KubeConfig();
      this.kc.loadFromDefault();
    }
    this.batch = keepAliveApi(this.kc, k8s.BatchV1Api, options.maxSockets);
    this.core = keepAliveApi(this.kc, k8s.CoreV1Api, options.maxSockets);
  }

  /** How many `wait` calls are pending (tests: no listener is left behind). */
  get pendingWaits(): number {
    let n = 0;
    for (const set of this.waiters.values()) n += set.size;
    return n;
  }

  private wake(jobName: string): void {
    const set = this.waiters.get(jobName);
    if (set) for (const fn of [...set]) fn();
  }

  // ---------------------------------------------------------------- informers

  /** Starts the two informers (once); resolves when both have listed. */
  start(): Promise<void> {
    if (!this.started) {
      this.started = this.startInformers().catch((e) => {
        this.started = undefined;
        throw e;
      });
    }
    return this.started;
  }

  private async startInformers(): Promise<void> {
    const onJob = (job: k8s.V1Job) => {
      const name = job.metadata?.name;
      if (!name) return;
      this.recent.delete(name);
      this.wake(name);
    };
    const onPod = (pod: k8s.V1Pod) => {
      const jobName = jobNameOfPod(pod.metadata?.labels);
      const podName = pod.metadata?.name;
      if (!jobName || !podName) return;
      this.trackOf(jobName).pods.set(podName, pod); // kept after delete: the last state tells why it ended
      this.wake(jobName);
    };
    const { jobs, pods, started } = startInformers(
      this.kc,
      this.batch,
      this.core,
      this.namespace,
      {
        onJob,
        onJobDeleted: (job) => {
          const name = job.metadata?.name;
          if (!name) return;
          this.recent.delete(name);
          if (!this.cancelled.has(name)) {
            if (jobFinished(job)) this.remember(name, this.statusOf(job));
            else this.vanished.add(name);
          }
          // The outcome is settled (remembered, cancelled or vanished): the pods are not needed.
          this.pods.delete(name);
          this.wake(name);
        },
        onPod,
        onPodDeleted: (pod) => {
          const jobName = jobNameOfPod(pod.metadata?.labels);
          // A pod outliving its Job (garbage collection): nothing will read it again.
          if (jobName && !this.cachedJob(jobName) && (this.terminal.has(jobName) || this.cancelled.has(jobName) || this.vanished.has(jobName))) {
            this.pods.delete(jobName);
            return;
          }
          onPod(pod);
        },
      },
      () => this.stopped,
    );
    this.jobInformer = jobs;
    this.podInformer = pods;
    await started;
  }

  /** Stops the informers (tests; a worker shutting down). */
  async close(): Promise<void> {
    this.stopped = true;
    await Promise.all([this.jobInformer?.stop(), this.podInformer?.stop()]);
  }

  private trackOf(jobName: string): PodTrack {
    let track = this.pods.get(jobName);
    if (!track) this.pods.set(jobName, (track = { pods: new Map() }));
    return track;
  }

  // ---------------------------------------------------------------- submit

  private refFor(launchOrId: string): ExecutionRef {
    const handle: KubernetesHandle = { namespace: this.namespace, jobName: jobNameFor(launchOrId) };
    return { executor: this.name, executionId: launchOrId, handle: { ...handle } };
  }

  private handleOf(ref: ExecutionRef): KubernetesHandle {
    const h = ref.handle as Partial<KubernetesHandle>;
    return {
      namespace: typeof h.namespace === 'string' ? h.namespace : this.namespace,
      jobName: typeof h.jobName === 'string' ? h.jobName : jobNameFor(ref.executionId),
    };
  }

  async submit(launch: JobLaunch): Promise<ExecutionRef> {
    await this.start();
    const ref = this.refFor(launch.executionId);
    const { jobName } = this.handleOf(ref);
    if (this.cancelled.has(jobName) || this.terminal.has(jobName)) return ref;
    let job = this.cachedJob(jobName);
    if (!job) {
      try {
        job = await this.batch.createNamespacedJob({ namespace: this.namespace, body: this.jobManifest(launch, jobName) });
        this.createdCount++;
        this.vanished.delete(jobName);
      } catch (e) {
        if (apiCode(e) !== 409) throw e;
        job = await this.batch.readNamespacedJob({ name: jobName, namespace: this.namespace });
      }
      const owner = job.metadata?.annotations?.[EXECUTION_ID_ANNOTATION];
      if (owner !== undefined && owner !== launch.executionId) {
        throw new Error(`Job ${jobName} belongs to execution ${owner}, not ${launch.executionId} (name hash collision)`);
      }
      if (!this.jobInformer?.get(jobName, this.namespace)) this.recent.set(jobName, job);
    }
    if (!job.metadata?.deletionTimestamp) await this.ensureOwnedObjects(launch, job);
    return ref;
  }

  private async ensureOwnedObjects(launch: JobLaunch, job: k8s.V1Job): Promise<void> {
    try {
      await this.core.createNamespacedSecret({ namespace: this.namespace, body: this.secretManifest(launch, job) });
    } catch (e) {
      if (apiCode(e) !== 409) throw e;
    }
  }

  /** The attempt's one Secret (see `kubernetes/manifest.ts`). */
  secretManifest(launch: JobLaunch, job: k8s.V1Job): k8s.V1Secret {
    return secretManifest(this.namespace, launch, job);
  }

  /** The Job for one attempt (exported through the class for tests and dry runs). */
  jobManifest(launch: JobLaunch, jobName = jobNameFor(launch.executionId)): k8s.V1Job {
    return jobManifest(this.opts, this.namespace, launch, jobName);
  }

  // ---------------------------------------------------------------- status

  private cachedJob(jobName: string): k8s.V1Job | undefined {
    return this.jobInformer?.get(jobName, this.namespace) ?? this.recent.get(jobName);
  }

  private remember(jobName: string, status: ExecutionStatus): ExecutionStatus {
    if (!this.terminal.has(jobName)) this.terminal.set(jobName, status);
    if (this.terminal.size > 50_000) this.terminal.delete(this.terminal.keys().next().value!);
    return this.terminal.get(jobName)!;
  }

  async status(ref: ExecutionRef): Promise<ExecutionStatus> {
    await this.start();
    const { jobName, namespace } = this.handleOf(ref);
    if (this.cancelled.has(jobName)) return { state: 'cancelled', reason: 'cancelled' };
    const done = this.terminal.get(jobName);
    if (done) return done;
    let job = this.cachedJob(jobName);
    let fromApi = false;
    if (!job) {
      if (this.vanished.has(jobName)) return { state: 'failed', reason: 'job-deleted', retryable: true };
      try {
        job = await this.batch.readNamespacedJob({ name: jobName, namespace });
        fromApi = true;
      } catch (e) {
        if (apiCode(e) === 404) return { state: 'failed', reason: 'unknown-execution', retryable: true };
        throw e;
      }
    }
    // A failed Job whose pod we have not seen terminate (watch events of Jobs and Pods race):
    // read its pods once, so the reason comes from the container's exit.
    const seen = this.pods.get(jobName)?.pods.values() ?? [];
    if ((fromApi && !this.pods.has(jobName) && jobFinished(job)) || (jobFailed(job) && !sawTermination(seen))) {
      await this.loadPods(jobName, namespace);
    }
    const st = this.statusOf(job);
    if (st.reason === 'image-pull') {
      this.remember(jobName, st);
      void this.deleteJob(jobName, namespace).catch(() => {});
      return st;
    }
    return isTerminal(st) ? this.remember(jobName, st) : st;
  }

  private async loadPods(jobName: string, namespace: string): Promise<void> {
    const list = await this.core.listNamespacedPod({ namespace, labelSelector: `batch.kubernetes.io/job-name=${jobName}` });
    const track = this.trackOf(jobName);
    for (const p of list.items) if (p.metadata?.name) track.pods.set(p.metadata.name, p);
  }

  /** `jobStatus` over the pods seen, with the image-pull grace clock kept per Job. */
  private statusOf(job: k8s.V1Job): ExecutionStatus {
    const track = this.pods.get(job.metadata?.name ?? '');
    const pods = [...(track?.pods.values() ?? [])];
    const now = Date.now();
    if (track && imagePullFailing(pods)) track.imagePullSince ??= now;
    return jobStatus(job, pods, { now, imagePullSince: track?.imagePullSince, imagePullGraceMs: this.opts.imagePullGraceMs });
  }
  // ---------------------------------------------------------------- cancel, logs

  async cancel(ref: ExecutionRef): Promise<void> {
    await this.start();
    const { jobName, namespace } = this.handleOf(ref);
    if (this.terminal.has(jobName) || this.cancelled.has(jobName)) return;
    const current = await this.status(ref);
    if (isTerminal(current)) return; // finished (or unknown): nothing to stop
    this.cancelled.add(jobName);
    this.wake(jobName);
    await this.deleteJob(jobName, namespace);
  }

  async wait(ref: ExecutionRef, signal: AbortSignal): Promise<ExecutionStatus> {
    await this.start();
    const { jobName } = this.handleOf(ref);
    const first = await this.status(ref);
    if (isTerminal(first) || signal.aborted) return first;
    return new Promise<ExecutionStatus>((resolve, reject) => {
      let last = first;
      let settled = false;
      let checking = false;
      let again = false;
      let set = this.waiters.get(jobName);
      if (!set) this.waiters.set(jobName, (set = new Set()));
      const done = (end: () => void) => {
        if (settled) return;
        settled = true;
        set.delete(check);
        if (set.size === 0 && this.waiters.get(jobName) === set) this.waiters.delete(jobName);
        clearInterval(timer);
        signal.removeEventListener('abort', onAbort);
        end();
      };
      // One status() at a time per waiter; events arriving meanwhile cause one more.
      const check = () => {
        if (settled) return;
        if (checking) {
          again = true;
          return;
        }
        checking = true;
        this.status(ref).then(
          (st) => {
            checking = false;
            last = st;
            if (isTerminal(st)) done(() => resolve(st));
            else if (again) {
              again = false;
              check();
            }
          },
          (e: unknown) => {
            checking = false;
            done(() => reject(e));
          },
        );
      };
      const onAbort = () => {
        // The contract: abort resolves with the current status, never rejects.
        this.status(ref).then(
          (st) => done(() => resolve(st)),
          () => done(() => resolve(last)),
        );
      };
      set.add(check);
      const timer = setInterval(check, this.opts.waitRecheckMs ?? 5000);
      timer.unref();
      signal.addEventListener('abort', onAbort, { once: true });
      check(); // an event may have come between the first status and the listener
    });
  }

  private async deleteJob(jobName: string, namespace: string): Promise<void> {
    try {
      await this.batch.deleteNamespacedJob({
        name: jobName,
        namespace,
        propagationPolicy: this.opts.deletePropagation ?? 'Background',
      });
    } catch (e) {
      if (apiCode(e) !== 404) throw e;
    }
  }

  async logs(ref: ExecutionRef, tailBytes = 64 * 1024): Promise<string> {
    const { jobName, namespace } = this.handleOf(ref);
    const clip = (s: string) => (tailBytes <= 0 ? '' : s.length > tailBytes ? s.slice(s.length - tailBytes) : s);
    try {
      const list = await this.core.listNamespacedPod({ namespace, labelSelector: `batch.kubernetes.io/job-name=${jobName}` });
      const pod = list.items.sort((a, b) => String(b.metadata?.creationTimestamp ?? '').localeCompare(String(a.metadata?.creationTimestamp ?? '')))[0];
      if (!pod?.metadata?.name) return '';
      const text = await this.core.readNamespacedPodLog({
        name: pod.metadata.name,
        namespace,
        container: JOB_CONTAINER,
        limitBytes: undefined,
        tailLines: 2000,
      });
      return clip(String(text));
    } catch (e) {
      return clip(`[logs unavailable: ${(e as Error).message.split('\n')[0]}]`);
    }
  }
}
