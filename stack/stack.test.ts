/**
 * Embedded stack tests. Run: node --import tsx --test stack/stack.test.ts
 * These start real servers (Postgres, Temporal) and may download the temporal CLI and build a
 * venv on a cold cache (first run: ~10-20 s extra).
 */
import { strict as assert } from 'node:assert';
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { Connection } from '@temporalio/client';
import { Client } from 'pg';
import { cacheDir, repoRoot, stateDir } from './paths';
import { freePort, isPortOpen } from './ports';
import { createDatabase, findPostgresBin, startPostgres } from './postgres';
import { ensurePythonEnv } from './python';
import { ensureTemporalCli, startTemporal, TEMPORAL_CLI_VERSION } from './temporal';

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

describe('temporal', () => {
  test('ensureTemporalCli: second call fast and same path', { timeout: 300_000 }, async () => {
    let t = Date.now();
    const p1 = await ensureTemporalCli();
    const firstMs = Date.now() - t;
    t = Date.now();
    const p2 = await ensureTemporalCli();
    const secondMs = Date.now() - t;
    assert.equal(p2, p1);
    assert.ok(secondMs < 200, `second call took ${secondMs} ms`);
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

  test('persistent db file survives a restart', { timeout: 120_000 }, async () => {
    const dbFile = path.join(tmpRoot, 'temporal', 'state.db');
    const logFile = path.join(tmpRoot, 'temporal', 'server.log');
    const s1 = await startTemporal({ dbFile, logFile, namespace: 'persist' });
    await s1.stop();
    assert.ok(fs.statSync(dbFile).size > 0, 'sqlite file written');
    const s2 = await startTemporal({ dbFile, logFile, namespace: 'persist' });
    await s2.stop();
    assert.ok(fs.existsSync(logFile), 'caller-provided log kept');
  });

  test('early death surfaces the server log', { timeout: 60_000 }, async () => {
    const dbFile = path.join(tmpRoot, 'no-such-dir-as-file');
    fs.writeFileSync(dbFile, 'not a sqlite database');
    await assert.rejects(startTemporal({ dbFile, readyTimeoutMs: 30_000 }), /before becoming ready|not ready/);
  });
});

describe('python', () => {
  test('ensurePythonEnv returns a working interpreter; second call fast', { timeout: 600_000 }, async () => {
    let t = Date.now();
    const py = await ensurePythonEnv();
    const firstMs = Date.now() - t;
    t = Date.now();
    assert.equal(await ensurePythonEnv(), py);
    const secondMs = Date.now() - t;
    assert.ok(secondMs < 200, `second call took ${secondMs} ms`);
    const out = execFileSync(py, ['-c', 'import sys; print(sys.prefix != sys.base_prefix)'], { encoding: 'utf8' });
    if (!process.env.LADDER_PYTHON) {
      assert.equal(out.trim(), 'True', 'is a venv');
      assert.ok(py.startsWith(cacheDir()), `${py} under ${cacheDir()}`);
    }
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
