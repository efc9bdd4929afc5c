/** The pure parts of schedules: run-over-run comparison, cron/every parsing, the webhook's guards. */
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { describe, test } from 'node:test';
import { parseSweepSpecShape, SpecError } from '../spec/spec';
import { compareRun, welchPValue, type RunResult } from './compare';
import { parseCron, parseEvery, parseTiming } from './timing';
import { isInternalAddress, type Lookup, MAX_WEBHOOK_BODY_BYTES, postWebhook, webhookBody } from './webhook';

const r = (variant: string, mean: number, values = [mean], metric = 'loss', rung = 'default'): RunResult => ({ variant, rung, metric, mean, values });

describe('compareRun', () => {
  const block = { metrics: [{ metric: 'loss', direction: 'min' as const, tolerance: 0.05 }], baselineRuns: 2 };

  test('a move past the tolerance is a regression or an improvement by direction; within it, nothing', () => {
    const past = [{ runId: 2, results: [r('a', 1.0), r('b', 1.0), r('c', 1.0)] }];
    const found = compareRun(block, [r('a', 1.06), r('b', 0.9), r('c', 1.04)], past);
    assert.deepEqual(found.map((f) => [f.variant, f.kind]), [['a', 'regression'], ['b', 'improvement']]);
    assert.equal(found[0]!.baseline, 1.0);
    assert.ok(Math.abs(found[0]!.threshold! - 0.05) < 1e-12);
    const max = compareRun({ ...block, metrics: [{ metric: 'loss', direction: 'max', tolerance: 0.05 }] }, [r('a', 1.06)], past);
    assert.equal(max[0]!.kind, 'improvement');
  });

  test('the baseline is the mean of the latest baselineRuns runs that have the entry', () => {
    const past = [
      { runId: 5, results: [r('a', 2.0)] },
      { runId: 4, results: [r('b', 9.0)] },
      { runId: 3, results: [r('a', 1.0)] },
      { runId: 2, results: [r('a', 100.0)] },
    ];
    const [f] = compareRun(block, [r('a', 3.0)], past);
    assert.equal(f!.baseline, 1.5);
    assert.deepEqual(f!.baselineRuns, [5, 3]);
  });

  test('new entries and unlisted metrics are not compared; absoluteTolerance widens the band', () => {
    assert.deepEqual(compareRun(block, [r('new', 5)], [{ runId: 1, results: [r('a', 1)] }]), []);
    assert.deepEqual(compareRun(block, [r('a', 5, [5], 'acc')], [{ runId: 1, results: [r('a', 1, [1], 'acc')] }]), []);
    const abs = { metrics: [{ metric: 'loss', direction: 'min' as const, tolerance: 0.05, absoluteTolerance: 0.5 }], baselineRuns: 1 };
    assert.deepEqual(compareRun(abs, [r('a', 1.4)], [{ runId: 1, results: [r('a', 1)] }]), []);
    assert.equal(compareRun(abs, [r('a', 1.6)], [{ runId: 1, results: [r('a', 1)] }]).length, 1);
  });

  test('welch: a shift well outside the seeds spread is found, noise is not', () => {
    const welch = { metrics: [{ metric: 'loss', direction: 'min' as const, test: 'welch' as const, alpha: 0.01 }], baselineRuns: 2 };
    const past = [{ runId: 1, results: [r('a', 1.0, [0.99, 1.0, 1.01])] }, { runId: 2, results: [r('a', 1.0, [0.98, 1.0, 1.02])] }];
    const shifted = compareRun(welch, [r('a', 1.2, [1.19, 1.2, 1.21])], past);
    assert.equal(shifted.length, 1);
    assert.equal(shifted[0]!.kind, 'regression');
    assert.ok(shifted[0]!.pValue! < 0.01);
    assert.deepEqual(compareRun(welch, [r('a', 1.005, [0.99, 1.005, 1.02])], past), []);
  });

  test('welchPValue matches scipy.stats.ttest_ind(equal_var=False)', () => {
    // scipy 1.10: ttest_ind([1,2,3,4], [2,4,6,8,10], equal_var=False).pvalue = 0.0691335931923...
    const p = welchPValue([1, 2, 3, 4], [2, 4, 6, 8, 10])!;
    assert.ok(Math.abs(p - 0.0691335931923) < 1e-6, String(p));
    assert.equal(welchPValue([1], [2, 3]), null);
  });
});

describe('schedule timing', () => {
  test('every: units and compounds; bad ones name the field', () => {
    assert.equal(parseEvery('6h'), 6 * 3600_000);
    assert.equal(parseEvery('1h30m'), 5400_000);
    assert.equal(parseEvery('2s'), 2000);
    assert.throws(() => parseEvery('6 hours'), /every: must be a duration like 30m, 6h/);
    assert.throws(() => parseEvery('0s'), /every: must be at least 1s/);
    assert.throws(() => parseEvery('400d'), /every: must be at most 366d/);
  });
  test('cron: five fields with ranges, lists, steps and names; bad ones say which field', () => {
    assert.equal(parseCron(' 0  3 * * * '), '0 3 * * *');
    assert.equal(parseCron('*/15 9-17 * jan-jun mon,fri'), '*/15 9-17 * jan-jun mon,fri');
    assert.equal(parseCron('@daily'), '@daily');
    assert.throws(() => parseCron('0 3 * *'), /cron: must have 5 fields .* not 4/);
    assert.throws(() => parseCron('60 3 * * *'), /field 1 \(minute\) "60": 60 is out of range 0-59/);
    assert.throws(() => parseCron('0 24 * * *'), /field 2 \(hour\) "24": 24 is out of range 0-23/);
    assert.throws(() => parseCron('0 3 * foo *'), /field 4 \(month\) "foo": "foo" is not a number or a name/);
    assert.throws(() => parseCron('*/0 * * * *'), /step after \/ must be a positive whole number/);
    assert.throws(() => parseCron('@every 5m'), /unknown macro/);
    assert.throws(() => parseTiming({}), /give exactly one of cron and every/);
  });
});

