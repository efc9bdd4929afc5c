/**
 * A throwaway or per-checkout PostgreSQL cluster started from the server binaries installed on
 * the machine (Debian's postgresql-15), without Docker and without touching the system cluster.
 */
import { execFileSync, spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Client } from 'pg';
import { freePort } from './ports';
import { isPidAlive, parentDeathSignalArgs, registerCleanup, run, runOk, sleep, tailFile, waitPidExit } from './proc';

const hasServer = (dir: string): boolean =>
  fs.existsSync(path.join(dir, 'postgres')) && fs.existsSync(path.join(dir, 'initdb'));

/**
 * Folder holding `postgres` and `initdb`: `$PG_BIN`; else `pg_config --bindir` if it has the
 * server (on Debian pg_config may come from libpq-dev without one); else the newest
 * `/usr/lib/postgresql/<version>/bin` (Debian keeps server binaries off PATH).
 */
export function findPostgresBin(): string {
  const explicit = process.env.PG_BIN;
  if (explicit) {
    if (!hasServer(explicit)) throw new Error(`PG_BIN=${explicit} has no postgres/initdb binaries`);
    return explicit;
  }
  try {
    const dir = execFileSync('pg_config', ['--bindir'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
    if (dir && hasServer(dir)) return dir;
  } catch {
    /* no pg_config on PATH */
  }
  const base = '/usr/lib/postgresql';
  const versions = fs.existsSync(base)
    ? fs
        .readdirSync(base)
        .filter((v) => /^\d+(\.\d+)?$/.test(v) && hasServer(path.join(base, v, 'bin')))
        .sort((a, b) => parseFloat(b) - parseFloat(a))
    : [];
  if (versions[0]) return path.join(base, versions[0], 'bin');
  throw new Error(
    'PostgreSQL server binaries not found: install them (Debian/Ubuntu: `apt-get install postgresql`, ' +
      'which provides /usr/lib/postgresql/<version>/bin) or set PG_BIN to a folder holding postgres and initdb',
  );
}

export interface StartPostgresOptions {
  /** Cluster folder; initdb'd on first use. Parent folders are created. */
  dataDir: string;
  /** TCP port on 127.0.0.1. Default: a free port. Ignored when reusing a running postmaster. */
  port?: number;
  /** Trade durability for speed (fsync, synchronous_commit, full_page_writes off): tests only. */
  fast?: boolean;
  /** Server log. Default: `<dataDir>.log`, a sibling of the data dir (kept across runs). */
  logFile?: string;
  /** How long to wait for connections to be accepted. Default: 30 000 ms. */
  readyTimeoutMs?: number;
  /**
   * Superuser password. Given: the cluster uses SCRAM-SHA-256 for every local and TCP
   * connection (a cluster made earlier with trust auth is switched over, data kept).
   * Omitted: trust auth (throwaway test clusters only).
   */
  password?: string;
}

export interface PostgresServer {
  /** Superuser URL for the `postgres` database (carries the password when one was given: never log it). */
  url: string;
  port: number;
  /** True when an already-running postmaster on dataDir was adopted instead of started. */
  reused: boolean;
  logFile: string;
  /** Fast shutdown (SIGINT) of the postmaster; resolves when it has exited. */
  stop(): Promise<void>;
}

const PG_USER = 'postgres';

/**
 * initdb and postgres refuse to run as root. When we are root, run them as the `postgres` OS
 * user via setpriv (which exec()s, so the spawned pid IS the postmaster and signals reach it
 * directly, unlike runuser/su which keep a parent process in between).
 * `parentDeath`: the signal the server gets when this node process dies, so a crashed or
 * kill -9'd parent never leaves an orphaned postmaster behind.
 */
function asServerUser(cmd: string, args: string[], parentDeath?: NodeJS.Signals): [string, string[]] {
  const pdeath = parentDeath ? parentDeathSignalArgs(parentDeath) : [];
  if (process.getuid?.() !== 0) return pdeath.length ? ['setpriv', [...pdeath, '--', cmd, ...args]] : [cmd, args];
  return ['setpriv', ['--reuid', PG_USER, '--regid', PG_USER, '--init-groups', ...pdeath, '--', cmd, ...args]];
}

const asRoot = (): boolean => process.getuid?.() === 0;

/** Give a file to the server user (when we are root) so a server started by hand can write it too. */
function chownToServerUser(file: string): void {
  if (!asRoot()) return;
  const ids = serverUserIds();
  fs.chownSync(file, ids.uid, ids.gid);
}

function serverUserIds(): { uid: number; gid: number } {
  const out = execFileSync('id', [PG_USER], { encoding: 'utf8' });
  const uid = /uid=(\d+)/.exec(out)?.[1];
  const gid = /gid=(\d+)/.exec(out)?.[1];
  if (uid === undefined || gid === undefined) throw new Error(`cannot parse \`id ${PG_USER}\`: ${out}`);
  return { uid: Number(uid), gid: Number(gid) };
}

/** Create dir and, when root, hand it to the postgres user and check it can reach it. */
async function prepareDir(dir: string, mode: number): Promise<void> {
  fs.mkdirSync(dir, { recursive: true, mode });
  if (process.getuid?.() !== 0) return;
  let ids: { uid: number; gid: number };
  try {
    ids = serverUserIds();
  } catch (e) {
    throw new Error(`running as root needs a '${PG_USER}' OS user to run PostgreSQL as: ${(e as Error).message}`);
  }
  fs.chownSync(dir, ids.uid, ids.gid);
  fs.chmodSync(dir, mode);
  const [cmd, args] = asServerUser('test', ['-w', dir, '-a', '-x', dir]);
  const r = await run(cmd, args);
  if (r.code !== 0) {
    throw new Error(
      `the '${PG_USER}' OS user cannot use ${dir}: every parent folder must be searchable by it ` +
        `(o+x; e.g. not under /root). Choose another dataDir.`,
    );
  }
}

interface PidFile {
  pid: number;
  port: number;
}

/** postmaster.pid: line 1 pid, line 4 port (see PostgreSQL's miscadmin.h LOCK_FILE_LINE_*). */
function readPidFile(dataDir: string): PidFile | undefined {
  let text: string;
  try {
    text = fs.readFileSync(path.join(dataDir, 'postmaster.pid'), 'utf8');
  } catch {
    return undefined;
  }
  const lines = text.split('\n');
  const pid = Number(lines[0]);
  const port = Number(lines[3]);
  if (!Number.isInteger(pid) || pid <= 0 || !Number.isInteger(port) || port <= 0) return undefined;
  return { pid, port };
}

/** A live pid that is really a postgres (pids get recycled after crashes/reboots). */
function isPostmaster(pid: number): boolean {
  if (!isPidAlive(pid)) return false;
  try {
    return fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes('postgres');
  } catch {
    return true; // no /proc (not Linux): trust the pid
  }
}

async function initdb(bin: string, dataDir: string, password: string | undefined): Promise<void> {
  let pwDir: string | undefined;
  const base = ['-D', dataDir, '-U', 'postgres', '-E', 'UTF8'];
  if (password === undefined) {
    base.push('--auth=trust');
  } else {
    // --pwfile must be readable by the server user; a private folder keeps it from everyone else.
    pwDir = fs.mkdtempSync(path.join(os.tmpdir(), 'ladder-pgpw-'));
    const pwFile = path.join(pwDir, 'pw');
    fs.writeFileSync(pwFile, `${password}\n`, { mode: 0o600 });
    if (asRoot()) {
      chownToServerUser(pwDir);
      chownToServerUser(pwFile);
    }
    base.push('--auth=scram-sha-256', `--pwfile=${pwFile}`);
  }
  try {
    await initdbAttempts(bin, dataDir, base);
  } finally {
    if (pwDir) fs.rmSync(pwDir, { recursive: true, force: true });
  }
}

async function initdbAttempts(bin: string, dataDir: string, base: string[]): Promise<void> {
  const attempt = async (extra: string[]): Promise<Error | undefined> => {
    const [cmd, args] = asServerUser(path.join(bin, 'initdb'), [...base, ...extra]);
    try {
      await runOk(cmd, args);
      return undefined;
    } catch (e) {
      return e as Error;
    }
  };
  // C.UTF-8 gives byte-order collation (stable across machines) with UTF-8 ctype; not every
  // system has that locale, so fall back to --no-locale (plain C).
  const first = await attempt(['--locale=C.UTF-8']);
  if (!first) return;
  // initdb removes what it created on failure, but empty the folder in case it did not.
  for (const f of fs.readdirSync(dataDir)) fs.rmSync(path.join(dataDir, f), { recursive: true, force: true });
  const second = await attempt(['--no-locale']);
  if (second) throw new Error(`initdb failed:\n${first.message}\n--- retry with --no-locale:\n${second.message}`);
}

/** Ours: every connection, local socket or TCP, must prove the password. */
const SCRAM_HBA = `# Written by Ladder (stack/postgres.ts): every connection needs the superuser password.
local   all          all                  scram-sha-256
host    all          all   127.0.0.1/32   scram-sha-256
host    all          all   ::1/128        scram-sha-256
local   replication  all                  scram-sha-256
host    replication  all   127.0.0.1/32   scram-sha-256
host    replication  all   ::1/128        scram-sha-256
`;

/** True when pg_hba.conf lets any connection in without a password. */
function hbaAllowsTrust(dataDir: string): boolean {
  let text: string;
  try {
    text = fs.readFileSync(path.join(dataDir, 'pg_hba.conf'), 'utf8');
  } catch {
    return true;
  }
  return text
    .split('\n')
    .map((l) => l.replace(/#.*/, '').trim())
    .filter(Boolean)
    .some((l) => !/\bscram-sha-256$/.test(l));
}

/**
 * Switch a cluster made with trust auth (an older `.ladder/`) to SCRAM without losing its data:
 * set the password over the still-trusting connection, then replace pg_hba.conf and reload.
 */
async function requirePassword(url: string, dataDir: string, password: string): Promise<void> {
  if (!hbaAllowsTrust(dataDir)) return;
  const client = new Client({ connectionString: url });
  await client.connect();
  try {
    await client.query("set password_encryption = 'scram-sha-256'");
    await client.query(`alter role postgres with password ${client.escapeLiteral(password)}`);
    const hba = path.join(dataDir, 'pg_hba.conf');
    const tmp = `${hba}.ladder-tmp`;
    fs.writeFileSync(tmp, SCRAM_HBA, { mode: 0o600 });
    chownToServerUser(tmp);
    fs.renameSync(tmp, hba);
    await client.query('select pg_reload_conf()');
  } finally {
    await client.end();
  }
}

async function waitReady(
  url: string,
  dataDir: string,
  deadline: number,
  alive: () => string | undefined,
): Promise<void> {
  let lastErr: unknown;
  const want = fs.realpathSync(dataDir);
  for (;;) {
    const dead = alive();
    if (dead) throw new Error(dead);
    const client = new Client({ connectionString: url, connectionTimeoutMillis: 1000 });
    try {
      await client.connect();
      // Make sure the server answering is the one on OUR data dir: if the port was taken,
      // our postmaster dies but someone else's would happily answer `select 1`.
      const r = await client.query<{ data_directory: string }>('show data_directory');
      const got = r.rows[0]?.data_directory ?? '';
      if (got === want || got === dataDir) return;
      throw new Error(`port answered by another server (data_directory ${got}, expected ${want})`);
    } catch (e) {
      lastErr = e;
    } finally {
      await client.end().catch(() => undefined);
    }
    if (Date.now() > deadline) throw new Error(`not accepting connections: ${String(lastErr)}`);
    await sleep(100);
  }
}

/**
 * Start (or adopt) a cluster on dataDir and resolve once it accepts connections.
 * Adopting matters for the demo: after a crash the old postmaster may still be running.
 */
export async function startPostgres(opts: StartPostgresOptions): Promise<PostgresServer> {
  const dataDir = path.resolve(opts.dataDir);
  const logFile = opts.logFile ?? `${dataDir}.log`;
  const timeoutMs = opts.readyTimeoutMs ?? 30_000;
  const bin = findPostgresBin();

  const userinfo = opts.password === undefined ? 'postgres' : `postgres:${encodeURIComponent(opts.password)}`;
  const urlFor = (port: number): string => `postgres://${userinfo}@127.0.0.1:${port}/postgres`;

  const existing = readPidFile(dataDir);
  if (existing && isPostmaster(existing.pid)) {
    const url = urlFor(existing.port);
    await waitReady(url, dataDir, Date.now() + timeoutMs, () =>
      isPidAlive(existing.pid) ? undefined : `postmaster ${existing.pid} on ${dataDir} exited\n${tailFile(logFile)}`,
    );
    if (opts.password !== undefined) await requirePassword(url, dataDir, opts.password);
    return adopt(existing.pid, existing.port, url, logFile, true, undefined);
  }

  fs.mkdirSync(path.dirname(dataDir), { recursive: true });
  await prepareDir(dataDir, 0o700);
  if (!fs.existsSync(path.join(dataDir, 'PG_VERSION'))) await initdb(bin, dataDir, opts.password);

  // Unix sockets go to a private short folder: the default (/var/run/postgresql) may not be
  // writable, and socket paths are limited to ~107 bytes, which a deep dataDir can exceed.
  const socketDir = fs.mkdtempSync(path.join(os.tmpdir(), 'ladder-pgsock-'));
  await prepareDir(socketDir, 0o700);

  const port = opts.port ?? (await freePort());
  const args = ['-D', dataDir, '-p', String(port), '-k', socketDir, '-c', 'listen_addresses=127.0.0.1'];
  if (opts.fast) args.push('-c', 'fsync=off', '-c', 'synchronous_commit=off', '-c', 'full_page_writes=off');
  // SIGINT = fast shutdown: a dead parent leaves a cleanly stopped cluster, not an orphan.
  const [cmd, cmdArgs] = asServerUser(path.join(bin, 'postgres'), args, 'SIGINT');

  fs.mkdirSync(path.dirname(logFile), { recursive: true });
  const logFd = fs.openSync(logFile, 'a');
  // As root the log would be root's and a server restarted by hand (`pg_ctl -l`, as the
  // postgres user) could not open it; the server's own log belongs to the server's user.
  chownToServerUser(logFile);
  const child = spawn(cmd, cmdArgs, { stdio: ['ignore', logFd, logFd] });
  fs.closeSync(logFd);
  // Don't let the server keep node alive (see temporal.ts); stop() polls with timers instead.
  child.unref();
  let exited: string | undefined;
  child.once('exit', (code, signal) => (exited = `exited with ${code ?? signal}`));
  child.once('error', (e) => (exited = e.message));

  const url = urlFor(port);
  const server = adopt(child.pid ?? -1, port, url, logFile, false, socketDir);
  try {
    if (child.pid === undefined) await sleep(10); // let 'error' fire
    await waitReady(url, dataDir, Date.now() + timeoutMs, () => exited);
    if (opts.password !== undefined) await requirePassword(url, dataDir, opts.password);
  } catch (e) {
    const log = tailFile(logFile, 30);
    await server.stop();
    throw new Error(`postgres on ${dataDir} (port ${port}) failed to start: ${(e as Error).message}\n${log}`);
  }
  return server;
}

function adopt(
  pid: number,
  port: number,
  url: string,
  logFile: string,
  reused: boolean,
  socketDir: string | undefined,
): PostgresServer {
  const unregister = registerCleanup(() => {
    // Synchronous context: request a fast shutdown and let it finish after we are gone.
    if (pid > 0 && isPidAlive(pid)) process.kill(pid, 'SIGINT');
    if (socketDir) fs.rmSync(socketDir, { recursive: true, force: true });
  });
  let stopped: Promise<void> | undefined;
  const stop = (): Promise<void> => {
    stopped ??= (async () => {
      if (pid > 0 && isPidAlive(pid)) {
        // SIGINT = fast shutdown (abort sessions, checkpoint); escalate to immediate shutdown
        // (SIGQUIT, crash recovery on next start) and finally SIGKILL if it hangs.
        const steps: [NodeJS.Signals, number][] = [['SIGINT', 15_000], ['SIGQUIT', 5_000], ['SIGKILL', 5_000]];
        for (const [sig, wait] of steps) {
          try {
            process.kill(pid, sig);
          } catch {
            break; // already gone
          }
          if (await waitPidExit(pid, wait)) break;
        }
      }
      unregister();
      if (socketDir) fs.rmSync(socketDir, { recursive: true, force: true });
    })();
    return stopped;
  };
  return { url, port, reused, logFile, stop };
}

/** Create database `name` if missing (idempotent, race-safe) and return its URL. */
export async function createDatabase(adminUrl: string, name: string): Promise<string> {
  if (!/^[a-z0-9_]+$/.test(name)) throw new Error(`invalid database name ${JSON.stringify(name)} (want [a-z0-9_]+)`);
  const client = new Client({ connectionString: adminUrl });
  await client.connect();
  try {
    const r = await client.query('select 1 from pg_database where datname = $1', [name]);
    if (r.rowCount === 0) {
      try {
        await client.query(`create database "${name}"`);
      } catch (e) {
        // 42P04 duplicate_database: a concurrent caller won the race; that is fine.
        if ((e as { code?: string }).code !== '42P04') throw e;
      }
    }
  } finally {
    await client.end();
  }
  const u = new URL(adminUrl);
  u.pathname = `/${name}`;
  return u.toString();
}
