/** `ladder schedule …` as a user runs it: a separate process; bad timing refused before any connection. */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { formatHistory } from './schedule';
import { createTestStack, REPO_ROOT, type TestStack } from '../test/harness';

interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Temporal schedule ids are namespace-wide: names unique to this run keep parallel or leftover runs apart. */
const SFX = randomBytes(3).toString('hex');
const CLI = `nightly-cli-${SFX}`;
const CRON = `nightly-cron-${SFX}`;

const SPEC = `name: ${CLI}
kind: synthetic
base: { steps: 5 }
seeds: 1
schedule:
  metrics:
    - { metric: loss, direction: min, tolerance: 0.05 }
`;

describe('ladder schedule', { timeout: 180_000 }, () => {
  let stack: TestStack;
  let tmp: string;
  let specFile: string;

  before(async () => {
    stack = await createTestStack('cli_sched');
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'ladder-cli-sched-'));
    specFile = path.join(tmp, 'nightly.yaml');
    fs.writeFileSync(specFile, SPEC);
  });
  after(async () => {
    await stack?.close();
    if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
  });

  function ladder(args: string[], withStack = true): Promise<CliResult> {
    const env: NodeJS.ProcessEnv = { PATH: process.env.PATH, HOME: process.env.HOME, LADDER_STATE_DIR: tmp, LADDER_CODE_VERSION: 'cli-sched' };
    if (withStack) Object.assign(env, { DATABASE_URL: stack.databaseUrl, TEMPORAL_ADDRESS: stack.temporalAddress, LADDER_TASK_QUEUE: stack.taskQueue });
    return new Promise((resolve) => {
      execFile(process.execPath, [path.join(REPO_ROOT, 'cli', 'bin.js'), ...args], { env }, (err, stdout, stderr) => {
        resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr });
      });
    });
  }

  it('refuses bad --cron / --every with the option and the reason, before connecting to anything', async () => {
    const cases: [string[], RegExp][] = [
      [['--cron', '0 25 * * *'], /--cron: field 2 \(hour\) "25": 25 is out of range 0-23/],
      [['--cron', '0 3 * *'], /--cron: must have 5 fields/],
      [['--every', '6 hours'], /--every: must be a duration like 30m, 6h, 1d or 1h30m/],
      [['--every', '0m'], /--every: must be at least 1s/],
      [['--every', '6h', '--cron', '@daily'], /give exactly one of cron and every/],
      [[], /give exactly one of cron and every/],
      [['--every', '6h', '--name', 'Bad Name'], /--name: must be 1-63 lowercase letters/],
    ];
    await Promise.all(
      cases.map(async ([args, message]) => {
        // No stack in the environment: reaching a connection would fail differently.
        const res = await ladder(['schedule', 'create', specFile, ...args], false);
        assert.equal(res.code, 2, `${args.join(' ')}: ${res.stderr}`);
        assert.match(res.stderr, message);
        assert.equal(res.stderr.trim().split('\n').length, 1, res.stderr);
      }),
    );
    const noBlock = path.join(tmp, 'plain.yaml');
    fs.writeFileSync(noBlock, 'name: plain\nkind: synthetic\n');
    const res = await ladder(['schedule', 'create', noBlock, '--every', '6h'], false);
    assert.equal(res.code, 2);
    assert.match(res.stderr, /schedule: a scheduled sweep needs a schedule block/);
  });

  it('create --every 6h, list, pause, resume, delete against a real stack', async () => {
    const created = await ladder(['schedule', 'create', specFile, '--every', '6h', '--json']);
    assert.equal(created.code, 0, created.stderr);
    assert.deepEqual(JSON.parse(created.stdout), { id: CLI, project: 'default', cron: null, every: '6h', paused: false });
    const cron = await ladder(['schedule', 'create', specFile, '--cron', '0 3 * * *', '--name', CRON]);
    assert.equal(cron.code, 0, cron.stderr);
    assert.match(cron.stdout, new RegExp(`schedule ${CRON} created \\(cron "0 3 \\* \\* \\*"\\)`));
    const dup = await ladder(['schedule', 'create', specFile, '--every', '1h']);
    assert.equal(dup.code, 2);
    assert.match(dup.stderr, new RegExp(`a schedule named "${CLI}" already exists`));

    const list = JSON.parse((await ladder(['schedule', 'list', '--json'])).stdout) as { id: string; when: string; paused: boolean; next: string | null }[];
    assert.deepEqual(list.map((s) => [s.id, s.when, s.paused]), [[CLI, 'every 6h', false], [CRON, 'cron 0 3 * * *', false]]);
    assert.ok(list.every((s) => s.next !== null));

    assert.equal((await ladder(['schedule', 'pause', CLI])).code, 0);
    let after = JSON.parse((await ladder(['schedule', 'list', '--json'])).stdout) as { id: string; paused: boolean; next: string | null }[];
    assert.deepEqual(after.find((s) => s.id === CLI), { ...after.find((s) => s.id === CLI), paused: true, next: null });
    assert.equal((await ladder(['schedule', 'resume', CLI])).code, 0);
    after = JSON.parse((await ladder(['schedule', 'list', '--json'])).stdout);
    assert.equal(after.find((s) => s.id === CLI)!.paused, false);

    const history = await ladder(['schedule', 'history', CLI]);
    assert.equal(history.code, 0, history.stderr);
    assert.match(history.stdout, new RegExp(`schedule ${CLI}: no runs yet`));

    for (const id of [CLI, CRON]) assert.equal((await ladder(['schedule', 'delete', id])).code, 0);
    const gone = await ladder(['schedule', 'trigger', CLI]);
    assert.equal(gone.code, 2);
    assert.match(gone.stderr, new RegExp(`schedule "${CLI}" not found`));
  });

  it('history marks regressions with the numbers', () => {
    const run = (id: number, mean: number) => ({ id, scheduleId: 's', workflowId: `w${id}`, workflowRunId: `r${id}`, sweepId: `sw${id}`, codeVersion: 'abc', status: 'compared' as const, results: [{ variant: 'a', rung: 'default', metric: 'loss', mean, values: [mean] }], regressions: id === 2 ? 1 : 0, improvements: 0, notifiedAt: id === 2 ? new Date(0) : null, startedAt: new Date(0), finishedAt: new Date(0) });
    const text = formatHistory('s', [run(2, 1.2), run(1, 1.0)], [{ id: 1, runId: 2, scheduleId: 's', kind: 'regression', variant: 'a', rung: 'default', metric: 'loss', direction: 'min', value: 1.2, baseline: 1.0, method: 'tolerance', threshold: 0.05, pValue: null, baselineRuns: [1], createdAt: new Date(0) }]);
    const lines = text.split('\n');
    assert.match(lines[1]!, /^run #1 /);
    assert.doesNotMatch(lines[2]!, /REGRESSION/);
    assert.match(lines[3]!, /^run #2 .*regressions 1 .*webhook sent/);
    assert.match(lines[4]!, /a @ default +loss +1\.2000 .*<< REGRESSION vs baseline 1\.0000 \(20\.0%, tolerance threshold 0\.0500\)/);
  });
});
