import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, describe, it } from 'node:test';

import { aLaunch, waitForTerminal } from '../../test/executor-contract';
import { LocalExecutor } from './local';

describe('local executor: the ingest token on disk', () => {
  const runRoot = fs.mkdtempSync(path.join(os.tmpdir(), 'ladder-local-secrets-'));
  after(() => fs.rmSync(runRoot, { recursive: true, force: true }));
  // The job itself does not matter here: `true` stands in for python and exits at once.
  const executor = new LocalExecutor({ runRoot, python: '/bin/true', gpus: [], killGraceMs: 1_000 });
  const mode = (p: string) => fs.statSync(p).mode & 0o777;

  it('writes launch.json 0600 in a 0700 folder, whatever the umask and leftovers', async () => {
    const launch = aLaunch().withEnv({ LADDER_INGEST_TOKEN: 'lt2.secret-token' }).build();
    const dir = executor.execDir(launch.executionId);
    // Leftovers of an older version or a crashed submit: a world-readable folder and temp file.
    fs.mkdirSync(dir, { recursive: true, mode: 0o755 });
    fs.chmodSync(dir, 0o755);
    fs.writeFileSync(path.join(dir, `launch.json.${process.pid}.tmp`), '', { mode: 0o644 });
    const umask = process.umask(0o000);
    try {
      const ref = await executor.submit(launch);
      await waitForTerminal(executor, ref);
    } finally {
      process.umask(umask);
    }
    const file = path.join(dir, 'launch.json');
    assert.match(fs.readFileSync(file, 'utf8'), /lt2\.secret-token/, 'the test looks at the file that holds the token');
    assert.equal(mode(file).toString(8), '600');
    assert.equal(mode(dir).toString(8), '700');
  });
});
