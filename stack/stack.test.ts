/**
 * Embedded stack tests. Run: node --import tsx --test stack/stack.test.ts
 * These start real servers (Postgres, Temporal) and may download the temporal CLI and build a
 * venv on a cold cache (first run: ~10-20 s extra).
 */
import { strict as assert } from 'node:assert';
import { execFileSync, spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { Connection } from '@temporalio/client';
import { Client } from 'pg';
import { Client as TemporalClient } from '@temporalio/client';
import { cacheDir, repoRoot, stateDir } from './paths';
import { freePort, isPortOpen } from './ports';
import { createDatabase, findPostgresBin, startPostgres } from './postgres';
import { isPidAlive, runOk, waitPidExit } from './proc';
import { ensurePythonEnv } from './python';
import { ensureTemporalCli, startTemporal, temporalPidFile, TEMPORAL_CLI_VERSION } from './temporal';

let tmpRoot = '';
before(() => {
  tmpRoot = fs.mkdtempSync(path.join(os.tmpdir(), 'ladder-stack-test-'));
  // mkdtemp makes 0700; the postgres OS user (when we run as root) must be able to enter it.
  fs.chmodSync(tmpRoot, 0o755);
});
after(() => {
  fs.rmSync(tmpRoot, { recursive: true, force: true });
});

function withEnv<T>(vars: Record<string, string | undefined>, fn: () => T): T {
  const saved: Record<string, string | undefined> = {};
  for (const [k, v] of Object.entries(vars)) {
    saved[k] = process.env[k];
    if (v === undefined) delete process.env[k];
    else process.env[k] = v;
  }
  try {
    return fn();
  } finally {
    for (const [k, v] of Object.entries(saved)) {
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
    }
  }
}

async function withClient<T>(url: string, fn: (c: Client) => Promise<T>): Promise<T> {
  const client = new Client({ connectionString: url, connectionTimeoutMillis: 10_000 });
  await client.connect();
  try {
    return await fn(client);
  } finally {
    await client.end();
  }
}

/** The server asks every connection for the password and refuses a wrong one; the right one works. */
async function assertPasswordRequired(url: string, dataDir: string): Promise<void> {
  const without = new URL(url);
  without.password = '';
  // node-postgres only fails here if the server asked for a password (trust would let it in).
  await assert.rejects(withClient(without.toString(), (c) => c.query('select 1')), /password/i);
  const wrong = new URL(url);
  wrong.password = 'not-the-password';
  await assert.rejects(
    withClient(wrong.toString(), (c) => c.query('select 1')),
    (e: { code?: string }) => e.code === '28P01',
  );
  const r = await withClient(url, (c) => c.query<{ one: number }>('select 1 as one'));
  assert.equal(r.rows[0]?.one, 1);
  const hba = fs.readFileSync(path.join(dataDir, 'pg_hba.conf'), 'utf8');
  assert.doesNotMatch(hba.replace(/#.*/g, ''), /\btrust\b/, 'no trust lines left (unix socket included)');
}

describe('paths and ports', () => {
  test('repoRoot holds package.json; overrides win', () => {
    assert.ok(fs.existsSync(path.join(repoRoot(), 'package.json')));
    assert.equal(withEnv({ LADDER_CACHE_DIR: '/x/c', XDG_CACHE_HOME: '/x/xdg' }, cacheDir), '/x/c');
    assert.equal(withEnv({ LADDER_CACHE_DIR: undefined, XDG_CACHE_HOME: '/x/xdg' }, cacheDir), '/x/xdg/ladder');
    assert.equal(
      withEnv({ LADDER_CACHE_DIR: undefined, XDG_CACHE_HOME: undefined }, cacheDir),
      path.join(os.homedir(), '.cache', 'ladder'),
    );
    assert.equal(withEnv({ LADDER_STATE_DIR: undefined }, stateDir), path.join(repoRoot(), '.ladder'));
    assert.equal(withEnv({ LADDER_STATE_DIR: '/x/s' }, stateDir), '/x/s');
  });

  test('freePort returns a bindable, closed port', async () => {
    const p = await freePort();
    assert.ok(p > 0 && p < 65536);
    assert.equal(await isPortOpen(p), false);
  });
});

describe('postgres', () => {
  test('findPostgresBin finds postgres and initdb', () => {
    const bin = findPostgresBin();
    assert.ok(fs.existsSync(path.join(bin, 'postgres')), bin);
    assert.ok(fs.existsSync(path.join(bin, 'initdb')), bin);
  });

  test('start, create database, query, reuse, stop', { timeout: 120_000 }, async () => {
    const dataDir = path.join(tmpRoot, 'pg', 'data');
    let t = Date.now();
    const pg = await startPostgres({ dataDir, fast: true });
    const firstMs = Date.now() - t;
    let stopped = false;
    try {
      assert.equal(pg.reused, false);
      assert.ok(fs.existsSync(path.join(dataDir, 'PG_VERSION')));
      assert.equal(await isPortOpen(pg.port), true);

      const url = await createDatabase(pg.url, 'ladder_stack_test');
      assert.equal(await createDatabase(pg.url, 'ladder_stack_test'), url, 'idempotent');
      assert.match(url, new RegExp(`^postgres://postgres@127\\.0\\.0\\.1:${pg.port}/ladder_stack_test$`));
      await assert.rejects(createDatabase(pg.url, 'Bad-Name; drop'), /invalid database name/);

      const client = new Client({ connectionString: url });
      await client.connect();
      try {
        const r = await client.query<{ one: number; db: string; enc: string }>(
          "select 1 as one, current_database() as db, pg_encoding_to_char(encoding) as enc from pg_database where datname = current_database()",
        );
        assert.deepEqual(r.rows, [{ one: 1, db: 'ladder_stack_test', enc: 'UTF8' }]);
        const fsync = await client.query<{ fsync: string }>('show fsync');
        assert.equal(fsync.rows[0]?.fsync, 'off', 'fast mode applied');
      } finally {
        await client.end();
      }

      // A second start on the same data dir adopts the running postmaster.
      const again = await startPostgres({ dataDir });
      assert.equal(again.reused, true);
      assert.equal(again.port, pg.port);
      assert.equal(again.url, pg.url);

      t = Date.now();
      await pg.stop();
      stopped = true;
      const stopMs = Date.now() - t;
      assert.equal(await isPortOpen(pg.port), false, 'port closed after stop');
      assert.equal(fs.existsSync(path.join(dataDir, 'postmaster.pid')), false, 'postmaster gone');
      await again.stop(); // no-op on a stopped server

      // Restart of an existing cluster skips initdb and keeps the database.
      t = Date.now();
      const pg2 = await startPostgres({ dataDir, fast: true });
      const restartMs = Date.now() - t;
      try {
        assert.equal(pg2.reused, false);
        const c2 = new Client({ connectionString: await createDatabase(pg2.url, 'ladder_stack_test') });
        await c2.connect();
        assert.equal((await c2.query('select 1 as one')).rows[0]?.one, 1);
        await c2.end();
      } finally {
        await pg2.stop();
      }
      assert.equal(await isPortOpen(pg2.port), false);
      console.log(`postgres: initdb+start ${firstMs} ms, stop ${stopMs} ms, restart ${restartMs} ms`);
    } finally {
      if (!stopped) await pg.stop();
    }
  });

  test('with a password: refused without it or with a wrong one, accepted with it', { timeout: 120_000 }, async () => {
    const dataDir = path.join(tmpRoot, 'pg-scram', 'data');
    const pg = await startPostgres({ dataDir, fast: true, password: 'right-pw' });
    try {
      assert.equal(new URL(pg.url).password, 'right-pw');
      await assertPasswordRequired(pg.url, dataDir);
    } finally {
      await pg.stop();
    }
  });

  test('a cluster made with trust auth is switched to password auth and keeps its data', { timeout: 120_000 }, async () => {
    const dataDir = path.join(tmpRoot, 'pg-upgrade', 'data');
    const old = await startPostgres({ dataDir, fast: true });
    const oldDb = await createDatabase(old.url, 'kept');
    await withClient(oldDb, (c) => c.query('create table t (v int); insert into t values (42)'));
    await old.stop();

    const pg = await startPostgres({ dataDir, fast: true, password: 'new-pw' });
    try {
      await assertPasswordRequired(pg.url, dataDir);
      const u = new URL(pg.url);
      u.pathname = '/kept';
      const r = await withClient(u.toString(), (c) => c.query<{ v: number }>('select v from t'));
      assert.deepEqual(r.rows, [{ v: 42 }]);
    } finally {
      await pg.stop();
    }
    // Also when the trust-auth postmaster is still running and gets adopted.
    const dataDir2 = path.join(tmpRoot, 'pg-upgrade-running', 'data');
    const running = await startPostgres({ dataDir: dataDir2, fast: true });
    try {
      const adopted = await startPostgres({ dataDir: dataDir2, password: 'pw2' });
      assert.equal(adopted.reused, true);
      await assertPasswordRequired(adopted.url, dataDir2);
    } finally {
      await running.stop();
    }
  });

  test('a postgres restarted by hand (pg_ctl, as the server user) can write its log', { timeout: 120_000 }, async () => {
    const dataDir = path.join(tmpRoot, 'pg-hand', 'data');
    const logFile = path.join(tmpRoot, 'pg-hand.log');
    const pg = await startPostgres({ dataDir, fast: true, logFile });
    const pgCtl = path.join(findPostgresBin(), 'pg_ctl');
    const asServer = (args: string[]): [string, string[]] =>
      process.getuid?.() === 0 ? ['setpriv', ['--reuid', 'postgres', '--regid', 'postgres', '--init-groups', '--', pgCtl, ...args]] : [pgCtl, args];
    const sizeBefore = fs.statSync(logFile).size;
    try {
      const [cmd, args] = asServer(['-D', dataDir, '-l', logFile, '-w', '-t', '60', 'restart']);
      await runOk(cmd, args);
      const grown = fs.readFileSync(logFile, 'utf8').slice(sizeBefore);
      assert.match(grown, /ready to accept connections/, 'the restarted server logs to the same file');
    } finally {
      // The restarted postmaster is not our child: adopt it to stop it.
      const adopted = await startPostgres({ dataDir });
      await adopted.stop();
      await pg.stop();
    }
  });

  test('a port already in use fails with the server log in the error', { timeout: 60_000 }, async () => {
    const first = await startPostgres({ dataDir: path.join(tmpRoot, 'pg-a', 'data'), fast: true });
    try {
      await assert.rejects(
        startPostgres({ dataDir: path.join(tmpRoot, 'pg-b', 'data'), port: first.port, fast: true, readyTimeoutMs: 20_000 }),
        (e: Error) => /failed to start/.test(e.message) && /could not (bind|create)|in use/i.test(e.message),
      );
    } finally {
      await first.stop();
    }
  });
});

async function withTemporal<T>(address: string, namespace: string, fn: (c: TemporalClient) => Promise<T>): Promise<T> {
  const connection = await Connection.connect({ address });
  try {
    return await fn(new TemporalClient({ connection, namespace }));
  } finally {
    await connection.close();
  }
}

describe('temporal', () => {
  test('ensureTemporalCli: second call fast and same path', { timeout: 300_000 }, async () => {
    let t = Date.now();
    const p1 = await ensureTemporalCli();
    const firstMs = Date.now() - t;
    t = Date.now();
    const p2 = await ensureTemporalCli();
    const secondMs = Date.now() - t;
    assert.equal(p2, p1);
    assert.ok(secondMs < 1000, `second call took ${secondMs} ms (cached: no download)`);
    const version = execFileSync(p1, ['--version'], { encoding: 'utf8' });
    if (!process.env.TEMPORAL_CLI_PATH) assert.match(version, new RegExp(TEMPORAL_CLI_VERSION.replace(/\./g, '\\.')));
    console.log(`ensureTemporalCli: first ${firstMs} ms, second ${secondMs} ms (${p1})`);
  });

  test('start dev server, connect with the client, stop', { timeout: 120_000 }, async () => {
    const t = Date.now();
    const server = await startTemporal({ namespace: 'ladder-test' });
    const startMs = Date.now() - t;
    const port = Number(server.address.split(':')[1]);
    try {
      assert.equal(server.namespace, 'ladder-test');
      const conn = await Connection.connect({ address: server.address });
      try {
        const info = await conn.workflowService.getSystemInfo({});
        assert.ok(info.serverVersion, 'server reports a version');
        const ns = await conn.workflowService.describeNamespace({ namespace: 'ladder-test' });
        assert.equal(ns.namespaceInfo?.name, 'ladder-test');
      } finally {
        await conn.close();
      }
    } finally {
      await server.stop();
    }
    assert.equal(await isPortOpen(port), false, 'frontend port closed after stop');
    assert.equal(fs.existsSync(server.logFile), false, 'temporary log removed');
    console.log(`temporal: start ${startMs} ms`);
  });

  test('a port taken inside the server (a panic with a long trace) is retried with fresh ports', { timeout: 60_000 }, async () => {
    // A stand-in CLI that fails as start-dev does when another process takes one of the ports it
    // picks for itself: a panic line, then a goroutine trace longer than the error's tail.
    const dir = fs.mkdtempSync(path.join(tmpRoot, 'fake-cli-'));
    const starts = path.join(dir, 'starts');
    const bin = path.join(dir, 'temporal');
    const trace = Array.from({ length: 60 }, (_, i) => `\tgo.temporal.io/server/frame${i}(...)`).join('\\n');
    fs.writeFileSync(bin, `#!/bin/sh\necho x >> '${starts}'\nprintf 'panic: listen tcp 127.0.0.1:7235: bind: address already in use\\n\\ngoroutine 1 [running]:\\n${trace}\\n' >&2\nexit 2\n`, { mode: 0o755 });
    await assert.rejects(startTemporal({ bin, readyTimeoutMs: 5000 }), (err: Error) => /^panic: listen tcp .*address already in use$/m.test(err.message));
    assert.equal(fs.readFileSync(starts, 'utf8').trim().split('\n').length, 3, 'three starts: the clash was seen and retried');
  });

  test('persistent db file survives a restart: a workflow started before is found after', { timeout: 120_000 }, async () => {
    const dbFile = path.join(tmpRoot, 'temporal', 'state.db');
    const logFile = path.join(tmpRoot, 'temporal', 'server.log');
    const workflowId = `persist-${Date.now()}`;
    const s1 = await startTemporal({ dbFile, logFile, namespace: 'persist' });
    try {
      // No worker needed: starting records the execution in the server's store.
      await withTemporal(s1.address, 'persist', (c) =>
        c.workflow.start('neverRuns', { taskQueue: 'nobody-polls', workflowId, args: ['kept'] }),
      );
    } finally {
      await s1.stop();
    }
    const s2 = await startTemporal({ dbFile, logFile, namespace: 'persist' });
    try {
      const described = await withTemporal(s2.address, 'persist', (c) => c.workflow.getHandle(workflowId).describe());
      assert.equal(described.workflowId, workflowId);
      assert.equal(described.type, 'neverRuns');
      assert.equal(described.status.name, 'RUNNING');
    } finally {
      await s2.stop();
    }
    assert.ok(fs.existsSync(logFile), 'caller-provided log kept');
  });

  test('a server left on the db file by a dead parent is replaced, not joined (no SQLITE_BUSY)', { timeout: 120_000 }, async () => {
    const dbFile = path.join(tmpRoot, 'temporal-left', 'state.db');
    const workflowId = `left-${Date.now()}`;
    const s1 = await startTemporal({ dbFile, namespace: 'left' });
    await withTemporal(s1.address, 'left', (c) => c.workflow.start('neverRuns', { taskQueue: 'nobody-polls', workflowId }));
    // As after a kill -9 of the parent where no parent-death signal exists: the server runs on,
    // only its pid file tells a new start about it.
    const leftover = JSON.parse(fs.readFileSync(temporalPidFile(dbFile), 'utf8')) as { pid: number };
    assert.ok(isPidAlive(leftover.pid));
    const s2 = await startTemporal({ dbFile, namespace: 'left' });
    try {
      assert.equal(isPidAlive(leftover.pid), false, 'the leftover server was stopped');
      const described = await withTemporal(s2.address, 'left', (c) => c.workflow.getHandle(workflowId).describe());
      assert.equal(described.workflowId, workflowId, 'its data is still there');
    } finally {
      await s2.stop();
      await s1.stop();
    }
    assert.equal(fs.existsSync(temporalPidFile(dbFile)), false, 'pid file removed on stop');
  });

  test('servers die with the process that started them (kill -9 included)', { timeout: 120_000 }, async () => {
    const dir = path.join(tmpRoot, 'orphans');
    fs.mkdirSync(dir, { recursive: true });
    const script = [
      "const { startPostgres } = require('./stack/postgres');",
      "const { startTemporal } = require('./stack/temporal');",
      'Promise.all([',
      `  startPostgres({ dataDir: ${JSON.stringify(path.join(dir, 'pg', 'data'))}, fast: true }),`,
      `  startTemporal({ dbFile: ${JSON.stringify(path.join(dir, 'temporal.db'))} }),`,
      "]).then(() => process.stdout.write('ready\\n'));",
      'setInterval(() => {}, 1000);',
    ].join('\n');
    const child = spawn(process.execPath, ['--import', 'tsx', '-e', script], { cwd: repoRoot(), stdio: ['ignore', 'pipe', 'inherit'] });
    try {
      await new Promise<void>((resolve, reject) => {
        let out = '';
        child.stdout.on('data', (d: Buffer) => {
          out += d.toString();
          if (out.includes('ready')) resolve();
        });
        child.once('exit', (code) => reject(new Error(`starter exited (${code}) before its servers were ready`)));
      });
      const pgPid = Number(fs.readFileSync(path.join(dir, 'pg', 'data', 'postmaster.pid'), 'utf8').split('\n')[0]);
      const temporalPid = (JSON.parse(fs.readFileSync(temporalPidFile(path.join(dir, 'temporal.db')), 'utf8')) as { pid: number }).pid;
      assert.ok(isPidAlive(pgPid) && isPidAlive(temporalPid));
      child.kill('SIGKILL');
      assert.ok(await waitPidExit(pgPid, 30_000), `postmaster ${pgPid} outlived its parent`);
      assert.ok(await waitPidExit(temporalPid, 30_000), `temporal ${temporalPid} outlived its parent`);
    } finally {
      child.kill('SIGKILL');
    }
  });

  test('early death surfaces the server log', { timeout: 60_000 }, async () => {
    const dbFile = path.join(tmpRoot, 'no-such-dir-as-file');
    fs.writeFileSync(dbFile, 'not a sqlite database');
    await assert.rejects(startTemporal({ dbFile, readyTimeoutMs: 30_000 }), /before becoming ready|not ready/);
  });
});

describe('python', () => {
  test('ensurePythonEnv returns a working interpreter; second call fast', { timeout: 600_000 }, async () => {
    // `npm test` sets LADDER_PYTHON to the very venv this builds; without it here, the venv
    // checks below run under `npm test` too instead of being skipped.
    const savedPython = process.env.LADDER_PYTHON;
    delete process.env.LADDER_PYTHON;
    let py: string;
    let firstMs: number;
    let secondMs: number;
    try {
      let t = Date.now();
      py = await ensurePythonEnv();
      firstMs = Date.now() - t;
      t = Date.now();
      assert.equal(await ensurePythonEnv(), py);
      secondMs = Date.now() - t;
    } finally {
      if (savedPython !== undefined) process.env.LADDER_PYTHON = savedPython;
    }
    assert.ok(secondMs < 1000, `second call took ${secondMs} ms`);
    const out = execFileSync(py, ['-c', 'import sys; print(sys.prefix != sys.base_prefix)'], { encoding: 'utf8' });
    assert.equal(out.trim(), 'True', 'is a venv');
    assert.ok(py.startsWith(cacheDir()), `${py} under ${cacheDir()}`);
    assert.equal(await withEnv({ LADDER_PYTHON: '/x/python' }, () => ensurePythonEnv()), '/x/python', 'the override wins');
    console.log(`ensurePythonEnv: first ${firstMs} ms, second ${secondMs} ms (${py})`);
  });

  test('concurrent builds of a fresh venv agree and install requirements', { timeout: 600_000 }, async () => {
    const cache = path.join(tmpRoot, 'pycache');
    const jobsDir = path.join(tmpRoot, 'jobs');
    fs.mkdirSync(jobsDir, { recursive: true });
    // A local, hand-made wheel so the test needs neither network nor setuptools.
    const wheel = 'ladder_stack_probe-0.0.1-py3-none-any.whl';
    execFileSync('python3', [
      '-c',
      [
        'import sys, zipfile',
        "z = zipfile.ZipFile(sys.argv[1], 'w')",
        "z.writestr('ladder_stack_probe/__init__.py', 'VALUE = 42\\n')",
        "d = 'ladder_stack_probe-0.0.1.dist-info/'",
        "z.writestr(d + 'METADATA', 'Metadata-Version: 2.1\\nName: ladder-stack-probe\\nVersion: 0.0.1\\n')",
        "z.writestr(d + 'WHEEL', 'Wheel-Version: 1.0\\nGenerator: test\\nRoot-Is-Purelib: true\\nTag: py3-none-any\\n')",
        "z.writestr(d + 'RECORD', '')",
        'z.close()',
      ].join('\n'),
      path.join(jobsDir, wheel),
    ]);
    fs.writeFileSync(path.join(jobsDir, 'requirements.txt'), `./${wheel}\n`);
    const saved = process.env.LADDER_CACHE_DIR;
    const savedPython = process.env.LADDER_PYTHON;
    process.env.LADDER_CACHE_DIR = cache;
    delete process.env.LADDER_PYTHON; // `npm test` sets it; this test is about building the venv
    try {
      const [a, b] = await Promise.all([ensurePythonEnv({ jobsDir }), ensurePythonEnv({ jobsDir })]);
      assert.equal(a, b);
      assert.ok(a.startsWith(cache));
      const out = execFileSync(a, ['-c', 'import ladder_stack_probe as m; print(m.VALUE)'], { encoding: 'utf8' });
      assert.equal(out.trim(), '42');
      assert.deepEqual(
        fs.readdirSync(cache).filter((f) => f.endsWith('.lock')),
        [],
        'lock released',
      );
      // Changing requirements gives a different venv.
      fs.writeFileSync(path.join(jobsDir, 'requirements-dev.txt'), '# nothing\n');
      const c = await ensurePythonEnv({ jobsDir });
      assert.notEqual(c, a);
    } finally {
      if (saved === undefined) delete process.env.LADDER_CACHE_DIR;
      else process.env.LADDER_CACHE_DIR = saved;
      if (savedPython !== undefined) process.env.LADDER_PYTHON = savedPython;
    }
  });
});
