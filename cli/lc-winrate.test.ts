/**
 * `ladder lc-winrate` as a user runs it, on rlhf sweeps seeded straight into a test database
 * (results with synthetic annotations, no jobs run). The pooled figures are checked against
 * `python -m ladder_jobs lc-winrate` run here on records this test builds itself.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { parseSweepSpec } from '../core/spec/spec';
import { createSweep } from '../core/sweeps/store';
import { createTestStack, REPO_ROOT, type TestStack } from '../test/harness';
import { lcWinrate } from './lc-winrate';

interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

const N = 40;
const J = 2;

/** A seeded stream in [0, 1): the annotations must be the same on every run. */
function random(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
}

/** One trial's kept annotations (lc_eval.annotation_record's columns) on instructions `ids`. */
function annotations(ids: string[], seed: number, lengthShift: number, skill: number) {
  const r = random(seed);
  const group = ids.map((_, i) => 100 + (i % 5));
  const lengthRef = ids.map(() => 3 + Math.floor(r() * 8));
  const lengthModel = lengthRef.map((l) => Math.max(1, l + lengthShift + Math.floor(r() * 5) - 2));
  const preference: number[] = [];
  for (let i = 0; i < ids.length; i++) {
    for (let j = 0; j < J; j++) {
      const z = skill + 0.3 * (lengthModel[i]! - lengthRef[i]!) + 0.5 * ((i % 5) - 2);
      preference.push(r() < 1 / (1 + Math.exp(-z)) ? 1 : 0);
    }
  }
  return { format: 1, judges: J, instruction: ids, group, length_model: lengthModel, length_ref: lengthRef, preference };
}

type Ann = ReturnType<typeof annotations>;

