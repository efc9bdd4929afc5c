/**
 * The chart's values.schema.json refuses values that would render a broken release
 * (`worker.replicas=-1`, a job image without a digest, a typo'd key) and accepts the defaults and
 * every option the deploy test turns on. Checked with a JSON-schema validator (draft-07, as Helm
 * uses), and with Helm itself when the dev stack has built it (`npm run test:k8s` builds it).
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { promisify } from 'node:util';
import Ajv from 'ajv';
import YAML from 'yaml';
import { k8sBinDir, k8sBinariesPresent } from '../stack/k8s/build';

const CHART = path.join(__dirname, 'helm', 'ladder');
const schema = JSON.parse(fs.readFileSync(path.join(CHART, 'values.schema.json'), 'utf8'));
const defaults = YAML.parse(fs.readFileSync(path.join(CHART, 'values.yaml'), 'utf8')) as Record<string, any>;
const validate = new Ajv({ allErrors: true, strict: false }).compile(schema);
const DIGEST = 'sha256:' + 'a'.repeat(64);

/** `base` (the defaults) with `dotted` set to `value`. */
function withValue(dotted: string, value: unknown, base = defaults): Record<string, any> {
  const copy = structuredClone(base);
  const keys = dotted.split('.');
  let at = copy;
  for (const k of keys.slice(0, -1)) at = at[k] ??= {};
  at[keys.at(-1)!] = value;
  return copy;
}

function errors(values: unknown): string {
  return validate(values) ? '' : (validate.errors ?? []).map((e) => `${e.instancePath} ${e.message}`).join('; ');
}

const REFUSED: Array<[string, unknown, RegExp]> = [
  ['worker.replicas', -1, /\/worker\/replicas must be >= 0/],
  ['api.replicas', 1.5, /\/api\/replicas must be integer/],
  ['api.port', 70000, /\/api\/port must be <= 65535/],
  ['jobs.image', 'ghcr.io/x/jobs:latest', /\/jobs\/image must match pattern/],
  ['image.digest', 'sha256:abc', /\/image\/digest must match pattern/],
  ['image.pullPolicy', 'Sometimes', /\/image\/pullPolicy must be equal to one of the allowed values/],
  ['jobs.deletePropagation', 'Orphan', /\/jobs\/deletePropagation must be equal to one of the allowed values/],
  ['worker.replica', 2, /\/worker must NOT have additional properties/],
  ['temporal.address', '', /\/temporal\/address must NOT have fewer than 1 characters/],
  ['loadgen.concurrency', 0, /\/loadgen\/concurrency must be >= 1/],
  ['jobs.nodeSelector', { pool: 1 }, /\/jobs\/nodeSelector\/pool must be string/],
];

describe('chart values schema', () => {
  it('accepts the defaults and every option the deploy test sets', () => {
    assert.equal(errors(defaults), '');
    let all = defaults;
    for (const [k, v] of Object.entries({
      'ingress.enabled': true,
      'ingress.className': 'nginx',
      'temporal.tls.enabled': true,
      'temporal.tls.existingSecret': 'temporal-client-tls',
      'temporal.tls.serverName': 'temporal.example.com',
      'jobs.kueueQueue': 'team-a',
      'jobs.checkpointPvc': 'ckpt',
      'jobs.nodeSelector': { 'nvidia.com/gpu.present': 'true' },
      'jobs.tolerations': [{ key: 'nvidia.com/gpu', operator: 'Exists', effect: 'NoSchedule' }],
      'image.digest': DIGEST,
      'worker.replicas': 0,
      'loadgen.enabled': true,
    })) {
      all = withValue(k, v, all);
    }
    assert.equal(errors(all), '');
  });

  for (const [key, value, why] of REFUSED) {
    it(`refuses ${key}=${JSON.stringify(value)}`, () => {
      assert.match(errors(withValue(key, value)), why);
    });
  }

  const helm = path.join(k8sBinDir(), 'helm');
  const haveHelm = k8sBinariesPresent() && fs.existsSync(helm);
  it('helm template refuses worker.replicas=-1 and renders the defaults', { timeout: 60_000, skip: haveHelm ? false : 'no helm binary (built by `npm run test:k8s`)' }, async () => {
    const run = promisify(execFile);
    await run(helm, ['template', 'ladder', CHART]);
    await assert.rejects(run(helm, ['template', 'ladder', CHART, '--set', 'worker.replicas=-1']), (e: Error & { stderr?: string }) =>
      /worker\/replicas': minimum: got -1, want 0/.test(e.stderr ?? ''),
    );
  });
});
