/** The local executor's pure parts: environment allow-list, GPU picking, /proc parsing. */
import assert from 'node:assert/strict';
import * as path from 'node:path';
import { describe, it } from 'node:test';
import type { JobLaunch } from '../types';
import { envNameAllowed, jobEnvironment } from './env';
import { gpuIdsFromNvidiaSmi, pickGpus } from './gpus';
import { livesInGroup, parseProcStat } from './proc';

const launch: JobLaunch = {
  executionId: 't-1-a2',
  trialId: 't-1',
  attempt: 2,
  kind: 'synthetic',
  config: {},
  resources: { gpus: 1, cpu: 2.7, memory: '1Gi' },
  env: { LADDER_INGEST_TOKEN: 'tok', LADDER_ATTEMPT: '2' },
  labels: {},
};

function env(over: Partial<Parameters<typeof jobEnvironment>[0]> = {}): NodeJS.ProcessEnv {
  return jobEnvironment({
    inherited: {
      PATH: '/usr/bin',
      LC_ALL: 'C.UTF-8',
      PYTHONHASHSEED: '0',
      DATABASE_URL: 'postgres://secret',
      AWS_SECRET_ACCESS_KEY: 'k',
      LADDER_INGEST_TOKEN: 'worker-token',
      CUDA_VISIBLE_DEVICES: '0,1',
      PYTHONPATH: '/site',
    },
    extra: new Set(['MY_TOOL_HOME']),
    launch,
    specEnv: { LADDER_TRIAL_ID: 'spoofed', USER_FLAG: '1' },
    jobsDir: '/repo/jobs',
    checkpointDir: '/ck/t-1',
    outputDir: '/run/out',
    gpus: ['1'],
    machineHasGpus: true,
    ...over,
  });
}

describe('local job environment', () => {
  it('inherits only allow-listed names (exact, prefix*, and operator extras)', () => {
    assert.equal(envNameAllowed('PATH', new Set()), true);
    assert.equal(envNameAllowed('LC_ALL', new Set()), true);
    assert.equal(envNameAllowed('PYTHONHASHSEED', new Set()), true);
    assert.equal(envNameAllowed('PATHX', new Set()), false);
    assert.equal(envNameAllowed('DATABASE_URL', new Set()), false);
    assert.equal(envNameAllowed('MY_TOOL_HOME', new Set(['MY_TOOL_HOME'])), true);
    const e = env({ inherited: { PATH: '/b', DATABASE_URL: 'x', MY_TOOL_HOME: '/t' } });
    assert.equal(e.PATH, '/b');
    assert.equal(e.MY_TOOL_HOME, '/t');
    assert.equal('DATABASE_URL' in e, false);
  });

  it("keeps the worker's secrets out and lets the protocol win over the spec", () => {
    const e = env();
    assert.equal('DATABASE_URL' in e, false);
    assert.equal('AWS_SECRET_ACCESS_KEY' in e, false);
    assert.equal(e.LADDER_INGEST_TOKEN, 'tok', "the launch's token, not the worker's");
    assert.equal(e.LADDER_TRIAL_ID, 't-1', 'not the spoofed one');
    assert.equal(e.USER_FLAG, '1');
    assert.equal(e.LADDER_ATTEMPT, '2');
    assert.equal(e.PYTHONPATH, `/repo/jobs${path.delimiter}/site`);
    assert.equal(e.PYTHONUNBUFFERED, '1');
    assert.equal(e.LADDER_CHECKPOINT_DIR, '/ck/t-1');
    assert.equal(e.LADDER_OUTPUT_DIR, '/run/out');
  });

  it('gives math libraries the requested cores unless the worker set them', () => {
    assert.equal(env().OMP_NUM_THREADS, '2');
    assert.equal(env().MKL_NUM_THREADS, '2');
    assert.equal(env({ inherited: { OMP_NUM_THREADS: '8' } }).OMP_NUM_THREADS, '8');
    assert.equal(env({ launch: { ...launch, resources: { ...launch.resources, cpu: 0.5 } } }).OMP_NUM_THREADS, '1');
  });

  it('sets CUDA_VISIBLE_DEVICES to the slot (empty for a CPU job) only on a GPU machine', () => {
    assert.equal(env().CUDA_VISIBLE_DEVICES, '1');
    assert.equal(env().CUDA_DEVICE_ORDER, 'PCI_BUS_ID');
    assert.equal(env({ gpus: [] }).CUDA_VISIBLE_DEVICES, '');
    assert.equal('CUDA_VISIBLE_DEVICES' in env({ gpus: [], machineHasGpus: false }), false);
  });
});

describe('local GPU slots', () => {
  it('picks the first free ids', () => {
    assert.deepEqual(pickGpus(['0', '1', '2', '3'], new Set(['0', '2']), 2, 'e'), { ok: true, gpus: ['1', '3'] });
    assert.deepEqual(pickGpus(['0', '1'], new Set(), 1, 'e'), { ok: true, gpus: ['0'] });
  });

  it('says why when it cannot', () => {
    const tooMany = pickGpus(['0', '1'], new Set(), 3, 'exec-9');
    assert.equal(tooMany.ok, false);
    assert.match(!tooMany.ok ? tooMany.error : '', /exec-9 needs 3 GPU\(s\) but this machine has only 2/);
    const busy = pickGpus(['0', '1'], new Set(['1']), 2, 'exec-9');
    assert.match(!busy.ok ? busy.error : '', /needs 2, 1 of 2 free \(in use: 1\); retry later/);
  });

  it('counts nvidia-smi -L lines', () => {
    const out = 'GPU 0: NVIDIA H100 (UUID: GPU-a)\nGPU 1: NVIDIA H100 (UUID: GPU-b)\n  MIG 1g.10gb Device 0: (UUID: MIG-c)\n';
    assert.deepEqual(gpuIdsFromNvidiaSmi(out), ['0', '1']);
    assert.deepEqual(gpuIdsFromNvidiaSmi(''), []);
  });
});

describe('/proc parsing', () => {
  it('reads state and process group, whatever the command name holds', () => {
    assert.deepEqual(parseProcStat('4242 (python) S 1 4242 4242 0 -1 4194560'), ['S', 4242]);
    assert.deepEqual(parseProcStat('77 (a (weird) name) ) Z 1 70 70 0'), ['Z', 70]);
    assert.deepEqual(parseProcStat('9 (sh) R 1 9'), ['R', 9]);
    assert.equal(parseProcStat('garbage'), undefined);
    assert.equal(parseProcStat('9 (sh) R'), undefined);
  });

  it('counts neither zombies nor dead processes nor other groups as alive', () => {
    assert.equal(livesInGroup(['S', 70], 70), true);
    assert.equal(livesInGroup(['R', 70], 70), true);
    assert.equal(livesInGroup(['Z', 70], 70), false);
    assert.equal(livesInGroup(['X', 70], 70), false);
    assert.equal(livesInGroup(['S', 71], 70), false);
    assert.equal(livesInGroup(undefined, 70), false);
  });
});
