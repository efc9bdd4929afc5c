/**
 * LocalExecutor: runs each trial attempt as a detached child process on this machine.
 *
 * All state lives on disk under `runRoot`, so a worker process that dies and is replaced by a new
 * one (same machine, same `runRoot`) can still read the status of, and cancel, jobs the old one
 * started:
 *
 * ```
 * <runRoot>/exec/<executionId>/
 *     config.json    the resolved config, passed as --config
 *     launch.json    the JobLaunch plus what the executor decided (host, gpus, startedAt)
 *     gpus           GPU ids given to the job (only when it got some)
 *     pid            pid of the wrapper shell = process group id of the job
 *     job.log        stdout + stderr of the job
 *     exit           exit code of the job, written atomically by the wrapper when it ends
 *     cancelled      marker: cancel() was asked for this execution
 *     output/        LADDER_OUTPUT_DIR (offline mode writes metrics.jsonl, result.json here)
 * <runRoot>/checkpoints/<trialId>/   LADDER_CHECKPOINT_DIR, shared by all attempts of a trial
 * <runRoot>/gpu-claims/<executionId> GPU ids held by a possibly-live execution (slot index)
 * ```
 *
 * The job is `/bin/sh -c <wrapper> ... python -m ladder_jobs run --kind K --config F`, spawned in
 * its own process group (and session). The wrapper records its pid, runs python in the foreground
 * and then writes python's exit code to `exit` (via `exit.tmp` + `mv`), so the exit code survives
 * the death of the worker. SIGTERM to the group reaches python (which checkpoints and exits 143);
 * the wrapper traps TERM so that it still records that exit code.
 *
 * `wait()` learns of an exit without polling. For a job this instance spawned, the wrapper's exit
 * event is the signal (the wrapper writes `exit` before it exits, so status() is terminal by
 * then). For a job some other instance or an earlier worker started, an `fs.watch` on the
 * execution folder reports the rename that creates `exit` (or `cancelled`); a slow safety poll
 * (`waitPollMs`) covers what leaves no file behind: a job killed with SIGKILL ("lost"), and file
 * systems where inotify reports nothing (NFS).
 *
 * Units: `local/env.ts` (the environment allow-list), `local/gpus.ts` (GPU ids, slots, claims),
 * `local/proc.ts` (/proc parsing, process groups), `local/lock.ts` (the run-root lock),
 * `local/files.ts`; this file holds the executor: submit, status, wait, cancel, logs.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { readSetting } from '../../core/settings';
import { InvocationError, jobInvocation, type JobInvocation } from './command';
import { jobEnvironment } from './local/env';
import { readText, writeAtomic } from './local/files';
import { detectGpus, GpuClaims, pickGpus } from './local/gpus';
import { withFileLock } from './local/lock';
import { processGroupAlive, signalGroup } from './local/proc';

import {
  type ExecutionRef,
  type ExecutionStatus,
  type Executor,
  type JobLaunch,
  isTerminal,
  statusFromExitCode,
} from './types';

export { detectGpus } from './local/gpus';
export { processGroupAlive } from './local/proc';

/** Root of the repository (this file lives in `<repo>/workers/executors/`). */
export const REPO_ROOT = path.resolve(__dirname, '..', '..');

export interface LocalExecutorOptions {
  /** Folder for execution state (see the layout above). Default `<repo>/.ladder/runs`. */
  runRoot?: string;
  /** Python executable. Default `process.env.LADDER_PYTHON ?? 'python3'`. */
  python?: string;
  /** Folder holding the `ladder_jobs` package; becomes PYTHONPATH. Default `<repo>/jobs`. */
  jobsDir?: string;
  /**
   * GPU ids that trial slots may use (values for CUDA_VISIBLE_DEVICES). Default: `LADDER_GPUS`
   * (comma list; empty = none) if set, else `0..n-1` for the n GPUs `nvidia-smi -L` lists, else none.
   */
  gpus?: string[];
  /** How long cancel() waits after SIGTERM before SIGKILL of the process group. Default 10000. */
  killGraceMs?: number;
  /**
   * Extra names of worker environment variables that jobs may inherit, on top of the built-in
   * allow-list (PATH, HOME, LANG, LC_*, TMPDIR, PYTHON*, CUDA/NVIDIA/OMP/MKL/HF/TORCH settings...).
   */
  envPassthrough?: string[];
  /** Where warnings go (GPU requested on a machine without one). Default `console.warn`. */
  warn?: (message: string) => void;
  /**
   * Safety poll of wait() for jobs this instance did not spawn, in ms: it only catches deaths that
   * write no file (SIGKILL) and file systems without inotify, so it can be slow. Default 5000.
   */
  waitPollMs?: number;
}

