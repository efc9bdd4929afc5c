/**
 * The `ladder` command.
 *
 *   ladder demo [--exit] [--rerun]           embedded stack + the demo sweep, then keeps serving
 *   ladder dev                               embedded stack in the foreground
 *   ladder serve                             the API server alone, configured from the environment
 *   ladder migrate                           apply database migrations
 *   ladder sweep submit FILE [--wait] [--json] [--rerun]
 *   ladder sweep status ID [--json]
 *   ladder sweep list [--json]
 *   ladder sweep cancel ID
 *   ladder results ID [--metric M] [--json]
 *   ladder analyze ID [--target SCALE] [--metric M] [--json]
 *   ladder lc-winrate ID [--rung R] [--glm v1|noreg|minimal] [--project P] [--json]  (cli/lc-winrate.ts)
 *   ladder import FILE [--metric NAME --mode min|max] [--json]
 *   ladder capacity run FILE [--target URL] [--agents N] [--json] · list · show ID  (cli/loadtest.ts)
 *   ladder schedule create SPEC --cron C | --every 6h · list · history · pause · resume · trigger · delete  (cli/schedule.ts)
 *
 * Connections come from DATABASE_URL / TEMPORAL_ADDRESS, or from a running `ladder dev`.
 */
import fs from 'node:fs';
import path from 'node:path';
import { Command, CommanderError } from 'commander';
import { example } from './help';
import type { Database } from '../core/db/client';
import type { SweepSpec } from '../core/spec/spec';
import type { LaunchContext } from '../core/sweeps/launch';
import { LOG_TAIL_MAX_BYTES, LogRequestError } from '../core/trials/logs';

/*
 * Modules load inside the commands that use them: Temporal, drizzle and yoga take seconds to
 * load, and `--help` or `--version` must answer at once. `typeof import` keeps the types.
 */
const lazy = {
  workdir: () => require('../core/spec/workdir') as typeof import('../core/spec/workdir'),
  temporal: () => require('@temporalio/client') as typeof import('@temporalio/client'),
  db: () => require('../core/db/client') as typeof import('../core/db/client'),
  settings: () => require('../core/settings') as typeof import('../core/settings'),
  launch: () => require('../core/sweeps/launch') as typeof import('../core/sweeps/launch'),
  store: () => require('../core/sweeps/store') as typeof import('../core/sweeps/store'),
  analysis: () => require('../core/sweeps/analysis') as typeof import('../core/sweeps/analysis'),
  importer: () => require('../core/sweeps/import') as typeof import('../core/sweeps/import'),
  embedded: () => require('./embedded') as typeof import('./embedded'),
  format: () => require('./format') as typeof import('./format'),
  follow: () => require('./follow') as typeof import('./follow'),
  failures: () => require('./failures') as typeof import('./failures'),
};

class UsageError extends Error {}

type Connections = import('./connections').ConnectionSettings & { database: Database };

function resolveConnections(needs: { temporal: boolean }): Omit<Connections, 'database'> {
  return (require('./connections') as typeof import('./connections')).resolveConnections(needs, (message) => new UsageError(message));
}

async function withDatabase<T>(fn: (c: Connections) => Promise<T>): Promise<T> {
  const conn = resolveConnections({ temporal: false });
  const database = lazy.db().openDatabase(conn.databaseUrl);
  try {
    return await fn({ ...conn, database });
  } finally {
    await database.close();
  }
}

async function withLaunchContext<T>(fn: (ctx: LaunchContext, c: Connections) => Promise<T>): Promise<T> {
  const conn = resolveConnections({ temporal: true });
  const database = lazy.db().openDatabase(conn.databaseUrl);
  const { Client, Connection } = lazy.temporal();
  const { TEMPORAL_CALL_DEADLINE_MS, TemporalUnreachableError } = lazy.launch();
  let connection: Awaited<ReturnType<typeof Connection.connect>>;
  try {
    connection = await Connection.connect({ address: conn.temporalAddress, connectTimeout: TEMPORAL_CALL_DEADLINE_MS });
  } catch (err) {
    await database.close();
    throw new TemporalUnreachableError(conn.temporalAddress, err);
  }
  try {
    const temporal = new Client({ connection, namespace: conn.namespace });
    const { codeVersion } = require('../core/code-version') as typeof import('../core/code-version');
    // The executor the deployment runs (LADDER_EXECUTOR): what it alone refuses (a command sweep
    // without an image on Kubernetes) is refused here, before anything is stored.
    const executor = lazy.settings().readSettings().LADDER_EXECUTOR;
    return await fn({ db: database.db, temporal, taskQueue: conn.taskQueue, codeVersion: codeVersion(), executor }, { ...conn, database });
  } finally {
    await connection.close();
    await database.close();
  }
}

