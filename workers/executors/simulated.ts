/**
 * SimulatedExecutor: runs NO job. There is no process, no Python, no training: it only pretends.
 *
 * It exists for orchestration tests and capacity runs (thousands of trials through Temporal,
 * the ingest API and Postgres without spending a CPU on them). Never use it for real training,
 * for benchmark results, or for the demo: every number it reports is computed from a closed-form
 * curve.
 *
 * What it simulates, from the knobs of the `synthetic` job kind (jobs/ladder_jobs/kinds/synthetic.py):
 * - the run takes `steps × step_sleep` seconds (× `timeScale`), measured on the injectable clock;
 * - a config with a key the synthetic kind does not know, a wrong type or an out-of-range value
 *   fails at once with exit code 2 (bad-config, never retryable), as the real job would;
 * - while `attempt <= fail_attempts` it fails with exit code 1 after half of the steps (retryable);
 * - on success, when `launch.env.LADDER_INGEST_URL` is set, it speaks the job protocol over HTTP:
 *   `POST {url}/trials/{trialId}/metrics` (batches of ≤ 500 points) then `POST .../result`, with
 *   `Authorization: Bearer {LADDER_INGEST_TOKEN}`, and reports `succeeded` only after all of them
 *   returned 2xx (an unreachable or refusing ingest → failed, reason 'ingest', retryable).
 *   Without an ingest URL it just reports `succeeded`.
 *
 * The POSTs start on the first status() or wait() after the simulated run ended, and status is
 * `running` until they are done. wait() is woken by the end of the run (a timer armed only while
 * someone waits), by the end of the POSTs and by cancel(); it never polls.
 *
 * State is in memory only: after a worker restart every execution is unknown, and status() of an
 * unknown execution is `failed`, reason 'unknown-execution', retryable — the trial's next attempt
 * simply runs again.
 *
 * Memory stays bounded: once status() or wait() has handed out an execution's terminal status,
 * the execution is kept `retainMs` longer (default 60 s, on the injectable clock) and among the
 * last `maxRetained` (default 5,000) such executions, then forgotten, as after a restart. Within
 * that window a repeated submit finds the execution and starts nothing. A later one would start a
 * new run, which no caller does: the activity submits only before it has an execution reference
 * (no status read yet, so nothing is pruned), and resumes from the reference afterwards. An
 * execution whose terminal status nobody read is kept until somebody does.
 *
 * Validation is strict for kind `synthetic`. Other kinds are simulated with the same curve: keys
 * the synthetic kind does not know are ignored, but a known knob with a wrong type is still a bad
 * config.
 */
import {
  type ExecutionRef,
  type ExecutionStatus,
  type Executor,
  type JobLaunch,
  isTerminal,
  statusFromExitCode,
} from './types';

/** Defaults of the synthetic job kind; the type of each default is the type of the key. */
export const SYNTHETIC_DEFAULTS = {
  scale: 1e6,
  alpha: 0.3,
  a: 50.0,
  c: 1.5,
  lr: 3e-4,
  width: 256,
  steps: 50,
  noise: 0.01,
  seed: 0,
  checkpoint_every: 10,
  step_sleep: 0.0,
  fail_attempts: 0,
} as const;

export type SyntheticConfig = { -readonly [K in keyof typeof SYNTHETIC_DEFAULTS]: number };

const INT_KEYS: ReadonlySet<string> = new Set(['width', 'steps', 'seed', 'checkpoint_every', 'fail_attempts']);
const POSITIVE_KEYS = ['scale', 'lr', 'width', 'steps'] as const;
const NON_NEGATIVE_KEYS = ['alpha', 'a', 'c', 'noise', 'checkpoint_every', 'step_sleep', 'fail_attempts'] as const;
export const SYNTHETIC_PRESETS: Readonly<Record<string, Partial<SyntheticConfig>>> = {
  xs: { scale: 1e5 },
  s: { scale: 1e6 },
  m: { scale: 1e7 },
  l: { scale: 1e8 },
};

