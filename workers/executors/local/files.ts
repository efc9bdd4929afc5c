/** Small file helpers of the local executor's on-disk state. */
import * as fs from 'node:fs';

export function readText(p: string): string | undefined {
  try {
    return fs.readFileSync(p, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw e;
  }
}

/** Write via a temp file and rename, so readers never see a partial file. */
export function writeAtomic(p: string, data: string, mode?: number): void {
  const tmp = `${p}.${process.pid}.tmp`;
  if (mode === undefined) fs.writeFileSync(tmp, data);
  else {
    const fd = fs.openSync(tmp, 'w', mode);
    try {
      fs.fchmodSync(fd, mode); // a stale temp file of a crashed writer keeps its old mode otherwise
      fs.writeFileSync(fd, data);
    } finally {
      fs.closeSync(fd);
    }
  }
  fs.renameSync(tmp, p);
}
