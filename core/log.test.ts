import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { describe, it } from 'node:test';
import { createLogger } from './log';

function capture() {
  const lines: Record<string, unknown>[] = [];
  const destination = new Writable({
    write(chunk, _enc, done) {
      for (const line of String(chunk).split('\n').filter(Boolean)) lines.push(JSON.parse(line));
      done();
    },
  });
  return { lines, destination };
}

describe('createLogger', () => {
  it('writes one JSON line per event with component, level, message and fields', () => {
    const { lines, destination } = capture();
    const log = createLogger('worker', { destination });
    log.info('trial started', { trialId: 't1', attempt: 2 });
    log.error('it broke', { error: new Error('boom') });
    assert.equal(lines.length, 2);
    assert.deepEqual([lines[0]!.component, lines[0]!.level, lines[0]!.msg, lines[0]!.trialId, lines[0]!.attempt], ['worker', 'info', 'trial started', 't1', 2]);
    assert.match(String(lines[0]!.time), /^\d{4}-\d\d-\d\dT/);
    assert.deepEqual(lines[1]!.error, { name: 'Error', message: 'boom' });
  });

  it('redacts fields named like secrets at any depth, and keeps a __proto__ field a field', () => {
    const { lines, destination } = capture();
    const log = createLogger('api', { destination });
    const hostile = JSON.parse('{"__proto__": {"polluted": true}, "apiToken": "tok"}');
    log.warn('request', { token: 's3cret', ingestSecret: 'x', headers: { Authorization: 'Bearer abc', accept: 'json' }, list: [{ password: 'p' }], hostile });
    const text = JSON.stringify(lines);
    for (const secret of ['s3cret', 'Bearer abc', '"tok"', '"p"']) assert.ok(!text.includes(secret), `${secret} leaked: ${text}`);
    const line = lines[0]!;
    assert.equal(line.token, '[redacted]');
    assert.equal(line.ingestSecret, '[redacted]');
    assert.deepEqual(line.headers, { Authorization: '[redacted]', accept: 'json' });
    assert.deepEqual(line.list, [{ password: '[redacted]' }]);
    assert.equal(({} as Record<string, unknown>).polluted, undefined);
  });

  it('quiet keeps warnings and errors only', () => {
    const { lines, destination } = capture();
    const log = createLogger('cli', { quiet: true, destination });
    log.info('chatter');
    log.warn('careful');
    assert.deepEqual(lines.map((l) => l.msg), ['careful']);
  });
});
