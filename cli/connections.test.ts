import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, it } from 'node:test';
import { cliPython } from './connections';

describe('cliPython: which Python a CLI command runs jobs/ with', () => {
  const saved = { LADDER_PYTHON: process.env.LADDER_PYTHON, LADDER_STATE_DIR: process.env.LADDER_STATE_DIR };
  afterEach(() => {
    for (const [k, v] of Object.entries(saved)) {
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
    }
  });

  const stateWith = (python: string, pid = process.pid) => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ladder-state-'));
    const stack = { databaseUrl: 'postgres://x@127.0.0.1/x', temporalAddress: '127.0.0.1:1', namespace: 'default', taskQueue: 'q', apiUrl: 'http://127.0.0.1:1', pid, appPid: pid, python };
    fs.writeFileSync(path.join(dir, 'stack.json'), JSON.stringify(stack));
    return dir;
  };

  it("takes LADDER_PYTHON first, then the running stack's (a terminal of `ladder dev` sets neither)", async () => {
    process.env.LADDER_STATE_DIR = stateWith('/opt/stack-env/bin/python');
    process.env.LADDER_PYTHON = '/usr/bin/explicit-python';
    assert.equal(await cliPython(), '/usr/bin/explicit-python');
    delete process.env.LADDER_PYTHON;
    assert.equal(await cliPython(), '/opt/stack-env/bin/python');
  });
});
