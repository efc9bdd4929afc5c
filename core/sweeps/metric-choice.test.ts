import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { chooseMetric, specDeclaresMetric } from './metric-choice';

describe('chooseMetric (one rule for the analysis, the CLI and the dashboard)', () => {
  it('takes the analysis block first, then the promotion rule, with its mode', () => {
    const spec = { analysis: { metric: 'acc', mode: 'max' }, promotion: { metric: 'loss', mode: 'min' } };
    assert.deepEqual(chooseMetric(spec, ['loss']), { metric: 'acc', mode: 'max', source: 'analysis' });
    assert.deepEqual(chooseMetric({ promotion: { metric: 'ppl', mode: 'min' } }, ['loss']), { metric: 'ppl', mode: 'min', source: 'promotion' });
    assert.ok(specDeclaresMetric(spec));
  });

  it('falls back to loss, else the alphabetically first reported metric, whatever order they come in', () => {
    assert.deepEqual(chooseMetric({}, []), { metric: 'loss', mode: 'min', source: 'default' });
    assert.deepEqual(chooseMetric({}, ['acc', 'loss']), { metric: 'loss', mode: 'min', source: 'default' });
    assert.equal(chooseMetric({}, ['zeta', 'acc', 'beta']).metric, 'acc');
    assert.equal(chooseMetric({}, ['beta', 'zeta', 'acc']).metric, 'acc');
    assert.equal(specDeclaresMetric({}), false);
  });

  it('reads a spec from the wire defensively: no metric string, no choice from that block', () => {
    assert.equal(chooseMetric({ analysis: { metric: 7 }, promotion: { metric: 'ppl', mode: 'sideways' } }).metric, 'ppl');
    assert.equal(chooseMetric({ analysis: { metric: 7 }, promotion: { metric: 'ppl', mode: 'sideways' } }).mode, 'min');
    for (const spec of [null, 'x', 3, [], { analysis: [] }, { analysis: { metric: '' } }]) assert.equal(chooseMetric(spec).metric, 'loss');
  });
});
