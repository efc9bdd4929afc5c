/**
 * How long after a local job ends does its waiter learn of it? Compares, in the same run and on
 * the same jobs, wait() on a job this executor spawned (process exit event), wait() from another
 * instance (fs.watch on the execution folder), and the status() poll every 200 ms that the
 * activity used before wait() existed.
 *
 *     npx tsx workers/executors/local-wait.bench.ts [--jobs 30] [--json]
 *
 * The job is a stand-in for python that sleeps 50 ms and records when it ends, so the figure is
 * the detection delay alone (plus the wrapper's `mv` of the exit file, the same in every mode).
 * Absolute figures depend on the machine's load: the load average is printed beside them.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

import { median, percentile, printTable } from '../../loadtests/common';
import { aLaunch } from '../../test/executor-contract';
import { LocalExecutor } from './local';
import { type ExecutionRef, isTerminal } from './types';

const args = process.argv.slice(2);
const jobs = Number(args[args.indexOf('--jobs') + 1] ?? 30) || 30;
const json = args.includes('--json');
const POLL_MS = 200;

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

async function main(): Promise<void> {
  const runRoot = fs.mkdtempSync(path.join(os.tmpdir(), 'ladder-wait-bench-'));
  try {
    const fakePython = path.join(runRoot, 'fake-python');
    fs.writeFileSync(fakePython, '#!/bin/sh\nsleep 0.05\ndate +%s%N > "$LADDER_OUTPUT_DIR/ended"\n', { mode: 0o755 });
    const executor = new LocalExecutor({ runRoot, python: fakePython, gpus: [] });
    const follower = new LocalExecutor({ runRoot, python: fakePython, gpus: [] });

    const modes: Record<string, (ref: ExecutionRef) => Promise<void>> = {
      'wait (exit event)': async (ref) => void (await executor.wait(ref, AbortSignal.timeout(60_000))),
      'wait (other instance, fs.watch)': async (ref) => void (await follower.wait(ref, AbortSignal.timeout(60_000))),
      [`status() poll every ${POLL_MS} ms`]: async (ref) => {
        while (!isTerminal(await executor.status(ref))) await sleep(POLL_MS);
      },
    };
    const delays: Record<string, number[]> = Object.fromEntries(Object.keys(modes).map((m) => [m, []]));
    // Interleaved, so that every mode sees the same load.
    for (let i = 0; i < jobs; i++) {
      for (const [mode, waitFor] of Object.entries(modes)) {
        const launch = aLaunch().build();
        const ref = await executor.submit(launch);
        await waitFor(ref);
        const seenAt = Date.now();
        const endedNs = fs.readFileSync(path.join(executor.execDir(launch.executionId), 'output', 'ended'), 'utf8').trim();
        delays[mode]!.push(seenAt - Number(BigInt(endedNs) / 1_000_000n));
      }
    }

    const load = os.loadavg().map((l) => l.toFixed(2)).join(' ');
    const [event, watch, poll] = Object.values(delays);
    const figures = {
      jobs,
      loadAverage: os.loadavg(),
      exitEventMedianMs: median(event!),
      exitEventP95Ms: percentile(event!, 95),
      watchMedianMs: median(watch!),
      watchP95Ms: percentile(watch!, 95),
      poll200MedianMs: median(poll!),
      poll200P95Ms: percentile(poll!, 95),
      pollOverEventMedianRatio: median(poll!) / Math.max(1, median(event!)),
    };
    console.log(`local executor: job end → waiter knows, ${jobs} jobs per mode (load average ${load})`);
    printTable(
      ['mode', 'median ms', 'p95 ms', 'max ms'],
      Object.entries(delays).map(([mode, d]) => [mode, median(d).toFixed(0), percentile(d, 95).toFixed(0), Math.max(...d).toFixed(0)]),
    );
    if (json) console.log(JSON.stringify(figures));
  } finally {
    fs.rmSync(runRoot, { recursive: true, force: true });
  }
}

main().catch((e) => {
  console.error(e);
  process.exitCode = 1;
});
