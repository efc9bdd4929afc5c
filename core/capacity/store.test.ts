import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parseScenario } from '../../loadtests/capacity/scenario';
import { withoutSecrets } from './store';

describe('stored capacity scenarios', () => {
  it('keep header names but never their values (a credential for the user\'s own service)', () => {
    const scenario = parseScenario({
      name: 'own-service',
      scenario: 'http',
      http: { url: 'http://127.0.0.1:9/predict', headers: { Authorization: 'Bearer s3cret-token', 'X-Trace': 'on' } },
      load: { rate: 5, duration: '1s' },
    });
    const stored = JSON.stringify(withoutSecrets(scenario));
    assert.doesNotMatch(stored, /s3cret-token/);
    assert.deepEqual(Object.keys(withoutSecrets(scenario).http!.headers), ['Authorization', 'X-Trace']);
    assert.equal(scenario.http!.headers.Authorization, 'Bearer s3cret-token', 'the scenario the generators use is untouched');
  });
});
