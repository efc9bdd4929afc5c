/**
 * The Helm chart (deploy/helm/ladder) against the test API server:
 * - `helm template` with default values and with every option on renders;
 * - every rendered object passes a server-side dry run (create with dryRun=All);
 * - RBAC: SubjectAccessReviews for what the worker's service account may and may not do, and
 *   the executor itself runs with a token of that service account (TokenRequest; signed with the
 *   key pair the harness generated) — so the Role is exactly enough.
 */
import assert from 'node:assert/strict';
import * as path from 'node:path';
import { after, before, describe, it } from 'node:test';
import * as k8s from '@kubernetes/client-node';
import { parseAllDocuments } from 'yaml';
import { k8sBinDir } from '../../stack/k8s/build';
import { runOk } from '../../stack/proc';
import { aLaunch, waitForStatus, waitForTerminal } from '../executor-contract';
import { KubernetesExecutor } from '../../workers/executors/kubernetes';
import { FAKE_NODE_LABEL, FAKE_NODE_TAINT, startCluster, type TestCluster } from './cluster';
import { kwokAnnotations } from './kwok-sim';

const CHART = path.resolve(__dirname, '../../deploy/helm/ladder');
const NS = 'ladder-system';
const JOB_IMAGE = 'registry.invalid/ladder/jobs@sha256:' + '2'.repeat(64);

async function helmTemplate(args: string[]): Promise<k8s.KubernetesObject[]> {
  const { stdout } = await runOk(path.join(k8sBinDir(), 'helm'), ['template', 'ladder', CHART, '--namespace', NS, ...args]);
  return parseAllDocuments(stdout)
    .map((d) => d.toJSON() as k8s.KubernetesObject | null)
    .filter((o): o is k8s.KubernetesObject => !!o && typeof o === 'object' && 'kind' in o);
}

const ALL_OPTIONS = [
  '--set', `jobs.image=${JOB_IMAGE}`,
  '--set', 'ingress.enabled=true',
  '--set', 'ingress.className=nginx',
  '--set', 'temporal.tls.enabled=true',
  '--set', 'temporal.tls.existingSecret=temporal-client-tls',
  '--set', 'temporal.tls.serverName=temporal.example.com',
  '--set', 'jobs.kueueQueue=team-a',
  '--set', 'jobs.priorityClassName=batch-low',
  '--set', 'jobs.gpuResourceName=nvidia.com/gpu',
  '--set', 'jobs.checkpointPvc=ckpt',
  '--set-json', 'jobs.nodeSelector={"nvidia.com/gpu.present":"true"}',
  '--set-json', 'jobs.tolerations=[{"key":"nvidia.com/gpu","operator":"Exists","effect":"NoSchedule"}]',
  '--set', 'image.digest=sha256:' + '3'.repeat(64),
];

