/** `.ladder/stack.json`: how CLI commands in other terminals reach a running `ladder dev` / `ladder demo`. */
import fs from 'node:fs';
import path from 'node:path';
import { stateDir } from '../stack/paths';

export interface StackFile {
  /** Carries the Postgres password: the file is 0600. */
  databaseUrl: string;
  temporalAddress: string;
  namespace: string;
  taskQueue: string;
  apiUrl: string;
  /** The process that owns the stack (`ladder dev` or `ladder demo`). */
  pid: number;
  /** The process running the API and worker (a child of `pid` under `ladder dev`). */
  appPid: number;
  /** Where the local executor keeps job state and logs (`ladder logs` reads them). Absent in files of older stacks. */
  runRoot?: string;
  /** The Python the stack runs jobs with (its managed env). Absent in files of older stacks. */
  python?: string;
}

export const stackFilePath = () => path.join(stateDir(), 'stack.json');

export function readStackFile(): StackFile | null {
  try {
    const stack = JSON.parse(fs.readFileSync(stackFilePath(), 'utf8')) as StackFile;
    process.kill(stack.pid, 0); // throws when the `ladder dev` that wrote it is gone
    return stack;
  } catch {
    return null;
  }
}
