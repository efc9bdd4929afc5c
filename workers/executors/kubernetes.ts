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
 * Mapping (first match wins):
 * - cancelled by this executor → cancelled (in-memory tombstone: after a worker restart a
 *   cancelled, deleted Job is 'unknown-execution', which is retryable and harmless);
 * - Job condition Complete → succeeded;
 * - Job condition Failed/FailureTarget: reason DeadlineExceeded → failed 'deadline-exceeded'
 *   (retryable); a pod with the DisruptionTarget condition, or the message naming it →
 *   preempted (retryable); a container exit code 2 → failed 'bad-config' (not retryable);
 *   OOMKilled → failed 'oom' (retryable); another exit code N → failed 'exit N' (retryable);
 * - a pod waiting on ErrImagePull/ImagePullBackOff for longer than `imagePullGraceMs` (or
 *   InvalidImageName at once) → failed 'image-pull' (retryable; the Job is deleted);
 * - a Job being deleted by someone else, or gone while we watched it → failed 'job-deleted'
 *   (retryable);
 * - a ready pod (or `status.ready > 0`) → running; otherwise pending (unscheduled, suspended by
 *   Kueue, pulling the image...).
 * Terminal statuses are remembered, so a Job removed later by its TTL still reads as it ended.
 *
 * `wait` resolves from the same informer events (plus a slow re-check for the time-based rules:
 * the image-pull grace), so an attempt's end is seen within one watch event, not a poll.
 */
import { createHash } from 'node:crypto';
import * as https from 'node:https';
import * as k8s from '@kubernetes/client-node';
import {
  type ExecutionRef,
  type ExecutionStatus,
  type Executor,
  type JobLaunch,
  EXIT_BAD_CONFIG,
  isTerminal,
  statusFromExitCode,
} from './types';
import { InvocationError, jobInvocation } from './command';

/** A digest-pinned image reference: every attempt of a trial runs the same bytes. */
const DIGEST_PINNED = /@sha256:[0-9a-f]{64}$/;

export const MANAGED_BY_LABEL = 'app.kubernetes.io/managed-by';
export const MANAGED_BY_VALUE = 'ladder';
export const EXECUTION_ID_ANNOTATION = 'ladder.dev/execution-id';
export const KUEUE_QUEUE_LABEL = 'kueue.x-k8s.io/queue-name';
export const JOB_CONTAINER = 'job';
export const SECRET_CONFIG_KEY = 'config.json';
export const SECRET_TOKEN_KEY = 'ingest-token';
const JOB_NAME_LABELS = ['batch.kubernetes.io/job-name', 'job-name'];

export type CheckpointVolume =
  | { type: 'pvc'; claimName: string }
  | { type: 'hostPath'; path: string }
  | { type: 'emptyDir' };

export interface KubernetesExecutorOptions {
  /** Default: `loadFromDefault()` (KUBECONFIG, ~/.kube/config, or in-cluster service account). */
  kubeConfig?: k8s.KubeConfig;
  namespace: string;
  /** Job image; must be digest-pinned (`repo@sha256:…`) unless `allowUnpinnedImage`. */
  image: string;
  allowUnpinnedImage?: boolean;
  imagePullPolicy?: 'Always' | 'IfNotPresent' | 'Never';
  /** Extended resource name of a GPU. Default `nvidia.com/gpu`. */
  gpuResourceName?: string;
  nodeSelector?: Record<string, string>;
  tolerations?: k8s.V1Toleration[];
  /** Kueue LocalQueue: sets the `kueue.x-k8s.io/queue-name` label on the Job. */
  queueName?: string;
  priorityClassName?: string;
  serviceAccountName?: string;
  /** Used when the launch carries no `timeoutSeconds`. Default 86400. */
  activeDeadlineSeconds?: number;
  /** Default 3600. */
  ttlSecondsAfterFinished?: number;
  /** Where checkpoints live (mounted at `/checkpoints`, dir per trial). Default emptyDir. */
  checkpoint?: CheckpointVolume;
  /** Propagation of cancel's delete. Default Background. */
  deletePropagation?: 'Background' | 'Foreground';
  /** podFailurePolicy action for DisruptionTarget. FailJob (default): the attempt ends 'preempted' and Temporal retries; Ignore: the Job controller recreates the pod. */
  disruptionAction?: 'FailJob' | 'Ignore';
  /** How long an image pull may fail before the attempt is failed. Default 120000. */
  imagePullGraceMs?: number;
  /** Extra pod annotations per launch (tests use this to drive KWOK stages). */
  podAnnotations?: (launch: JobLaunch) => Record<string, string>;
  /** Python module run in the image. Default `ladder_jobs`. */
  jobModule?: string;
  /** Most concurrent API connections (kept alive, reused). Default 64. */
  maxSockets?: number;
  /** How often `wait` re-checks without an event (time-based rules, e.g. the image-pull grace). Default 5000. */
  waitRecheckMs?: number;
}

