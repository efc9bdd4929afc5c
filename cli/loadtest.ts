/**
 * `ladder capacity`: capacity load tests (loadtests/capacity, workflows/capacity.ts).
 *
 *   ladder capacity run FILE [--target URL] [--agents N] [--wait] [--local] [--json]
 *   ladder capacity list [--first N] [--json]
 *   ladder capacity show ID [--json]
 *
 * `run` starts the capacity workflow on the control queue (LADDER_CAPACITY_QUEUE, default
 * ladder-capacity) that a loadgen worker (`workers/loadgen-main.ts`) polls; `--local` runs one
 * in this process instead, for the duration of the run. Runs are rows in Postgres: DATABASE_URL
 * and TEMPORAL_ADDRESS, else a running `ladder dev`. LADDER_INGEST_SECRET and LADDER_API_TOKEN
 * are read by the worker that prepares the run (this process with --local).
 */
import fs from 'node:fs';
import type { Command } from 'commander';
import { example } from './help';

const print = (line = '') => process.stdout.write(`${line}\n`);

/** `usage` is the caller's usage-error factory, so bad input exits 2 like the other commands. */
export function registerCapacityCommands(program: Command, usage: (message: string) => Error): void {
  const capacity = program
    .command('capacity')
    .description('capacity load tests: how much load a deployment holds, and where the knee is');
  example(capacity, 'npx ladder capacity run loadtests/scenarios/graphql.yaml --wait', 'npx ladder capacity list');

  example(
    capacity
      .command('run')
      .description('run a scenario (loadtests/scenarios/*.yaml): its load profile, or the capacity search for the knee')
      .argument('<file>', 'scenario file (YAML or JSON)')
      .option('--target <url>', 'base URL of the API (or service) to load; overrides the scenario')
      .option('--agents <n>', 'generator activities each step fans out to (overrides the scenario)')
      .option('--wait', 'wait for the run to end and print its summary')
      .option('--local', 'run a loadgen worker in this process (implies --wait)')
      .option('--json', 'print one JSON object'),
    'npx ladder capacity run loadtests/scenarios/http.yaml --target http://127.0.0.1:8080 --local',
  ).action(async (file: string, opts: { target?: string; agents?: string; wait?: boolean; local?: boolean; json?: boolean }) => {
    const { parseScenarioText, ScenarioError, MAX_AGENTS } = require('../loadtests/capacity/scenario') as typeof import('../loadtests/capacity/scenario');
    const { newRunId, runCapacity, startCapacityRun, runSummaryJson } = require('../loadtests/capacity/run') as typeof import('../loadtests/capacity/run');
    const { formatRun } = require('../loadtests/capacity/summary') as typeof import('../loadtests/capacity/summary');
    let text: string;
    try {
      text = fs.readFileSync(file, 'utf8');
    } catch (err) {
      throw usage(`cannot read ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
    }
    let scenario;
    try {
      scenario = parseScenarioText(text);
    } catch (err) {
      if (err instanceof ScenarioError) throw usage(err.message);
      throw err;
    }
    const agents = opts.agents === undefined ? undefined : Number(opts.agents);
    if (agents !== undefined && !(Number.isInteger(agents) && agents >= 1 && agents <= MAX_AGENTS)) throw usage(`--agents must be a whole number from 1 to ${MAX_AGENTS}, not "${opts.agents}"`);
    if (opts.target !== undefined && !/^https?:\/\/[^\s]+$/.test(opts.target)) throw usage(`--target must be an http(s) URL, not "${opts.target}"`);
    const env = await connect(usage);
    const runId = newRunId(scenario.name);
    const stop = new AbortController();
    const onSigint = () => stop.abort();
    process.once('SIGINT', onSigint);
    let local: import('../workers/loadgen').LoadgenWorker | undefined;
    try {
      const loadgen = require('../workers/loadgen') as typeof import('../workers/loadgen');
      const { readLoadgenSettings, readSetting } = require('../core/settings') as typeof import('../core/settings');
      const fromEnv = readLoadgenSettings();
      let controlQueue = fromEnv.LADDER_CAPACITY_QUEUE ?? loadgen.CAPACITY_CONTROL_QUEUE;
      let generatorQueue = fromEnv.LADDER_LOADGEN_QUEUE ?? loadgen.LOADGEN_TASK_QUEUE;
      if (opts.local) {
        // Queues of this run alone, so no other worker takes its activities.
        controlQueue = generatorQueue = `capacity-local-${runId}`;
        local = await loadgen.startLoadgenWorker({
          temporalAddress: env.temporalAddress,
          namespace: env.namespace,
          generatorQueue,
          controlQueue,
          maxGenerators: agents ?? scenario.agents,
          database: env.database,
          ingestSecret: readSetting('LADDER_INGEST_SECRET'),
          apiToken: fromEnv.LADDER_API_TOKEN,
          log: (require('../core/log') as typeof import('../core/log')).createLogger('loadgen', { quiet: true }),
        });
      }
      const common = { client: env.client, runId, scenario, target: opts.target ?? scenario.target ?? env.apiUrl ?? null, controlQueue, generatorQueue, generators: agents };
      if (!opts.wait && !opts.local) {
        await startCapacityRun(common);
        if (opts.json) print(JSON.stringify({ id: runId, scenario: scenario.name, status: 'running', knee: null, steps: [] }));
        else print(`capacity run ${runId} started on task queue ${controlQueue}; \`ladder capacity show ${runId}\` reads it`);
        return;
      }
      if (!opts.json) print(`capacity run ${runId} (Ctrl-C cancels it and stops every generator)`);
      const run = await runCapacity({ ...common, db: env.database.db, signal: stop.signal });
      if (opts.json) print(JSON.stringify(runSummaryJson(run)));
      else print(formatRun(run));
      if (run.status !== 'finished' || run.knee === null || run.stopReason === 'incomplete step') process.exitCode = 1;
    } finally {
      process.off('SIGINT', onSigint);
      await local?.shutdown();
      await env.close();
    }
  });

  example(
    capacity
      .command('list')
      .description('capacity runs, newest first, with their knee')
      .option('--first <n>', 'how many (at most 100)', '20')
      .option('--json', 'machine-readable output'),
    'npx ladder capacity list --first 5',
  ).action(async (opts: { first: string; json?: boolean }) => {
    const first = Number(opts.first);
    if (!Number.isInteger(first) || first < 1 || first > 100) throw usage(`--first must be a whole number from 1 to 100, not "${opts.first}"`);
    const { listCapacityRuns } = require('../core/capacity/store') as typeof import('../core/capacity/store');
    const env = await connectDatabase(usage);
    try {
      const runs = await listCapacityRuns(env.db, { first });
      if (opts.json) print(JSON.stringify(runs.map((r) => ({ id: r.id, scenario: r.scenario, kind: r.kind, status: r.status, startedAt: r.startedAt, knee: r.knee, kneeIsLowerBound: r.kneeIsLowerBound }))));
      else print((require('../loadtests/capacity/summary') as typeof import('../loadtests/capacity/summary')).formatRunList(runs));
    } finally {
      await env.close();
    }
  });

  example(
    capacity
      .command('show')
      .description('the summary of a capacity run')
      .argument('<id>', 'run id (`ladder capacity list`)')
      .option('--json', 'machine-readable output'),
    'npx ladder capacity show <id> --json',
  ).action(async (id: string, opts: { json?: boolean }) => {
    const { getCapacityRun, UnknownCapacityRunError } = require('../core/capacity/store') as typeof import('../core/capacity/store');
    const { runSummaryJson } = require('../loadtests/capacity/run') as typeof import('../loadtests/capacity/run');
    const env = await connectDatabase(usage);
    try {
      let run;
      try {
        run = await getCapacityRun(env.db, id);
      } catch (err) {
        if (err instanceof UnknownCapacityRunError) throw usage(err.message);
        throw err;
      }
      print(opts.json ? JSON.stringify(runSummaryJson(run)) : (require('../loadtests/capacity/summary') as typeof import('../loadtests/capacity/summary')).formatRun(run));
    } finally {
      await env.close();
    }
  });
}

