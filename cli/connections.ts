/**
 * Where a CLI command finds Postgres and Temporal: a variable set in the environment wins, then
 * the stack file `ladder dev` wrote, then the settings' defaults. Shared by every command group.
 */
import { isSet, readSettings } from '../core/settings';
import { readStackFile } from './stack-file';

export interface ConnectionSettings {
  databaseUrl: string;
  /** '' when the command does not need Temporal and none is known. */
  temporalAddress: string;
  namespace: string;
  taskQueue: string;
  executor: string;
  /** The API of a `ladder dev` stack, when one runs. */
  apiUrl?: string;
}

/** `usage` builds the error the caller's command reports (a usage error exits 2). */
export function resolveConnections(needs: { temporal: boolean }, usage: (message: string) => Error): ConnectionSettings {
  const settings = readSettings();
  const stack = readStackFile();
  const databaseUrl = settings.DATABASE_URL ?? stack?.databaseUrl;
  const temporalAddress = settings.TEMPORAL_ADDRESS ?? stack?.temporalAddress;
  if (!databaseUrl || (needs.temporal && !temporalAddress)) {
    throw usage('no Ladder stack found: start one with `npx ladder dev` (or `npm run demo`), or set DATABASE_URL and TEMPORAL_ADDRESS');
  }
  return {
    databaseUrl,
    temporalAddress: temporalAddress ?? '',
    namespace: (isSet('TEMPORAL_NAMESPACE') ? undefined : stack?.namespace) ?? settings.TEMPORAL_NAMESPACE,
    taskQueue: (isSet('LADDER_TASK_QUEUE') ? undefined : stack?.taskQueue) ?? settings.LADDER_TASK_QUEUE,
    executor: settings.LADDER_EXECUTOR,
    apiUrl: stack?.apiUrl,
  };
}

/**
 * The Python of `jobs/` for a CLI command that runs it: LADDER_PYTHON, else the running stack's,
 * else the managed env that `ladder dev` would make (made now if it is missing).
 */
export async function cliPython(): Promise<string> {
  const settings = readSettings();
  const known = settings.LADDER_PYTHON ?? readStackFile()?.python;
  if (known) return known;
  const { ensurePythonEnv } = await import('../stack/python');
  return ensurePythonEnv();
}