/** Handle stored in `ExecutionRef.handle` by the local executor. */
export interface LocalHandle {
  /** pid of the wrapper shell, which is also the process group id of the job. */
  pid: number;
  /** Host that runs the job: only a worker on this host (and same runRoot) can follow it. */
  host: string;
  /** GPU ids given to the job ([] on CPU). */
  gpus: string[];
}

/** Written to `launch.json`. */
interface LaunchRecord {
  launch: JobLaunch;
  host: string;
  gpus: string[];
  createdAt: string;
}

const EXECUTION_ID_RE = /^[A-Za-z0-9][A-Za-z0-9._-]{0,199}$/;
/** A submit that crashed after launch.json and before the pid file counts as pending this long. */
const PENDING_GRACE_MS = 30_000;
/** The wrapper: $1 = exec dir, the rest = the command. See the module comment. */
const WRAPPER = [
  'd="$1"; shift',
  'echo $$ > "$d/pid.sh.tmp" && mv -f "$d/pid.sh.tmp" "$d/pid"',
  // A trapped signal does not interrupt a foreground command; the trap runs after it ends,
  // so the exit code of python is still recorded. The child gets default dispositions.
  "trap ':' TERM INT HUP",
  '"$@"',
  'c=$?',
  'echo "$c" > "$d/exit.tmp" && mv -f "$d/exit.tmp" "$d/exit"',
  'exit "$c"',
].join('\n');

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** Files of an execution folder whose appearance can make its status terminal. */
const STATUS_FILES: ReadonlySet<string> = new Set(['exit', 'cancelled', 'pid']);
/** First re-check after a spawned wrapper exited without a terminal status (its group still dying). */
const AFTER_EXIT_RECHECK_MS = 10;

/** A job spawned by this instance: callbacks run once, when its wrapper shell exits. */
interface LiveChild {
  child: ChildProcess;
  onExit: Set<() => void>;
}

export class LocalExecutor implements Executor {
  readonly name = 'local';
  readonly runRoot: string;
  readonly python: string;
  readonly jobsDir: string;
  readonly killGraceMs: number;
  private readonly gpuOption: string[] | undefined;
  private detectedGpus: string[] | undefined;
  private readonly envExtra: ReadonlySet<string>;
  private readonly warn: (message: string) => void;
  private warnedNoGpu = false;
  /** Serialises submits of this instance (idempotency check + GPU allocation). */
  private submitChain: Promise<unknown> = Promise.resolve();
  readonly waitPollMs: number;
  /** Jobs this instance spawned whose wrapper has not exited yet; an entry goes with the exit. */
  private readonly liveChildren = new Map<string, LiveChild>();
  private waitsPending = 0;
  private readonly claims: GpuClaims;

  constructor(options: LocalExecutorOptions = {}) {
    this.runRoot = path.resolve(options.runRoot ?? path.join(REPO_ROOT, '.ladder', 'runs'));
    this.python = options.python ?? readSetting('LADDER_PYTHON') ?? 'python3';
    this.jobsDir = path.resolve(options.jobsDir ?? path.join(REPO_ROOT, 'jobs'));
    this.killGraceMs = options.killGraceMs ?? 10_000;
    this.gpuOption = options.gpus ? [...options.gpus] : undefined;
    this.envExtra = new Set(options.envPassthrough ?? []);
    this.warn = options.warn ?? ((m) => console.warn(m));
    this.waitPollMs = Math.max(1, options.waitPollMs ?? 5_000);
    this.claims = new GpuClaims(path.join(this.runRoot, 'gpu-claims'));
  }