describe('helm chart', { concurrency: false }, () => {
  let cluster: TestCluster;

  before(async () => {
    cluster = await startCluster({ nodes: 1, gpusPerNode: 8 });
    await cluster.createNamespace(NS);
  });
  after(async () => {
    await cluster?.stop();
  });

  it('renders, and every object passes a server-side dry run', { timeout: 300_000 }, async () => {
    const api = k8s.KubernetesObjectApi.makeApiClient(cluster.kubeConfig());
    for (const args of [[], ALL_OPTIONS]) {
      const rendered = await helmTemplate(args);
      const kinds = rendered.map((o) => o.kind).sort();
      const expected = ['ConfigMap', 'Deployment', 'Deployment', 'Role', 'RoleBinding', 'Service', 'ServiceAccount'];
      if (args.length) expected.push('Ingress');
      assert.deepEqual(kinds, expected.sort());
      for (const obj of rendered) {
        obj.metadata = { ...obj.metadata, namespace: obj.metadata?.namespace ?? NS };
        try {
          await api.create(obj, undefined, 'All');
        } catch (e) {
          throw new Error(`dry run of ${obj.kind}/${obj.metadata?.name} failed: ${(e as Error).message}`);
        }
      }
    }
  });

  it('the executor Role allows exactly what the executor needs (SubjectAccessReview + a real run)', { timeout: 300_000 }, async () => {
    const kc = cluster.kubeConfig();
    const api = k8s.KubernetesObjectApi.makeApiClient(kc);
    for (const obj of await helmTemplate(['--set', `jobs.image=${JOB_IMAGE}`])) {
      if (!['ServiceAccount', 'Role', 'RoleBinding'].includes(obj.kind!)) continue;
      obj.metadata = { ...obj.metadata, namespace: obj.metadata?.namespace ?? NS };
      await api.create(obj);
    }
    const sa = 'ladder';
    const user = `system:serviceaccount:${NS}:${sa}`;
    const authz = kc.makeApiClient(k8s.AuthorizationV1Api);
    const can = async (verb: string, resource: string, opts: { group?: string; subresource?: string; namespace?: string } = {}) => {
      const r = await authz.createSubjectAccessReview({
        body: {
          apiVersion: 'authorization.k8s.io/v1',
          kind: 'SubjectAccessReview',
          spec: {
            user,
            groups: ['system:serviceaccounts', `system:serviceaccounts:${NS}`, 'system:authenticated'],
            resourceAttributes: { namespace: opts.namespace ?? NS, verb, resource, group: opts.group ?? '', subresource: opts.subresource },
          },
        },
      });
      return r.status?.allowed === true;
    };
    const allowed: [string, string, { group?: string; subresource?: string }?][] = [
      ['create', 'jobs', { group: 'batch' }],
      ['get', 'jobs', { group: 'batch' }],
      ['list', 'jobs', { group: 'batch' }],
      ['watch', 'jobs', { group: 'batch' }],
      ['delete', 'jobs', { group: 'batch' }],
      ['get', 'pods'],
      ['list', 'pods'],
      ['watch', 'pods'],
      ['get', 'pods', { subresource: 'log' }],
      ['create', 'secrets'],
    ];
    const forbidden: [string, string, { group?: string; subresource?: string; namespace?: string }?][] = [
      ['get', 'secrets'],
      ['list', 'secrets'],
      ['delete', 'secrets'],
      ['get', 'configmaps'],
      ['create', 'configmaps'], // the config travels in the attempt's Secret
      ['create', 'pods'],
      ['delete', 'pods'],
      ['create', 'pods', { subresource: 'exec' }],
      ['update', 'jobs', { group: 'batch' }],
      ['patch', 'jobs', { group: 'batch' }],
      ['create', 'deployments', { group: 'apps' }],
      ['create', 'roles', { group: 'rbac.authorization.k8s.io' }],
      ['create', 'jobs', { group: 'batch', namespace: 'default' }],
      ['list', 'nodes'],
    ];
    for (const [verb, res, o] of allowed) assert.equal(await can(verb, res, o), true, `may ${verb} ${res} ${JSON.stringify(o ?? {})}`);
    for (const [verb, res, o] of forbidden) assert.equal(await can(verb, res, o), false, `may not ${verb} ${res} ${JSON.stringify(o ?? {})}`);

    // The executor, as that service account: submit, watch to success, cancel a long one, logs.
    const core = kc.makeApiClient(k8s.CoreV1Api);
    const tr = await core.createNamespacedServiceAccountToken({
      name: sa,
      namespace: NS,
      body: { apiVersion: 'authentication.k8s.io/v1', kind: 'TokenRequest', spec: { audiences: ['https://kubernetes.default.svc'], expirationSeconds: 3600 } },
    });
    const cluster0 = kc.getCurrentCluster()!;
    const saKc = new k8s.KubeConfig();
    saKc.loadFromOptions({
      clusters: [cluster0],
      users: [{ name: 'sa', token: tr.status!.token }],
      contexts: [{ name: 'sa', cluster: cluster0.name, user: 'sa', namespace: NS }],
      currentContext: 'sa',
    });
    const executor = new KubernetesExecutor({
      kubeConfig: saKc,
      namespace: NS,
      image: JOB_IMAGE,
      nodeSelector: { [FAKE_NODE_LABEL]: 'gpu' },
      tolerations: [{ key: FAKE_NODE_TAINT, operator: 'Exists', effect: 'NoSchedule' }],
      podAnnotations: kwokAnnotations(),
    });
    try {
      const ok = await executor.submit(aLaunch().withGpus(1).withEnv({ LADDER_INGEST_TOKEN: 'tok' }).build());
      assert.equal((await waitForTerminal(executor, ok)).state, 'succeeded');
      assert.equal(typeof (await executor.logs(ok)), 'string');
      const long = await executor.submit(aLaunch().withConfig({ steps: 10_000, step_sleep: 0.2 }).build());
      await waitForStatus(executor, long, (s) => s.state === 'running', 30_000);
      await executor.cancel(long);
      assert.equal((await executor.status(long)).state, 'cancelled');
    } finally {
      await executor.close();
    }
  });
});
