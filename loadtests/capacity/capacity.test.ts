/**
 * The capacity engine against loopback HTTP servers made slow, failing or absent on purpose:
 * scenario validation, the open-model executor, thresholds, the search. Distributed generators,
 * killed and cancelled ones: workflows/capacity.test.ts.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { describe, test } from 'node:test';
import { decodeHistogram } from './histogram';
import { parseScenario, parseScenarioText, plannedOperations, ScenarioError, type Scenario } from './scenario';
import { capacitySearch } from './search';
import { mergeStep, runGenerator, type StepRecord } from './step';
import { parseThreshold } from './thresholds';

const SCENARIOS = path.join(__dirname, '..', 'scenarios');

function issuesOf(input: unknown): string[] {
  try {
    parseScenario(input);
  } catch (err) {
    assert.ok(err instanceof ScenarioError, String(err));
    return err.issues.map((i) => `${i.path}: ${i.message}`);
  }
  assert.fail('expected a ScenarioError');
}

const base = { name: 't', scenario: 'http', http: { url: 'http://127.0.0.1:1/' }, load: { rate: 10, duration: '1s' } };

describe('scenario files', () => {
  test('every built-in scenario parses', () => {
    const files = fs.readdirSync(SCENARIOS).filter((f) => f.endsWith('.yaml'));
    assert.deepEqual(files.map((f) => f.replace('.yaml', '')).sort(), ['graphql', 'http', 'ingest', 'k8s', 'launch']);
    for (const f of files) {
      const s = parseScenarioText(fs.readFileSync(path.join(SCENARIOS, f), 'utf8'));
      assert.equal(`${s.scenario}.yaml`, f);
      assert.ok(s.thresholds.length >= 3, f);
    }
  });

  test('unknown keys are refused with their path', () => {
    assert.deepEqual(issuesOf({ ...base, load: { rate: 10, duration: '1s', rat: 3 } }), ['load.rat: unknown key']);
    assert.deepEqual(issuesOf({ ...base, scenario: 'ingest', http: undefined, ingest: { batchSize: 5 } }), ['ingest.batchSize: unknown key']);
    assert.deepEqual(issuesOf({ ...base, extra: 1 }), ['extra: unknown key']);
  });

  test('bad values name their field', () => {
    assert.match(issuesOf({ ...base, thresholds: ['p95 < 250ms', 'p95 < 250'] }).join(), /^thresholds\[1\]: .*needs a unit/);
    assert.match(issuesOf({ ...base, load: { rate: 10, duration: 'soon' } }).join(), /^load\.duration: must be a duration/);
    assert.match(issuesOf({ ...base, load: { rate: 10 } }).join(), /^load\.duration: required/);
    assert.match(issuesOf({ ...base, ingest: {} }).join(), /^ingest: only a "ingest" scenario/);
    assert.match(issuesOf({ ...base, search: { start: 10, max: 5 } }).join(), /^search\.max: must be at least/);
    assert.match(issuesOf({ ...base, http: { url: '/x', headers: JSON.parse('{"__proto__": "x"}') } }).join(), /^http\.headers\.__proto__: this key is not allowed/);
    assert.match(issuesOf({ ...base, scaling: { generators: [1, 2] } }).join(), /^scaling: needs a search block/);
    assert.match(issuesOf({ ...base, search: { start: 1, max: 2 }, scaling: { generators: [2, 2] } }).join(), /^scaling\.generators: must be strictly ascending/);
    assert.deepEqual(issuesOf({ ...base, search: { start: 1, max: 2 }, scaling: { generators: [1, 2], replicas: 3 } }), ['scaling.replicas: unknown key']);
    assert.throws(() => parseScenarioText('name: [unclosed'), (e: Error) => e instanceof ScenarioError && /not valid YAML/.test(e.message));
  });

  test('a ramping profile plans the integral of its rate', () => {
    const s = parseScenario({ ...base, load: { stages: [{ rate: 10, duration: '2s' }, { rate: 10, duration: '1s' }] } });
    assert.equal(plannedOperations(s.load, 2000), 10); // 0→10/s over 2 s
    assert.equal(plannedOperations(s.load, 3000), 20);
    assert.equal(plannedOperations(s.load, 99_000), 20);
  });
});

describe('thresholds', () => {
  test('parse and compare', () => {
    assert.deepEqual(parseThreshold('p95 < 250ms').metric, { kind: 'latency', stat: 95 });
    assert.equal(parseThreshold('p99.9 <= 1.5s').value, 1500);
    assert.equal(parseThreshold('errors < 0.1%').value, 0.001);
    assert.equal(parseThreshold('achieved >= 0.95 * offered').relativeToOffered, true);
    assert.throws(() => parseThreshold('latency < 3ms'), /unknown metric "latency"/);
    assert.throws(() => parseThreshold('errors < 120%'), /fraction/);
  });
});

/** A loopback server whose every answer waits `delayMs` and has status `status`. */
async function server(behaviour: { delayMs?: number; status?: number }) {
  let requests = 0;
  const srv = http.createServer((req, res) => {
    requests++;
    setTimeout(() => {
      res.statusCode = behaviour.status ?? 200;
      res.end('ok');
    }, behaviour.delayMs ?? 0);
  });
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  const url = `http://127.0.0.1:${(srv.address() as AddressInfo).port}/`;
  return { url, requests: () => requests, close: () => new Promise<void>((r) => (srv.closeAllConnections(), srv.close(() => r()))) };
}

