/**
 * The embedded stack behind `ladder dev` and `npm run demo`: a local Postgres and Temporal dev
 * server with their state under `.ladder/`, migrations, the API server, and a worker with the
 * local executor. Its addresses go to `.ladder/stack.json`, so other `ladder` commands in other
 * terminals find it without any environment.
 *
 * Lifetimes: Postgres and Temporal get a parent-death signal (stack/proc.ts), so they never
 * outlive the process that started them, and a start replaces whatever a crash left behind.
 * The app also runs a loadgen worker on the default capacity queues, so `ladder capacity run`
 * needs nothing but the stack. `ladder dev` runs the API and workers in a child process (this file run as a script) and
 * restarts it when it dies; the child exits when its parent goes.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Client, Connection } from '@temporalio/client';
import { DefaultLogger, Runtime } from '@temporalio/worker';
import { createApiToken, verifyApiToken } from '../core/auth/tokens';
import { migrateDatabase, openDatabase, type Database } from '../core/db/client';
import { createLogger } from '../core/log';
import { readSetting } from '../core/settings';
import { createApiServer, type ApiServer } from '../graphql/server';
import { LocalExecutor } from '../workers/executors/local';
import { reportFailedAttempts } from './failure-line';
import { DEFAULT_TASK_QUEUE, startLadderWorker, type LadderWorker } from '../workers/worker';
import { CAPACITY_CONTROL_QUEUE, LOADGEN_TASK_QUEUE, startLoadgenWorker, type LoadgenWorker } from '../workers/loadgen';
import { freePort, isPortOpen } from '../stack/ports';
import { createDatabase, startPostgres, type PostgresServer } from '../stack/postgres';
import { ensurePythonEnv } from '../stack/python';
import { repoRoot, stateDir } from '../stack/paths';
import { startTemporal, type TemporalServer } from '../stack/temporal';
import { readStackFile, stackFilePath, type StackFile } from './stack-file';

// Its own module so CLI commands can find a running stack without loading the worker.
export { readStackFile, stackFilePath, type StackFile } from './stack-file';

/** Private (0600) and atomic: readers never see half a file, and only the owner the password. */
function writePrivateFile(file: string, text: string): void {
  const tmp = `${file}.${process.pid}.tmp`;
  fs.writeFileSync(tmp, text, { mode: 0o600 });
  fs.renameSync(tmp, file);
}

const writeStackFile = (stack: StackFile): void => writePrivateFile(stackFilePath(), `${JSON.stringify(stack, null, 2)}\n`);

/** A secret of the embedded stack: made once, kept private (0600) in `.ladder/`. */
function secretFile(dir: string, name: string): string {
  const file = path.join(dir, name);
  if (!fs.existsSync(file)) writePrivateFile(file, randomBytes(32).toString('hex'));
  fs.chmodSync(file, 0o600);
  return fs.readFileSync(file, 'utf8').trim();
}

/**
 * Where Postgres keeps its data. As root, Postgres runs as the `postgres` OS user, which must be
 * able to reach the folder; a checkout under a private home cannot give it that, so the data
 * goes to a per-checkout folder under the system temp dir instead.
 */
