/**
 * The `ladder` command.
 *
 *   ladder demo [--exit]                     embedded stack + the demo sweep, then keeps serving
 *   ladder dev                               embedded stack in the foreground
 *   ladder serve                             the API server alone, configured from the environment
 *   ladder migrate                           apply database migrations
 *   ladder sweep submit FILE [--wait] [--json] [--rerun]
 *   ladder sweep status ID [--json]
 *   ladder sweep list [--json]
 *   ladder sweep cancel ID
 *   ladder results ID [--metric M] [--json]
 *   ladder analyze ID [--target SCALE] [--metric M] [--json]
 *   ladder import FILE [--metric NAME --mode min|max] [--json]
 *
 * Connections come from DATABASE_URL / TEMPORAL_ADDRESS, or from a running `ladder dev`.
 */
import fs from 'node:fs';
import path from 'node:path';
import { Client, Connection } from '@temporalio/client';
import { Command, CommanderError } from 'commander';
import { codeVersion } from '../core/code-version';
import { migrateDatabase, openDatabase, type Database } from '../core/db/client';
import { createLogger } from '../core/log';
import { readSettings, requireSetting } from '../core/settings';
import { createApiServer } from '../graphql/server';
import { SpecError, type SweepSpec } from '../core/spec/spec';
import { cancelSweep, launchSweep, waitForSweep, type LaunchContext } from '../core/sweeps/launch';
import { leaderboard, listSweeps, requireSweep, resultMetricNames, sweepProgress } from '../core/sweeps/store';
import { ImportError, importSweep, parseImportCsv, parseImportJson } from '../core/sweeps/import';
import { refreshSweepAnalysis, storedAnalysis } from '../core/sweeps/analysis';
import { readStackFile, startEmbeddedStack } from './embedded';
import { formatAnalysis, formatLeaderboard, formatProgressLine, formatSweepList, formatSweepStatus, promotionLines } from './format';

class UsageError extends Error {}

interface Connections {
  database: Database;
  databaseUrl: string;
  temporalAddress: string;
  namespace: string;
  taskQueue: string;
  apiUrl?: string;
}

function resolveConnections(needs: { temporal: boolean }): Omit<Connections, 'database'> {
  const settings = readSettings();
  const stack = readStackFile();
  const databaseUrl = settings.DATABASE_URL ?? stack?.databaseUrl;
  const temporalAddress = settings.TEMPORAL_ADDRESS ?? stack?.temporalAddress;
  if (!databaseUrl || (needs.temporal && !temporalAddress)) {
    throw new UsageError(
      'no Ladder stack found: start one with `npx ladder dev` (or `npm run demo`), or set DATABASE_URL and TEMPORAL_ADDRESS',
    );
  }
  return {
    databaseUrl,
    temporalAddress: temporalAddress ?? '',
    namespace: process.env.TEMPORAL_NAMESPACE ?? stack?.namespace ?? settings.TEMPORAL_NAMESPACE,
    taskQueue: process.env.LADDER_TASK_QUEUE ?? stack?.taskQueue ?? settings.LADDER_TASK_QUEUE,
    apiUrl: stack?.apiUrl,
  };
}

async function withDatabase<T>(fn: (c: Connections) => Promise<T>): Promise<T> {
  const conn = resolveConnections({ temporal: false });
  const database = openDatabase(conn.databaseUrl);
  try {
    return await fn({ ...conn, database });
  } finally {
    await database.close();
  }
}

async function withLaunchContext<T>(fn: (ctx: LaunchContext, c: Connections) => Promise<T>): Promise<T> {
  const conn = resolveConnections({ temporal: true });
  const database = openDatabase(conn.databaseUrl);
  const connection = await Connection.connect({ address: conn.temporalAddress });
  try {
    const temporal = new Client({ connection, namespace: conn.namespace });
    return await fn({ db: database.db, temporal, taskQueue: conn.taskQueue, codeVersion: codeVersion() }, { ...conn, database });
  } finally {
    await connection.close();
    await database.close();
  }
}

const print = (line = '') => process.stdout.write(`${line}\n`);
const json = (value: unknown) => print(JSON.stringify(value, null, 2));

/** Waits for a sweep, redrawing one progress line (or printing changes when not a terminal). */
async function followSweep(ctx: LaunchContext, sweepId: string, quiet: boolean): Promise<string> {
  const done = waitForSweep(ctx, sweepId);
  let finished = false;
  void done.finally(() => (finished = true));
  let last = '';
  const tty = process.stderr.isTTY && !quiet;
  while (!finished) {
    const line = formatProgressLine(await sweepProgress(ctx.db, sweepId));
    if (!quiet && line !== last) {
      if (tty) process.stderr.write(`\r\x1b[2K${line}`);
      else process.stderr.write(`${line}\n`);
      last = line;
    }
    await Promise.race([done, new Promise((r) => setTimeout(r, 500))]);
  }
  if (tty) process.stderr.write('\n');
  return done;
}