const INITIAL_LOSS = 10.0;
const CURVE_EXPONENT = 0.7;
const VAL_GAP = 0.05;
const VAL_EVERY = 10;
const LR_REF = 3e-4;
const WIDTH_REF = 256;
const FLUSH_POINTS = 500;

export class SyntheticConfigError extends Error {}

/**
 * Resolves a raw config like the synthetic kind does (defaults ← preset ← overrides).
 * `strict`: unknown keys are errors (otherwise ignored). Throws SyntheticConfigError.
 */
export function resolveSyntheticConfig(
  raw: Record<string, unknown>,
  strict = true,
): { config: SyntheticConfig; preset: string | null } {
  const config: SyntheticConfig = { ...SYNTHETIC_DEFAULTS };
  const apply = (overrides: Record<string, unknown>) => {
    for (const [key, value] of Object.entries(overrides)) {
      if (!Object.prototype.hasOwnProperty.call(SYNTHETIC_DEFAULTS, key)) {
        if (strict) throw new SyntheticConfigError(`key '${key}' is not a config key of kind 'synthetic'`);
        continue;
      }
      if (typeof value !== 'number' || !Number.isFinite(value) || (INT_KEYS.has(key) && !Number.isInteger(value))) {
        throw new SyntheticConfigError(
          `key '${key}' of kind 'synthetic' expects ${INT_KEYS.has(key) ? 'int' : 'float'}, got ${JSON.stringify(value)}`,
        );
      }
      config[key as keyof SyntheticConfig] = value;
    }
  };
  const { preset, ...overrides } = raw;
  if (preset !== undefined && preset !== null) {
    if (typeof preset !== 'string') throw new SyntheticConfigError(`key 'preset' expects str`);
    const presetValues = SYNTHETIC_PRESETS[preset];
    if (!presetValues) throw new SyntheticConfigError(`unknown preset '${preset}' of kind 'synthetic'`);
    apply(presetValues);
  }
  apply(overrides);
  for (const key of POSITIVE_KEYS) {
    if (!(config[key] > 0)) throw new SyntheticConfigError(`key '${key}' of kind 'synthetic' must be > 0`);
  }
  for (const key of NON_NEGATIVE_KEYS) {
    if (!(config[key] >= 0)) throw new SyntheticConfigError(`key '${key}' of kind 'synthetic' must be >= 0`);
  }
  return { config, preset: typeof preset === 'string' ? preset : null };
}

/** L_final of a variant: (c + a·scale^(−alpha)) × lr factor × width factor (as the Python job). */
export function syntheticFinalLoss(config: SyntheticConfig): number {
  const base = config.c + config.a * config.scale ** -config.alpha;
  const lrFactor = 1 + 0.1 * Math.abs(Math.log10(config.lr / LR_REF));
  const widthFactor = 1 + 0.05 * (Math.sqrt(WIDTH_REF / config.width) - 1);
  return base * lrFactor * widthFactor;
}

const MASK64 = (1n << 64n) - 1n;
function splitmix64(x: bigint): bigint {
  x = (x + 0x9e3779b97f4a7c15n) & MASK64;
  x = ((x ^ (x >> 30n)) * 0xbf58476d1ce4e5b9n) & MASK64;
  x = ((x ^ (x >> 27n)) * 0x94d049bb133111ebn) & MASK64;
  return x ^ (x >> 31n);
}

/**
 * CPython's `random.Random(seed).gauss(0, 1)` (first draw of a fresh generator), bit for bit up
 * to libm's last ulp: the synthetic kind draws its noise that way and is the reference, so
 * the simulated executor reports the points a real synthetic run would.
 */
function pythonFirstGauss(seed: bigint): number {
  const mt = mt19937FromPythonInt(seed);
  const random = () => {
    const a = mt() >>> 5;
    const b = mt() >>> 6;
    return (a * 67108864 + b) / 9007199254740992;
  };
  const x2pi = random() * 2 * Math.PI;
  const g2rad = Math.sqrt(-2 * Math.log(1 - random()));
  return Math.cos(x2pi) * g2rad;
}

