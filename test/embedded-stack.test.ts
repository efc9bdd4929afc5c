/**
 * `ladder dev` as a user runs it: the embedded stack in a fresh state dir, found by other
 * commands through `.ladder/stack.json`, mutations with the local editor token, password-only
 * Postgres, a crashed API/worker restarted, nothing left behind when `ladder dev` itself is
 * killed, and a second start on the same state that finds the old data.
 */
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { Client as TemporalClient, Connection } from '@temporalio/client';
import { Client } from 'pg';
import YAML from 'yaml';
import { postgresDataDir, type StackFile } from '../cli/embedded';
import { isPidAlive, waitPidExit } from '../stack/proc';
import { ensurePythonEnv } from '../stack/python';
import { temporalPidFile } from '../stack/temporal';
import { eventually, REPO_ROOT } from './harness';

interface Dev {
  proc: ChildProcess;
  output: () => string;
}

describe('ladder dev', { concurrency: false, timeout: 420_000 }, () => {
  let state = '';
  let env: NodeJS.ProcessEnv;
  const running: ChildProcess[] = [];

  before(async () => {
    state = fs.mkdtempSync(path.join(os.tmpdir(), 'ladder-dev-test-'));
    fs.chmodSync(state, 0o755); // the postgres OS user (when we are root) must reach pg/data
    env = { ...process.env, LADDER_STATE_DIR: state, LADDER_PYTHON: process.env.LADDER_PYTHON ?? (await ensurePythonEnv()) };
    delete env.DATABASE_URL;
    delete env.TEMPORAL_ADDRESS;
  });
  after(() => {
    for (const p of running) if (p.exitCode === null && p.signalCode === null) p.kill('SIGKILL');
    fs.rmSync(state, { recursive: true, force: true });
  });

  const stackFile = (): StackFile | undefined => {
    try {
      return JSON.parse(fs.readFileSync(path.join(state, 'stack.json'), 'utf8')) as StackFile;
    } catch {
      return undefined;
    }
  };

  async function startDev(): Promise<{ dev: Dev; stack: StackFile }> {
    const proc = spawn(process.execPath, ['--import', 'tsx', 'cli/main.ts', 'dev', '--port', '0'], {
      cwd: REPO_ROOT,
      env,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    running.push(proc);
    let out = '';
    proc.stdout?.on('data', (d: Buffer) => (out += d.toString()));
    proc.stderr?.on('data', (d: Buffer) => (out += d.toString()));
    const stack = await eventually(
      'ladder dev to write stack.json',
      async () => {
        if (proc.exitCode !== null) throw new Error(`ladder dev exited ${proc.exitCode}:\n${out}`);
        const s = stackFile();
        return s && s.pid === proc.pid ? s : undefined;
      },
      180_000,
      250,
    );
    return { dev: { proc, output: () => out }, stack };
  }

  async function graphql(apiUrl: string, query: string, variables: object = {}, token?: string) {
    const res = await fetch(`${apiUrl}/graphql`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...(token ? { authorization: `Bearer ${token}` } : {}) },
      body: JSON.stringify({ query, variables }),
      signal: AbortSignal.timeout(30_000),
    });
    return (await res.json()) as { data?: Record<string, any>; errors?: Array<{ message: string }> };
  }

  const answers = async (apiUrl: string): Promise<boolean> =>
    (await graphql(apiUrl, '{ __typename }').catch(() => ({ data: undefined })))?.data?.__typename === 'Query';

  let sweepId = '';

  it('starts, is found through stack.json, takes mutations only with the local token, runs a sweep', async () => {
    const { dev, stack } = await startDev();
    for (const f of ['stack.json', 'token', 'postgres-password', 'ingest-secret']) {
      assert.equal(fs.statSync(path.join(state, f)).mode & 0o777, 0o600, `${f} is private`);
    }
    assert.equal(stack.python, env.LADDER_PYTHON, 'stack.json names the Python jobs run with (CLI commands that run it read it)');
    const password = fs.readFileSync(path.join(state, 'postgres-password'), 'utf8').trim();
    assert.equal(new URL(stack.databaseUrl).password, password);
    assert.ok(!dev.output().includes(password), 'the password is never printed');

    // Postgres wants the password, on TCP and on the unix socket alike.
    const noPassword = new URL(stack.databaseUrl);
    noPassword.password = '';
    const c = new Client({ connectionString: noPassword.toString() });
    await assert.rejects(c.connect(), /password/i);
    await c.end().catch(() => {});
    const hba = fs.readFileSync(path.join(postgresDataDir(state), 'pg_hba.conf'), 'utf8').replace(/#.*/g, '');
    assert.doesNotMatch(hba, /\btrust\b/);

    const spec = { name: 'dev-smoke', kind: 'synthetic', base: { steps: 3 }, concurrency: 1, timeoutSeconds: 120 };
    const mutation = 'mutation($spec: JSON!) { launchSweep(spec: $spec) { sweep { id } trials } }';
    const anonymous = await graphql(stack.apiUrl, mutation, { spec });
    assert.ok(anonymous.errors?.length && !anonymous.data?.launchSweep, 'anonymous mutation refused');
    const token = fs.readFileSync(path.join(state, 'token'), 'utf8').trim();
    const launched = await graphql(stack.apiUrl, mutation, { spec }, token);
    assert.equal(launched.errors, undefined, JSON.stringify(launched.errors));
    sweepId = launched.data?.launchSweep.sweep.id;
    assert.equal(launched.data?.launchSweep.trials, 1);
    await eventually(
      'the sweep to succeed on the embedded worker',
      async () => (await graphql(stack.apiUrl, 'query($id: ID!) { sweep(id: $id) { status } }', { id: sweepId })).data?.sweep?.status === 'succeeded',
      120_000,
      500,
    );

    // Another terminal: `ladder sweep list` finds the stack with no environment of its own.
    const list = spawnSync(process.execPath, ['--import', 'tsx', 'cli/main.ts', 'sweep', 'list', '--json'], {
      cwd: REPO_ROOT,
      env,
      encoding: 'utf8',
      timeout: 60_000,
    });
    assert.equal(list.status, 0, list.stderr);
    assert.ok(list.stdout.includes(sweepId), list.stdout);
  });

  it('runs a capacity scenario on its own loadgen worker: `ladder capacity run FILE --wait`, no --local', async () => {
    const stack = stackFile();
    assert.ok(stack);
    // The built-in graphql file, shortened to one small step (no search) so it ends in seconds.
    const builtIn = YAML.parse(fs.readFileSync(path.join(REPO_ROOT, 'loadtests', 'scenarios', 'graphql.yaml'), 'utf8')) as Record<string, any>;
    delete builtIn.search;
    const file = path.join(state, 'capacity-graphql.yaml');
    fs.writeFileSync(
      file,
      YAML.stringify({ ...builtIn, graphql: { ...builtIn.graphql, seedTrials: 4, seedPoints: 600 }, load: { rate: 4, duration: '2s', timeout: '20s' }, thresholds: ['p95 < 20s', 'errors < 5%', 'achieved >= 0.5 * offered'] }),
    );
    const run = spawnSync(process.execPath, ['--import', 'tsx', 'cli/main.ts', 'capacity', 'run', file, '--wait', '--json'], { cwd: REPO_ROOT, env, encoding: 'utf8', timeout: 120_000 });
    assert.equal(run.status, 0, `${run.stdout}\n${run.stderr}`);
    const result = JSON.parse(run.stdout.trim().split('\n').at(-1)!) as { id: string; status: string; knee: number | null; target: string; steps: Array<{ offered: number; passed: boolean; perGenerator: Array<{ succeeded: number }> }> };
    assert.equal(result.status, 'finished');
    assert.equal(new URL(result.target).origin, new URL(stack.apiUrl).origin, 'the target defaults to the stack\'s API');
    assert.equal(result.steps.length, 1);
    assert.equal(result.steps[0]!.passed, true, JSON.stringify(result.steps[0]));
    assert.equal(result.knee, 4);
    assert.equal(result.steps[0]!.perGenerator.reduce((n, g) => n + g.succeeded, 0), 8);
    const shown = spawnSync(process.execPath, ['--import', 'tsx', 'cli/main.ts', 'capacity', 'show', result.id, '--json'], { cwd: REPO_ROOT, env, encoding: 'utf8', timeout: 60_000 });
    assert.equal(shown.status, 0, shown.stderr);
    assert.equal((JSON.parse(shown.stdout) as { knee: number }).knee, 4, 'the run is stored in the stack\'s database');
  });

  it('restarts a killed API/worker process; killed itself, leaves nothing running', async () => {
    const stack = stackFile();
    assert.ok(stack);
    const dev = running.at(-1);
    assert.ok(dev);
    process.kill(stack.appPid, 'SIGKILL');
    const restarted = await eventually(
      'a new API/worker process that answers',
      async () => {
        const s = stackFile();
        return s && s.appPid !== stack.appPid && (await answers(s.apiUrl)) ? s : undefined;
      },
      120_000,
      250,
    );
    assert.equal(restarted.apiUrl, stack.apiUrl, 'same address after the restart');

    const pgPid = Number(fs.readFileSync(path.join(postgresDataDir(state), 'postmaster.pid'), 'utf8').split('\n')[0]);
    const temporalPid = (JSON.parse(fs.readFileSync(temporalPidFile(path.join(state, 'temporal.db')), 'utf8')) as { pid: number }).pid;
    const children = { postgres: pgPid, temporal: temporalPid, 'API/worker': restarted.appPid };
    for (const [name, pid] of Object.entries(children)) assert.ok(isPidAlive(pid), `${name} runs`);
    dev.kill('SIGKILL');
    for (const [name, pid] of Object.entries(children)) {
      assert.ok(await waitPidExit(pid, 30_000), `${name} (pid ${pid}) outlived a kill -9 of ladder dev`);
    }
  });

  it('a second start after kill -9 works and finds the old data', async () => {
    const { dev, stack } = await startDev();
    const r = await graphql(stack.apiUrl, 'query($id: ID!) { sweep(id: $id) { status } }', { id: sweepId });
    assert.equal(r.data?.sweep?.status, 'succeeded', 'Postgres data kept');
    const connection = await Connection.connect({ address: stack.temporalAddress });
    try {
      const described = await new TemporalClient({ connection, namespace: stack.namespace }).workflow.getHandle(`sweep/${sweepId}`).describe();
      assert.equal(described.status.name, 'COMPLETED', 'Temporal history kept');
    } finally {
      await connection.close();
    }
    const exited = new Promise<number | null>((resolve) => dev.proc.once('exit', (code) => resolve(code)));
    dev.proc.kill('SIGINT');
    assert.equal(await exited, 0, dev.output());
    assert.equal(fs.existsSync(path.join(state, 'stack.json')), false, 'stack.json removed on a clean stop');
    assert.equal(isPidAlive(stack.appPid), false);
  });
});