  /** wait() calls that hold a listener, watcher or timer right now (a leak shows here). */
  get pendingWaits(): number {
    return this.waitsPending;
  }

  /** GPU ids this executor hands out (detected once, lazily). */
  get gpus(): readonly string[] {
    if (this.gpuOption) return this.gpuOption;
    this.detectedGpus ??= detectGpus();
    return this.detectedGpus;
  }

  /** State folder of an execution. Throws on ids that are not safe folder names. */
  execDir(executionId: string): string {
    if (!EXECUTION_ID_RE.test(executionId)) {
      throw new Error(`local executor: invalid executionId ${JSON.stringify(executionId)}`);
    }
    return path.join(this.runRoot, 'exec', executionId);
  }

  /** Checkpoint folder of a trial, shared by its attempts so that a retry resumes. */
  checkpointDir(trialId: string): string {
    if (!EXECUTION_ID_RE.test(trialId)) {
      throw new Error(`local executor: invalid trialId ${JSON.stringify(trialId)}`);
    }
    return path.join(this.runRoot, 'checkpoints', trialId);
  }

  submit(launch: JobLaunch): Promise<ExecutionRef> {
    const run = this.submitChain.then(() => this.withRunRootLock(() => this.submitLocked(launch)));
    this.submitChain = run.catch(() => undefined);
    return run;
  }

  async status(ref: ExecutionRef): Promise<ExecutionStatus> {
    return this.statusNow(ref);
  }

  async wait(ref: ExecutionRef, signal: AbortSignal): Promise<ExecutionStatus> {
    // Everything up to the subscriptions is synchronous, so no exit event slips in between.
    const first = this.statusNow(ref);
    if (isTerminal(first) || signal.aborted) return first;
    return new Promise<ExecutionStatus>((resolve, reject) => {
      let settled = false;
      let timer: NodeJS.Timeout | undefined;
      let watcher: fs.FSWatcher | undefined;
      const live = this.liveChildren.get(ref.executionId);
      this.waitsPending++;

      const cleanup = () => {
        settled = true;
        this.waitsPending--;
        signal.removeEventListener('abort', onAbort);
        if (live) {
          live.onExit.delete(onExit);
          if (live.onExit.size === 0) live.child.unref();
        }
        if (timer) clearTimeout(timer);
        timer = undefined;
        watcher?.close();
        watcher = undefined;
      };
      /** Resolves when the status is terminal (or always, on abort); true when settled. */
      const check = (always = false): boolean => {
        if (settled) return true;
        let status: ExecutionStatus;
        try {
          status = this.statusNow(ref);
        } catch (e) {
          cleanup();
          reject(e);
          return true;
        }
        if (!always && !isTerminal(status)) return false;
        cleanup();
        resolve(status);
        return true;
      };
      const onAbort = () => check(true);
      const poll = (delayMs: number, backoff: boolean) => {
        timer = setTimeout(() => {
          timer = undefined;
          if (!check()) poll(backoff ? Math.min(delayMs * 2, this.waitPollMs) : delayMs, backoff);
        }, delayMs);
      };
      /** For a job we did not spawn, or whose group outlived the wrapper: files, then a slow poll. */
      const watchFiles = (firstDelayMs: number) => {
        try {
          watcher = fs.watch(path.join(this.runRoot, 'exec', ref.executionId), { persistent: true }, (_event, name) => {
            if (name === null || STATUS_FILES.has(String(name))) check();
          });
          watcher.on('error', () => {
            watcher?.close();
            watcher = undefined; // the poll still runs
          });
        } catch {
          watcher = undefined; // no inotify here (or the folder went away): the poll covers it
        }
        // The file may have appeared before the watch started.
        if (!check()) poll(firstDelayMs, firstDelayMs < this.waitPollMs);
      };
      const onExit = () => {
        // The wrapper wrote `exit` before exiting; without it (SIGKILL), the rest of the group
        // may still be on its way out, so look again soon, then ever more slowly.
        if (!check()) watchFiles(AFTER_EXIT_RECHECK_MS);
      };

      signal.addEventListener('abort', onAbort, { once: true });
      if (live) {
        live.onExit.add(onExit);
        live.child.ref(); // a pending wait keeps the process alive, as a poll timer would
      } else {
        watchFiles(this.waitPollMs);
      }
    });
  }

