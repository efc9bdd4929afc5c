/**
 * A real Kubernetes control plane for tests, on loopback, without Docker:
 * etcd + kube-apiserver (client-cert auth, RBAC, a service-account key pair generated here) +
 * kube-controller-manager (job, garbage collector, TTL-after-finished, service account,
 * namespace and pod GC controllers) + kube-scheduler + KWOK managing fake GPU nodes.
 *
 *     const cluster = await startCluster({ nodes: 4, gpusPerNode: 8 });
 *     ... cluster.kubeConfig() / cluster.kubeconfigPath ...
 *     await cluster.stop();
 *
 * Binaries come from `ensureControlPlane()` (stack/k8s/build.ts): built on first use, cached
 * under `<cacheDir()>/k8s-<version>/bin`. Nothing is skipped when they are missing: they are built.
 *
 * Fake nodes: `fake-gpu-<i>`, annotation `kwok.x-k8s.io/node=fake` (what KWOK manages), label
 * `ladder.test/pool=gpu`, taint `ladder.test/fake-gpu=true:NoSchedule` (so the executor's
 * nodeSelector and tolerations are exercised), capacity `nvidia.com/gpu: <gpusPerNode>`.
 * Pod behaviour: test/k8s/kwok-stages.yaml (annotations `ladder.test/*`).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as k8s from '@kubernetes/client-node';
import { ensureControlPlane } from '../../stack/k8s/build';
import { freePort } from '../../stack/ports';
import { registerCleanup, runOk, sleep, tailFile } from '../../stack/proc';

export const FAKE_NODE_LABEL = 'ladder.test/pool';
export const FAKE_NODE_TAINT = 'ladder.test/fake-gpu';
export const STAGES_FILE = path.join(__dirname, 'kwok-stages.yaml');

export interface ClusterOptions {
  nodes?: number;
  gpusPerNode?: number;
  gpuResourceName?: string;
  /** Keep the temp dir (logs) after stop. */
  keep?: boolean;
}

export interface TestCluster {
  dir: string;
  server: string;
  kubeconfigPath: string;
  binDir: string;
  kubeConfig(): k8s.KubeConfig;
  createNamespace(name: string): Promise<void>;
  createNodes(count: number, gpus: number, prefix?: string): Promise<string[]>;
  /** Log tails of every component (for failure messages). */
  logs(): string;
  /** Process id of each running component (etcd, kube-apiserver, …), for CPU figures. */
  pids(): Record<string, number>;
  stop(): Promise<void>;
}

async function openssl(args: string[], cwd: string): Promise<void> {
  await runOk('openssl', args, { cwd });
}

