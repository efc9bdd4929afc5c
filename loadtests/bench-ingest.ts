/**
 * Ingest throughput: N metric points POSTed through the ingest HTTP route in batches of 500 (what
 * the Python client sends, see jobs/ladder_jobs/metrics.py) by a few concurrent senders, against
 * writing the same rows straight into Postgres, in the same run.
 *
 *   npx tsx loadtests/bench-ingest.ts [--points 200000] [--senders 4] [--trials 4] [--batch 500]
 *                                     [--reps 3] [--baseline-batch 50000] [--no-psql]
 *
 * Methods (each inserts the same N new rows into an emptied metric_points table, for fresh trials
 * of a sweep created with createSweep; every measurement is verified with count(*) afterwards):
 *   http      POST /ingest/v1/trials/:id/metrics, bearer token per trial, keep-alive connections;
 *             the route validates the batch (zod) and runs one `insert … select from unnest(…)
 *             on conflict do nothing` per batch.
 *   unnest    the baseline: pg-copy-streams is not a dependency, so instead of a COPY through the
 *             driver this is a plain `insert into metric_points … select from unnest($1, $2, $3, $4)`
 *             in batches of --baseline-batch rows, one connection, sequential.
 *   psql COPY `COPY metric_points (trial_id, name, step, value) FROM STDIN` through the psql client
 *             (when psql is on PATH, skip with --no-psql): the raw COPY floor, psql start included.
 * The request bodies and the COPY text are built before the clock starts, so client-side
 * serialisation is not measured.
 *
 * Starts its own Postgres (and Temporal, which it does not use) through test/harness.ts unless
 * LADDER_TEST_PG_URL and LADDER_TEST_TEMPORAL_ADDRESS are set. Exits non-zero when a check fails.
 */
import { execFileSync, spawn } from 'node:child_process';
import http from 'node:http';
import { parseArgs } from 'node:util';
import { mintIngestToken } from '../core/ingest/tokens';
import { parseSweepSpec } from '../core/spec/spec';
import { createSweep } from '../core/sweeps/store';
import { createTestStack, type TestStack } from '../test/harness';
import { check, CheckFailed, fmt, intFlag, median, printTable, runPool } from './common';

interface Options {
  points: number;
  senders: number;
  trials: number;
  batch: number;
  reps: number;
  baselineBatch: number;
  psql: boolean;
}

function parseOptions(): Options {
  const { values } = parseArgs({
    options: {
      points: { type: 'string', default: '200000' },
      senders: { type: 'string', default: '4' },
      trials: { type: 'string', default: '4' },
      batch: { type: 'string', default: '500' },
      reps: { type: 'string', default: '3' },
      'baseline-batch': { type: 'string', default: '50000' },
      'no-psql': { type: 'boolean', default: false },
      help: { type: 'boolean', default: false },
    },
  });
  if (values.help) {
    console.log(
      'usage: npx tsx loadtests/bench-ingest.ts [--points 200000] [--senders 4] [--trials 4] [--batch 500] [--reps 3] [--baseline-batch 50000] [--no-psql]',
    );
    process.exit(0);
  }
  const opts: Options = {
    points: intFlag('points', values.points),
    senders: intFlag('senders', values.senders),
    trials: intFlag('trials', values.trials),
    batch: intFlag('batch', values.batch),
    reps: intFlag('reps', values.reps),
    baselineBatch: intFlag('baseline-batch', values['baseline-batch']),
    psql: !values['no-psql'],
  };
  if (opts.batch > 50_000) throw new Error('--batch must be at most 50000 (the route refuses larger batches)');
  if (opts.trials > 1000) throw new Error('--trials must be at most 1000');
  if (opts.trials > opts.points) throw new Error('--trials must not exceed --points');
  // Postgres caps a bind array at 1 GB; 4 arrays of 50k are tiny, but keep the batches sane.
  if (opts.baselineBatch > 1_000_000) throw new Error('--baseline-batch must be at most 1000000');
  return opts;
}

const METRICS = ['loss', 'val_loss', 'lr', 'grad_norm'] as const;