const MT_N = 624;
const MT_M = 397;

/** MT19937 seeded as CPython's random_seed() seeds it from a non-negative int (init_by_array). */
function mt19937FromPythonInt(seed: bigint): () => number {
  const key: number[] = [];
  for (let n = seed; n > 0n; n >>= 32n) key.push(Number(n & 0xffffffffn));
  if (key.length === 0) key.push(0);
  const mt = new Uint32Array(MT_N);
  mt[0] = 19650218;
  for (let i = 1; i < MT_N; i++) {
    const prev = mt[i - 1]!;
    mt[i] = Math.imul(1812433253, prev ^ (prev >>> 30)) + i;
  }
  let i = 1;
  let j = 0;
  for (let k = Math.max(MT_N, key.length); k > 0; k--) {
    const prev = mt[i - 1]!;
    mt[i] = (mt[i]! ^ Math.imul(prev ^ (prev >>> 30), 1664525)) + key[j]! + j;
    i++;
    j++;
    if (i >= MT_N) {
      mt[0] = mt[MT_N - 1]!;
      i = 1;
    }
    if (j >= key.length) j = 0;
  }
  for (let k = MT_N - 1; k > 0; k--) {
    const prev = mt[i - 1]!;
    mt[i] = (mt[i]! ^ Math.imul(prev ^ (prev >>> 30), 1566083941)) - i;
    i++;
    if (i >= MT_N) {
      mt[0] = mt[MT_N - 1]!;
      i = 1;
    }
  }
  mt[0] = 0x80000000;
  let index = MT_N;
  return () => {
    if (index >= MT_N) {
      for (let kk = 0; kk < MT_N; kk++) {
        const y = (mt[kk]! & 0x80000000) | (mt[(kk + 1) % MT_N]! & 0x7fffffff);
        mt[kk] = mt[(kk + MT_M) % MT_N]! ^ (y >>> 1) ^ (y & 1 ? 0x9908b0df : 0);
      }
      index = 0;
    }
    let y = mt[index++]!;
    y ^= y >>> 11;
    y ^= (y << 7) & 0x9d2c5680;
    y ^= (y << 15) & 0xefc60000;
    y ^= y >>> 18;
    return y >>> 0;
  };
}

/** The synthetic kind's `stable_seed(*parts)`: splitmix64 over the parts (as 64-bit two's complement). */
export function stableSeed(...parts: number[]): bigint {
  let h = 0n;
  for (const p of parts) h = splitmix64(h ^ (BigInt(p) & MASK64));
  return h;
}

/** A standard normal value that depends only on (seed, step, stream): resumable, like the job's. */
function gauss(seed: number, step: number, stream: number): number {
  return pythonFirstGauss(stableSeed(seed, step, stream));
}

/** Metric values of one step (loss every step, val_loss every 10 steps and at the last). */
export function syntheticPoint(config: SyntheticConfig, step: number, lFinal = syntheticFinalLoss(config)) {
  const l0 = Math.max(INITIAL_LOSS, lFinal);
  const clean = lFinal + (l0 - lFinal) * (1 + step) ** -CURVE_EXPONENT;
  const values: { loss: number; val_loss?: number } = {
    loss: clean + config.noise * gauss(config.seed, step, 0),
  };
  if (step % VAL_EVERY === 0 || step === config.steps) {
    values.val_loss = clean + VAL_GAP + config.noise * gauss(config.seed, step, 1);
  }
  return values;
}

