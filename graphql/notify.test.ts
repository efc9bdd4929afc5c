/** `distinctStates`: what the `sweepProgress` subscription sends for a stream of notifications. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { distinctStates } from './notify';

async function* notifications(n: number, onReturn: () => void) {
  try {
    for (let i = 0; i < n; i++) yield 'sweep';
  } finally {
    onReturn();
  }
}

describe('distinctStates', () => {
  it('sends only states that differ from the last one sent, and ends after the final one', async () => {
    const states = ['running:0', 'running:0', 'running:1', 'running:1', 'running:0', 'done:2', 'done:2', 'running:3'];
    let loads = 0;
    let returned = false;
    const sent: string[] = [];
    for await (const s of distinctStates(
      notifications(states.length, () => (returned = true)),
      async () => states[loads++]!,
      (s) => s,
      (s) => s.startsWith('done'),
    )) {
      sent.push(s);
    }
    assert.deepEqual(sent, ['running:0', 'running:1', 'running:0', 'done:2']);
    assert.equal(loads, 6, 'nothing is loaded after the final state');
    assert.equal(returned, true, 'the notification stream is closed (unsubscribed) at the end');
  });

  it('ends with the notifications when no final state comes', async () => {
    const sent: number[] = [];
    let i = 0;
    for await (const s of distinctStates(notifications(3, () => {}), async () => i++, String, () => false)) sent.push(s);
    assert.deepEqual(sent, [0, 1, 2]);
  });
});