/** The points of one trial: 4 metric names round-robin, steps 0, 1, 2…; (name, step) unique. */
interface TrialPoints {
  names: string[];
  steps: number[];
  values: number[];
}

function makePoints(count: number, seed: number): TrialPoints {
  const names: string[] = [];
  const steps: number[] = [];
  const values: number[] = [];
  let x = (seed * 2654435761) >>> 0 || 1;
  for (let k = 0; k < count; k++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    names.push(METRICS[k % METRICS.length]!);
    steps.push(Math.floor(k / METRICS.length));
    values.push(x / 2 ** 32 + 1 / (1 + k)); // a full-precision double, like a real loss
  }
  return { names, steps, values };
}

function hasPsql(): boolean {
  try {
    execFileSync('psql', ['--version'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

/** Fresh trial rows (a new sweep), so that no method sees another's rows or conflicts. */
async function freshTrials(stack: TestStack, name: string, trials: number): Promise<string[]> {
  const spec = parseSweepSpec({ name, kind: 'synthetic', base: { steps: 1 }, seeds: trials });
  const sweep = await createSweep(stack.database.db, { spec, codeVersion: 'bench', rerun: true });
  // Ingest accepts writes only from a running attempt: stand in for the worker's launch.
  await stack.database.pool.query(`update trials set status = 'running', attempts = 1 where sweep_id = $1`, [sweep.id]);
  const { rows } = await stack.database.pool.query<{ id: string }>('select id from trials where sweep_id = $1 order by seed', [sweep.id]);
  check(rows.length === trials, `sweep ${sweep.id} has ${rows.length} trials, expected ${trials}`);
  return rows.map((r) => r.id);
}

async function countRows(stack: TestStack, trialIds: string[]): Promise<{ mine: number; table: number }> {
  const { rows } = await stack.database.pool.query<{ mine: number; total: number }>(
    `select (select count(*)::int from metric_points where trial_id = any($1::text[])) as mine,
            (select count(*)::int from metric_points) as total`,
    [trialIds],
  );
  return { mine: rows[0]!.mine, table: rows[0]!.total };
}

function post(agent: http.Agent, url: URL, token: string, body: Buffer): Promise<{ status: number; text: string }> {
  return new Promise((resolve, reject) => {
    const req = http.request(
      url,
      {
        method: 'POST',
        agent,
        headers: { 'content-type': 'application/json', 'content-length': body.length, authorization: `Bearer ${token}` },
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, text: Buffer.concat(chunks).toString('utf8') }));
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

async function main(): Promise<void> {
  const opts = parseOptions();
  process.env.LADDER_PYTHON ??= 'python3'; // the harness wants one; no job runs here
  const n = opts.points;
  const usePsql = opts.psql && hasPsql();

  // Points per trial, spread evenly; generated once and reused by every method and round.
  const perTrial = Array.from({ length: opts.trials }, (_, t) => Math.floor(n / opts.trials) + (t < n % opts.trials ? 1 : 0));
  const data = perTrial.map((count, t) => makePoints(count, t + 1));
  // HTTP bodies: batch j of trial t, in the order the senders take them (trials interleaved).
  const bodies: Array<{ trial: number; body: Buffer; count: number }> = [];
  const maxBatches = Math.max(...perTrial.map((c) => Math.ceil(c / opts.batch)));
  for (let j = 0; j < maxBatches; j++) {
    for (let t = 0; t < opts.trials; t++) {
      const d = data[t]!;
      const from = j * opts.batch;
      if (from >= d.names.length) continue;
      const to = Math.min(d.names.length, from + opts.batch);
      const points = [];
      for (let k = from; k < to; k++) points.push({ name: d.names[k]!, step: d.steps[k]!, value: d.values[k]! });
      bodies.push({ trial: t, body: Buffer.from(JSON.stringify({ points })), count: to - from });
    }
  }

  console.log(
    `bench-ingest: ${n} points over ${opts.trials} trial(s), HTTP batches of ${opts.batch} (${bodies.length} requests) ` +
      `from ${opts.senders} concurrent sender(s); baseline: insert … select from unnest(…) in batches of ${opts.baselineBatch} ` +
      `(pg-copy-streams is not installed, so no driver-level COPY)` +
      (usePsql ? '; plus psql COPY FROM STDIN' : opts.psql ? '; psql not found: no COPY row' : '') +
      `; ${opts.reps} round(s), metric_points truncated before each measurement`,
  );

  const stack = await createTestStack('bench_ingest');
  let closed = false;
  const close = async () => {
    if (closed) return;
    closed = true;
    await stack.close();
  };
  const onSignal = (sig: NodeJS.Signals) => {
    console.error(`\n${sig}: cleaning up`);
    close().finally(() => process.exit(130));
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);

  const agent = new http.Agent({ keepAlive: true, maxSockets: opts.senders });
  try {
    const pool = stack.database.pool;

    const viaHttp = async (trialIds: string[]) => {
      const tokens = trialIds.map((id) => mintIngestToken(stack.ingestSecret, { trialId: id, attempt: 1, timeoutSeconds: 3600 }));
      const urls = trialIds.map((id) => new URL(`${stack.ingestUrl}/trials/${encodeURIComponent(id)}/metrics`));
      let inserted = 0;
      await runPool(bodies.length, opts.senders, async (i) => {
        const b = bodies[i]!;
        const res = await post(agent, urls[b.trial]!, tokens[b.trial]!, b.body);
        check(res.status === 200, `POST batch ${i} → HTTP ${res.status}: ${res.text}`);
        const reply = JSON.parse(res.text) as { accepted: number; inserted: number };
        check(reply.accepted === b.count && reply.inserted === b.count, `batch ${i}: ${res.text}, expected ${b.count} inserted`);
        inserted += reply.inserted;
      });
      check(inserted === n, `HTTP reported ${inserted} rows inserted, expected ${n}`);
    };

    /** `limit`: only the first points of each trial (warm-up). */
    const viaUnnest = async (trialIds: string[], limit = Infinity) => {
      const client = await pool.connect();
      try {
        for (let t = 0; t < trialIds.length; t++) {
          const d = data[t]!;
          const end = Math.min(d.names.length, limit);
          for (let from = 0; from < end; from += opts.baselineBatch) {
            const to = Math.min(end, from + opts.baselineBatch);
            const res = await client.query(
              `insert into metric_points (trial_id, name, step, value)
               select $1, u.name, u.step, u.value
               from unnest($2::text[], $3::int[], $4::float8[]) as u(name, step, value)`,
              [trialIds[t], d.names.slice(from, to), d.steps.slice(from, to), d.values.slice(from, to)],
            );
            check(res.rowCount === to - from, `unnest batch inserted ${res.rowCount}, expected ${to - from}`);
          }
        }
      } finally {
        client.release();
      }
    };

    const copyText = (trialIds: string[], limit = Infinity): Buffer => {
      const parts: string[] = [];
      for (let t = 0; t < trialIds.length; t++) {
        const d = data[t]!;
        const end = Math.min(d.names.length, limit);
        for (let k = 0; k < end; k++) parts.push(`${trialIds[t]}\t${d.names[k]}\t${d.steps[k]}\t${d.values[k]}\n`);
      }
      return Buffer.from(parts.join(''));
    };
    const viaPsqlCopy = (text: Buffer) =>
      new Promise<void>((resolve, reject) => {
        const child = spawn(
          'psql',
          ['-X', '-q', '-v', 'ON_ERROR_STOP=1', '-d', stack.databaseUrl, '-c', 'COPY metric_points (trial_id, name, step, value) FROM STDIN'],
          { stdio: ['pipe', 'pipe', 'pipe'] },
        );
        let out = '';
        child.stdout.on('data', (c: Buffer) => (out += c.toString()));
        child.stderr.on('data', (c: Buffer) => (out += c.toString()));
        child.once('error', reject);
        child.once('exit', (code) => (code === 0 ? resolve() : reject(new CheckFailed(`psql COPY exited ${code}: ${out.trim()}`))));
        child.stdin.end(text);
      });

    interface Method {
      label: string;
      /** Untimed preparation for fresh trials; returns the timed part. */
      prepare(trialIds: string[]): () => Promise<void>;
      seconds: number[];
    }
    const methods: Method[] = [
      { label: `http, ${opts.senders} senders × ${opts.batch}/batch`, prepare: (ids) => () => viaHttp(ids), seconds: [] },
      { label: `baseline: insert … unnest, ${opts.baselineBatch}/stmt`, prepare: (ids) => () => viaUnnest(ids), seconds: [] },
    ];
    if (usePsql) {
      methods.push({
        label: 'baseline: psql COPY FROM STDIN',
        prepare: (ids) => {
          const text = copyText(ids);
          return () => viaPsqlCopy(text);
        },
        seconds: [],
      });
    }

    // Untimed warm-up of every method (connections, JIT, the route's first requests), 1/20 of N.
    {
      const warm = Math.max(1, Math.floor(n / 20 / opts.trials));
      await viaUnnest(await freshTrials(stack, 'warmup-unnest', opts.trials), warm);
      if (usePsql) await viaPsqlCopy(copyText(await freshTrials(stack, 'warmup-copy', opts.trials), warm));
      // HTTP warm-up: the first few batches of every trial.
      const ids = await freshTrials(stack, 'warmup-http', opts.trials);
      const tokens = ids.map((id) => mintIngestToken(stack.ingestSecret, { trialId: id, attempt: 1, timeoutSeconds: 3600 }));
      await runPool(Math.min(bodies.length, opts.senders * 10), opts.senders, async (i) => {
        const b = bodies[i]!;
        const res = await post(agent, new URL(`${stack.ingestUrl}/trials/${encodeURIComponent(ids[b.trial]!)}/metrics`), tokens[b.trial]!, b.body);
        check(res.status === 200, `warm-up POST → HTTP ${res.status}: ${res.text}`);
      });
    }

    let sweepNo = 0;
    for (let round = 1; round <= opts.reps; round++) {
      const line: string[] = [];
      // Alternate the order between rounds, so neither method always runs on a fresher machine.
      const order = round % 2 ? methods : [...methods].reverse();
      for (const m of order) {
        const ids = await freshTrials(stack, `ingest-${++sweepNo}`, opts.trials);
        const run = m.prepare(ids);
        // Same starting point for every method: an empty table and index, everything on disk.
        await pool.query('truncate metric_points');
        await pool.query('checkpoint');
        const t0 = performance.now();
        await run();
        const s = (performance.now() - t0) / 1000;
        const counted = await countRows(stack, ids);
        check(counted.mine === n, `${m.label}: count(*) found ${counted.mine} rows for its trials, expected exactly ${n}`);
        check(counted.table === n, `${m.label}: metric_points holds ${counted.table} rows, expected exactly ${n}`);
        m.seconds.push(s);
        line.push(`${m.label} ${fmt(s)} s (${counted.mine} rows ✓)`);
      }
      console.log(`round ${round}/${opts.reps}: ${line.join(' | ')}`);
    }

    const unnestM = methods[1]!;
    const ratio = (a: Method, b: Method) => median(a.seconds.map((s, i) => b.seconds[i]! / s));
    console.log('');
    console.log(
      `${n} points, ${opts.reps} round(s); seconds = median over rounds; points/s = N / seconds; ` +
        `rate ÷ = median over rounds of (this rate / that rate); count(*) verified = ${n} after every measurement`,
    );
    printTable(
      ['method', 'seconds', 'points/s', 'µs/point', 'rate ÷ unnest', ...(usePsql ? ['rate ÷ COPY'] : [])],
      methods.map((m) => {
        const s = median(m.seconds);
        return [
          m.label,
          fmt(s),
          fmt(n / s, 0),
          fmt((s * 1e6) / n, 2),
          `${fmt(ratio(m, unnestM))}x`,
          ...(usePsql ? [`${fmt(ratio(m, methods[2]!))}x`] : []),
        ];
      }),
    );
  } finally {
    agent.destroy();
    await close();
  }
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    console.error(err instanceof CheckFailed ? `CHECK FAILED: ${err.message}` : err);
    process.exit(1);
  },
);