  private statusNow(ref: ExecutionRef): ExecutionStatus {
    const dir = this.knownDir(ref);
    if (!dir) return { state: 'failed', reason: 'unknown-execution', retryable: true };
    const record = this.readRecord(dir);
    if (!record) return { state: 'failed', reason: 'unknown-execution', retryable: true };
    const startedAt = new Date(record.createdAt);

    const fromExit = () => {
      const exited = this.readExit(dir);
      if (!exited) return undefined;
      this.releaseGpus(ref.executionId);
      if (fs.existsSync(path.join(dir, 'cancelled'))) {
        return { state: 'cancelled', reason: 'cancelled', exitCode: exited.code, startedAt, finishedAt: exited.at } satisfies ExecutionStatus;
      }
      return { ...statusFromExitCode(exited.code), startedAt, finishedAt: exited.at };
    };

    const done = fromExit();
    if (done) return done;
    const pid = this.readPid(dir);
    if (pid !== undefined && processGroupAlive(pid)) return { state: 'running', startedAt };
    // It may have ended between the two checks: look at the exit file once more.
    const late = fromExit();
    if (late) return late;
    if (pid === undefined && Date.now() - startedAt.getTime() < PENDING_GRACE_MS && !fs.existsSync(path.join(dir, 'cancelled'))) {
      return { state: 'pending' };
    }
    this.releaseGpus(ref.executionId);
    if (fs.existsSync(path.join(dir, 'cancelled'))) return { state: 'cancelled', reason: 'cancelled', startedAt };
    return { state: 'failed', reason: 'lost', retryable: true, startedAt };
  }

  async cancel(ref: ExecutionRef): Promise<void> {
    const dir = this.knownDir(ref);
    if (!dir || !fs.existsSync(path.join(dir, 'launch.json'))) return; // unknown: nothing to do
    if (fs.existsSync(path.join(dir, 'exit'))) return; // finished: nothing to do
    const marker = path.join(dir, 'cancelled');
    if (!fs.existsSync(marker)) writeAtomic(marker, `${new Date().toISOString()}\n`);
    const pid = this.readPid(dir);
    if (pid !== undefined && processGroupAlive(pid)) {
      signalGroup(pid, 'SIGTERM');
      const deadline = Date.now() + this.killGraceMs;
      while (processGroupAlive(pid) && Date.now() < deadline) await sleep(50);
      if (processGroupAlive(pid)) {
        signalGroup(pid, 'SIGKILL');
        const killDeadline = Date.now() + 5_000;
        while (processGroupAlive(pid) && Date.now() < killDeadline) await sleep(20);
      }
    }
    if (pid === undefined || !processGroupAlive(pid)) this.releaseGpus(ref.executionId);
  }

  async logs(ref: ExecutionRef, tailBytes = 64 * 1024): Promise<string> {
    const dir = this.knownDir(ref);
    if (!dir) return '';
    let fd: number;
    try {
      fd = fs.openSync(path.join(dir, 'job.log'), 'r');
    } catch {
      return '';
    }
    try {
      const size = fs.fstatSync(fd).size;
      const length = Math.max(0, Math.min(size, Math.floor(tailBytes)));
      const buf = Buffer.alloc(length);
      const read = fs.readSync(fd, buf, 0, length, size - length);
      return buf.subarray(0, read).toString('utf8');
    } finally {
      fs.closeSync(fd);
    }
  }

  // ---------------------------------------------------------------------------------------------