/**
 * An API client like `kc.makeApiClient(type)` whose requests reuse `agent`'s kept-alive
 * connections. Authentication still runs per request (bearer tokens that rotate, exec plugins);
 * only the agent the library would make anew each time is replaced, and not behind a proxy
 * (the proxy agent is left as it is).
 */
export function keepAliveApi<T extends k8s.ApiType>(
  kc: k8s.KubeConfig,
  apiClientType: new (config: k8s.Configuration) => T,
  maxSockets = 64,
): T {
  const cluster = kc.getCurrentCluster();
  if (!cluster) throw new Error('kubeConfig: no current cluster');
  let agent: https.Agent | undefined;
  const auth: k8s.SecurityAuthentication = {
    getName: () => 'ladder-keep-alive',
    async applySecurityAuthentication(context) {
      await kc.applySecurityAuthentication(context);
      const made = context.getAgent();
      if (cluster.proxyUrl || !(made instanceof https.Agent)) return;
      // The TLS material (CA, client certificate) is what kc put on its agent.
      agent ??= new https.Agent({ ...made.options, keepAlive: true, maxSockets });
      context.setAgent(agent);
    },
  };
  return new apiClientType(
    k8s.createConfiguration({ baseServer: new k8s.ServerConfiguration(cluster.server, {}), authMethods: { default: auth } }),
  );
}

export interface KubernetesHandle {
  namespace: string;
  jobName: string;
}

/** DNS-1123 label (≤ 63) from an execution id: sanitised prefix + stable 8-hex hash. */
export function jobNameFor(executionId: string): string {
  const hash = createHash('sha256').update(executionId).digest('hex').slice(0, 8);
  let base = executionId.toLowerCase().replace(/[^a-z0-9-]+/g, '-').replace(/-+/g, '-');
  base = base.slice(0, 63 - 'ladder-'.length - 1 - hash.length).replace(/^-+|-+$/g, '');
  return base ? `ladder-${base}-${hash}` : `ladder-${hash}`;
}

/** A valid label value (≤ 63, [A-Za-z0-9._-], alphanumeric at both ends); hashed when shortened. */
export function labelValue(value: string): string {
  let v = value.replace(/[^A-Za-z0-9._-]+/g, '-');
  if (v.length > 63 || v !== value) {
    const hash = createHash('sha256').update(value).digest('hex').slice(0, 8);
    if (v.length > 63 || v !== value) v = `${v.slice(0, 54)}-${hash}`;
  }
  return v.replace(/^[^A-Za-z0-9]+|[^A-Za-z0-9]+$/g, '');
}

