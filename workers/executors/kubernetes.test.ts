/** Unit tests of the Kubernetes executor's naming and manifest (no cluster; see test/k8s/ for that). */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import * as k8s from '@kubernetes/client-node';
import { aLaunch } from '../../test/executor-contract';
import { KubernetesExecutor, jobNameFor, labelKey, labelValue } from './kubernetes';
import { kubernetesOptionsFromEnv } from './kubernetes-config';

const IMAGE = 'example.com/ladder/jobs@sha256:' + 'a'.repeat(64);
const DNS1123 = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;

function kc(): k8s.KubeConfig {
  const c = new k8s.KubeConfig();
  c.loadFromOptions({
    clusters: [{ name: 'c', server: 'https://127.0.0.1:1' }],
    users: [{ name: 'u' }],
    contexts: [{ name: 'x', cluster: 'c', user: 'u' }],
    currentContext: 'x',
  });
  return c;
}

describe('kubernetes executor (no cluster)', () => {
  it('job names are DNS-1123, ≤ 63, stable, distinct per attempt', () => {
    for (const id of ['t-abc-a1', 'T_Weird/ID..with.dots-a2', 'x'.repeat(200) + '-a3', '---a1', 'sweep-2026-01-01T00:00:00Z/trial-0001-a12']) {
      const n = jobNameFor(id);
      assert.match(n, DNS1123, n);
      assert.ok(n.length <= 63, n);
      assert.equal(jobNameFor(id), n);
    }
    assert.notEqual(jobNameFor('t-1-a1'), jobNameFor('t-1-a2'));
    assert.notEqual(jobNameFor('x'.repeat(100) + 'a'), jobNameFor('x'.repeat(100) + 'b'));
  });

  it('labels are sanitised to label syntax', () => {
    assert.equal(labelValue('sweep-1'), 'sweep-1');
    for (const v of ['a b/c', '-x-', 'é'.repeat(10), 'y'.repeat(100)]) {
      const l = labelValue(v);
      assert.ok(l.length <= 63 && /^([A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?)?$/.test(l), l);
    }
    assert.equal(labelKey('ladder.dev/sweep'), 'ladder.dev/sweep');
    assert.equal(labelKey('bad key!'), 'bad-key');
  });

  it('refuses an image that is not digest-pinned', () => {
    assert.throws(() => new KubernetesExecutor({ kubeConfig: kc(), namespace: 'n', image: 'repo/jobs:latest' }), /digest-pinned/);
  });

  it('builds the Job: GPUs, deadline, failure policy, labels, token from a Secret', () => {
    const ex = new KubernetesExecutor({
      kubeConfig: kc(),
      namespace: 'ml',
      image: IMAGE,
      gpuResourceName: 'amd.com/gpu',
      nodeSelector: { pool: 'a100' },
      tolerations: [{ key: 'gpu', operator: 'Exists', effect: 'NoSchedule' }],
      queueName: 'team-a',
      priorityClassName: 'batch-low',
      checkpoint: { type: 'pvc', claimName: 'ckpt' },
    });
    const launch = { ...aLaunch().withGpus(2).withEnv({ LADDER_INGEST_TOKEN: 'sekret' }).withLabels({ 'ladder.dev/rung': '1' }).build(), timeoutSeconds: 900 };
    const job = ex.jobManifest(launch);
    const spec = job.spec!;
    const pod = spec.template.spec!;
    const c = pod.containers[0]!;
    assert.equal(spec.backoffLimit, 0);
    assert.equal(spec.activeDeadlineSeconds, 900);
    assert.ok((spec.ttlSecondsAfterFinished ?? 0) > 0);
    assert.equal(pod.restartPolicy, 'Never');
    assert.deepEqual(spec.podFailurePolicy!.rules.map((r) => r.action), ['FailJob', 'FailJob']);
    assert.equal(spec.podFailurePolicy!.rules[0]!.onPodConditions![0]!.type, 'DisruptionTarget');
    assert.deepEqual(spec.podFailurePolicy!.rules[1]!.onExitCodes!.values, [2]);
    assert.deepEqual(c.command, ['python', '-m', 'ladder_jobs', 'run', '--kind', 'synthetic', '--config', '/config/config.json']);
    assert.equal(c.resources!.limits!['amd.com/gpu'], '2');
    assert.equal(c.resources!.requests!.memory, '1Gi');
    assert.equal(job.metadata!.labels!['kueue.x-k8s.io/queue-name'], 'team-a');
    assert.equal(job.metadata!.labels!['ladder.dev/rung'], '1');
    assert.equal(pod.priorityClassName, 'batch-low');
    assert.deepEqual(pod.nodeSelector, { pool: 'a100' });
    assert.equal(pod.volumes!.find((v) => v.name === 'checkpoints')!.persistentVolumeClaim!.claimName, 'ckpt');
    const token = c.env!.find((e) => e.name === 'LADDER_INGEST_TOKEN')!;
    assert.equal(token.value, undefined);
    assert.equal(token.valueFrom!.secretKeyRef!.name, job.metadata!.name);
    assert.ok(!JSON.stringify(job).includes('sekret'), 'the token is not in the Job');
  });

  it('one Secret per attempt: the config as the only file at /config, the token only as env', () => {
    const ex = new KubernetesExecutor({ kubeConfig: kc(), namespace: 'ml', image: IMAGE });
    const launch = aLaunch().withConfig({ steps: 7, lr: 0.5 }).withEnv({ LADDER_INGEST_TOKEN: 'sekret' }).build();
    const job = ex.jobManifest(launch);
    const name = job.metadata!.name!;
    const pod = job.spec!.template.spec!;
    // No ConfigMap anywhere: every volume is the Secret or a scratch/checkpoint dir.
    assert.ok(!pod.volumes!.some((v) => v.configMap), 'no ConfigMap volume');
    const config = pod.volumes!.find((v) => v.name === 'config')!;
    assert.equal(config.secret!.secretName, name);
    assert.deepEqual(config.secret!.items, [{ key: 'config.json', path: 'config.json' }], 'only the config is mounted, not the token');
    assert.ok(pod.containers[0]!.volumeMounts!.some((m) => m.name === 'config' && m.mountPath === '/config' && m.readOnly));
    const secret = ex.secretManifest(launch, { ...job, metadata: { ...job.metadata, uid: 'u-1' } });
    assert.equal(secret.metadata!.name, name);
    assert.deepEqual(JSON.parse(secret.stringData!['config.json']!), { steps: 7, lr: 0.5 });
    assert.equal(secret.stringData!['ingest-token'], 'sekret');
    const [owner] = secret.metadata!.ownerReferences!;
    assert.deepEqual([owner!.kind, owner!.name, owner!.uid, owner!.controller], ['Job', name, 'u-1', true]);
    assert.equal(secret.metadata!.labels!['app.kubernetes.io/managed-by'], 'ladder');
  });

  it('a command trial runs its substituted argument list in its own digest-pinned image, with its env', () => {
    const ex = new KubernetesExecutor({ kubeConfig: kc(), namespace: 'ml', image: IMAGE });
    const own = 'example.com/team/train@sha256:' + 'b'.repeat(64);
    const launch = {
      ...aLaunch().withConfig({ lr: 0.01, model: { width: 64 }, seed: 3 }).withEnv({ LADDER_INGEST_TOKEN: 'sekret' }).build(),
      kind: 'command',
      command: ['python', 'train.py', '--lr', '{lr}', '--width={model.width}', '{args}'],
      image: own,
      jobEnv: { DATA_DIR: '/data', LADDER_TRIAL_ID: 'another-trial' },
    };
    // LADDER_* in a spec's env is refused before it gets here; the manifest must refuse it too.
    assert.throws(() => ex.jobManifest(launch), /env\.LADDER_TRIAL_ID/);
    const ok = { ...launch, jobEnv: { DATA_DIR: '/data' } };
    const c = ex.jobManifest(ok).spec!.template.spec!.containers[0]!;
    assert.equal(c.image, own);
    assert.deepEqual(c.command, ['python', 'train.py', '--lr', '0.01', '--width=64', '--lr=0.01', '--model.width=64', '--seed=3', '--steps=5']);
    const env = c.env!.map((e) => e.name);
    assert.ok(env.indexOf('DATA_DIR') < env.indexOf('LADDER_TRIAL_ID'), 'the spec env comes before the protocol env');
    assert.equal(c.env!.find((e) => e.name === 'LADDER_CONFIG')!.value, '/config/config.json');
    assert.throws(() => ex.jobManifest({ ...ok, image: 'example.com/team/train:latest' }), /image: must be digest-pinned/);
    assert.throws(() => ex.jobManifest({ ...ok, image: undefined }), /image: a sweep with a command needs an image/);
  });

  it('reads its options from the environment', () => {
    const o = kubernetesOptionsFromEnv({
      LADDER_K8S_NAMESPACE: 'ml',
      LADDER_JOB_IMAGE: IMAGE,
      LADDER_K8S_NODE_SELECTOR: '{"pool":"h100"}',
      LADDER_K8S_TOLERATIONS: '[{"key":"gpu","operator":"Exists"}]',
      LADDER_KUEUE_QUEUE: 'q',
    });
    assert.equal(o.namespace, 'ml');
    assert.deepEqual(o.nodeSelector, { pool: 'h100' });
    assert.equal(o.tolerations![0]!.key, 'gpu');
    assert.equal(o.queueName, 'q');
    assert.throws(() => kubernetesOptionsFromEnv({}), /LADDER_JOB_IMAGE/);
    // Once read as Number('1h') = NaN and passed on to the API server.
    assert.throws(() => kubernetesOptionsFromEnv({ LADDER_JOB_IMAGE: IMAGE, LADDER_JOB_TTL_SECONDS: '1h' }), /environment variable LADDER_JOB_TTL_SECONDS/);
    assert.throws(() => kubernetesOptionsFromEnv({ LADDER_JOB_IMAGE: IMAGE, LADDER_JOB_DELETE_PROPAGATION: 'Orphan' }), /environment variable LADDER_JOB_DELETE_PROPAGATION/);
    assert.throws(() => kubernetesOptionsFromEnv({ LADDER_JOB_IMAGE: IMAGE, LADDER_K8S_TOLERATIONS: '{"key":"gpu"}' }), /environment variable LADDER_K8S_TOLERATIONS: a JSON array/);
  });
});