async function makePki(dir: string): Promise<void> {
  await openssl(['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'ca.key', '-out', 'ca.crt', '-days', '2', '-subj', '/CN=ladder-test-ca'], dir);
  const san = path.join(dir, 'san.cnf');
  fs.writeFileSync(san, 'subjectAltName=IP:127.0.0.1,DNS:localhost,DNS:kubernetes.default.svc\n');
  const sign = async (name: string, subj: string, ext?: string) => {
    await openssl(['req', '-newkey', 'rsa:2048', '-nodes', '-keyout', `${name}.key`, '-out', `${name}.csr`, '-subj', subj], dir);
    await openssl(['x509', '-req', '-in', `${name}.csr`, '-CA', 'ca.crt', '-CAkey', 'ca.key', '-CAcreateserial', '-out', `${name}.crt`, '-days', '2', ...(ext ? ['-extfile', ext] : [])], dir);
  };
  await sign('apiserver', '/CN=kube-apiserver', san);
  await sign('admin', '/O=system:masters/CN=ladder-test-admin');
  // Service-account token signing key pair, generated per cluster.
  await openssl(['genrsa', '-out', 'sa.key', '2048'], dir);
  await openssl(['rsa', '-in', 'sa.key', '-pubout', '-out', 'sa.pub'], dir);
}

function writeKubeconfig(file: string, server: string, dir: string): void {
  const b64 = (f: string) => fs.readFileSync(path.join(dir, f)).toString('base64');
  fs.writeFileSync(
    file,
    [
      'apiVersion: v1',
      'kind: Config',
      'clusters:',
      '- name: test',
      '  cluster:',
      `    server: ${server}`,
      `    certificate-authority-data: ${b64('ca.crt')}`,
      'users:',
      '- name: admin',
      '  user:',
      `    client-certificate-data: ${b64('admin.crt')}`,
      `    client-key-data: ${b64('admin.key')}`,
      'contexts:',
      '- name: test',
      '  context: {cluster: test, user: admin}',
      'current-context: test',
      '',
    ].join('\n'),
  );
}

export async function startCluster(options: ClusterOptions = {}): Promise<TestCluster> {
  const binDir = await ensureControlPlane();
  const bin = (n: string) => path.join(binDir, n);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ladder-k8s-'));
  const procs: { name: string; child: ChildProcess; log: string }[] = [];
  let stopped = false;

  const launch = (name: string, args: string[]) => {
    const log = path.join(dir, `${name}.log`);
    const fd = fs.openSync(log, 'a');
    const child = spawn(bin(name), args, { stdio: ['ignore', fd, fd], cwd: dir });
    fs.closeSync(fd);
    procs.push({ name, child, log });
    child.on('exit', (code, signal) => {
      if (!stopped) fs.appendFileSync(log, `\n[harness] ${name} exited code=${code} signal=${signal}\n`);
    });
    return child;
  };
  const killAll = () => {
    for (const p of [...procs].reverse()) if (p.child.exitCode === null && p.child.signalCode === null) p.child.kill('SIGKILL');
  };
  const unregister = registerCleanup(killAll);
  const logs = () => procs.map((p) => `--- ${p.name} ---\n${tailFile(p.log, 15)}`).join('\n');

  try {
    await makePki(dir);
    const [etcdPort, peerPort, apiPort, kwokPort] = await Promise.all([freePort(), freePort(), freePort(), freePort()]);
    launch('etcd', [
      '--name', 'default',
      '--data-dir', path.join(dir, 'etcd'),
      '--listen-client-urls', `http://127.0.0.1:${etcdPort}`,
      '--advertise-client-urls', `http://127.0.0.1:${etcdPort}`,
      '--listen-peer-urls', `http://127.0.0.1:${peerPort}`,
      '--initial-advertise-peer-urls', `http://127.0.0.1:${peerPort}`,
      '--initial-cluster', `default=http://127.0.0.1:${peerPort}`,
      '--unsafe-no-fsync',
      '--log-level', 'warn',
    ]);
    const server = `https://127.0.0.1:${apiPort}`;
    launch('kube-apiserver', [
      '--etcd-servers', `http://127.0.0.1:${etcdPort}`,
      '--bind-address', '127.0.0.1',
      '--advertise-address', '127.0.0.1',
      '--secure-port', String(apiPort),
      '--tls-cert-file', path.join(dir, 'apiserver.crt'),
      '--tls-private-key-file', path.join(dir, 'apiserver.key'),
      '--client-ca-file', path.join(dir, 'ca.crt'),
      '--authorization-mode', 'Node,RBAC',
      '--service-account-key-file', path.join(dir, 'sa.pub'),
      '--service-account-signing-key-file', path.join(dir, 'sa.key'),
      '--service-account-issuer', 'https://kubernetes.default.svc',
      '--api-audiences', 'https://kubernetes.default.svc',
      '--service-cluster-ip-range', '10.96.0.0/16',
      '--kubelet-certificate-authority', path.join(dir, 'ca.crt'),
      '--allow-privileged',
      // New nodes would get node.kubernetes.io/not-ready:NoSchedule, which only the node
      // lifecycle controller removes; that controller is not run (KWOK nodes heartbeat slowly).
      '--disable-admission-plugins', 'TaintNodesByCondition',
      '--enable-priority-and-fairness=false',
      '--profiling=false',
      '--endpoint-reconciler-type', 'none',
      '--v', '1',
    ]);
    const kubeconfigPath = path.join(dir, 'admin.kubeconfig');
    writeKubeconfig(kubeconfigPath, server, dir);
    const kc = () => {
      const c = new k8s.KubeConfig();
      c.loadFromFile(kubeconfigPath);
      return c;
    };
    // Wait for /readyz.
    const deadline = Date.now() + 120_000;
    for (;;) {
      const dead = procs.find((p) => p.child.exitCode !== null);
      if (dead) throw new Error(`${dead.name} exited during start\n${logs()}`);
      try {
        const core = kc().makeApiClient(k8s.CoreV1Api);
        await core.readNamespace({ name: 'default' });
        break;
      } catch {
        if (Date.now() > deadline) throw new Error(`kube-apiserver not ready in 120 s\n${logs()}`);
        await sleep(300);
      }
    }
    launch('kube-controller-manager', [
      '--kubeconfig', kubeconfigPath,
      '--controllers', [
        'job-controller', 'garbage-collector-controller', 'ttl-after-finished-controller',
        'serviceaccount-controller', 'namespace-controller', 'pod-garbage-collector-controller',
      ].join(','),
      '--leader-elect=false',
      '--secure-port', '0',
      '--use-service-account-credentials=false',
      '--root-ca-file', path.join(dir, 'ca.crt'),
      '--service-account-private-key-file', path.join(dir, 'sa.key'),
      '--concurrent-job-syncs', '10',
      '--kube-api-qps', '200',
      '--kube-api-burst', '400',
      '--v', '1',
    ]);
    launch('kube-scheduler', [
      '--kubeconfig', kubeconfigPath,
      '--leader-elect=false',
      '--secure-port', '0',
      '--kube-api-qps', '200',
      '--kube-api-burst', '400',
      '--v', '1',
    ]);
    launch('kwok', [
      '--kubeconfig', kubeconfigPath,
      '--config', STAGES_FILE,
      '--manage-all-nodes=false',
      '--manage-nodes-with-annotation-selector', 'kwok.x-k8s.io/node=fake',
      '--node-ip', '127.0.0.1',
      '--node-port', String(kwokPort),
      '--server-address', `127.0.0.1:${kwokPort}`,
      '--cidr', '10.244.0.1/16',
      '--node-lease-duration-seconds', '0',
    ]);

    const cluster: TestCluster = {
      dir,
      server,
      kubeconfigPath,
      binDir,
      kubeConfig: kc,
      logs,
      pids: () => Object.fromEntries(procs.filter((p) => p.child.pid !== undefined && p.child.exitCode === null).map((p) => [p.name, p.child.pid!])),
      async createNamespace(name: string) {
        const core = kc().makeApiClient(k8s.CoreV1Api);
        await core.createNamespace({ body: { metadata: { name } } });
        // The service account controller creates `default`; pods need it (admission).
        for (let i = 0; i < 200; i++) {
          try {
            await core.readNamespacedServiceAccount({ name: 'default', namespace: name });
            return;
          } catch {
            await sleep(100);
          }
        }
        throw new Error(`no default service account in ${name}\n${logs()}`);
      },
      async createNodes(count: number, gpus: number, prefix = 'fake-gpu') {
        const core = kc().makeApiClient(k8s.CoreV1Api);
        const gpuName = options.gpuResourceName ?? 'nvidia.com/gpu';
        const names: string[] = [];
        const resources = { cpu: '64', memory: '512Gi', pods: '110', [gpuName]: String(gpus) };
        for (let i = 0; i < count; i++) {
          const name = `${prefix}-${i}`;
          names.push(name);
          await core.createNode({
            body: {
              metadata: {
                name,
                annotations: { 'kwok.x-k8s.io/node': 'fake', 'node.alpha.kubernetes.io/ttl': '0' },
                labels: { [FAKE_NODE_LABEL]: 'gpu', type: 'kwok', 'kubernetes.io/hostname': name },
              },
              spec: { taints: [{ key: FAKE_NODE_TAINT, value: 'true', effect: 'NoSchedule' }] },
              status: { allocatable: resources, capacity: resources },
            },
          });
        }
        // Ready once KWOK initialised them.
        const until = Date.now() + 60_000;
        for (;;) {
          const list = await core.listNode();
          const ready = list.items.filter(
            (n) => names.includes(n.metadata!.name!) && n.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True'),
          ).length;
          if (ready === count) return names;
          if (Date.now() > until) throw new Error(`only ${ready}/${count} fake nodes Ready\n${logs()}`);
          await sleep(200);
        }
      },
      async stop() {
        if (stopped) return;
        stopped = true;
        for (const p of [...procs].reverse()) {
          if (p.child.exitCode !== null || p.child.signalCode !== null) continue;
          p.child.kill('SIGTERM');
          await Promise.race([new Promise((r) => p.child.once('exit', r)), sleep(5000)]);
          if (p.child.exitCode === null && p.child.signalCode === null) p.child.kill('SIGKILL');
        }
        unregister();
        if (!options.keep) fs.rmSync(dir, { recursive: true, force: true });
      },
    };
    if (options.nodes) await cluster.createNodes(options.nodes, options.gpusPerNode ?? 8);
    return cluster;
  } catch (e) {
    stopped = true;
    killAll();
    unregister();
    throw e;
  }
}