  private async submitLocked(launch: JobLaunch): Promise<ExecutionRef> {
    const dir = this.execDir(launch.executionId);
    const ckptDir = this.checkpointDir(launch.trialId);
    const existing = this.readRecord(dir);
    if (existing) {
      let pid = this.readPid(dir);
      if (pid === undefined && !fs.existsSync(path.join(dir, 'exit'))) {
        // A previous submit died between launch.json and the pid file; the wrapper writes the
        // pid as its first act, so give it a moment before concluding that nothing started.
        for (let i = 0; i < 20 && pid === undefined; i++) {
          await sleep(50);
          pid = this.readPid(dir);
        }
      }
      if (pid !== undefined) return this.refFor(launch.executionId, pid, existing);
    }

    // launch.json holds the attempt's plaintext ingest token: only this user may read it.
    fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
    fs.chmodSync(dir, 0o700);
    fs.mkdirSync(path.join(dir, 'output'), { recursive: true });
    fs.mkdirSync(ckptDir, { recursive: true });
    const gpus = this.allocateGpus(launch);
    const record: LaunchRecord = {
      launch,
      host: os.hostname(),
      gpus,
      createdAt: new Date().toISOString(),
    };
    const configFile = path.join(dir, 'config.json');
    writeAtomic(configFile, `${JSON.stringify(launch.config, null, 2)}\n`);
    if (gpus.length > 0) {
      writeAtomic(path.join(dir, 'gpus'), `${gpus.join(',')}\n`);
      this.claims.claim(launch.executionId, gpus);
    }
    writeAtomic(path.join(dir, 'launch.json'), `${JSON.stringify(record, null, 2)}\n`, 0o600);

    const invocation = this.invocation(launch, configFile);
    const env = this.jobEnv(launch, dir, ckptDir, gpus, invocation.env);
    const logFd = fs.openSync(path.join(dir, 'job.log'), 'a');
    let pid: number | undefined;
    try {
      const child = spawn('/bin/sh', ['-c', WRAPPER, 'ladder-job', dir, ...invocation.argv], {
        cwd: invocation.cwd ?? dir,
        env,
        detached: true,
        stdio: ['ignore', logFd, logFd],
      });
      // A failed spawn of /bin/sh itself is reported asynchronously; it then has no pid.
      child.on('error', (err) => {
        fs.appendFileSync(path.join(dir, 'job.log'), `[ladder] spawn failed: ${err.message}\n`);
      });
      pid = child.pid;
      child.unref();
      if (pid !== undefined) {
        const live: LiveChild = { child, onExit: new Set() };
        const id = launch.executionId;
        this.liveChildren.set(id, live);
        child.once('exit', () => {
          this.liveChildren.delete(id);
          for (const notify of [...live.onExit]) notify();
          live.onExit.clear();
        });
      }
    } finally {
      fs.closeSync(logFd);
    }
    if (pid === undefined) {
      this.releaseGpus(launch.executionId);
      fs.rmSync(path.join(dir, 'launch.json'), { force: true });
      throw new Error(`local executor: could not start /bin/sh for ${launch.executionId}`);
    }
    writeAtomic(path.join(dir, 'pid'), `${pid}\n`);
    return this.refFor(launch.executionId, pid, record);
  }

  private refFor(executionId: string, pid: number, record: LaunchRecord): ExecutionRef {
    const handle: LocalHandle = { pid, host: record.host, gpus: record.gpus };
    return { executor: this.name, executionId, handle: { ...handle } };
  }

  /**
   * What the job runs (command.ts). A launch that cannot run as given (a command naming a key
   * its config lacks, a relative workdir) still becomes an execution: one that prints why and
   * exits 2, so it ends as a non-retried bad-config failure with the reason in its log, through
   * the same paths as any job.
   */
  private invocation(launch: JobLaunch, configFile: string): JobInvocation {
    try {
      return jobInvocation(launch, { target: 'local', configPath: configFile, python: this.python, interpreter: this.python });
    } catch (err) {
      if (!(err instanceof InvocationError)) throw err;
      return { argv: ['/bin/sh', '-c', 'printf "%s\\n" "$1" >&2; exit 2', 'ladder', `[ladder] cannot run: ${err.message}`], env: {} };
    }
  }