export interface SimulatedExecutorOptions {
  /** Multiplies every simulated duration (0.01 = a hundred times faster). Default 1. */
  timeScale?: number;
  /** Clock in ms since the epoch. Default `Date.now`. */
  now?: () => number;
  /** Timeout of one ingest POST in ms. Default 15000. */
  ingestTimeoutMs?: number;
  /** Tries per ingest POST on network errors and 5xx/429 (4xx fail at once). Default 3. */
  ingestTries?: number;
  /**
   * Fault injection for orchestration tests: a launch for which this returns true posts its
   * metrics but never its result, and still exits 0, a broken job the orchestrator must not count
   * as a success. An executor option, not a config key, because the real synthetic kind cannot
   * misbehave that way and the two must accept the same configs.
   */
  omitResult?: (launch: JobLaunch) => boolean;
  /** How long an execution stays known after its terminal status was handed out, in ms. Default 60000. */
  retainMs?: number;
  /** At most this many such executions are kept (the oldest go first). Default 5000. */
  maxRetained?: number;
}

type Ingest = { state: 'posting' } | { state: 'done'; at: number } | { state: 'error'; message: string; at: number };

interface SimExecution {
  launch: JobLaunch;
  startedAt: number;
  /** When the simulated process exits. */
  endsAt: number;
  exitCode: number;
  /** What it would print (bad config message, crash...). */
  log: string[];
  config?: SyntheticConfig;
  preset: string | null;
  cancelledAt?: number;
  ingest?: Ingest;
  abort?: AbortController;
  /** Pending wait() calls, woken by the end of the run, of the POSTs, or by a cancel. */
  wakers?: Set<() => void>;
  /** Fires at endsAt while somebody waits. */
  timer?: NodeJS.Timeout;
}

/** Longest a waiter sleeps before looking at the (injectable, movable) clock again. */
const RUN_END_RECHECK_MS = 250;

export class SimulatedExecutor implements Executor {
  readonly name = 'simulated';
  private readonly timeScale: number;
  private readonly now: () => number;
  private readonly ingestTimeoutMs: number;
  private readonly ingestTries: number;
  private readonly omitResult: (launch: JobLaunch) => boolean;
  private readonly retainMs: number;
  private readonly maxRetained: number;
  private readonly executions = new Map<string, SimExecution>();
  /**
   * Executions whose terminal status was handed out, oldest first, with when that happened.
   * Entries are only ever appended and removed from the front, so insertion order is age order.
   */
  private readonly retired = new Map<string, number>();
  /** Number of submits that created an execution (not the idempotent repeats); for tests. */
  startedCount = 0;
  /** Runs started per execution id; pruned with the execution. */
  private readonly startsById = new Map<string, number>();
  private waitsPending = 0;

  constructor(options: SimulatedExecutorOptions = {}) {
    this.timeScale = options.timeScale ?? 1;
    this.now = options.now ?? Date.now;
    this.ingestTimeoutMs = options.ingestTimeoutMs ?? 15_000;
    this.ingestTries = Math.max(1, options.ingestTries ?? 3);
    this.omitResult = options.omitResult ?? (() => false);
    this.retainMs = Math.max(0, options.retainMs ?? 60_000);
    this.maxRetained = Math.max(0, Math.floor(options.maxRetained ?? 5_000));
  }

  /** Sizes of the in-memory state (executions known, of them retired, run counters, pending waits). */
  memoryStats(): { executions: number; retired: number; startsById: number; pendingWaits: number } {
    return {
      executions: this.executions.size,
      retired: this.retired.size,
      startsById: this.startsById.size,
      pendingWaits: this.waitsPending,
    };
  }