/** A valid label key: optional DNS subdomain prefix + '/' + name (≤ 63). */
export function labelKey(key: string): string {
  const slash = key.lastIndexOf('/');
  const prefix = slash >= 0 ? key.slice(0, slash).toLowerCase().replace(/[^a-z0-9.-]+/g, '-').slice(0, 253) : '';
  let name = (slash >= 0 ? key.slice(slash + 1) : key).replace(/[^A-Za-z0-9._-]+/g, '-').slice(0, 63);
  name = name.replace(/^[^A-Za-z0-9]+|[^A-Za-z0-9]+$/g, '') || 'x';
  return prefix ? `${prefix}/${name}` : name;
}

function apiCode(err: unknown): number | undefined {
  if (err instanceof k8s.ApiException) return err.code;
  const code = (err as { code?: unknown; statusCode?: unknown })?.code ?? (err as { statusCode?: unknown })?.statusCode;
  return typeof code === 'number' ? code : undefined;
}

const IMAGE_PULL_WAITING = new Set(['ErrImagePull', 'ImagePullBackOff']);
const IMAGE_INVALID = new Set(['InvalidImageName', 'ErrImageNeverPull']);

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
  private jobInformer?: k8s.Informer<k8s.V1Job> & k8s.ObjectCache<k8s.V1Job>;
  private podInformer?: k8s.Informer<k8s.V1Pod> & k8s.ObjectCache<k8s.V1Pod>;
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
    const ns = this.namespace;
    const selector = `${MANAGED_BY_LABEL}=${MANAGED_BY_VALUE}`;
    const jobs = k8s.makeInformer<k8s.V1Job>(
      this.kc,
      `/apis/batch/v1/namespaces/${ns}/jobs`,
      () => this.batch.listNamespacedJob({ namespace: ns, labelSelector: selector }),
      selector,
    );
    const pods = k8s.makeInformer<k8s.V1Pod>(
      this.kc,
      `/api/v1/namespaces/${ns}/pods`,
      () => this.core.listNamespacedPod({ namespace: ns, labelSelector: selector }),
      selector,
    );
    const onJob = (job: k8s.V1Job) => {
      const name = job.metadata?.name;
      if (!name) return;
      this.recent.delete(name);
      this.wake(name);
    };
    jobs.on('add', onJob);
    jobs.on('update', onJob);
    jobs.on('delete', (job) => {
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
    });
    const onPod = (pod: k8s.V1Pod) => {
      const jobName = JOB_NAME_LABELS.map((l) => pod.metadata?.labels?.[l]).find(Boolean);
      const podName = pod.metadata?.name;
      if (!jobName || !podName) return;
      let track = this.pods.get(jobName);
      if (!track) this.pods.set(jobName, (track = { pods: new Map() }));
      track.pods.set(podName, pod); // kept after delete: the last state tells why it ended
      this.wake(jobName);
    };
    pods.on('add', onPod);
    pods.on('update', onPod);
    pods.on('delete', (pod) => {
      const jobName = JOB_NAME_LABELS.map((l) => pod.metadata?.labels?.[l]).find(Boolean);
      // A pod outliving its Job (garbage collection): nothing will read it again.
      if (jobName && !this.cachedJob(jobName) && (this.terminal.has(jobName) || this.cancelled.has(jobName) || this.vanished.has(jobName))) {
        this.pods.delete(jobName);
        return;
      }
      onPod(pod);
    });
    for (const inf of [jobs, pods] as const) {
      inf.on('error', () => {
        // The watch broke (API server restart, network): resume after a pause. The ListWatch
        // resumes from its resourceVersion, or relists when that is too old (410 Gone).
        if (this.stopped) return;
        setTimeout(() => {
          if (!this.stopped) inf.start().catch(() => {});
        }, 1000).unref();
      });
    }
    this.jobInformer = jobs;
    this.podInformer = pods;
    await Promise.all([jobs.start(), pods.start()]);
  }

  /** Stops the informers (tests; a worker shutting down). */
  async close(): Promise<void> {
    this.stopped = true;
    await Promise.all([this.jobInformer?.stop(), this.podInformer?.stop()]);
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

  private ownerRef(job: k8s.V1Job): k8s.V1OwnerReference {
    return {
      apiVersion: 'batch/v1',
      kind: 'Job',
      name: job.metadata!.name!,
      uid: job.metadata!.uid!,
      controller: true,
      blockOwnerDeletion: false,
    };
  }

  private async ensureOwnedObjects(launch: JobLaunch, job: k8s.V1Job): Promise<void> {
    try {
      await this.core.createNamespacedSecret({ namespace: this.namespace, body: this.secretManifest(launch, job) });
    } catch (e) {
      if (apiCode(e) !== 409) throw e;
    }
  }

  /** The attempt's one Secret: the config (mounted as a file) and the ingest token (env only). */
  secretManifest(launch: JobLaunch, job: k8s.V1Job): k8s.V1Secret {
    return {
      metadata: {
        name: job.metadata!.name!,
        namespace: this.namespace,
        labels: this.labelsFor(launch),
        ownerReferences: [this.ownerRef(job)],
      },
      type: 'Opaque',
      stringData: {
        [SECRET_CONFIG_KEY]: JSON.stringify(launch.config),
        [SECRET_TOKEN_KEY]: launch.env.LADDER_INGEST_TOKEN ?? '',
      },
    };
  }

  private labelsFor(launch: JobLaunch): Record<string, string> {
    const labels: Record<string, string> = {};
    for (const [k, v] of Object.entries(launch.labels)) labels[labelKey(k)] = labelValue(v);
    labels['ladder.dev/trial'] = labelValue(launch.trialId);
    labels['ladder.dev/attempt'] = String(launch.attempt);
    labels[MANAGED_BY_LABEL] = MANAGED_BY_VALUE;
    return labels;
  }

  /** The Job for one attempt (exported through the class for tests and dry runs). */
  jobManifest(launch: JobLaunch, jobName = jobNameFor(launch.executionId)): k8s.V1Job {
    const o = this.opts;
    const labels = this.labelsFor(launch);
    const jobLabels = { ...labels };
    if (o.queueName) jobLabels[KUEUE_QUEUE_LABEL] = labelValue(o.queueName);
    const gpu = o.gpuResourceName ?? 'nvidia.com/gpu';
    const limits: Record<string, string> = { memory: launch.resources.memory };
    if (launch.resources.gpus > 0) limits[gpu] = String(launch.resources.gpus);
    const timeoutSeconds = launch.timeoutSeconds;
    // A built-in kind runs the job module; a `command` sweep runs the user's program in its image.
    const invocation = jobInvocation(launch, { target: 'kubernetes', configPath: '/config/config.json', python: 'python', module: o.jobModule });
    const image = invocation.image ?? o.image;
    if (invocation.image && !o.allowUnpinnedImage && !DIGEST_PINNED.test(invocation.image)) {
      throw new InvocationError('image', `must be digest-pinned (repo@sha256:<64 hex>) so every attempt runs the same code, got '${invocation.image}'`);
    }
    // The spec's own variables first, so the protocol's below always win.
    const env: k8s.V1EnvVar[] = Object.entries(invocation.env).map(([name, value]) => ({ name, value }));
    for (const [k, v] of Object.entries(launch.env)) {
      if (k === 'LADDER_INGEST_TOKEN') continue;
      env.push({ name: k, value: v });
    }
    env.push({ name: 'LADDER_INGEST_TOKEN', valueFrom: { secretKeyRef: { name: jobName, key: SECRET_TOKEN_KEY } } });
    env.push({ name: 'LADDER_CHECKPOINT_DIR', value: `/checkpoints/${labelValue(launch.trialId)}` });
    env.push({ name: 'LADDER_OUTPUT_DIR', value: '/output' });
    const cp = o.checkpoint ?? { type: 'emptyDir' };
    const checkpointVolume: k8s.V1Volume =
      cp.type === 'pvc'
        ? { name: 'checkpoints', persistentVolumeClaim: { claimName: cp.claimName } }
        : cp.type === 'hostPath'
          ? { name: 'checkpoints', hostPath: { path: cp.path, type: 'DirectoryOrCreate' } }
          : { name: 'checkpoints', emptyDir: {} };
    return {
      apiVersion: 'batch/v1',
      kind: 'Job',
      metadata: {
        name: jobName,
        namespace: this.namespace,
        labels: jobLabels,
        annotations: { [EXECUTION_ID_ANNOTATION]: launch.executionId },
      },
      spec: {
        backoffLimit: 0,
        activeDeadlineSeconds: timeoutSeconds ?? o.activeDeadlineSeconds ?? 86_400,
        ttlSecondsAfterFinished: o.ttlSecondsAfterFinished ?? 3600,
        podFailurePolicy: {
          rules: [
            { action: o.disruptionAction ?? 'FailJob', onPodConditions: [{ type: 'DisruptionTarget', status: 'True' }] },
            { action: 'FailJob', onExitCodes: { containerName: JOB_CONTAINER, operator: 'In', values: [EXIT_BAD_CONFIG] } },
          ],
        },
        template: {
          metadata: {
            labels,
            annotations: { [EXECUTION_ID_ANNOTATION]: launch.executionId, ...(o.podAnnotations?.(launch) ?? {}) },
          },
          spec: {
            restartPolicy: 'Never',
            ...(o.serviceAccountName ? { serviceAccountName: o.serviceAccountName } : {}),
            automountServiceAccountToken: false,
            ...(o.priorityClassName ? { priorityClassName: o.priorityClassName } : {}),
            ...(o.nodeSelector ? { nodeSelector: o.nodeSelector } : {}),
            ...(o.tolerations ? { tolerations: o.tolerations } : {}),
            containers: [
              {
                name: JOB_CONTAINER,
                image,
                imagePullPolicy: o.imagePullPolicy ?? 'IfNotPresent',
                command: invocation.argv,
                env,
                resources: {
                  requests: { cpu: String(launch.resources.cpu), memory: launch.resources.memory },
                  limits,
                },
                volumeMounts: [
                  { name: 'config', mountPath: '/config', readOnly: true },
                  { name: 'checkpoints', mountPath: '/checkpoints' },
                  { name: 'output', mountPath: '/output' },
                  { name: 'dshm', mountPath: '/dev/shm' },
                ],
                securityContext: { allowPrivilegeEscalation: false },
              },
            ],
            volumes: [
              // Only the config is a file; the token stays out of the filesystem.
              { name: 'config', secret: { secretName: jobName, items: [{ key: SECRET_CONFIG_KEY, path: 'config.json' }] } },
              checkpointVolume,
              { name: 'output', emptyDir: {} },
              { name: 'dshm', emptyDir: { medium: 'Memory' } },
            ],
          },
        },
      },
    };
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
    if ((fromApi && !this.pods.has(jobName) && jobFinished(job)) || (jobFailed(job) && !this.sawTermination(jobName))) {
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

  private sawTermination(jobName: string): boolean {
    for (const p of this.pods.get(jobName)?.pods.values() ?? []) {
      if (p.status?.containerStatuses?.some((c) => c.state?.terminated)) return true;
      if (p.status?.conditions?.some((c) => c.type === 'DisruptionTarget')) return true;
    }
    return false;
  }

  private async loadPods(jobName: string, namespace: string): Promise<void> {
    const list = await this.core.listNamespacedPod({ namespace, labelSelector: `batch.kubernetes.io/job-name=${jobName}` });
    let track = this.pods.get(jobName);
    if (!track) this.pods.set(jobName, (track = { pods: new Map() }));
    for (const p of list.items) if (p.metadata?.name) track.pods.set(p.metadata.name, p);
  }

  /** Maps a Job (and the pods we saw of it) to an ExecutionStatus. */
  private statusOf(job: k8s.V1Job): ExecutionStatus {
    const name = job.metadata?.name ?? '';
    const startedAt = job.status?.startTime ? new Date(job.status.startTime) : undefined;
    const conds = job.status?.conditions ?? [];
    const cond = (t: string) => conds.find((c) => c.type === t && c.status === 'True');
    const complete = cond('Complete');
    if (complete) {
      return { state: 'succeeded', exitCode: 0, startedAt, finishedAt: finishedAt(job, complete) };
    }
    const failed = cond('Failed') ?? cond('FailureTarget');
    const track = this.pods.get(name);
    const pods = [...(track?.pods.values() ?? [])];
    if (failed) {
      const base = { startedAt, finishedAt: finishedAt(job, failed) };
      if (failed.reason === 'DeadlineExceeded') {
        return { state: 'failed', reason: 'deadline-exceeded', retryable: true, ...base };
      }
      const disrupted = pods.some((p) => p.status?.conditions?.some((c) => c.type === 'DisruptionTarget' && c.status === 'True'));
      if (disrupted || /DisruptionTarget/.test(failed.message ?? '') || pods.some((p) => p.status?.reason === 'Evicted')) {
        return { state: 'preempted', reason: 'preempted', retryable: true, ...base };
      }
      const term = pods
        .map((p) => p.status?.containerStatuses?.find((c) => c.name === JOB_CONTAINER)?.state?.terminated)
        .find((t) => t !== undefined);
      if (term?.reason === 'OOMKilled') return { state: 'failed', reason: 'oom', retryable: true, exitCode: term.exitCode, ...base };
      const fromMessage = /exit code (\d+)/.exec(failed.message ?? '');
      const code = term?.exitCode ?? (fromMessage ? Number(fromMessage[1]) : undefined);
      if (code !== undefined && code !== 0) return { ...statusFromExitCode(code), ...base };
      return { state: 'failed', reason: failed.reason ? `job-${failed.reason}` : 'failed', retryable: true, ...base };
    }
    if (job.metadata?.deletionTimestamp) {
      return { state: 'failed', reason: 'job-deleted', retryable: true, startedAt };
    }
    // Not finished: look at the pods.
    for (const p of pods) {
      if (p.metadata?.deletionTimestamp && p.status?.phase !== 'Running') continue;
      const waiting = p.status?.containerStatuses?.find((c) => c.name === JOB_CONTAINER)?.state?.waiting?.reason;
      if (waiting && IMAGE_INVALID.has(waiting)) return { state: 'failed', reason: 'image-pull', retryable: true, startedAt };
      if (waiting && IMAGE_PULL_WAITING.has(waiting)) {
        track!.imagePullSince ??= Date.now();
        if (Date.now() - track!.imagePullSince > (this.opts.imagePullGraceMs ?? 120_000)) {
          return { state: 'failed', reason: 'image-pull', retryable: true, startedAt };
        }
      }
    }
    const ready = pods.some(
      (p) => !p.metadata?.deletionTimestamp && p.status?.phase === 'Running' && p.status.conditions?.some((c) => c.type === 'Ready' && c.status === 'True'),
    );
    if (ready || (job.status?.ready ?? 0) > 0) return { state: 'running', startedAt };
    return { state: 'pending', startedAt };
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

function jobFinished(job: k8s.V1Job): boolean {
  return (job.status?.conditions ?? []).some(
    (c) => (c.type === 'Failed' || c.type === 'FailureTarget' || c.type === 'Complete') && c.status === 'True',
  );
}

function jobFailed(job: k8s.V1Job): boolean {
  return (job.status?.conditions ?? []).some((c) => (c.type === 'Failed' || c.type === 'FailureTarget') && c.status === 'True');
}

function finishedAt(job: k8s.V1Job, cond: k8s.V1JobCondition): Date | undefined {
  const t = job.status?.completionTime ?? cond.lastTransitionTime;
  return t ? new Date(t) : undefined;
}
