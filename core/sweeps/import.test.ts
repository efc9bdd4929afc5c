/** Parsing of imported results (no database: importSweep's storing is covered by cli/cli.test.ts). */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ImportError, parseImportCsv, parseImportJson } from './import';

function problems(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    assert.ok(err instanceof ImportError, String(err));
    return err.problems.join(' | ');
  }
  assert.fail('expected an ImportError');
}

describe('parseImportCsv', () => {
  it('reads quoted cells: commas, doubled quotes, and line breaks inside a cell', () => {
    const text = [
      '# exported from a notebook',
      'variant,scale,seed,loss,note',
      '"base, v2",1e6,0,2.5,"said ""hi"""',
      '',
      '"multi',
      'line",2e6,1,2.25,"a',
      'b"',
      'plain,4e6,2,,x#y',
    ].join('\r\n');
    const rows = parseImportCsv(text.replace(',note', ',acc').replace(',"said ""hi"""', ',0.5').replace(',"a\r\nb"', ',"0.75\r\n"').replace(',x#y', ',0.9'));
    assert.deepEqual(
      rows.map((r) => [r.variant, r.scale, r.seed, { ...r.metrics }]),
      [
        ['base, v2', 1e6, 0, { loss: 2.5, acc: 0.5 }],
        ['multi\r\nline', 2e6, 1, { loss: 2.25, acc: 0.75 }],
        ['plain', 4e6, 2, { acc: 0.9 }],
      ],
    );
    // A '#' inside a cell is not a comment: the cell is read whole (and is not a number here).
    assert.equal(
      problems(() => parseImportCsv(text)),
      'row 2, column note: "said \\"hi\\"" is not a number | row 3, column note: "a\\r\\nb" is not a number | row 4, column note: "x#y" is not a number',
    );
  });

  it('names the row of a wrong cell count, counting a multi-line record once', () => {
    const text = 'variant,scale,seed,loss\n"a\nb",1,0,1\nc,2,0\n';
    assert.equal(problems(() => parseImportCsv(text)), 'row 3: 3 cells, the header has 4');
  });

  it('refuses an unclosed quote, a repeated column, a header without metric or required keys', () => {
    assert.match(problems(() => parseImportCsv('variant,scale,seed,loss\n"a,1,0,1\n')), /not valid CSV: Quote Not Closed/);
    assert.match(problems(() => parseImportCsv('variant,scale,seed,loss,loss\na,1,0,1,2\n')), /names loss more than once/);
    assert.match(problems(() => parseImportCsv('variant,scale,seed\na,1,0\n')), /no metric column/);
    assert.match(problems(() => parseImportCsv('variant,seed,loss\na,0,1\n')), /missing: scale/);
    assert.match(problems(() => parseImportCsv('# only a comment\n\n')), /the file is empty/);
  });

  it('keeps a hostile column name as a metric name, not an object property', () => {
    const [row] = parseImportCsv('variant,scale,seed,__proto__\na,1,0,3\n');
    assert.equal(Object.getPrototypeOf(row!.metrics), null);
    assert.equal(row!.metrics['__proto__'], 3);
    assert.deepEqual(Object.keys(row!.metrics), ['__proto__']);
  });
});

describe('parseImportJson', () => {
  it('reads records and reports bad cells with row and column', () => {
    const rows = parseImportJson('[{"variant":"a","scale":1,"seed":0,"loss":1.5}]');
    assert.deepEqual({ ...rows[0]!.metrics }, { loss: 1.5 });
    assert.match(problems(() => parseImportJson('[{"variant":"a","scale":-1,"seed":0,"loss":1}]')), /row 1, column scale/);
  });
});