const print = (line = '') => process.stdout.write(`${line}\n`);
const json = (value: unknown) => print(JSON.stringify(value, null, 2));

/** Refuses (exit 2) a metric no succeeded trial of the sweep reported, listing the ones they did. */
async function requireKnownMetric(database: Database, sweepId: string, metric: string): Promise<void> {
  const known = await lazy.store().resultMetricNames(database.db, sweepId);
  if (!known.includes(metric)) throw new UsageError(`metric "${metric}" is not in the results of ${sweepId} (known: ${known.join(', ') || 'none'})`);
}

async function printResults(database: Database, sweepId: string, metric: string | undefined, asJson: boolean): Promise<void> {
  const { leaderboard, requireSweep } = lazy.store();
  const { formatLeaderboard } = lazy.format();
  const sweep = await requireSweep(database.db, sweepId);
  const chosen = metric ?? (await lazy.analysis().sweepMetric(database.db, sweepId, sweep.spec as SweepSpec)).metric;
  const rows = await leaderboard(database.db, sweepId, chosen);
  if (metric && rows.every((r) => r.count === 0)) await requireKnownMetric(database, sweepId, metric);
  if (asJson) json({ sweep: sweepId, metric: chosen, rows });
  else print(formatLeaderboard(chosen, rows));
}

/** `ladder --version`: the package's version, read from package.json so it has one home. */
function packageVersion(): string {
  const pkg = JSON.parse(fs.readFileSync(path.join(__dirname, '..', 'package.json'), 'utf8')) as { version?: unknown };
  return typeof pkg.version === 'string' ? pkg.version : 'unknown';
}


/** A whole number option (≥ min), or a usage error naming the option. */
function intOption(name: string, value: string | undefined, min: number): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (!Number.isInteger(n) || n < min) throw new UsageError(`${name} must be a whole number ≥ ${min}, not "${value}"`);
  return n;
}

/** After a wait: results, failures with their log lines, the verdict; exit 1 unless it succeeded. */
async function printFinished(ctx: LaunchContext, conn: Connections, sweepId: string, status: string): Promise<void> {
  const { refreshSweepAnalysis, storedAnalysis } = lazy.analysis();
  const failed = lazy.failures();
  print(`sweep ${sweepId} ${status}`);
  await printResults(conn.database, sweepId, undefined, false);
  const failures = await failed.failureText(ctx.db, sweepId, failed.cliLogReader());
  if (failures) print(`\n${failures}`);
  // The verdict last, where the eye lands when the wait ends. The worker stores the analysis
  // as the sweep finishes; one stored by an older worker has no verdict and is recomputed.
  const stored = (await storedAnalysis(ctx.db, sweepId)) as { verdict?: unknown } | null;
  const verdict = typeof stored?.verdict === 'string' ? stored.verdict : (await refreshSweepAnalysis(ctx.db, sweepId)).verdict;
  print();
  print(verdict);
  if (status !== 'succeeded') process.exitCode = 1;
}

