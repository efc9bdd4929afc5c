/**
 * Builds the test control plane from the Go module proxy, into the cache (never the repo):
 *
 *   npx tsx stack/k8s/build.ts          # builds what is missing, prints the bin folder
 *
 * Output: `<cacheDir()>/k8s-<KUBERNETES_VERSION>/bin/{etcd,kube-apiserver,
 * kube-controller-manager,kube-scheduler,kwok,helm}` plus a `.complete` stamp.
 *
 * How: k8s.io/kubernetes cannot be `go install`ed (its go.mod replaces its staging modules
 * k8s.io/api, k8s.io/apimachinery, … with ./staging/src/...). So a small wrapper module is
 * generated in `<cache>/k8s-<ver>/wrapper` that requires k8s.io/kubernetes vX.Y.Z and
 * `replace`s every staging module with its published v0.Y.Z; the four binaries (and etcd,
 * from go.etcd.io/etcd/server/v3 at the version kubernetes itself requires) are built there
 * with one `go build` so shared packages compile once. KWOK and helm are `go install`ed at
 * pinned versions with GOBIN set to the same folder.
 *
 * Env: LADDER_K8S_BUILD_P (go build -p, default 2), LADDER_CACHE_DIR (cache root).
 * Builds run under `nice -n 19` (shared machine).
 */
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { cacheDir } from '../paths';
import { acquireFileLock } from '../../workers/executors/local/lock';

export const KUBERNETES_VERSION = '1.36.3';
export const KWOK_VERSION = '0.8.0';
export const HELM_VERSION = '3.19.0';

export const CONTROL_PLANE_BINARIES = [
  'etcd',
  'kube-apiserver',
  'kube-controller-manager',
  'kube-scheduler',
] as const;
export const ALL_BINARIES = [...CONTROL_PLANE_BINARIES, 'kwok', 'helm'] as const;

export function k8sCacheDir(version = KUBERNETES_VERSION): string {
  return path.join(cacheDir(), `k8s-${version}`);
}
export function k8sBinDir(version = KUBERNETES_VERSION): string {
  return path.join(k8sCacheDir(version), 'bin');
}
export function k8sBinariesPresent(version = KUBERNETES_VERSION): boolean {
  const bin = k8sBinDir(version);
  return ALL_BINARIES.every((b) => fs.existsSync(path.join(bin, b)));
}

function say(line: string): void {
  process.stderr.write(`[k8s-build] ${line}\n`);
}

function go(args: string[], cwd: string, env: NodeJS.ProcessEnv = {}): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn('nice', ['-n', '19', 'go', ...args], {
      cwd,
      env: { ...process.env, GOFLAGS: '-mod=mod', CGO_ENABLED: '0', ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => {
      err += d.toString();
      process.stderr.write(d);
    });
    child.on('error', reject);
    child.on('close', (code) =>
      code === 0 ? resolve(out) : reject(new Error(`go ${args.join(' ')} (in ${cwd}) exited ${code}\n${err.slice(-4000)}`)),
    );
  });
}