const httpScenario = (url: string, extra: Record<string, unknown> = {}): Scenario =>
  parseScenario({ name: 't', scenario: 'http', http: { url }, load: { rate: 20, duration: '2s', timeout: '5s' }, thresholds: ['p95 < 100ms', 'errors < 1%', 'achieved >= 0.9 * offered'], ...extra });

const runStep = async (s: Scenario): Promise<StepRecord> => {
  const prepared = { kind: 'http' as const, url: s.http!.url };
  return mergeStep(s.thresholds, [await runGenerator(s, prepared, s.load, { index: 0, count: 1 })], null);
};

describe('open-model executor', { timeout: 60_000 }, () => {
  test('keeps its arrival rate when responses are slow, and the latency threshold fails', async () => {
    const slow = await server({ delayMs: 400 });
    try {
      const step = await runStep(httpScenario(slow.url));
      // Closed-model generators would start ~2 s / 0.4 s per connection: far fewer than planned.
      assert.equal(step.planned, 40);
      assert.equal(step.started, 40);
      assert.equal(slow.requests(), 40);
      assert.equal(step.succeeded, 40);
      assert.ok(step.p95Ms >= 400, `p95 ${step.p95Ms}`);
      assert.equal(step.passed, false);
      assert.deepEqual(step.thresholds.map((t) => [t.threshold, t.passed]), [['p95 < 100ms', false], ['errors < 1%', true], ['achieved >= 0.9 * offered', true]]);
      assert.equal(decodeHistogram(step.histogram).totalCount, 40);
    } finally {
      await slow.close();
    }
  });

  test('counts the iterations it drops when maxInFlight are in flight', async () => {
    const slow = await server({ delayMs: 1500 });
    try {
      const s = httpScenario(slow.url, { load: { rate: 20, duration: '2s', timeout: '5s', maxInFlight: 5 }, thresholds: ['dropped < 10%'], abortOnFail: false });
      const step = await runStep(s);
      assert.equal(step.planned, 40);
      assert.ok(step.dropped > 0, 'some iterations dropped');
      assert.equal(step.started + step.dropped, step.planned);
      assert.ok(step.started <= 10, `started ${step.started}`); // 5 in flight, each 1.5 s, over 2 s
      assert.equal(step.passed, false);
    } finally {
      await slow.close();
    }
  });

  test('a 5xx target fails its error threshold', async () => {
    const broken = await server({ status: 503 });
    try {
      const step = await runStep(httpScenario(broken.url));
      assert.equal(step.succeeded, 0);
      assert.equal(step.passed, false);
      assert.equal(step.thresholds.find((t) => t.threshold === 'errors < 1%')!.passed, false);
      assert.match(step.errors[0]!.message, /^HTTP 503/);
    } finally {
      await broken.close();
    }
  });
});

describe('capacity search', () => {
  /** A fake target that holds up to `capacity` ops/s. */
  const fake = (capacity: number) => async (rate: number) => ({ ...fakeStep, offered: rate, started: 1, succeeded: 1, passed: rate <= capacity }) as StepRecord;
  const fakeStep = { incomplete: null } as unknown as StepRecord;

  test('doubles, then bisects to the knee', async () => {
    const out = await capacitySearch(fake(100), { start: 10, max: 10_000, precision: 0.05, maxSteps: 20 });
    assert.deepEqual(out.steps.slice(0, 5).map((s) => s.offered), [10, 20, 40, 80, 160]);
    assert.equal(out.steps[5]!.offered, 120);
    assert.equal(out.stopReason, 'converged');
    assert.ok(out.knee! <= 100 && out.knee! >= 95, `knee ${out.knee}`);
    assert.equal(out.kneeIsLowerBound, false);
  });

  test('no knee when the first step fails; a lower bound at max', async () => {
    assert.deepEqual(await capacitySearch(fake(5), { start: 10, max: 100, precision: 0.1, maxSteps: 5 }).then((o) => [o.knee, o.stopReason]), [null, 'first step failed']);
    const top = await capacitySearch(fake(1e9), { start: 10, max: 30, precision: 0.1, maxSteps: 10 });
    assert.deepEqual([top.knee, top.kneeIsLowerBound, top.stopReason, top.steps.map((s) => s.offered)], [30, true, 'reached max', [10, 20, 30]]);
  });
});