  async submit(launch: JobLaunch): Promise<ExecutionRef> {
    this.prune();
    const existing = this.executions.get(launch.executionId);
    if (existing) return this.refFor(existing);
    const startedAt = this.now();
    const exec: SimExecution = { launch, startedAt, endsAt: startedAt, exitCode: 0, log: [], preset: null };
    try {
      const { config, preset } = resolveSyntheticConfig(launch.config, launch.kind === 'synthetic');
      exec.config = config;
      exec.preset = preset;
      const stepMs = config.step_sleep * 1000 * this.timeScale;
      const attempt = Number(launch.env.LADDER_ATTEMPT ?? launch.attempt);
      if (attempt <= config.fail_attempts) {
        const crashAt = Math.max(1, Math.floor(config.steps / 2));
        exec.endsAt = startedAt + crashAt * stepMs;
        exec.exitCode = 1;
        exec.log.push(`simulated crash at step ${crashAt} (attempt ${attempt} <= fail_attempts ${config.fail_attempts})`);
      } else {
        exec.endsAt = startedAt + config.steps * stepMs;
      }
    } catch (e) {
      if (!(e instanceof SyntheticConfigError)) throw e;
      exec.exitCode = 2;
      exec.log.push(`config error: ${e.message}`);
    }
    this.executions.set(launch.executionId, exec);
    this.startedCount++;
    this.startsById.set(launch.executionId, (this.startsById.get(launch.executionId) ?? 0) + 1);
    return this.refFor(exec);
  }

  async status(ref: ExecutionRef): Promise<ExecutionStatus> {
    this.prune();
    return this.observe(ref.executionId);
  }

  async wait(ref: ExecutionRef, signal: AbortSignal): Promise<ExecutionStatus> {
    this.prune();
    for (;;) {
      const status = this.observe(ref.executionId);
      const exec = this.executions.get(ref.executionId);
      if (isTerminal(status) || signal.aborted || !exec) return status;
      await this.nextChange(exec, signal);
    }
  }

  /** The status now; a terminal one starts the execution's retention clock. */
  private observe(executionId: string): ExecutionStatus {
    const exec = this.executions.get(executionId);
    if (!exec) return { state: 'failed', reason: 'unknown-execution', retryable: true };
    const status = this.statusOf(exec);
    if (isTerminal(status) && !this.retired.has(executionId)) this.retired.set(executionId, this.now());
    return status;
  }

  /** Forgets retired executions past the window or over the cap (amortised over calls). */
  private prune(): void {
    const cutoff = this.now() - this.retainMs;
    for (const [id, at] of this.retired) {
      if (at >= cutoff && this.retired.size <= this.maxRetained) break;
      this.retired.delete(id);
      this.forget(id);
    }
  }

  private forget(executionId: string): void {
    const exec = this.executions.get(executionId);
    this.executions.delete(executionId);
    this.startsById.delete(executionId);
    if (exec) this.wake(exec); // their status is now unknown-execution (terminal): let them see it
  }

  /**
   * Resolves at the execution's next change: the end of its run, of its POSTs, a cancel, being
   * forgotten, or the abort of `signal`. Leaves no listener or timer behind.
   */
  private nextChange(exec: SimExecution, signal: AbortSignal): Promise<void> {
    return new Promise<void>((resolve) => {
      const wakers = (exec.wakers ??= new Set());
      this.waitsPending++;
      const done = () => {
        if (!wakers.delete(done)) return;
        this.waitsPending--;
        signal.removeEventListener('abort', done);
        if (wakers.size === 0 && exec.timer) {
          clearTimeout(exec.timer);
          exec.timer = undefined;
        }
        resolve();
      };
      wakers.add(done);
      signal.addEventListener('abort', done, { once: true });
      if (exec.cancelledAt !== undefined || exec.ingest?.state === 'posting') return; // woken by the cancel or the POSTs
      // The clock is read again here: the run may have ended since the caller saw it running, and
      // then no timer would ever wake this waiter.
      if (exec.endsAt - this.now() <= 0) done();
      else if (!exec.timer) this.armRunEnd(exec);
    });
  }

  /**
   * Wakes the waiters when the run ends on the injectable clock. The clock may be moved ahead
   * (tests jump it by a trial's length), so the timer looks again at least every
   * RUN_END_RECHECK_MS instead of trusting the real time left.
   */
  private armRunEnd(exec: SimExecution): void {
    const remaining = exec.endsAt - this.now();
    exec.timer = setTimeout(
      () => {
        exec.timer = undefined;
        if (!exec.wakers || exec.wakers.size === 0) return;
        if (exec.endsAt - this.now() > 0 && exec.cancelledAt === undefined) this.armRunEnd(exec);
        else this.wake(exec);
      },
      Math.max(0, Math.min(remaining, RUN_END_RECHECK_MS)),
    );
  }