/** Module paths replaced with ./staging/src/... in kubernetes' go.mod. */
function stagingModules(goMod: string): string[] {
  const out: string[] = [];
  for (const m of goMod.matchAll(/^\s*(k8s\.io\/[\w.-]+)\s+=>\s+\.\/staging\/src\//gm)) out.push(m[1]!);
  return out;
}

function etcdVersion(goMod: string): string {
  const m = goMod.match(/go\.etcd\.io\/etcd\/server\/v3 (v[\w.-]+)/);
  if (!m) throw new Error('kubernetes go.mod does not require go.etcd.io/etcd/server/v3');
  return m[1]!;
}

async function publishedVersions(mod: string, cwd: string): Promise<Set<string>> {
  const out = await go(['list', '-m', '-versions', mod], cwd).catch(() => '');
  return new Set(out.trim().split(/\s+/).slice(1));
}

export async function buildControlPlane(version = KUBERNETES_VERSION): Promise<string> {
  const root = k8sCacheDir(version);
  const bin = k8sBinDir(version);
  const wrapper = path.join(root, 'wrapper');
  fs.mkdirSync(bin, { recursive: true });
  fs.mkdirSync(wrapper, { recursive: true });
  const p = process.env.LADDER_K8S_BUILD_P ?? '2';
  const t0 = Date.now();

  const cpMissing = CONTROL_PLANE_BINARIES.filter((b) => !fs.existsSync(path.join(bin, b)));
  if (cpMissing.length > 0) {
    say(`downloading k8s.io/kubernetes@v${version} go.mod`);
    const info = JSON.parse(await go(['mod', 'download', '-json', `k8s.io/kubernetes@v${version}`], wrapper)) as {
      GoMod: string;
    };
    const kmod = fs.readFileSync(info.GoMod, 'utf8');
    const staging = stagingModules(kmod);
    const minor = version.split('.').slice(1).join('.'); // 1.36.3 -> 36.3
    const stagingVersion = `v0.${minor}`;
    const etcdV = etcdVersion(kmod);
    const replaces: string[] = [];
    for (const mod of staging) {
      // Some staging modules are not published (or not at this tag); they are then not
      // needed by the binaries, and pointing them at the published tag would fail to load.
      const versions = await publishedVersions(mod, wrapper);
      if (versions.has(stagingVersion)) replaces.push(`\t${mod} => ${mod} ${stagingVersion}`);
      else say(`staging module ${mod} has no published ${stagingVersion}; left out`);
    }
    const goModText = [
      'module ladder.local/k8s-build',
      '',
      'go 1.26.0',
      '',
      `require (`,
      `\tk8s.io/kubernetes v${version}`,
      `\tgo.etcd.io/etcd/server/v3 ${etcdV}`,
      ')',
      '',
      'replace (',
      ...replaces,
      ')',
      '',
    ].join('\n');
    fs.writeFileSync(path.join(wrapper, 'go.mod'), goModText);
    fs.writeFileSync(
      path.join(wrapper, 'tools.go'),
      [
        '//go:build tools',
        '',
        'package tools',
        '',
        'import (',
        '\t_ "go.etcd.io/etcd/server/v3"',
        '\t_ "k8s.io/kubernetes/cmd/kube-apiserver"',
        '\t_ "k8s.io/kubernetes/cmd/kube-controller-manager"',
        '\t_ "k8s.io/kubernetes/cmd/kube-scheduler"',
        ')',
        '',
      ].join('\n'),
    );
    say('go mod tidy (downloads the module graph)');
    await go(['mod', 'tidy', '-e'], wrapper);
    const pkgs: Record<string, string> = {
      etcd: 'go.etcd.io/etcd/server/v3',
      'kube-apiserver': 'k8s.io/kubernetes/cmd/kube-apiserver',
      'kube-controller-manager': 'k8s.io/kubernetes/cmd/kube-controller-manager',
      'kube-scheduler': 'k8s.io/kubernetes/cmd/kube-scheduler',
    };
    const outDir = path.join(root, '.out');
    fs.mkdirSync(outDir, { recursive: true });
    say(`go build -p ${p} ${cpMissing.join(' ')}`);
    const tb = Date.now();
    // -o DIR with several main packages writes each binary named after its last path element.
    await go(['build', '-p', p, '-trimpath', '-ldflags=-s -w', '-o', outDir + '/', ...cpMissing.map((b) => pkgs[b]!)], wrapper);
    const produced: Record<string, string> = { etcd: 'v3', 'kube-apiserver': 'kube-apiserver', 'kube-controller-manager': 'kube-controller-manager', 'kube-scheduler': 'kube-scheduler' };
    for (const b of cpMissing) {
      let src = path.join(outDir, produced[b]!);
      if (b === 'etcd' && !fs.existsSync(src)) src = path.join(outDir, 'server');
      fs.renameSync(src, path.join(bin, b));
    }
    say(`control plane built in ${((Date.now() - tb) / 1000).toFixed(0)} s`);
  }

  for (const [name, pkg] of [
    ['kwok', `sigs.k8s.io/kwok/cmd/kwok@v${KWOK_VERSION}`],
    ['helm', `helm.sh/helm/v3/cmd/helm@v${HELM_VERSION}`],
  ] as const) {
    if (fs.existsSync(path.join(bin, name))) continue;
    say(`go install ${pkg}`);
    const tb = Date.now();
    await go(['install', '-p', p, '-trimpath', '-ldflags=-s -w', pkg], root, { GOBIN: bin, GOFLAGS: '' });
    say(`${name} built in ${((Date.now() - tb) / 1000).toFixed(0)} s`);
  }
  fs.writeFileSync(path.join(root, '.complete'), `${new Date().toISOString()} total ${((Date.now() - t0) / 1000).toFixed(0)} s\n`);
  say(`done in ${((Date.now() - t0) / 1000).toFixed(0)} s: ${bin}`);
  return bin;
}

/**
 * Returns the bin folder, building first if anything is missing. Concurrent callers (test files
 * run in parallel, two checkouts) serialise on a lock folder: one builds, the others wait.
 */
export async function ensureControlPlane(version = KUBERNETES_VERSION): Promise<string> {
  if (k8sBinariesPresent(version)) return k8sBinDir(version);
  fs.mkdirSync(k8sCacheDir(version), { recursive: true });
  let waited = 0;
  const release = await acquireFileLock(k8sCacheDir(version), {
    lockfilePath: path.join(k8sCacheDir(version), '.build-lock'),
    timeoutMs: 60 * 60_000, // a cold build of the control plane takes minutes; give up only if it hangs
    pollMs: 1000,
    done: () => k8sBinariesPresent(version),
    onWait: () => {
      if (waited++ % 30 === 0) say('waiting for another process building the control plane');
    },
  });
  if (!release) return k8sBinDir(version);
  try {
    return await buildControlPlane(version);
  } finally {
    await release();
  }
}

if (require.main === module) {
  ensureControlPlane().then(
    (bin) => {
      process.stdout.write(bin + '\n');
    },
    (e: Error) => {
      process.stderr.write(`${e.message}\n`);
      process.exit(1);
    },
  );
}
