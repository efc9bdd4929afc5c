/**
 * The embedded stack behind `ladder dev` and `npm run demo`: a local Postgres and Temporal dev
 * server with their state under `.ladder/`, migrations, the API server, and a worker with the
 * local executor. Its addresses go to `.ladder/stack.json`, so other `ladder` commands in other
 * terminals find it without any environment.
 */
import { createHash, randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Client, Connection } from '@temporalio/client';
import { DefaultLogger, Runtime } from '@temporalio/worker';
import { createApiToken, verifyApiToken } from '../core/auth/tokens';
import { migrateDatabase, openDatabase, type Database } from '../core/db/client';
import { createLogger } from '../core/log';
import { createApiServer, type ApiServer } from '../graphql/server';
import { LocalExecutor } from '../workers/executors/local';
import { DEFAULT_TASK_QUEUE, startLadderWorker, type LadderWorker } from '../workers/worker';
import { isPortOpen } from '../stack/ports';
import { createDatabase, startPostgres, type PostgresServer } from '../stack/postgres';
import { ensurePythonEnv } from '../stack/python';
import { stateDir } from '../stack/paths';
import { startTemporal, type TemporalServer } from '../stack/temporal';

export interface StackFile {
  databaseUrl: string;
  temporalAddress: string;
  namespace: string;
  taskQueue: string;
  apiUrl: string;
  pid: number;
}

export const stackFilePath = () => path.join(stateDir(), 'stack.json');

export function readStackFile(): StackFile | null {
  try {
    const stack = JSON.parse(fs.readFileSync(stackFilePath(), 'utf8')) as StackFile;
    process.kill(stack.pid, 0); // throws when the `ladder dev` that wrote it is gone
    return stack;
  } catch {
    return null;
  }
}

export interface EmbeddedStack extends StackFile {
  database: Database;
  runRoot: string;
  close(): Promise<void>;
}

/** The ingest secret of the embedded stack: made once, kept private in `.ladder/`. */
function ingestSecret(dir: string): string {
  const file = path.join(dir, 'ingest-secret');
  if (!fs.existsSync(file)) fs.writeFileSync(file, randomBytes(32).toString('hex'), { mode: 0o600 });
  return fs.readFileSync(file, 'utf8').trim();
}

/**
 * Where Postgres keeps its data. As root, Postgres runs as the `postgres` OS user, which must be
 * able to reach the folder; a checkout under a private home cannot give it that, so the data
 * goes to a per-checkout folder under the system temp dir instead.
 */
function postgresDataDir(dir: string): string {
  const preferred = path.join(dir, 'pg', 'data');
  if (process.getuid?.() !== 0) return preferred;
  const reachable = (p: string): boolean => {
    for (let d = p; d !== path.dirname(d); d = path.dirname(d)) {
      if (fs.existsSync(d) && (fs.statSync(d).mode & 0o001) === 0) return false;
    }
    return true;
  };
  if (reachable(dir)) return preferred;
  const key = createHash('sha256').update(dir).digest('hex').slice(0, 12);
  const fallback = path.join(os.tmpdir(), `ladder-pg-${key}`);
  fs.mkdirSync(fallback, { recursive: true, mode: 0o755 });
  fs.chmodSync(fallback, 0o755);
  return path.join(fallback, 'data');
}

export async function startEmbeddedStack(options: { port?: number; say?: (line: string) => void } = {}): Promise<EmbeddedStack> {
  const say = options.say ?? (() => {});
  const dir = stateDir();
  fs.mkdirSync(dir, { recursive: true, mode: 0o755 });
  const running = readStackFile();
  if (running && running.pid !== process.pid) {
    throw new Error(`a Ladder stack is already running (pid ${running.pid}, API ${running.apiUrl}); use it or stop it first`);
  }
  Runtime.install({ logger: new DefaultLogger('WARN') });
  const log = createLogger('ladder', { quiet: true });

  say('preparing tools (first run installs the Temporal CLI and a Python env; later runs take seconds)');
  const python = await ensurePythonEnv();
  say('starting Postgres and Temporal');
  const stopOnError: Array<() => Promise<void>> = [];
  try {
    const [pg, temporal]: [PostgresServer, TemporalServer] = await Promise.all([
      startPostgres({ dataDir: postgresDataDir(dir), logFile: path.join(dir, 'postgres.log') }),
      startTemporal({ dbFile: path.join(dir, 'temporal.db'), logFile: path.join(dir, 'temporal.log') }),
    ]);
    stopOnError.push(() => pg.stop(), () => temporal.stop());
    const databaseUrl = await createDatabase(pg.url, 'ladder');
    const database = openDatabase(databaseUrl);
    stopOnError.push(() => database.close());
    await migrateDatabase(database);
    // A local editor token for project `default`, made once (again when the database was reset);
    // its value only ever goes to the file.
    const tokenFile = path.join(dir, 'token');
    const known = fs.existsSync(tokenFile) && (await verifyApiToken(database.db, fs.readFileSync(tokenFile, 'utf8').trim()));
    if (!known) {
      const { token } = await createApiToken(database.db, { project: 'default', role: 'editor', name: 'embedded local editor' });
      fs.writeFileSync(tokenFile, `${token}\n`, { mode: 0o600 });
      say('API token: written to .ladder/token');
    }

    const secret = ingestSecret(dir);
    const temporalConnection = await Connection.connect({ address: temporal.address });
    stopOnError.push(() => temporalConnection.close());
    const api: ApiServer = createApiServer({
      database,
      ingestSecret: secret,
      log: log.warn,
      temporal: { client: new Client({ connection: temporalConnection }), taskQueue: DEFAULT_TASK_QUEUE },
      // A single-user local stack: reads need no token; mutations still need .ladder/token.
      allowAnonymousRead: true,
    });
    const wanted = options.port ?? Number(process.env.LADDER_PORT ?? 4000);
    const port = (await isPortOpen(wanted)) ? 0 : wanted;
    if (port === 0) say(`port ${wanted} is taken; the API takes a free port instead`);
    const apiUrl = await api.listen(port);
    stopOnError.push(() => api.close());

    const runRoot = path.join(dir, 'runs');
    const worker: LadderWorker = await startLadderWorker({
      temporalAddress: temporal.address,
      taskQueue: DEFAULT_TASK_QUEUE,
      db: database.db,
      executor: new LocalExecutor({ runRoot, python }),
      ingest: { url: `${apiUrl}/ingest/v1`, secret },
      log,
      pollIntervalMs: 500,
    });

    const stackFile: StackFile = {
      databaseUrl,
      temporalAddress: temporal.address,
      namespace: temporal.namespace,
      taskQueue: DEFAULT_TASK_QUEUE,
      apiUrl,
      pid: process.pid,
    };
    fs.writeFileSync(stackFilePath(), JSON.stringify(stackFile, null, 2));

    let closing: Promise<void> | undefined;
    return {
      ...stackFile,
      database,
      runRoot,
      close() {
        closing ??= (async () => {
          fs.rmSync(stackFilePath(), { force: true });
          await worker.shutdown().catch(() => {});
          await api.close();
          await temporalConnection.close();
          await database.close();
          await Promise.all([temporal.stop(), pg.stop()]);
        })();
        return closing;
      },
    };
  } catch (err) {
    for (const stop of stopOnError.reverse()) await stop().catch(() => {});
    throw err;
  }
}