  private wake(exec: SimExecution): void {
    if (!exec.wakers) return;
    for (const w of [...exec.wakers]) w();
  }

  private statusOf(exec: SimExecution): ExecutionStatus {
    const startedAt = new Date(exec.startedAt);
    if (exec.cancelledAt !== undefined) {
      return { state: 'cancelled', reason: 'cancelled', startedAt, finishedAt: new Date(exec.cancelledAt) };
    }
    const now = this.now();
    if (now < exec.endsAt) return { state: 'running', startedAt };
    const finishedAt = new Date(exec.endsAt);
    if (exec.exitCode !== 0) return { ...statusFromExitCode(exec.exitCode), startedAt, finishedAt };
    const url = exec.launch.env.LADDER_INGEST_URL;
    if (!url) return { ...statusFromExitCode(0), startedAt, finishedAt };
    if (!exec.ingest) this.startIngest(exec, url);
    const ingest = exec.ingest!;
    if (ingest.state === 'posting') return { state: 'running', startedAt };
    if (ingest.state === 'error') {
      return { state: 'failed', reason: 'ingest', retryable: true, exitCode: 1, startedAt, finishedAt: new Date(ingest.at) };
    }
    return { ...statusFromExitCode(0), startedAt, finishedAt: new Date(ingest.at) };
  }

  async cancel(ref: ExecutionRef): Promise<void> {
    const exec = this.executions.get(ref.executionId);
    if (!exec || exec.cancelledAt !== undefined) return;
    const now = this.now();
    const finished =
      now >= exec.endsAt &&
      (exec.exitCode !== 0 || !exec.launch.env.LADDER_INGEST_URL || (exec.ingest !== undefined && exec.ingest.state !== 'posting'));
    if (finished) return;
    exec.cancelledAt = now;
    exec.abort?.abort();
    exec.log.push('stopped (SIGTERM); checkpointed, retry resumes');
    this.wake(exec);
  }

  async logs(ref: ExecutionRef, tailBytes = 64 * 1024): Promise<string> {
    const exec = this.executions.get(ref.executionId);
    if (!exec) return '';
    const text = [`[simulated executor: no job runs] ${exec.launch.kind} ${exec.launch.executionId}`, ...exec.log]
      .map((l) => `${l}\n`)
      .join('');
    const buf = Buffer.from(text, 'utf8');
    return buf.length <= tailBytes ? text : buf.subarray(buf.length - tailBytes).toString('utf8');
  }

  /** How many times the run of this execution was started (for the contract's "one run"). */
  startsOf(executionId: string): number {
    return this.startsById.get(executionId) ?? 0;
  }

  /**
   * Whether the simulated run is still going or its POSTs are still in flight, judged from the
   * run's own clock and the POSTs' abort signal rather than from what status() would answer.
   */
  isLive(executionId: string): boolean {
    const exec = this.executions.get(executionId);
    if (!exec) return false;
    if (exec.abort) return !exec.abort.signal.aborted && exec.ingest?.state === 'posting';
    return exec.cancelledAt === undefined && this.now() < exec.endsAt;
  }

  /** Drops all state, as a worker restart would, except the run counters tests read across it. */
  reset(): void {
    const all = [...this.executions.values()];
    for (const exec of all) exec.abort?.abort();
    this.executions.clear();
    this.retired.clear();
    for (const exec of all) this.wake(exec);
  }

  private refFor(exec: SimExecution): ExecutionRef {
    return {
      executor: this.name,
      executionId: exec.launch.executionId,
      handle: { simulated: true, startedAt: exec.startedAt },
    };
  }