export function buildProgram(): Command {
  const program = new Command('ladder')
    .description('Ladder: benchmark sweeps on GPUs, with scaling consistency')
    .version(packageVersion(), '-V, --version', 'print the version of Ladder')
    .showHelpAfterError()
    .exitOverride();

  example(
    program
      .command('migrate')
      .description('apply database migrations')
      .action(() =>
        withDatabase(async ({ database }) => {
          await lazy.db().migrateDatabase(database);
          print('database is up to date');
        }),
      ),
    'DATABASE_URL=postgres://ladder@db/ladder npx ladder migrate',
  );

  const sweep = program.command('sweep').description('submit, follow, inspect and cancel sweeps');
  example(sweep, 'npx ladder sweep submit examples/demo.yaml --wait', 'npx ladder sweep list');
  example(
    sweep
      .command('submit')
      .description('validate a sweep spec, store its trials and start it')
      .argument('<file>', 'sweep spec (YAML or JSON)')
      .option('--wait', 'follow progress until the sweep finishes, then print its results (Ctrl-C stops only the waiting)')
      .option('--json', 'machine-readable output')
      .option('--rerun', 'run every trial even if an identical one already succeeded')
      .action(async (file: string, opts: { wait?: boolean; json?: boolean; rerun?: boolean }) => {
        let text: string;
        try {
          text = fs.readFileSync(file, 'utf8');
        } catch (err) {
          throw new UsageError(`cannot read ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
        }
        await withLaunchContext(async (ctx, conn) => {
          // A command sweep's workdir is relative to the spec file, and its code version is taken here.
          const spec = lazy.workdir().prepareSpecFile(text, file);
          const created = await lazy.launch().launchSweep(ctx, { spec, rerun: opts.rerun });
          if (!opts.json) print(`sweep ${created.id}: ${created.trials} trials (${created.reused} reused)`);
          if (!opts.wait) {
            if (opts.json) json({ id: created.id, trials: created.trials, reused: created.reused });
            return;
          }
          const status = await lazy.follow().followSweep(ctx, created.id, !!opts.json);
          if (opts.json) {
            json({ id: created.id, status, progress: await lazy.store().sweepProgress(ctx.db, created.id) });
            if (status !== 'succeeded') process.exitCode = 1;
          } else {
            await printFinished(ctx, conn, created.id, status);
          }
        });
      }),
    'npx ladder sweep submit examples/demo.yaml --wait',
  );

  example(
    sweep
      .command('watch')
      .description('follow a running sweep until it finishes, then print its results (as submit --wait)')
      .argument('<id>', 'sweep id')
      .action((id: string) =>
        withLaunchContext(async (ctx, conn) => {
          await lazy.store().requireSweep(ctx.db, id);
          const status = await lazy.follow().followSweep(ctx, id, false);
          await printFinished(ctx, conn, id, status);
        }),
      ),
    'npx ladder sweep watch demo-3f9a2c1b',
  );

  example(
    sweep
      .command('status')
      .description('trial counts and times per rung, and the failed trials with their last log lines')
      .argument('<id>', 'sweep id')
      .option('--json', 'machine-readable output')
      .action((id: string, opts: { json?: boolean }) =>
        withDatabase(async ({ database }) => {
          const { requireSweep, sweepProgress } = lazy.store();
          const failed = lazy.failures();
          const row = await requireSweep(database.db, id);
          const progress = await sweepProgress(database.db, id);
          const failures = await failed.failureReports(database.db, id, failed.cliLogReader());
          if (opts.json) {
            json({ ...row, progress, failures: { total: failures.total, shown: failures.reports } });
            return;
          }
          const { formatFailures, formatSweepStatus } = lazy.format();
          print(formatSweepStatus(row, progress));
          const text = formatFailures(failures.reports, failures.total);
          if (text) print(`\n${text}`);
        }),
      ),
    'npx ladder sweep status demo-3f9a2c1b',
  );

  example(
    sweep
      .command('list')
      .description('the newest sweeps with their status')
      .option('--json', 'machine-readable output')
      .option('--limit <n>', 'how many, newest first', '20')
      .action((opts: { json?: boolean; limit: string }) =>
        withDatabase(async ({ database }) => {
          const rows = await lazy.store().listSweeps(database.db, Math.max(1, Number(opts.limit) || 20));
          if (opts.json) json(rows);
          else print(lazy.format().formatSweepList(rows));
        }),
      ),
    'npx ladder sweep list --limit 5',
  );

  example(
    sweep
      .command('cancel')
      .description('cancel a sweep: its running jobs are stopped and nothing new starts')
      .argument('<id>', 'sweep id')
      .action((id: string) =>
        withLaunchContext(async (ctx) => {
          const outcome = await lazy.launch().cancelSweep(ctx, id);
          print(outcome === 'cancelling' ? `cancelling sweep ${id}` : `sweep ${id} has already finished`);
        }),
      ),
    'npx ladder sweep cancel demo-3f9a2c1b',
  );

  example(
    program
      .command('logs')
      .description("print the job log of a trial's attempt (default: the latest)")
      .argument('<trial>', 'trial id (`ladder sweep status` lists failed ones)')
      .option('--attempt <n>', 'attempt number, from 1')
      .option('--tail <bytes>', `print only the last BYTES (default and most: ${LOG_TAIL_MAX_BYTES})`)
      .option('--follow', 'keep printing new output until the attempt ends')
      .action((trialId: string, opts: { attempt?: string; tail?: string; follow?: boolean }) =>
        withDatabase(async ({ database }) => {
          const attempt = intOption('--attempt', opts.attempt, 1);
          const tail = intOption('--tail', opts.tail, 1);
          const { printTrialLogs } = require('./logs') as typeof import('./logs');
          await printTrialLogs(database.db, lazy.failures().cliLogReader(), { trialId, attempt, tail, follow: !!opts.follow, write: (t) => process.stdout.write(t) });
        }),
      ),
    'npx ladder logs demo-3f9a2c1b-r0-v1-s0 --attempt 1',
    'npx ladder logs demo-3f9a2c1b-r0-v1-s0 --follow',
  );

  example(
    program
      .command('results')
      .description('leaderboard of a sweep: mean ± std over seeds of a final metric, per variant and rung')
      .argument('<id>', 'sweep id')
      .option('--metric <name>', 'final-result metric to rank by (default: the analysis or promotion metric, else loss, else the first one the results report)')
      .option('--json', 'machine-readable output')
      .action((id: string, opts: { metric?: string; json?: boolean }) =>
        withDatabase(({ database }) => printResults(database, id, opts.metric, !!opts.json)),
      ),
    'npx ladder results demo-3f9a2c1b --metric loss',
  );

  example(
    program
      .command('import')
      .description('load results from outside Ladder (CSV or JSON) as a read-only sweep')
      .argument('<file>', 'CSV with header variant,scale,seed,<metric>,… or a JSON array of such records')
      .option('--metric <name>', 'metric the analyses use (default: the first metric column)')
      .option('--mode <mode>', 'min if lower is better, max if higher is better', 'min')
      .option('--name <name>', 'sweep name (default: from the file name)')
      .option('--project <name>', 'project', 'default')
      .option('--json', 'machine-readable output')
      .action((file: string, opts: { metric?: string; mode: string; name?: string; project: string; json?: boolean }) =>
        withDatabase(async ({ database }) => {
          if (opts.mode !== 'min' && opts.mode !== 'max') throw new UsageError(`--mode must be min or max, not "${opts.mode}"`);
          let text: string;
          try {
            text = fs.readFileSync(file, 'utf8');
          } catch (err) {
            throw new UsageError(`cannot read ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
          }
          const { importSweep, parseImportCsv, parseImportJson } = lazy.importer();
          const records = /^\s*\[/.test(text) ? parseImportJson(text) : parseImportCsv(text);
          const metric = opts.metric ?? Object.keys(records[0]!.metrics)[0]!;
          const name = opts.name ?? slugName(path.basename(file).replace(/\.[^.]*$/, ''));
          const imported = await importSweep(database.db, {
            name,
            records,
            metric,
            mode: opts.mode,
            project: opts.project,
            source: path.basename(file),
          });
          const analysis = await lazy.analysis().refreshSweepAnalysis(database.db, imported.id);
          if (opts.json) json({ id: imported.id, trials: imported.trials, analysis });
          else print(imported.id);
        }),
      ),
    'npx ladder import results.csv --metric loss --mode min',
  );

  example(
    program
      .command('analyze')
      .description('scaling consistency, critical rung, fits and extrapolations of a sweep')
      .argument('<id>', 'sweep id')
      .option('--target <scale>', 'scale to extrapolate each variant to')
      .option('--metric <name>', 'final-result metric (default: the spec\'s analysis or promotion metric, else loss, else the first one the results report)')
      .option('--mode <mode>', 'min or max (default from the spec)')
      .option('--json', 'print the analysis as one JSON object')
      .action((id: string, opts: { target?: string; metric?: string; mode?: string; json?: boolean }) =>
        withDatabase(async ({ database }) => {
          const target = opts.target === undefined ? undefined : Number(opts.target);
          if (target !== undefined && !(Number.isFinite(target) && target > 0)) {
            throw new UsageError(`--target must be a positive number, not "${opts.target}"`);
          }
          if (opts.mode !== undefined && opts.mode !== 'min' && opts.mode !== 'max') {
            throw new UsageError(`--mode must be min or max, not "${opts.mode}"`);
          }
          await lazy.store().requireSweep(database.db, id);
          if (opts.metric !== undefined) await requireKnownMetric(database, id, opts.metric);
          const analysis = await lazy.analysis().refreshSweepAnalysis(database.db, id, { target, metric: opts.metric, mode: opts.mode as 'min' | 'max' | undefined });
          if (opts.json) json(analysis);
          else print(lazy.format().formatAnalysis(analysis));
        }),
      ),
    'npx ladder analyze demo-3f9a2c1b --target 1e9',
  );

  example(
    program
      .command('lc-winrate')
      .description("rlhf sweeps: LC win rates with instruction difficulty pooled over the trials judged on the same instructions, beside each trial's own")
      .argument('<id>', 'sweep id (an rlhf sweep)')
      .option('--rung <rung>', 'one rung, by index or name (default: every rung)')
      .option('--glm <glm>', 'v1 (alpaca_eval\'s default) | noreg | minimal', 'v1')
      .option('--project <name>', 'project the sweep belongs to', 'default')
      .option('--json', 'print one JSON object')
      .action((id: string, opts: { rung?: string; glm: string; project: string; json?: boolean }) =>
        withDatabase(async ({ database }) => {
          const lc = require('./lc-winrate') as typeof import('./lc-winrate');
          if (!Object.hasOwn(lc.GLMS, opts.glm)) throw new UsageError(`--glm must be v1, noreg or minimal, not "${opts.glm}"`);
          const report = await lc.lcWinrate(database.db, id, { project: opts.project, rung: opts.rung, glm: opts.glm as keyof typeof lc.GLMS }, (m) => new UsageError(m));
          if (opts.json) json(report);
          else print(lc.formatLcReport(report));
        }),
      ),
    'npx ladder lc-winrate rlhf-ladder-3f9a2c1b --rung xs',
    'npx ladder lc-winrate rlhf-ladder-3f9a2c1b --glm noreg --json',
  );

  example(
    program
      .command('serve')
      .description('run the API server (GraphQL, ingest, dashboard) against DATABASE_URL; the deployment entry point')
      .option('--host <host>', 'interface to listen on (default LADDER_HOST, else 0.0.0.0)')
      .action(async (opts: { host?: string }) => {
        const { readSettings, requireSetting } = lazy.settings();
        const { Client, Connection } = lazy.temporal();
        const { createApiServer } = require('../graphql/server') as typeof import('../graphql/server');
        const { createLogReader } = require('../workers/executor-factory') as typeof import('../workers/executor-factory');
        const { createLogger } = require('../core/log') as typeof import('../core/log');
        const settings = readSettings();
        const databaseUrl = requireSetting(settings, 'DATABASE_URL');
        const ingestSecret = requireSetting(settings, 'LADDER_INGEST_SECRET');
        const database = lazy.db().openDatabase(databaseUrl);
        await lazy.db().migrateDatabase(database);
        const connection = settings.TEMPORAL_ADDRESS ? await Connection.connect({ address: settings.TEMPORAL_ADDRESS }) : null;
        const log = createLogger('api');
        const api = createApiServer({
          database,
          ingestSecret,
          log: log.warn,
          temporal: connection
            ? { client: new Client({ connection, namespace: settings.TEMPORAL_NAMESPACE }), taskQueue: settings.LADDER_TASK_QUEUE }
            : undefined,
          executor: settings.LADDER_EXECUTOR,
          // Logs of local runs are readable when this server shares the worker's run root; Kubernetes ones from LADDER_K8S_*.
          readLogs: createLogReader({ runRoot: settings.LADDER_RUN_ROOT, python: settings.LADDER_PYTHON }),
        });
        const url = await api.listen(settings.LADDER_PORT, opts.host ?? settings.LADDER_HOST);
        log.info('API server listening', { url, temporal: settings.TEMPORAL_ADDRESS ?? 'not configured (mutations disabled)' });
        await untilInterrupted();
        await api.close();
        await connection?.close();
        await database.close();
      }),
    'DATABASE_URL=postgres://… LADDER_INGEST_SECRET=… npx ladder serve --host 0.0.0.0',
  );

  example(
    program
      .command('dev')
      .description('run the embedded stack (Postgres, Temporal, API, worker) in the foreground')
      .option('--port <port>', 'API port (default LADDER_PORT or 4000)')
      .action(async (opts: { port?: string }) => {
        const stack = await lazy.embedded().startSupervisedStack({ port: opts.port ? Number(opts.port) : undefined, say: (l: string) => print(`• ${l}`) });
        print(`Ladder is running. API ${stack.apiUrl}/graphql · Temporal ${stack.temporalAddress}`);
        print('Submit a sweep from another terminal: npx ladder sweep submit examples/demo.yaml --wait');
        print('Failed job attempts are reported here, one line each.');
        await untilInterrupted();
        await stack.close();
      }),
    'npx ladder dev --port 4000',
  );

  example(
    program
      .command('demo')
      .description('start the embedded stack and run the demo sweeps with the local executor')
      .option('--exit', 'exit after printing the results (default when CI=true)')
      .option('--spec <file...>', 'sweep specs to run (default: examples/demo.yaml, then examples/demo-*.yaml)')
      .option('--rerun', 'run every trial even if an identical one already succeeded (a second demo otherwise reuses the first one\'s results)')
      .action(async (opts: { exit?: boolean; spec?: string[]; rerun?: boolean }) => {
        const exitAfter = opts.exit || lazy.settings().readSetting('CI') === 'true';
        const specs = opts.spec ?? defaultDemoSpecs();
        const { Client, Connection } = lazy.temporal();
        const { launchSweep } = lazy.launch();
        const { followSweep } = lazy.follow();
        const { promotionLines } = lazy.format();
        const { storedAnalysis } = lazy.analysis();
        const { codeVersion } = require('../core/code-version') as typeof import('../core/code-version');
        const stack = await lazy.embedded().startEmbeddedStack({ say: (l: string) => print(`• ${l}`) });
        try {
          const temporal = new Client({ connection: await Connection.connect({ address: stack.temporalAddress }) });
          const ctx: LaunchContext = { db: stack.database.db, temporal, taskQueue: stack.taskQueue, codeVersion: codeVersion() };
          const finished: Array<{ id: string; status: string }> = [];
          for (const file of specs) {
            const spec = lazy.workdir().prepareSpecFile(fs.readFileSync(file, 'utf8'), file);
            const created = await launchSweep(ctx, { spec, rerun: opts.rerun });
            print(`\n• ${path.basename(file)} → sweep ${created.id} (${created.spec.kind}): ${created.trials} trials planned, ${created.reused} reused from earlier runs`);
            const status = await followSweep(ctx, created.id, false);
            print(`sweep ${created.id} ${status}\n`);
            await printResults(stack.database, created.id, undefined, false);
            for (const line of await promotionLines(stack.database.db, created.id)) print(line);
            const { failureText } = lazy.failures();
            const { createLogReader } = require('../workers/executor-factory') as typeof import('../workers/executor-factory');
            const failures = await failureText(stack.database.db, created.id, createLogReader({ runRoot: stack.runRoot }));
            if (failures) print(failures);
            const analysis = (await storedAnalysis(stack.database.db, created.id)) as { verdict?: unknown } | null;
            if (typeof analysis?.verdict === 'string' && analysis.verdict) print(`verdict: ${analysis.verdict}`);
            finished.push({ id: created.id, status });
          }
          print('\nWhere to look:');
          print(`  dashboard       ${stack.apiUrl}/`);
          print(`  GraphQL API     ${stack.apiUrl}/graphql`);
          for (const { id } of finished) {
            print(`  ${id}:  npx ladder sweep status ${id} · npx ladder results ${id} · npx ladder analyze ${id}`);
          }
          print(`  job logs        npx ladder logs TRIAL (files: ${path.relative(process.cwd(), stack.runRoot) || stack.runRoot}/exec/<trial>-a<attempt>/job.log)`);
          await temporal.connection.close();
          if (finished.some((f) => f.status !== 'succeeded')) process.exitCode = 1;
          if (!exitAfter) {
            print('\nServing until Ctrl-C (other terminals can use `npx ladder …` against this stack).');
            await untilInterrupted();
          }
        } finally {
          await stack.close();
        }
      }),
    'npx ladder demo --exit',
    'npx ladder demo --exit --rerun --spec examples/demo.yaml',
  );

  (require('./loadtest') as typeof import('./loadtest')).registerCapacityCommands(program, (message) => new UsageError(message));
  (require('./schedule') as typeof import('./schedule')).registerScheduleCommands(program, (message) => new UsageError(message));

  return program;
}

/** examples/demo.yaml first, then any examples/demo-*.yaml in name order. */
function defaultDemoSpecs(): string[] {
  const dir = path.join(__dirname, '..', 'examples');
  const extra = fs.readdirSync(dir).filter((f) => /^demo-.*\.ya?ml$/.test(f)).sort();
  return [path.join(dir, 'demo.yaml'), ...extra.map((f) => path.join(dir, f))];
}

/** A sweep name from a file name: lowercase letters, digits and dashes. */
function slugName(text: string): string {
  const slug = text.toLowerCase().replace(/[^a-z0-9]+/g, '-').replace(/^-+|-+$/g, '').slice(0, 50);
  return slug || 'imported';
}

function untilInterrupted(): Promise<void> {
  return new Promise((resolve) => {
    process.once('SIGINT', resolve);
    process.once('SIGTERM', resolve);
  });
}

/**
 * What the user sees of an error: never a failed SQL statement or its parameters (a database
 * error's text can run to megabytes and may hold other people's data), only the database's reason.
 */
export function userMessage(err: unknown): string {
  const { DrizzleQueryError } = require('drizzle-orm/errors') as typeof import('drizzle-orm/errors');
  for (let e = err; e instanceof Error; e = e.cause) {
    if (e instanceof DrizzleQueryError) {
      const reason = e.cause instanceof Error ? e.cause.message.split('\n')[0]!.slice(0, 300) : 'query failed';
      return `database error: ${reason}`;
    }
  }
  const message = err instanceof Error ? err.message : String(err);
  const cut = message.search(/Failed query:/);
  const text = cut >= 0 ? `${message.slice(0, cut)}database error` : message;
  return text.length > 2000 ? `${text.slice(0, 2000)}…` : text;
}

/** Errors in what the user asked (exit 2), as opposed to failures of the system (exit 1). */
function isUsageError(err: unknown): boolean {
  if (err instanceof UsageError) return true;
  // Only modules already loaded can have thrown their errors: look them up without loading more.
  const loaded = (id: string) => require.cache[require.resolve(id)] !== undefined;
  if (loaded('../core/spec/spec') && err instanceof (require('../core/spec/spec') as typeof import('../core/spec/spec')).SpecError) return true;
  if (loaded('../core/sweeps/import') && err instanceof lazy.importer().ImportError) return true;
  if (err instanceof LogRequestError) return true;
  return false;
}

export async function main(argv: string[]): Promise<number> {
  try {
    await buildProgram().parseAsync(argv, { from: 'user' });
    return typeof process.exitCode === 'number' ? process.exitCode : 0;
  } catch (err) {
    if (err instanceof CommanderError) return err.exitCode === 0 ? 0 : 2;
    process.stderr.write(`ladder: ${userMessage(err)}\n`);
    return isUsageError(err) ? 2 : 1;
  }
}

if (require.main === module) {
  main(process.argv.slice(2)).then((code) => process.exit(code));
}
