/** Following a sweep from the terminal (`sweep submit --wait`, `sweep watch`). Loaded only by the commands that need it. */
import { waitForSweep, type LaunchContext } from '../core/sweeps/launch';
import { liveProgress } from '../core/sweeps/live';
import { sweepProgress } from '../core/sweeps/store';
import { formatProgressLine } from './format';

/** Exit status of a command stopped by Ctrl-C (128 + SIGINT), as shells report it. */
export const EXIT_INTERRUPTED = 130;

/**
 * Waits for a sweep, redrawing one progress line (or printing changes when not a terminal).
 * Ctrl-C stops only the waiting: the sweep runs on in Temporal, and the user is told how to
 * pick it up again.
 */
export async function followSweep(ctx: LaunchContext, sweepId: string, quiet: boolean): Promise<string> {
  const done = waitForSweep(ctx, sweepId);
  let finished = false;
  void done.finally(() => (finished = true));
  let last = '';
  const tty = process.stderr.isTTY && !quiet;
  const onInterrupt = () => {
    process.stderr.write(
      `${tty ? '\n' : ''}stopped waiting; sweep ${sweepId} continues in the background.\n` +
        `  follow it:  npx ladder sweep watch ${sweepId}\n  status:     npx ladder sweep status ${sweepId}\n  stop it:    npx ladder sweep cancel ${sweepId}\n`,
    );
    process.exit(EXIT_INTERRUPTED);
  };
  process.once('SIGINT', onInterrupt);
  try {
    while (!finished) {
      const [progress, live] = await Promise.all([sweepProgress(ctx.db, sweepId), liveProgress(ctx.db, sweepId)]);
      const line = formatProgressLine(progress, live);
      // The clock parts change every poll; compare without them so a pipe gets a line per change.
      const key = formatProgressLine(progress, { ...live, elapsedSeconds: null, etaSeconds: null });
      if (!quiet && (tty ? line !== last : key !== last)) {
        if (tty) process.stderr.write(`\r\x1b[2K${line}`);
        else process.stderr.write(`${line}\n`);
        last = tty ? line : key;
      }
      await Promise.race([done, new Promise((r) => setTimeout(r, 500))]);
    }
  } finally {
    process.removeListener('SIGINT', onInterrupt);
  }
  if (tty) process.stderr.write('\n');
  return done;
}
