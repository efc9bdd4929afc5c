/**
 * The figures of loadtests/README.md's capacity section, in one run (about 10 minutes here):
 *
 *   npx tsx loadtests/capacity/figures.ts [--step 3s] [--max-steps 8] [--no-baselines]
 *
 *  1. the knee of each built-in scenario (ingest, graphql, launch, http) through the capacity
 *     workflow, against the test stack (Postgres, Temporal, the API server and a worker with the
 *     simulated executor, as `npm run loadtest:smoke` uses), with shorter steps than the files';
 *  2. the baselines, in the same run: bench-ingest.ts (ingest vs COPY) and bench-graphql.ts (the
 *     same reads as bare SQL), at small sizes, as child processes whose output is printed;
 *  3. one step run by two generator worker *processes* (workers/loadgen-main.ts), each offering
 *     half: their offered rates, succeeded counts and the merged histogram.
 *
 * The load average is printed beside every figure: on a shared machine it says how much of the
 * figure is the machine. Uses LADDER_TEST_PG_URL / LADDER_TEST_TEMPORAL_ADDRESS when set.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import YAML from 'yaml';
import { silentLogger } from '../../core/log';
import { createApiServer } from '../../graphql/server';
import { createTestStack, REPO_ROOT } from '../../test/harness';
import { startLoadgenWorker } from '../../workers/loadgen';
import { decodeHistogram } from './histogram';
import { runCapacity } from './run';
import { parseDurationMs, parseScenario, type Scenario } from './scenario';
import { formatRun } from './summary';

const SCENARIOS = path.join(__dirname, '..', 'scenarios');
const load = () => os.loadavg().map((l) => l.toFixed(1)).join(' ');
const ms = (v: number | null) => (v === null ? '–' : v.toFixed(1));
const say = (line = '') => process.stdout.write(`${line}\n`);

/** The built-in file with shorter steps (and a shorter launch drain), so four searches fit in minutes. */
function shortened(file: string, stepMs: number, maxSteps: number): Scenario {
  const raw = YAML.parse(fs.readFileSync(path.join(SCENARIOS, file), 'utf8')) as Record<string, any>;
  if (raw.scenario === 'http') {
    // The file is a ramping profile without a search: search from its rate instead.
    raw.load = { timeout: raw.load.timeout, rate: raw.load.stages[0].rate, duration: `${stepMs}ms` };
    raw.search = { start: raw.load.rate, max: 20_000 };
  }
  if (raw.scenario === 'launch') raw.launch = { ...raw.launch, drain: '15s' };
  // Lower starts than the files': a first step that fails says only "below the start".
  const start = raw.scenario === 'graphql' ? 2 : raw.scenario === 'launch' ? 0.25 : raw.search.start;
  // At a few operations per second a short step has no p95 worth the name (it is the cold first request).
  const duration = raw.scenario === 'launch' ? Math.max(stepMs, 12_000) : raw.scenario === 'graphql' ? Math.max(stepMs, 10_000) : stepMs;
  raw.search = { ...raw.search, start, stepDuration: `${duration}ms`, maxSteps };
  return parseScenario(raw);
}

