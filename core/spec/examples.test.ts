import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { planSweep } from './planner';
import { parseSweepSpecText } from './spec';

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
});