describe('ladder lc-winrate', { timeout: 300_000 }, () => {
  let stack: TestStack;
  let tmp: string;
  let rlhf: string;
  let other: string;
  let synthetic: string;
  const ids = Array.from({ length: N }, (_, i) => `instr${i}`);
  const pooled: Record<string, Ann> = {
    sft: annotations(ids, 1, 0, 0),
    ppo: annotations(ids, 2, 4, 0.2),
    dpo: annotations(ids, 3, -1, 0.6),
  };
  const own: Record<string, number> = { sft: 0.5, ppo: 0.61, dpo: 0.655, best_of_n: 0.7 };

  const setResult = (trialId: string, method: string, ann: Ann | null) =>
    stack.database.pool.query(`update trials set status = 'succeeded', attempts = 1, result = $2 where id = $1`, [
      trialId,
      JSON.stringify({ metrics: { lc_win_rate_v1: own[method], lc_win_rate_noreg: own[method]! - 0.01 }, config: {}, meta: ann ? { eval_annotations: ann } : {} }),
    ]);

  before(async () => {
    stack = await createTestStack('lcwin');
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'ladder-lc-'));
    const spec = (project: string) =>
      parseSweepSpec({ name: 'lc', project, kind: 'rlhf', grid: { method: ['sft', 'ppo', 'dpo', 'best_of_n'] }, seeds: 2 });
    rlhf = (await createSweep(stack.database.db, { spec: spec('default'), codeVersion: 'test' })).id;
    for (const [v, method] of ['sft', 'ppo', 'dpo'].entries()) await setResult(`${rlhf}-r0-v${v}-s0`, method, pooled[method]!);
    await setResult(`${rlhf}-r0-v3-s0`, 'best_of_n', null); // a trial from before annotations were kept
    // seed 1: one trial done, on other instructions than seed 0's; the rest still planned
    await setResult(`${rlhf}-r0-v1-s1`, 'ppo', annotations(ids.map((s) => `${s}b`), 9, 1, 0));
    other = (await createSweep(stack.database.db, { spec: spec('elsewhere'), codeVersion: 'test' })).id;
    await setResult(`${other}-r0-v0-s0`, 'sft', pooled.sft!);
    const synth = parseSweepSpec({ name: 'not-rlhf', kind: 'synthetic', grid: { lr: [0.1] } });
    synthetic = (await createSweep(stack.database.db, { spec: synth, codeVersion: 'test' })).id;
  });
  after(async () => {
    await stack.close();
    fs.rmSync(tmp, { recursive: true, force: true });
  });

  function run(command: string, args: string[], extra: NodeJS.ProcessEnv = {}): Promise<CliResult> {
    const env: NodeJS.ProcessEnv = { PATH: process.env.PATH, HOME: process.env.HOME, LADDER_STATE_DIR: tmp, DATABASE_URL: stack.databaseUrl, LADDER_PYTHON: stack.python, ...extra };
    return new Promise((resolve) => {
      execFile(command, args, { env, maxBuffer: 64 * 1024 * 1024 }, (err, stdout, stderr) => {
        resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr });
      });
    });
  }
  const ladder = (args: string[]) => run(process.execPath, [path.join(REPO_ROOT, 'cli', 'bin.js'), ...args]);

  /** The Python tool on a file of records built here, not by the command under test. */
  async function pythonOn(methods: string[]): Promise<Record<string, { win_rate: number; length_controlled_winrate: number }>> {
    const records = methods.flatMap((m) => {
      const a = pooled[m]!;
      return a.preference.map((p, row) => {
        const i = Math.floor(row / J);
        return { instruction: a.instruction[i], generator_2: `${m} seed 0`, length_1: a.length_ref[i], length_2: a.length_model[i], preference: 1 + p, difficulty_group: `${a.group[i]}` };
      });
    });
    const file = path.join(tmp, 'records.json');
    fs.writeFileSync(file, JSON.stringify(records));
    const res = await run(stack.python, ['-m', 'ladder_jobs', 'lc-winrate', file, '--json'], { PYTHONPATH: path.join(REPO_ROOT, 'jobs') });
    assert.equal(res.code, 0, res.stderr);
    return JSON.parse(res.stdout).generators;
  }

  it('pools difficulty over the trials judged on the same instructions, beside each trial\'s own', async () => {
    const res = await ladder(['lc-winrate', rlhf, '--json']);
    assert.equal(res.code, 0, res.stderr);
    const report = JSON.parse(res.stdout) as { glm: string; rows: Array<{ trialId: string; variant: string; seed: number; k: number | null; group: number | null; winRate: number | null; lcPooled: number | null; lcOwn: number | null; note: string | null }> };
    assert.equal(report.glm, 'length_controlled_v1');
    const want = await pythonOn(['sft', 'ppo', 'dpo']);
    const byTrial = new Map(report.rows.map((r) => [r.trialId, r]));
    assert.equal(report.rows.length, 5);
    for (const [v, method] of ['sft', 'ppo', 'dpo'].entries()) {
      const row = byTrial.get(`${rlhf}-r0-v${v}-s0`)!;
      const w = want[`${method} seed 0`]!;
      assert.equal(row.k, 3);
      assert.equal(row.group, 1);
      assert.ok(Math.abs(row.lcPooled! - w.length_controlled_winrate) < 1e-9, `${method}: ${row.lcPooled} vs ${w.length_controlled_winrate}`);
      assert.ok(Math.abs(row.winRate! - w.win_rate) < 1e-9);
      assert.ok(Math.abs(row.lcOwn! - 100 * own[method]!) < 1e-9);
      assert.equal(row.note, null);
    }
    // the three differ: a mix-up of whose records are whose would show
    assert.equal(new Set(['sft', 'ppo', 'dpo'].map((m) => want[`${m} seed 0`]!.length_controlled_winrate.toFixed(6))).size, 3);
    const old = byTrial.get(`${rlhf}-r0-v3-s0`)!;
    assert.deepEqual([old.note, old.k, old.lcPooled, old.lcOwn], ['no annotations (re-run)', null, null, 70]);
    const alone = byTrial.get(`${rlhf}-r0-v1-s1`)!;
    assert.deepEqual([alone.k, alone.group, alone.lcPooled], [1, 2, null]);
    assert.match(alone.note!, /difficulty not pooled/);
  });

  it('prints a table per rung, and takes --glm and --rung', async () => {
    const res = await ladder(['lc-winrate', rlhf, '--glm', 'noreg', '--rung', '0']);
    assert.equal(res.code, 0, res.stderr);
    assert.match(res.stdout, /GLM length_controlled_noreg/);
    assert.match(res.stdout, /variant\s+seed\s+group\s+win rate\s+LC pooled\s+LC own\s+K/);
    assert.match(res.stdout, /method=best_of_n\s+0\s+–\s+–\s+–\s+69\.00\s+–\s+no annotations \(re-run\)/);
    assert.match(res.stdout, /method=ppo\s+0\s+1\s+\d+\.\d\d\s+\d+\.\d\d\s+60\.00\s+3/); // noreg's own figure, not v1's
    const bad = await ladder(['lc-winrate', rlhf, '--rung', 'xl']);
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /--rung "xl" is not a rung/);
    const glm = await ladder(['lc-winrate', rlhf, '--glm', 'v2']);
    assert.equal(glm.code, 2);
    assert.match(glm.stderr, /--glm must be v1, noreg or minimal/);
  });

  it('refuses a sweep of another kind, and one of another project', async () => {
    const synth = await ladder(['lc-winrate', synthetic]);
    assert.equal(synth.code, 2);
    assert.match(synth.stderr, /lc-winrate reads rlhf sweeps; .* is a synthetic sweep/);
    const elsewhere = await ladder(['lc-winrate', other]);
    assert.equal(elsewhere.code, 2);
    assert.equal(elsewhere.stdout, '');
    assert.match(elsewhere.stderr, new RegExp(`sweep "${other}" not found in project "default"`));
    const theirs = await ladder(['lc-winrate', other, '--project', 'elsewhere', '--json']);
    assert.equal(theirs.code, 0, theirs.stderr);
    assert.equal(JSON.parse(theirs.stdout).rows.length, 1);
  });

  it('bounds the trials it reads before reading their annotations', async () => {
    await assert.rejects(
      lcWinrate(stack.database.db, rlhf, { glm: 'v1', project: 'default', maxTrials: 4 }, (m) => new Error(m)),
      /5 succeeded trials is over the 4 read at once; pass --rung/,
    );
    const report = await lcWinrate(stack.database.db, rlhf, { glm: 'v1', project: 'default', maxTrials: 5 }, (m) => new Error(m));
    assert.equal(report.rows.length, 5);
  });
});
