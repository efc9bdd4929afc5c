/** The cross-process lock: exclusion, and take-over of a lock whose holder was killed. */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, describe, it } from 'node:test';
import { acquireFileLock, withFileLock } from './lock';

const root = fs.mkdtempSync(path.join(os.tmpdir(), 'ladder-lock-'));
after(() => fs.rmSync(root, { recursive: true, force: true }));

/** A process that takes the lock, says so, then is SIGKILLed (no chance to release). */
function killedHolder(target: string, staleMs: number): Promise<void> {
  const code = `
    const { acquireFileLock } = require(${JSON.stringify(path.join(__dirname, 'lock.ts'))});
    acquireFileLock(${JSON.stringify(target)}, { timeoutMs: 10000, staleMs: ${staleMs} }).then(() => {
      process.stdout.write('locked\\n', () => process.kill(process.pid, 'SIGKILL'));
    });`;
  const child = spawn(process.execPath, ['--import', 'tsx', '-e', code], { stdio: ['ignore', 'pipe', 'inherit'] });
  return new Promise((resolve, reject) => {
    let out = '';
    child.stdout.on('data', (d) => (out += d));
    child.on('exit', (_code, signal) => (signal === 'SIGKILL' && out.includes('locked') ? resolve() : reject(new Error(`holder: ${signal} ${out}`))));
  });
}

describe('file lock (proper-lockfile)', () => {
  it('excludes a second holder until released', async () => {
    const target = path.join(root, 'a');
    const release = (await acquireFileLock(target, { timeoutMs: 1000 }))!;
    await assert.rejects(acquireFileLock(target, { timeoutMs: 300, pollMs: 20 }), /timed out .* waiting for lock .*a\.lock/);
    await release();
    const again = await acquireFileLock(target, { timeoutMs: 1000 });
    assert.ok(again);
    await again();
    assert.equal(fs.existsSync(`${target}.lock`), false, 'released');
  });

  it('serialises concurrent callers in one process', async () => {
    const target = path.join(root, 'b');
    let inside = 0;
    let most = 0;
    await Promise.all(
      Array.from({ length: 5 }, () =>
        withFileLock(target, { timeoutMs: 20_000, pollMs: 10 }, async () => {
          most = Math.max(most, ++inside);
          await new Promise((r) => setTimeout(r, 20));
          inside--;
        }),
      ),
    );
    assert.equal(most, 1);
  });

  it('ends the wait without the lock when done() says the holder did the work', async () => {
    const target = path.join(root, 'c');
    const release = (await acquireFileLock(target, { timeoutMs: 1000 }))!;
    assert.equal(await acquireFileLock(target, { timeoutMs: 5000, done: () => true }), undefined);
    await release();
  });

  it('takes over a lock left by a killed process once it is stale', { timeout: 60_000 }, async () => {
    const target = path.join(root, 'd');
    await killedHolder(target, 2000);
    assert.ok(fs.existsSync(`${target}.lock`), 'the dead holder left its lock behind');
    const t0 = Date.now();
    const release = await acquireFileLock(target, { timeoutMs: 30_000, staleMs: 2000, pollMs: 50 });
    assert.ok(release, 'taken over');
    await release();
    console.log(`# took over a dead holder's lock after ${Date.now() - t0} ms`);
  });
});