export function postgresDataDir(dir: string = stateDir()): string {
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

interface Services {
  databaseUrl: string;
  temporalAddress: string;
  namespace: string;
  ingestSecret: string;
  python: string;
  runRoot: string;
  close(): Promise<void>;
}

/** Postgres (password auth) and Temporal on `.ladder/`, the database migrated, the local token. */
async function startServices(dir: string, say: (line: string) => void): Promise<Services> {
  say('preparing tools (first run installs the Temporal CLI and a Python env; later runs take seconds)');
  const python = await ensurePythonEnv();
  say('starting Postgres and Temporal');
  const password = secretFile(dir, 'postgres-password');
  const stopOnError: Array<() => Promise<void>> = [];
  try {
    const started = await Promise.allSettled([
      startPostgres({ dataDir: postgresDataDir(dir), logFile: path.join(dir, 'postgres.log'), password }),
      startTemporal({ dbFile: path.join(dir, 'temporal.db'), logFile: path.join(dir, 'temporal.log') }),
    ]);
    for (const s of started) if (s.status === 'fulfilled') stopOnError.push(() => s.value.stop());
    for (const s of started) if (s.status === 'rejected') throw s.reason;
    const pg = (started[0] as PromiseFulfilledResult<PostgresServer>).value;
    const temporal = (started[1] as PromiseFulfilledResult<TemporalServer>).value;
    const databaseUrl = await createDatabase(pg.url, 'ladder');
    const database = openDatabase(databaseUrl);
    try {
      await migrateDatabase(database);
      // A local editor token for project `default`, made once (again when the database was reset);
      // its value only ever goes to the file.
      const tokenFile = path.join(dir, 'token');
      const known = fs.existsSync(tokenFile) && (await verifyApiToken(database.db, fs.readFileSync(tokenFile, 'utf8').trim()));
      if (!known) {
        const { token } = await createApiToken(database.db, { project: 'default', role: 'editor', name: 'embedded local editor' });
        writePrivateFile(tokenFile, `${token}\n`);
        say('API token: written to .ladder/token');
      }
    } finally {
      await database.close();
    }
    return {
      databaseUrl,
      temporalAddress: temporal.address,
      namespace: temporal.namespace,
      ingestSecret: secretFile(dir, 'ingest-secret'),
      python,
      runRoot: path.join(dir, 'runs'),
      close: async () => {
        await Promise.all([temporal.stop(), pg.stop()]);
      },
    };
  } catch (err) {
    for (const stop of stopOnError.reverse()) await stop().catch(() => {});
    throw err;
  }
}

interface AppConfig {
  databaseUrl: string;
  temporalAddress: string;
  ingestSecret: string;
  python: string;
  runRoot: string;
  port: number;
}

interface App {
  apiUrl: string;
  database: Database;
  close(): Promise<void>;
}

/** The API server, a worker with the local executor and a loadgen worker, against running services. */
async function startApp(config: AppConfig): Promise<App> {
  Runtime.install({ logger: new DefaultLogger('WARN') });
  const log = createLogger('ladder', { quiet: true });
  const stopOnError: Array<() => Promise<void>> = [];
  try {
    const database = openDatabase(config.databaseUrl);
    stopOnError.push(() => database.close());
    const secret = config.ingestSecret;
    const temporalConnection = await Connection.connect({ address: config.temporalAddress });
    stopOnError.push(() => temporalConnection.close());
    // One executor for the worker and the API's Trial.logs; a failed attempt also says so in this terminal.
    const executor = reportFailedAttempts(new LocalExecutor({ runRoot: config.runRoot, python: config.python }), (line) => process.stderr.write(`${line}\n`));
    const api: ApiServer = createApiServer({
      readLogs: async (ref, tailBytes) => (ref.executor === executor.name && executor.logs ? executor.logs(ref, tailBytes) : null),
      database,
      ingestSecret: secret,
      log: log.warn,
      temporal: { client: new Client({ connection: temporalConnection }), taskQueue: DEFAULT_TASK_QUEUE },
      // A single-user local stack: reads need no token; mutations still need .ladder/token.
      allowAnonymousRead: true,
      // Anonymous reads make DNS rebinding a data leak: answer only 127.0.0.1/localhost/[::1]:<port>.
      allowedHosts: 'loopback',
    });
    const apiUrl = await api.listen(config.port);
    stopOnError.push(() => api.close());

    const worker: LadderWorker = await startLadderWorker({
      temporalAddress: config.temporalAddress,
      taskQueue: DEFAULT_TASK_QUEUE,
      db: database.db,
      executor,
      ingest: { url: `${apiUrl}/ingest/v1`, secret },
      log,
      pollIntervalMs: 500,
    });
    stopOnError.push(() => worker.shutdown());
    const loadgen: LoadgenWorker = await startLoadgenWorker({
      temporalAddress: config.temporalAddress,
      generatorQueue: LOADGEN_TASK_QUEUE,
      controlQueue: CAPACITY_CONTROL_QUEUE,
      database,
      ingestSecret: secret,
      log,
    });
    let closing: Promise<void> | undefined;
    return {
      apiUrl,
      database,
      close() {
        closing ??= (async () => {
          await Promise.all([worker.shutdown().catch(() => {}), loadgen.shutdown().catch(() => {})]);
          await api.close();
          await temporalConnection.close();
          await database.close();
        })();
        return closing;
      },
    };
  } catch (err) {
    for (const stop of stopOnError.reverse()) await stop().catch(() => {});
    throw err;
  }
}

function refuseSecondStack(): void {
  const running = readStackFile();
  if (running && running.pid !== process.pid) {
    throw new Error(`a Ladder stack is already running (pid ${running.pid}, API ${running.apiUrl}); use it or stop it first`);
  }
}

function prepareStateDir(): string {
  const dir = stateDir();
  fs.mkdirSync(dir, { recursive: true, mode: 0o755 });
  return dir;
}

export interface EmbeddedStack extends StackFile {
  database: Database;
  runRoot: string;
  close(): Promise<void>;
}

/** The whole stack in this process (`ladder demo`, which also uses the database directly). */
export async function startEmbeddedStack(options: { port?: number; say?: (line: string) => void } = {}): Promise<EmbeddedStack> {
  const say = options.say ?? (() => {});
  const dir = prepareStateDir();
  refuseSecondStack();
  const services = await startServices(dir, say);
  try {
    const wanted = options.port ?? readSetting('LADDER_PORT');
    const port = (await isPortOpen(wanted)) ? 0 : wanted;
    if (port === 0) say(`port ${wanted} is taken; the API takes a free port instead`);
    const app = await startApp({ ...services, port });
    const stackFile: StackFile = {
      databaseUrl: services.databaseUrl,
      temporalAddress: services.temporalAddress,
      namespace: services.namespace,
      taskQueue: DEFAULT_TASK_QUEUE,
      apiUrl: app.apiUrl,
      pid: process.pid,
      appPid: process.pid,
      runRoot: services.runRoot,
      python: services.python,
    };
    writeStackFile(stackFile);
    let closing: Promise<void> | undefined;
    return {
      ...stackFile,
      database: app.database,
      runRoot: services.runRoot,
      close() {
        closing ??= (async () => {
          fs.rmSync(stackFilePath(), { force: true });
          await app.close();
          await services.close();
        })();
        return closing;
      },
    };
  } catch (err) {
    await services.close().catch(() => {});
    throw err;
  }
}

/** Back-off between restarts of a crashing app process; a run this long resets it. */
const RESTART_DELAYS_MS = [1000, 2000, 5000, 10_000, 30_000];
const HEALTHY_RUN_MS = 60_000;

type ParentMessage = { type: 'start'; config: AppConfig } | { type: 'stop' };
type ChildMessage = { type: 'ready'; apiUrl: string } | { type: 'failed'; message: string };

export interface SupervisedStack extends StackFile {
  /** Resolves when the stack has stopped. */
  close(): Promise<void>;
}

/**
 * `ladder dev`: services in this process, the API and worker in a child process that is
 * restarted (with back-off, one line each time) when it dies. The API keeps its port across
 * restarts, so stack.json stays valid.
 */
export async function startSupervisedStack(options: { port?: number; say?: (line: string) => void } = {}): Promise<SupervisedStack> {
  const say = options.say ?? (() => {});
  const dir = prepareStateDir();
  refuseSecondStack();
  const services = await startServices(dir, say);
  let closing = false;
  let child: ChildProcess | undefined;
  let restartTimer: NodeJS.Timeout | undefined;
  let stackFile: StackFile | undefined;
  let failures = 0;
  try {
    const wanted = options.port ?? readSetting('LADDER_PORT');
    const taken = wanted === 0 || (await isPortOpen(wanted));
    const port = taken ? await freePort() : wanted;
    if (taken && wanted !== 0) say(`port ${wanted} is taken; the API takes port ${port} instead`);
    const config: AppConfig = { ...services, port };

    const launch = (): Promise<string> =>
      new Promise((resolve, reject) => {
        const started = Date.now();
        // No secret on the command line or in the environment: the config goes over the IPC channel.
        const proc = spawn(process.execPath, ['--import', 'tsx', __filename], {
          cwd: repoRoot(),
          stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
        });
        child = proc;
        proc.on('message', (msg: ChildMessage) => {
          if (msg.type === 'ready') {
            failures = 0;
            resolve(msg.apiUrl);
          } else if (msg.type === 'failed') reject(new Error(`API/worker process failed to start: ${msg.message}`));
        });
        proc.once('spawn', () => proc.send({ type: 'start', config } satisfies ParentMessage));
        proc.once('exit', (code, signal) => {
          reject(new Error(`API/worker process exited (${code ?? signal}) before it was ready`));
          if (closing || child !== proc || !stackFile) return;
          if (Date.now() - started >= HEALTHY_RUN_MS) failures = 0;
          const delay = RESTART_DELAYS_MS[Math.min(failures, RESTART_DELAYS_MS.length - 1)] ?? 30_000;
          failures++;
          say(`API/worker process exited (${code ?? signal}); restarting it in ${delay / 1000} s`);
          restartTimer = setTimeout(() => {
            restartTimer = undefined;
            if (closing) return;
            launch().then(
              () => {
                if (stackFile && child?.pid) writeStackFile((stackFile = { ...stackFile, appPid: child.pid }));
              },
              () => {}, // its exit schedules the next attempt
            );
          }, delay);
        });
      });

    const apiUrl = await launch();
    stackFile = {
      databaseUrl: services.databaseUrl,
      temporalAddress: services.temporalAddress,
      namespace: services.namespace,
      taskQueue: DEFAULT_TASK_QUEUE,
      apiUrl,
      pid: process.pid,
      appPid: child?.pid ?? -1,
      runRoot: services.runRoot,
      python: services.python,
    };
    writeStackFile(stackFile);
  } catch (err) {
    closing = true;
    child?.kill('SIGKILL');
    await services.close().catch(() => {});
    throw err;
  }

  let stopping: Promise<void> | undefined;
  return {
    ...stackFile,
    close() {
      stopping ??= (async () => {
        closing = true;
        if (restartTimer) clearTimeout(restartTimer);
        fs.rmSync(stackFilePath(), { force: true });
        const proc = child;
        if (proc && proc.exitCode === null && proc.signalCode === null) {
          const exited = new Promise((r) => proc.once('exit', r));
          if (proc.connected) proc.send({ type: 'stop' } satisfies ParentMessage);
          else proc.kill('SIGTERM');
          const timer = setTimeout(() => proc.kill('SIGKILL'), 20_000);
          await exited;
          clearTimeout(timer);
        }
        await services.close();
      })();
      return stopping;
    },
  };
}

/** The child side of startSupervisedStack. */
function runAppProcess(): void {
  let app: App | undefined;
  let stopping = false;
  const stop = async (code: number): Promise<void> => {
    if (stopping) return;
    stopping = true;
    await app?.close().catch(() => {});
    process.exit(code);
  };
  // The parent is gone (crashed or killed): never run on as an orphan. Jobs keep running and
  // the next worker picks them up from their heartbeats.
  process.on('disconnect', () => process.exit(1));
  // Ctrl-C reaches the whole terminal process group; the parent decides when this one stops.
  process.on('SIGINT', () => {});
  process.on('SIGTERM', () => void stop(0));
  process.on('message', (msg: ParentMessage) => {
    if (msg.type === 'stop') void stop(0);
    else if (msg.type === 'start' && !app) {
      startApp(msg.config).then(
        (started) => {
          app = started;
          process.send?.({ type: 'ready', apiUrl: started.apiUrl } satisfies ChildMessage);
        },
        (err: Error) => {
          process.send?.({ type: 'failed', message: err.message } satisfies ChildMessage);
          process.exit(1);
        },
      );
    }
  });
}

if (require.main === module) runAppProcess();