describe('schedule block and webhook', () => {
  const base = { name: 's', kind: 'k', schedule: { metrics: [{ metric: 'loss', direction: 'min' }] } };
  const issues = (schedule: unknown) => {
    try {
      parseSweepSpecShape({ ...base, schedule });
      return [];
    } catch (err) {
      assert.ok(err instanceof SpecError);
      return err.issues.map((i) => `${i.path}: ${i.message}`);
    }
  };

  test('the block is strict and refuses bad webhooks, overlaps and metric rules with the path', () => {
    assert.deepEqual(issues(base.schedule), []);
    assert.deepEqual(issues({ ...base.schedule, colour: 1 }), ['schedule.colour: unknown key']);
    assert.deepEqual(issues({ ...base.schedule, overlap: 'allow-all' }).length, 1);
    assert.match(issues({ ...base.schedule, webhook: 'ftp://x/y' })[0]!, /^schedule\.webhook: must be an http or https URL/);
    assert.match(issues({ ...base.schedule, webhook: 'https://u:p@x/y' })[0]!, /^schedule\.webhook: must not carry credentials/);
    assert.match(issues({ metrics: [{ metric: 'loss', direction: 'down' }] })[0]!, /^schedule\.metrics\[0\]\.direction/);
    assert.match(issues({ metrics: [{ metric: 'loss', direction: 'min', test: 'welch', tolerance: 0.1 }] })[0]!, /^schedule\.metrics\[0\]\.test: give either test or tolerance/);
    assert.match(issues({ metrics: [{ metric: 'a', direction: 'min' }, { metric: 'a', direction: 'max' }] })[0]!, /^schedule\.metrics\[1\]\.metric: duplicate metric "a"/);
  });

  test('internal addresses are recognised; a webhook to one is refused unless allowed', async () => {
    for (const a of ['127.0.0.1', '10.1.2.3', '172.20.0.1', '192.168.1.1', '169.254.169.254', '::1', 'fd00::1', '::ffff:127.0.0.1', '0.0.0.0']) assert.ok(isInternalAddress(a), a);
    for (const a of ['8.8.8.8', '172.32.0.1', '2001:4860::8888']) assert.ok(!isInternalAddress(a), a);
    let hits = 0;
    const srv = http.createServer((_q, s) => (hits++, s.end('ok')));
    await new Promise<void>((res) => srv.listen(0, '127.0.0.1', res));
    const url = `http://127.0.0.1:${(srv.address() as AddressInfo).port}/h`;
    try {
      await assert.rejects(postWebhook(url, '{}'), (e: Error & { retryable?: boolean }) => /internal address/.test(e.message) && e.retryable === false);
      assert.equal(hits, 0);
      assert.equal(await postWebhook(url, '{}', { allowInternal: true }), 200);
      assert.equal(hits, 1);
    } finally {
      srv.closeAllConnections();
      srv.close();
    }
  });

  test('the address is checked on the connection itself: a rebinding name cannot reach the worker', async () => {
    let hits = 0;
    const srv = http.createServer((_q, s) => (hits++, s.end('ok')));
    await new Promise<void>((res) => srv.listen(0, '127.0.0.1', res));
    const port = (srv.address() as AddressInfo).port;
    // A rebinding DNS server answers a public address to a check made before the request and
    // loopback to the connection's own lookup. The check must therefore be in the connection's
    // lookup (one resolution, checked and used): this one always answers loopback and counts.
    const asked: string[] = [];
    const rebinding: Lookup = (hostname, options, callback) => {
      asked.push(hostname);
      if (options.all) callback(null, [{ address: '127.0.0.1', family: 4 }]);
      else callback(null, '127.0.0.1', 4);
    };
    try {
      await assert.rejects(
        postWebhook(`http://hooks.example.test:${port}/h`, '{}', { lookup: rebinding, timeoutMs: 5000 }),
        (e: Error & { retryable?: boolean }) => /internal address/.test(e.message) && e.retryable === false,
      );
      assert.equal(hits, 0);
      assert.deepEqual(asked, ['hooks.example.test'], 'one resolution, the one the connection used');
      // The same lookup connects when internal addresses are allowed: it is the connection's own.
      assert.equal(await postWebhook(`http://hooks.example.test:${port}/h`, '{}', { lookup: rebinding, allowInternal: true }), 200);
      assert.equal(hits, 1);
    } finally {
      srv.closeAllConnections();
      srv.close();
    }
  });

  test('the body is bounded whatever the number of findings', () => {
    const finding = { kind: 'regression' as const, variant: 'v'.repeat(500), rung: 'r', metric: 'loss', direction: 'min' as const, value: 2, baseline: 1, method: 'tolerance' as const, threshold: 0.05, pValue: null };
    const body = webhookBody({ schedule: 's', project: 'p', run: 1, sweep: 'x', codeVersion: 'c', regressions: 5000, improvements: 0, findings: Array(5000).fill(finding) });
    assert.ok(Buffer.byteLength(body) <= MAX_WEBHOOK_BODY_BYTES);
    const parsed = JSON.parse(body);
    assert.equal(parsed.findings.length + parsed.omitted, 5000);
    assert.ok(parsed.findings.length > 0);
  });
});