async function defaultMetric(database: Database, sweepId: string, spec: SweepSpec): Promise<string | null> {
  if (spec.analysis) return spec.analysis.metric;
  if (spec.promotion) return spec.promotion.metric;
  const names = await resultMetricNames(database.db, sweepId);
  return names.includes('loss') ? 'loss' : (names[0] ?? null);
}

async function printResults(database: Database, sweepId: string, metric: string | undefined, asJson: boolean): Promise<void> {
  const sweep = await requireSweep(database.db, sweepId);
  const chosen = metric ?? (await defaultMetric(database, sweepId, sweep.spec as SweepSpec));
  if (!chosen) {
    if (asJson) json({ sweep: sweepId, metric: null, rows: [] });
    else print(`sweep ${sweepId} has no results yet`);
    return;
  }
  const rows = await leaderboard(database.db, sweepId, chosen);
  if (metric && rows.every((r) => r.count === 0)) {
    const known = await resultMetricNames(database.db, sweepId);
    throw new UsageError(`metric "${metric}" is not in the results of ${sweepId} (known: ${known.join(', ') || 'none'})`);
  }
  if (asJson) json({ sweep: sweepId, metric: chosen, rows });
  else print(formatLeaderboard(chosen, rows));
}

export function buildProgram(): Command {
  const program = new Command('ladder')
    .description('Ladder: benchmark sweeps on GPUs, with scaling consistency')
    .showHelpAfterError()
    .exitOverride();

  program
    .command('migrate')
    .description('apply database migrations')
    .action(() =>
      withDatabase(async ({ database }) => {
        await migrateDatabase(database);
        print('database is up to date');
      }),
    );

  const sweep = program.command('sweep').description('submit, watch and cancel sweeps');
  sweep
    .command('submit')
    .argument('<file>', 'sweep spec (YAML or JSON)')
    .option('--wait', 'follow progress until the sweep finishes, then print its results')
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
        const created = await launchSweep(ctx, { spec: text, rerun: opts.rerun });
        if (!opts.json) print(`sweep ${created.id}: ${created.trials} trials (${created.reused} reused)`);
        if (!opts.wait) {
          if (opts.json) json({ id: created.id, trials: created.trials, reused: created.reused });
          return;
        }
        const status = await followSweep(ctx, created.id, !!opts.json);
        if (opts.json) {
          json({ id: created.id, status, progress: await sweepProgress(ctx.db, created.id) });
        } else {
          print(`sweep ${created.id} ${status}`);
          await printResults(conn.database, created.id, undefined, false);
        }
        if (status !== 'succeeded') process.exitCode = 1;
      });
    });

  sweep
    .command('status')
    .argument('<id>', 'sweep id')
    .option('--json', 'machine-readable output')
    .action((id: string, opts: { json?: boolean }) =>
      withDatabase(async ({ database }) => {
        const row = await requireSweep(database.db, id);
        const progress = await sweepProgress(database.db, id);
        if (opts.json) json({ ...row, progress });
        else print(formatSweepStatus(row, progress));
      }),
    );

  sweep
    .command('list')
    .option('--json', 'machine-readable output')
    .option('--limit <n>', 'how many, newest first', '20')
    .action((opts: { json?: boolean; limit: string }) =>
      withDatabase(async ({ database }) => {
        const rows = await listSweeps(database.db, Math.max(1, Number(opts.limit) || 20));
        if (opts.json) json(rows);
        else print(formatSweepList(rows));
      }),
    );

  sweep
    .command('cancel')
    .argument('<id>', 'sweep id')
    .action((id: string) =>
      withLaunchContext(async (ctx) => {
        const outcome = await cancelSweep(ctx, id);
        print(outcome === 'cancelling' ? `cancelling sweep ${id}` : `sweep ${id} has already finished`);
      }),
    );

  program
    .command('results')
    .argument('<id>', 'sweep id')
    .option('--metric <name>', 'final-result metric to rank by (default: the analysis or promotion metric, else loss)')
    .option('--json', 'machine-readable output')
    .action((id: string, opts: { metric?: string; json?: boolean }) =>
      withDatabase(({ database }) => printResults(database, id, opts.metric, !!opts.json)),
    );

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
        const analysis = await refreshSweepAnalysis(database.db, imported.id);
        if (opts.json) json({ id: imported.id, trials: imported.trials, analysis });
        else print(imported.id);
      }),
    );

  program
    .command('analyze')
    .description('scaling consistency, critical rung, fits and extrapolations of a sweep')
    .argument('<id>', 'sweep id')
    .option('--target <scale>', 'scale to extrapolate each variant to')
    .option('--metric <name>', 'final-result metric (default: the spec\'s analysis or promotion metric, else loss)')
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
        const analysis = await refreshSweepAnalysis(database.db, id, { target, metric: opts.metric, mode: opts.mode as 'min' | 'max' | undefined });
        if (opts.json) json(analysis);
        else print(formatAnalysis(analysis));
      }),
    );

  program
    .command('serve')
    .description('run the API server (GraphQL, ingest, dashboard) against DATABASE_URL; the deployment entry point')
    .option('--host <host>', 'interface to listen on', process.env.LADDER_HOST ?? '0.0.0.0')
    .action(async (opts: { host: string }) => {
      const settings = readSettings();
      const databaseUrl = requireSetting(settings, 'DATABASE_URL');
      const ingestSecret = requireSetting(settings, 'LADDER_INGEST_SECRET');
      const database = openDatabase(databaseUrl);
      await migrateDatabase(database);
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
      });
      const url = await api.listen(settings.LADDER_PORT, opts.host);
      log.info('API server listening', { url, temporal: settings.TEMPORAL_ADDRESS ?? 'not configured (mutations disabled)' });
      await untilInterrupted();
      await api.close();
      await connection?.close();
      await database.close();
    });

  program
    .command('dev')
    .description('run the embedded stack (Postgres, Temporal, API, worker) in the foreground')
    .option('--port <port>', 'API port (default LADDER_PORT or 4000)')
    .action(async (opts: { port?: string }) => {
      const stack = await startEmbeddedStack({ port: opts.port ? Number(opts.port) : undefined, say: (l) => print(`• ${l}`) });
      print(`Ladder is running. API ${stack.apiUrl}/graphql · Temporal ${stack.temporalAddress}`);
      print('Submit a sweep from another terminal: npx ladder sweep submit examples/demo.yaml --wait');
      await untilInterrupted();
      await stack.close();
    });

  program
    .command('demo')
    .description('start the embedded stack and run the demo sweeps with the local executor')
    .option('--exit', 'exit after printing the results (default when CI=true)')
    .option('--spec <file...>', 'sweep specs to run (default: examples/demo.yaml, then examples/demo-*.yaml)')
    .action(async (opts: { exit?: boolean; spec?: string[] }) => {
      const exitAfter = opts.exit || process.env.CI === 'true';
      const specs = opts.spec ?? defaultDemoSpecs();
      const stack = await startEmbeddedStack({ say: (l) => print(`• ${l}`) });
      try {
        const temporal = new Client({ connection: await Connection.connect({ address: stack.temporalAddress }) });
        const ctx: LaunchContext = { db: stack.database.db, temporal, taskQueue: stack.taskQueue, codeVersion: codeVersion() };
        const finished: Array<{ id: string; status: string }> = [];
        for (const file of specs) {
          const created = await launchSweep(ctx, { spec: fs.readFileSync(file, 'utf8') });
          print(`\n• ${path.basename(file)} → sweep ${created.id} (${created.spec.kind}): ${created.trials} trials planned, ${created.reused} reused from earlier runs`);
          const status = await followSweep(ctx, created.id, false);
          print(`sweep ${created.id} ${status}\n`);
          await printResults(stack.database, created.id, undefined, false);
          for (const line of await promotionLines(stack.database.db, created.id)) print(line);
          const analysis = (await storedAnalysis(stack.database.db, created.id)) as { criticalRung?: { reason: string } } | null;
          if (analysis?.criticalRung) print(`scaling consistency: ${analysis.criticalRung.reason}`);
          finished.push({ id: created.id, status });
        }
        print('\nWhere to look:');
        print(`  dashboard       ${stack.apiUrl}/`);
        print(`  GraphQL API     ${stack.apiUrl}/graphql`);
        for (const { id } of finished) {
          print(`  ${id}:  npx ladder sweep status ${id} · npx ladder results ${id} · npx ladder analyze ${id}`);
        }
        print(`  job logs        ${path.relative(process.cwd(), stack.runRoot) || stack.runRoot}/exec/<trial>-a<attempt>/job.log`);
        await temporal.connection.close();
        if (finished.some((f) => f.status !== 'succeeded')) process.exitCode = 1;
        if (!exitAfter) {
          print('\nServing until Ctrl-C (other terminals can use `npx ladder …` against this stack).');
          await untilInterrupted();
        }
      } finally {
        await stack.close();
      }
    });

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

export async function main(argv: string[]): Promise<number> {
  try {
    await buildProgram().parseAsync(argv, { from: 'user' });
    return typeof process.exitCode === 'number' ? process.exitCode : 0;
  } catch (err) {
    if (err instanceof CommanderError) return err.exitCode === 0 ? 0 : 2;
    const message = err instanceof Error ? err.message : String(err);
    process.stderr.write(`ladder: ${message}\n`);
    return err instanceof SpecError || err instanceof UsageError || err instanceof ImportError ? 2 : 1;
  }
}

if (require.main === module) {
  main(process.argv.slice(2)).then((code) => process.exit(code));
}
