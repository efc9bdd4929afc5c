import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { formatAgainst, formatInterval, formatMeanStd, formatNumber, formatScale, formatShare, NO_VALUE } from './format';

describe('number formatting (one rule for CLI, analyses and dashboard)', () => {
  it('uses significant digits, and a short exponent form from 1e4 up and below 1e-3', () => {
    assert.deepEqual(
      [3.60214, 350, 0.5, 1500, 1e6, 12345678, 0.000262, -1.5e-5, 0].map((v) => formatNumber(v)),
      ['3.602', '350', '0.5', '1500', '1e6', '1.235e7', '2.62e-4', '-1.5e-5', '0'],
    );
  });

  it('decides the form on the rounded value (9999.6 reads 1e4, like 10000)', () => {
    assert.equal(formatNumber(9999.6), '1e4');
    assert.equal(formatNumber(10000), '1e4');
    assert.equal(formatNumber(0.00099996), '0.001');
  });

  it('prints no value as one placeholder', () => {
    for (const v of [null, undefined, Number.NaN, Number.POSITIVE_INFINITY]) assert.equal(formatNumber(v), NO_VALUE);
    assert.equal(formatMeanStd(null, 1), NO_VALUE);
    assert.equal(formatInterval(null), NO_VALUE);
    assert.equal(formatShare(Number.NaN), NO_VALUE);
  });

  it('formats scales, spreads, intervals and shares with the same rule', () => {
    assert.deepEqual([1e8, 3e5, 350, 1500].map(formatScale), ['1e8', '3e5', '350', '1500']);
    assert.equal(formatMeanStd(3.60214, 0.01234), '3.602 ± 0.012');
    assert.equal(formatMeanStd(2e6, null), '2e6');
    assert.equal(formatInterval([2.2512, 2.3849]), '[2.25, 2.38]');
    assert.deepEqual([0.337, 0.004, 0].map(formatShare), ['34%', '0.4%', '0%']);
  });
  it('prints a value beside its bound with enough digits to keep it on its side', () => {
    // Two digits would print 0.9 for all three: "R² 0.9 < 0.9" misleads.
    assert.equal(formatAgainst(0.896, 0.9), '0.896');
    assert.equal(formatAgainst(0.8999, 0.9), '0.8999');
    assert.equal(formatAgainst(0.9004, 0.9), '0.9004');
    assert.equal(formatAgainst(0.9, 0.9), '0.9');
    assert.equal(formatAgainst(0.5, 0.9), '0.5'); // far from the bound: the usual two digits
    assert.equal(formatAgainst(0.734, 0.9), '0.73');
    assert.equal(formatAgainst(-0.42, 0), '-0.42');
  });
});
