/**
 * `npm run loadtest:smoke` (and part of `npm test`): every built-in scenario file, for a couple of
 * seconds at a low rate, against the embedded stack (real Postgres, Temporal, API server and a
 * worker with the simulated executor), with loose thresholds, each run through the capacity
 * workflow on a loadgen worker, as `ladder capacity run` does. Targets are loopback only. The k8s
 * scenario needs a cluster: its smoke is test/k8s/capacity.test.ts (npm run test:k8s).
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import YAML from 'yaml';
import { listCapacityRuns, type CapacityRunWithSteps } from '../../core/capacity/store';
import { silentLogger } from '../../core/log';
import { createApiServer, type ApiServer } from '../../graphql/server';
import { createTestStack, type TestStack } from '../../test/harness';
import { startLoadgenWorker, type LoadgenWorker } from '../../workers/loadgen';
import { capacityWorkflowId } from '../../workflows/capacity';
import { runCapacity, runSummaryJson } from './run';
import { parseScenario, parseScenarioText, type Scenario } from './scenario';
import { decodeHistogram } from './histogram';

const SCENARIOS = path.join(__dirname, '..', 'scenarios');

/** The built-in file, shortened: a few seconds at a low rate, loose thresholds, no search. */
export function smokeVersion(file: string, load: Record<string, unknown>): Scenario {
  const raw = YAML.parse(fs.readFileSync(path.join(SCENARIOS, file), 'utf8')) as Record<string, unknown>;
  // Back through the parser: the smoke runs exactly what a file with these values would.
  return parseScenario({ ...raw, load: { timeout: '20s', ...load }, thresholds: ['p95 < 20s', 'errors < 5%', 'achieved >= 0.5 * offered'], search: undefined });
}

describe('capacity smoke: built-in scenarios against the embedded stack', { timeout: 300_000 }, () => {
  let stack: TestStack;
  let api: ApiServer;
  let apiUrl: string;
  let loadgen: LoadgenWorker;
  const queue = () => `${stack.taskQueue}-capacity`;

  before(async () => {
    stack = await createTestStack('capacity_smoke');
    // The harness API has no Temporal client; launch needs one that can start sweeps.
    api = createApiServer({ database: stack.database, ingestSecret: stack.ingestSecret, log: silentLogger.warn, temporal: { client: stack.temporal, taskQueue: stack.taskQueue }, executor: 'simulated' });
    apiUrl = await api.listen(0, '127.0.0.1');
    await stack.startWorker({ executor: stack.simulatedExecutor({ timeScale: 0.01 }) });
    loadgen = await startLoadgenWorker({ temporalAddress: stack.temporalAddress, generatorQueue: queue(), controlQueue: queue(), database: stack.database, ingestSecret: stack.ingestSecret, log: silentLogger, maxGenerators: 4 });
  });
  after(async () => {
    await loadgen?.shutdown();
    await api?.close();
    await stack?.close();
  });

  const run = (id: string, scenario: Scenario, target: string) =>
    runCapacity({ client: stack.temporal, db: stack.database.db, runId: id, scenario, target, controlQueue: queue(), generatorQueue: queue() });

  const check = (r: CapacityRunWithSteps) => {
    const json = runSummaryJson(r);
    assert.equal(r.status, 'finished', r.error ?? '');
    assert.equal(r.steps.length, 1);
    const step = r.steps[0]!;
    assert.equal(step.data.errors.length, 0, JSON.stringify(step.data.errors));
    assert.ok(step.data.succeeded > 0);
    assert.equal(step.passed, true, JSON.stringify(step.data.thresholds));
    assert.equal(json.knee, step.offered);
    assert.equal(decodeHistogram(step.histogram).totalCount, step.data.succeeded);
    return step;
  };

  test('ingest: metric batches land as rows of real trials', async () => {
    const s = smokeVersion('ingest.yaml', { rate: 5, duration: '2s' });
    const step = check(await run('smoke-ingest', s, stack.apiUrl));
    const { rows } = await stack.database.pool.query<{ n: number }>('select count(*)::int as n from metric_points');
    assert.equal(rows[0]!.n, step.data.succeeded * s.ingest!.batch);
  });

  test('graphql: the dashboard mix over seeded data, with two generators', async () => {
    const s = smokeVersion('graphql.yaml', { rate: 6, duration: '2s' });
    const step = check(await run('smoke-graphql', { ...s, agents: 2, graphql: { ...s.graphql!, seedTrials: 4, seedPoints: 600 } }, apiUrl));
    assert.deepEqual(step.data.generators.map((g) => g.offered), [3, 3]);
    assert.equal(step.data.latency.count, step.data.succeeded);
    // The viewer token made for the run is revoked when it ends.
    const { rows } = await stack.database.pool.query<{ n: number }>("select count(*)::int as n from api_tokens where name like 'capacity-%' and revoked_at is null");
    assert.equal(rows[0]!.n, 0);
  });

  test('launch: sweeps through the API, submit → first trial running, trial throughput', async () => {
    const s = smokeVersion('launch.yaml', { rate: 1, duration: '2s' });
    const step = check(await run('smoke-launch', s, apiUrl));
    assert.equal(step.data.extra.sweepsLaunched, 2);
    assert.equal(step.data.extra.sweepsSeenRunning, 2);
    assert.equal(step.data.extra.trialsFinished, 2 * s.launch!.trials);
    assert.ok(step.data.extra.trialsPerSecond! > 0);
  });

  test('http: the API health route, ramping profile as written in the file', async () => {
    const file = parseScenarioText(fs.readFileSync(path.join(SCENARIOS, 'http.yaml'), 'utf8'));
    const s = { ...smokeVersion('http.yaml', { stages: [{ rate: 10, duration: '1s' }, { rate: 10, duration: '1s' }] }), http: file.http };
    const step = check(await run('smoke-http', s, stack.apiUrl));
    assert.equal(step.data.planned, 15);
    assert.deepEqual((await listCapacityRuns(stack.database.db)).map((r) => r.id).sort(), ['smoke-graphql', 'smoke-http', 'smoke-ingest', 'smoke-launch']);
  });

  test('no token or secret is in any run\'s Temporal history', async () => {
    for (const id of ['smoke-ingest', 'smoke-graphql', 'smoke-launch']) {
      const history = await stack.temporal.workflow.getHandle(capacityWorkflowId(id)).fetchHistory();
      // Payloads are JSON bytes (protobuf's toJSON would make them base64): walk it, decoding bytes.
      const parts: string[] = [];
      const walk = (v: unknown): void => {
        if (v instanceof Uint8Array) parts.push(Buffer.from(v).toString('utf8'));
        else if (typeof v === 'string') parts.push(v);
        else if (v && typeof v === 'object') for (const x of Object.values(v)) walk(x);
      };
      walk(history);
      const text = parts.join('\n');
      // The decoding worked: the prepare activity's result (its target) is readable.
      assert.ok(text.includes('"kind":"' + id.replace('smoke-', '') + '"'), `${id}: the prepared payload is decoded`);
      assert.ok(!text.includes('lad_'), `${id}: an API token is in the history`);
      assert.ok(!/lt2\.[A-Za-z0-9_-]+\./.test(text), `${id}: an ingest token is in the history`);
      assert.ok(!text.includes(stack.ingestSecret), `${id}: the ingest secret is in the history`);
    }
  });
});
