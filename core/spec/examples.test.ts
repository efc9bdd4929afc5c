import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { planSweep, seedList } from './planner';
import { parseSweepSpec, parseSweepSpecText } from './spec';
import { prepareSpecFile } from './workdir';

const EXAMPLES = path.resolve(__dirname, '..', '..', 'examples');

describe('example specs', () => {
  const files = fs.readdirSync(EXAMPLES).filter((f) => /\.ya?ml$/.test(f));
  it('exist', () => assert.ok(files.includes('demo.yaml'), 'examples/demo.yaml is what `npm run demo` runs'));
  for (const file of files) {
    it(`${file} is a valid spec that plans at least one trial`, () => {
      const spec = parseSweepSpecText(fs.readFileSync(path.join(EXAMPLES, file), 'utf8'));
      assert.ok(planSweep(spec, 'example').trials.length > 0);
    });
  }
  // A demo sweep exists to show a verdict: a ranking needs variants, an interval needs two seeds,
  // and a fit to extrapolate from needs three numeric rungs.
  for (const file of files.filter((f) => /^demo(-.*)?\.ya?ml$/.test(f))) {
    it(`${file} can end in a full verdict (≥ 4 variants, ≥ 2 seeds, ≥ 3 numeric rungs, an analysis metric)`, () => {
      const spec = parseSweepSpecText(fs.readFileSync(path.join(EXAMPLES, file), 'utf8'));
      const plan = planSweep(spec, 'example');
      assert.ok(plan.variants.length >= 4, `${plan.variants.length} variants`);
      assert.ok(seedList(spec).length >= 2, `${seedList(spec).length} seed(s)`);
      assert.ok(plan.rungs.filter((r) => typeof r.value === 'number').length >= 3, 'fewer than 3 numeric rungs');
      assert.ok(spec.analysis?.metric, 'no analysis metric');
    });
  }
});

describe('bring-your-own-job example specs (examples/byo)', () => {
  const dir = path.join(EXAMPLES, 'byo');
  const files = fs.readdirSync(dir).filter((f) => /\.ya?ml$/.test(f));
  it('include the PyTorch and the shell example', () => assert.deepEqual(files.sort(), ['digits.yaml', 'shell.yaml']));
  for (const file of files) {
    it(`${file} is a command spec whose workdir exists and whose trials climb ≥ 2 rungs with promotion`, () => {
      const specFile = path.join(dir, file);
      const spec = parseSweepSpec(prepareSpecFile(fs.readFileSync(specFile, 'utf8'), specFile));
      assert.equal(spec.kind, 'command');
      assert.ok(spec.workdir && fs.existsSync(path.join(spec.workdir, spec.command![1]!)), `${spec.command![1]} not in ${spec.workdir}`);
      assert.match(spec.workdirVersion ?? '', /^sha256:/);
      const plan = planSweep(spec, 'example');
      assert.ok(plan.rungs.length >= 2 && spec.promotion, 'a ladder needs rungs and a promotion rule');
    });
  }
});