async function main() {
  const { values } = parseArgs({ options: { step: { type: 'string', default: '3s' }, 'max-steps': { type: 'string', default: '8' }, 'no-baselines': { type: 'boolean', default: false } } });
  const stepMs = parseDurationMs(values.step!);
  const maxSteps = Number(values['max-steps']);
  if (!Number.isInteger(maxSteps) || maxSteps < 1 || maxSteps > 20) throw new Error('--max-steps must be a whole number from 1 to 20');
  const started = Date.now();
  say(`capacity figures: ${os.cpus().length} CPUs, load average at start ${load()}`);

  const stack = await createTestStack('capacity_figures');
  const api = createApiServer({ database: stack.database, ingestSecret: stack.ingestSecret, log: silentLogger.warn, temporal: { client: stack.temporal, taskQueue: stack.taskQueue }, executor: 'simulated' });
  const apiUrl = await api.listen(0, '127.0.0.1');
  await stack.startWorker({ executor: stack.simulatedExecutor({ timeScale: 0.01 }) });
  const queue = `${stack.taskQueue}-capacity`;
  const loadgen = await startLoadgenWorker({ temporalAddress: stack.temporalAddress, generatorQueue: queue, controlQueue: queue, database: stack.database, ingestSecret: stack.ingestSecret, log: silentLogger, maxGenerators: 4 });
  const children: ChildProcess[] = [];
  try {
    // 1. Knees.
    const knees: string[] = [];
    for (const file of ['ingest.yaml', 'graphql.yaml', 'launch.yaml', 'http.yaml']) {
      const scenario = shortened(file, stepMs, maxSteps);
      const before = load();
      const run = await runCapacity({ client: stack.temporal, db: stack.database.db, runId: `figures-${scenario.name}-${Date.now()}`, scenario, target: scenario.scenario === 'http' ? stack.apiUrl : apiUrl, controlQueue: queue, generatorQueue: queue });
      say(`\n=== ${file} (load average before ${before}, after ${load()})`);
      say(formatRun(run));
      const knee = run.knee === null ? 'none' : `${run.knee}${run.kneeIsLowerBound ? '+' : ''}`;
      const at = run.steps.find((s) => s.offered === run.knee);
      knees.push(`${scenario.name}: knee ${knee} ops/s (${run.stopReason}; ${run.steps.length} steps${at ? `; at the knee p50 ${ms(at.p50Ms)} ms, p95 ${ms(at.p95Ms)} ms, achieved ${at.achieved.toFixed(1)}/s` : ''}${at?.data.extra.trialsPerSecond ? `, ${at.data.extra.trialsPerSecond.toFixed(1)} trials/s` : ''}) [load ${before}]`);
    }

    // 2. Baselines, same run.
    if (!values['no-baselines']) {
      for (const [name, args] of [
        ['bench-ingest (ingest vs unnest vs psql COPY)', ['loadtests/bench-ingest.ts', '--points', '40000', '--reps', '2']],
        ['bench-graphql (GraphQL vs bare SQL)', ['loadtests/bench-graphql.ts', '--sweeps', '4', '--trials', '400', '--points', '800000', '--reps', '30', '--budget', '10', '--deadline', '150', '--throughput-seconds', '3']],
      ] as const) {
        const before = load();
        const r = spawnSync(process.execPath, ['--import', 'tsx', ...args], { cwd: REPO_ROOT, encoding: 'utf8', timeout: 300_000, env: { ...process.env, LADDER_TEST_PG_URL: process.env.LADDER_TEST_PG_URL, LADDER_TEST_TEMPORAL_ADDRESS: process.env.LADDER_TEST_TEMPORAL_ADDRESS } });
        say(`\n=== ${name}: ${args.join(' ')} (exit ${r.status}; load average before ${before}, after ${load()})`);
        say(r.stdout.trim());
        if (r.status !== 0) say(r.stderr.trim().slice(-2000));
      }
    }

    // 3. Two generator worker processes, one generator each, sharing one step.
    const genQueue = `${stack.taskQueue}-generators`;
    const ready = [0, 1].map(() => {
      const env: NodeJS.ProcessEnv = { ...process.env, TEMPORAL_ADDRESS: stack.temporalAddress, LADDER_LOADGEN_QUEUE: genQueue, LADDER_CAPACITY_QUEUE: 'none', LADDER_LOADGEN_CONCURRENCY: '1' };
      delete env.DATABASE_URL;
      const child = spawn(process.execPath, ['--import', 'tsx', path.join(REPO_ROOT, 'workers', 'loadgen-main.ts')], { cwd: REPO_ROOT, env, stdio: ['ignore', 'ignore', 'pipe'] });
      children.push(child);
      let stderr = '';
      child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
      return new Promise<() => string>((resolve, reject) => {
        const poll = setInterval(() => /loadgen worker started/.test(stderr) && (clearInterval(poll), resolve(() => stderr)), 50);
        child.once('exit', (code) => (clearInterval(poll), reject(new Error(`loadgen worker exited (${code}): ${stderr.slice(-500)}`))));
      });
    });
    const logs = await Promise.all(ready);
    const two = parseScenario({ name: 'two-generators', scenario: 'http', http: { url: '/healthz', expectStatus: [200] }, agents: 2, load: { rate: 200, duration: '5s', timeout: '5s' }, thresholds: ['p95 < 250ms', 'errors < 0.1%', 'achieved >= 0.95 * offered'] });
    const before = load();
    const run = await runCapacity({ client: stack.temporal, db: stack.database.db, runId: `figures-two-${Date.now()}`, scenario: two, target: stack.apiUrl, controlQueue: queue, generatorQueue: genQueue });
    const step = run.steps[0]!;
    const merged = decodeHistogram(step.histogram);
    const pids = logs.map((l) => l().match(/"pid":(\d+)/)?.[1] ?? '?');
    say(`\n=== two generator worker processes (pids ${pids.join(', ')}), http /healthz, 200 ops/s for 5 s (load average before ${before}, after ${load()})`);
    say(formatRun(run));
    say(`per generator offered ${step.data.generators.map((g) => g.offered).join(' + ')} = ${step.offered} ops/s; succeeded ${step.data.generators.map((g) => g.succeeded).join(' + ')} = ${step.data.succeeded}; merged histogram ${merged.totalCount} operations, p50 ${ms(step.p50Ms)} ms, p95 ${ms(step.p95Ms)} ms, p99 ${ms(step.p99Ms)} ms`);

    say('\n=== knees');
    for (const k of knees) say(k);
    say(`\ntotal ${((Date.now() - started) / 1000).toFixed(0)} s, load average at end ${load()}`);
  } finally {
    for (const c of children) c.kill('SIGTERM');
    await loadgen.shutdown();
    await api.close();
    await stack.close();
  }
}

main().catch((err: Error) => {
  process.stderr.write(`${err.stack ?? err.message}\n`);
  process.exit(1);
});