function settingsAndStack() {
  const settings = (require('../core/settings') as typeof import('../core/settings')).readSettings();
  const stack = (require('./stack-file') as typeof import('./stack-file')).readStackFile();
  return { settings, stack };
}

async function connectDatabase(usage: (message: string) => Error) {
  const { settings, stack } = settingsAndStack();
  const url = settings.DATABASE_URL ?? stack?.databaseUrl;
  if (!url) throw usage('capacity runs are in Postgres: set DATABASE_URL (or run `ladder dev`)');
  const { openDatabase, migrateDatabase } = require('../core/db/client') as typeof import('../core/db/client');
  const database = openDatabase(url);
  await migrateDatabase(database);
  return { db: database.db, database, close: () => database.close() };
}

/** Postgres and Temporal, from the environment or a running `ladder dev`. */
async function connect(usage: (message: string) => Error) {
  const { settings, stack } = settingsAndStack();
  const temporalAddress = settings.TEMPORAL_ADDRESS ?? stack?.temporalAddress;
  if (!temporalAddress) throw usage('a capacity run is a Temporal workflow: set TEMPORAL_ADDRESS (or run `ladder dev`)');
  const namespace = settings.TEMPORAL_ADDRESS ? settings.TEMPORAL_NAMESPACE : (stack?.namespace ?? settings.TEMPORAL_NAMESPACE);
  const db = await connectDatabase(usage);
  const { Client, Connection } = require('@temporalio/client') as typeof import('@temporalio/client');
  const connection = await Connection.connect({ address: temporalAddress });
  return {
    database: db.database,
    client: new Client({ connection, namespace }),
    temporalAddress,
    namespace,
    apiUrl: stack?.apiUrl,
    close: async () => {
      await connection.close();
      await db.close();
    },
  };
}