  private startIngest(exec: SimExecution, url: string): void {
    exec.ingest = { state: 'posting' };
    const abort = new AbortController();
    exec.abort = abort;
    this.postAll(exec, url.replace(/\/+$/, ''), abort.signal).then(
      () => {
        exec.ingest = { state: 'done', at: this.now() };
        exec.log.push('result recorded');
        this.wake(exec);
      },
      (e: unknown) => {
        const message = e instanceof Error ? e.message : String(e);
        exec.ingest = { state: 'error', message, at: this.now() };
        exec.log.push(`error: ingest: ${message}`);
        this.wake(exec);
      },
    );
  }

  private async postAll(exec: SimExecution, url: string, signal: AbortSignal): Promise<void> {
    const config = exec.config!;
    const { launch } = exec;
    const trialId = launch.env.LADDER_TRIAL_ID || launch.trialId;
    const base = `${url}/trials/${encodeURIComponent(trialId)}`;
    const token = launch.env.LADDER_INGEST_TOKEN;
    const lFinal = syntheticFinalLoss(config);
    let batch: { name: string; step: number; value: number }[] = [];
    let last: { loss: number; val_loss?: number } = { loss: Number.NaN };
    let lastVal: number | undefined;
    const add = async (name: string, step: number, value: number) => {
      batch.push({ name, step, value });
      if (batch.length >= FLUSH_POINTS) {
        const full = batch;
        batch = [];
        await this.post(`${base}/metrics`, token, { points: full }, signal);
      }
    };
    for (let step = 1; step <= config.steps; step++) {
      last = syntheticPoint(config, step, lFinal);
      await add('loss', step, last.loss);
      if (last.val_loss !== undefined) {
        lastVal = last.val_loss;
        await add('val_loss', step, last.val_loss);
      }
    }
    if (batch.length > 0) await this.post(`${base}/metrics`, token, { points: batch }, signal);
    const finishedAt = new Date(this.now());
    const body = {
      metrics: { loss: last.loss, val_loss: lastVal ?? null, final_loss_noiseless: lFinal, steps: config.steps },
      config,
      meta: {
        simulated: true,
        kind: launch.kind,
        preset: exec.preset,
        trial_id: trialId,
        attempt: Number(launch.env.LADDER_ATTEMPT ?? launch.attempt),
        resumed_from_step: null,
        started_at: new Date(exec.startedAt).toISOString(),
        finished_at: finishedAt.toISOString(),
        duration_s: Math.round(finishedAt.getTime() - exec.startedAt) / 1000,
      },
    };
    if (this.omitResult(launch)) {
      exec.log.push('exiting 0 without a result (omitResult fault injection)');
      return;
    }
    await this.post(`${base}/result`, token, body, signal);
  }

  private async post(url: string, token: string | undefined, body: unknown, signal: AbortSignal): Promise<void> {
    const headers: Record<string, string> = { 'Content-Type': 'application/json' };
    if (token) headers.Authorization = `Bearer ${token}`;
    const data = JSON.stringify(body);
    const path = new URL(url).pathname;
    let lastError = '';
    for (let tryNo = 1; tryNo <= this.ingestTries; tryNo++) {
      if (signal.aborted) throw new Error('cancelled');
      let res: Response;
      try {
        res = await fetch(url, {
          method: 'POST',
          headers,
          body: data,
          redirect: 'manual',
          signal: AbortSignal.any([signal, AbortSignal.timeout(this.ingestTimeoutMs)]),
        });
      } catch (e) {
        lastError = e instanceof Error ? e.message : String(e);
        await backoff(tryNo);
        continue;
      }
      const text = await res.text().catch(() => '');
      if (res.status >= 200 && res.status < 300) return;
      lastError = `HTTP ${res.status}: ${text.slice(0, 200)}`;
      if (res.status < 500 && res.status !== 429) break; // a client error does not get better
      await backoff(tryNo);
    }
    throw new Error(`POST ${path} failed: ${lastError}`);
  }
}

function backoff(tryNo: number): Promise<void> {
  return new Promise((r) => setTimeout(r, Math.min(1000, 50 * 2 ** tryNo)));
}