  private jobEnv(launch: JobLaunch, dir: string, ckptDir: string, gpus: string[], specEnv: Record<string, string>): NodeJS.ProcessEnv {
    return jobEnvironment({
      inherited: process.env,
      extra: this.envExtra,
      launch,
      specEnv,
      jobsDir: this.jobsDir,
      checkpointDir: ckptDir,
      outputDir: path.join(dir, 'output'),
      gpus,
      machineHasGpus: this.gpus.length > 0,
    });
  }

  /** Picks free GPU ids for the launch; throws when too few are free. Call under the lock. */
  private allocateGpus(launch: JobLaunch): string[] {
    const wanted = Math.max(0, Math.floor(launch.resources.gpus ?? 0));
    if (wanted === 0) return [];
    const all = this.gpus;
    if (all.length === 0) {
      if (!this.warnedNoGpu) {
        this.warnedNoGpu = true;
        this.warn(
          `local executor: trial ${launch.trialId} asks for ${wanted} GPU(s) but this machine has none; running on CPU`,
        );
      }
      return [];
    }
    const pick = pickGpus(all, this.claims.inUse((id) => this.executionEnded(id)), wanted, launch.executionId);
    if (!pick.ok) throw new Error(pick.error);
    return pick.gpus;
  }

  /** True when nothing of the execution can still be using resources. */
  private executionEnded(executionId: string): boolean {
    if (!EXECUTION_ID_RE.test(executionId)) return true;
    const dir = path.join(this.runRoot, 'exec', executionId);
    if (fs.existsSync(path.join(dir, 'exit'))) return true;
    const pid = this.readPid(dir);
    if (pid !== undefined) return !processGroupAlive(pid);
    const record = this.readRecord(dir);
    if (!record) return true;
    return Date.now() - new Date(record.createdAt).getTime() >= PENDING_GRACE_MS;
  }

  private releaseGpus(executionId: string): void {
    this.claims.release(executionId);
  }

  private knownDir(ref: ExecutionRef): string | undefined {
    if (!EXECUTION_ID_RE.test(ref.executionId)) return undefined;
    const dir = path.join(this.runRoot, 'exec', ref.executionId);
    return fs.existsSync(dir) ? dir : undefined;
  }

  private readRecord(dir: string): LaunchRecord | undefined {
    const text = readText(path.join(dir, 'launch.json'));
    if (text === undefined) return undefined;
    try {
      return JSON.parse(text) as LaunchRecord;
    } catch {
      return undefined;
    }
  }

  private readPid(dir: string): number | undefined {
    const text = readText(path.join(dir, 'pid'));
    if (text === undefined) return undefined;
    const pid = Number.parseInt(text.trim(), 10);
    return Number.isInteger(pid) && pid > 1 ? pid : undefined;
  }

  private readExit(dir: string): { code: number; at: Date } | undefined {
    const file = path.join(dir, 'exit');
    const text = readText(file);
    if (text === undefined) return undefined;
    const code = Number.parseInt(text.trim(), 10);
    let at: Date;
    try {
      at = fs.statSync(file).mtime;
    } catch {
      at = new Date();
    }
    return { code: Number.isInteger(code) ? code : -1, at };
  }

  /**
   * Cross-process lock over the run root, so that two worker processes sharing it neither start
   * one execution twice nor hand out the same GPU. Submits take milliseconds; a lock left by a
   * worker that died is taken over once stale (`local/lock.ts`).
   */
  private async withRunRootLock<T>(fn: () => Promise<T>): Promise<T> {
    fs.mkdirSync(this.runRoot, { recursive: true });
    return withFileLock(this.runRoot, { lockfilePath: path.join(this.runRoot, 'submit.lock'), timeoutMs: 30_000, pollMs: 20 }, fn);
  }
}
