/** Pure parts of the terminal output: durations, the live progress parts, failure reports, log follow. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { attemptRef, clampTail, lastLines, LOG_TAIL_DEFAULT_BYTES, LOG_TAIL_MAX_BYTES, LogRequestError } from '../core/trials/logs';
import { estimateEtaSeconds } from '../core/sweeps/live';
import type { ExecutionStatus, Executor } from '../workers/executors/types';
import { reportFailedAttempts } from './failure-line';
import { analyzeSweep } from '../core/analysis/sweep-analysis';
import type { Observation } from '../core/analysis/types';
import { formatNumber } from '../core/format';
import { formatAnalysis, formatDuration, formatFailures, formatLeaderboard, formatLiveParts } from './format';
import { newPart } from './logs';

describe('terminal formatting', () => {
  it('formats wall durations', () => {
    assert.deepEqual([0, 42.4, 185, 7620].map(formatDuration), ['0s', '42s', '3m05s', '2h07m']);
  });

  it('shows elapsed time, a wall-clock ETA and the running trials’ latest step', () => {
    const now = new Date(2026, 0, 1, 12, 0, 0);
    const text = formatLiveParts(
      { elapsedSeconds: 65, etaSeconds: 130, running: [{ trialId: 't1', variantName: 'lr=0.1', step: 7 }, { trialId: 't2', variantName: 'lr=0.2', step: null }], runningTotal: 5 },
      now,
    );
    assert.equal(text, 'elapsed 1m05s · ETA ~2m10s (12:02:10) · running: lr=0.1 step 7, lr=0.2 step – +3');
    assert.equal(formatLiveParts({ elapsedSeconds: null, etaSeconds: null, running: [], runningTotal: 0 }, now), '');
  });

  it('estimates the wall time left in waves of `concurrency` trials', () => {
    assert.equal(estimateEtaSeconds(5, 2, 10), 30);
    assert.equal(estimateEtaSeconds(4, 4, 10), 10);
    assert.equal(estimateEtaSeconds(3, 2, null), null);
    assert.equal(estimateEtaSeconds(0, 2, null), 0);
  });

  it('says once, in one line, that a job attempt failed, why, and its last log line', async () => {
    let state: ExecutionStatus = { state: 'running' };
    const inner: Executor = {
      name: 'fake',
      submit: async () => ({ executor: 'fake', executionId: 's-r0-v0-s0-a2', handle: {} }),
      status: async () => state,
      cancel: async () => {},
      logs: async () => 'step 1\nTraceback (most recent call last):\nValueError: boom\n',
    };
    const lines: string[] = [];
    const wrapped = reportFailedAttempts(inner, (l) => lines.push(l));
    const ref = await wrapped.submit({} as never);
    await wrapped.status(ref);
    assert.deepEqual(lines, []);
    state = { state: 'failed', reason: 'exit 1', retryable: true };
    await wrapped.status(ref);
    await wrapped.status(ref);
    assert.deepEqual(lines, ['✗ trial s-r0-v0-s0 attempt 2 failed: exit 1 (retryable) — ValueError: boom  [ladder logs s-r0-v0-s0]']);
    assert.equal(await wrapped.logs!(ref, 10), await inner.logs!(ref, 10));
  });

  it('lists failed trials with reason and log lines, and says how many are not shown', () => {
    const base = { variantName: 'v', rungName: 'r0', seed: 0, attempts: 2, maxAttempts: 2, reason: 'exit 1' };
    const text = formatFailures(
      [
        { ...base, trialId: 'a', log: ['Traceback', 'ValueError: boom'] },
        { ...base, trialId: 'b', log: null, logNote: 'the simulated executor keeps no log readable from here' },
      ],
      7,
    );
    assert.equal(
      text,
      [
        'failed trials: 7 (newest 2 shown)',
        '✗ a (v, r0, seed 0) failed after 2/2 attempts: exit 1',
        '    | Traceback',
        '    | ValueError: boom',
        '✗ b (v, r0, seed 0) failed after 2/2 attempts: exit 1',
        '    (the simulated executor keeps no log readable from here)',
        'full log: ladder logs TRIAL [--attempt N]',
      ].join('\n'),
    );
    assert.equal(formatFailures([], 0), '');
  });
});

describe('one number format for `results` and `analyze`', () => {
  // Values that once printed differently: 1000000 in one table, 1.00e+6 in another.
  const values: [number, string][] = [
    [1e6, '1e6'],
    [1234567, '1.235e6'],
    [0.000262, '2.62e-4'],
    [3.60214, '3.602'],
    [42, '42'],
  ];
  const variants = values.map((_, i) => `v${i}`);
  const observations: Observation[] = variants.flatMap((variant, v) =>
    [1e6, 1e7, 1e8].flatMap((scale) => [0, 1].map((seed) => ({ variant, scale, seed, value: 2 + 40 * scale ** -0.3 + 0.05 * v + 0.001 * seed }))),
  );
  const analysis = analyzeSweep({ observations, mode: 'min', metric: 'loss', target: 1e9, bootstrap: { consistency: 20, extrapolation: 20 } });
  // The same value in both outputs: a leaderboard mean and an extrapolated prediction.
  values.forEach(([value], i) => {
    const e = analysis.extrapolations[variants[i]!]!;
    assert.ok(e.ok, `fit of ${variants[i]}`);
    e.prediction = value;
  });
  const results = formatLeaderboard(
    'loss',
    values.map(([value], i) => ({ variantIndex: i, variantName: variants[i]!, rungIndex: 0, rungName: 'r0', mean: value, std: null, count: 1 })),
  );
  const analyze = formatAnalysis(analysis);
  const cell = (text: string, variant: string, column: number) => text.split('\n').find((l) => l.startsWith(`${variant} `))?.trim().split(/\s{2,}/)[column];

  it('prints each value the same in the leaderboard and the extrapolation table', () => {
    values.forEach(([value, printed], i) => {
      assert.equal(formatNumber(value), printed);
      assert.equal(cell(results, variants[i]!, 1), `${printed} (1)`, results);
      assert.equal(cell(analyze, variants[i]!, 2), printed, analyze);
    });
  });

  it('prints scales in the same short form in both (rungs 1e6, 1e7, 1e8)', () => {
    assert.match(analyze, /over rungs 1e6, 1e7, 1e8/);
    assert.doesNotMatch(`${results}\n${analyze}`, /1000000|e\+/);
  });
});

describe('trial logs', () => {
  const trial = { id: 't', attempts: 2, execution: { executor: 'local', executionId: 't-a2', handle: { pid: 5 } } };

  it('finds the latest attempt’s stored reference, rebuilds an earlier one, refuses the rest', () => {
    assert.equal(attemptRef(trial), trial.execution);
    assert.equal(attemptRef(trial, 2), trial.execution);
    assert.deepEqual(attemptRef(trial, 1), { executor: 'local', executionId: 't-a1', handle: {} });
    assert.throws(() => attemptRef(trial, 3), LogRequestError);
    assert.throws(() => attemptRef(trial, 0), LogRequestError);
    assert.throws(() => attemptRef({ id: 'n', attempts: 0, execution: null }), /has not started an attempt yet/);
  });

  it('bounds the tail', () => {
    assert.equal(clampTail(undefined), LOG_TAIL_DEFAULT_BYTES);
    assert.equal(clampTail(10), 10);
    assert.equal(clampTail(1e9), LOG_TAIL_MAX_BYTES);
    assert.throws(() => clampTail(0), /tail must be a positive whole number/);
    assert.throws(() => clampTail(1.5), LogRequestError);
  });

  it('keeps the last non-empty lines', () => {
    assert.deepEqual(lastLines('a\n\nb\r\nc\n', 2), ['b', 'c']);
  });

  it('prints only what a followed log added, also when its tail window slid', () => {
    assert.equal(newPart('abc', 'abcdef'), 'def');
    const prev = `${'x'.repeat(300)}${'0123456789'.repeat(30)}`;
    const next = `${prev.slice(100)}NEW`;
    assert.equal(newPart(prev, next), 'NEW');
    assert.equal(newPart('old', 'unrelated'), 'unrelated');
  });
});
