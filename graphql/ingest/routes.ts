/**
 * HTTP routes through which running jobs push metric points and their final result:
 *   POST /ingest/v1/trials/:trialId/metrics   {"points": [{"name","step","value"}, …]}
 *   POST /ingest/v1/trials/:trialId/result    {"metrics": {…}, "config": {…}, "meta": {…}}
 * Authenticated by the per-trial bearer token. A batch is validated whole before anything is
 * written, so a malformed batch stores nothing.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Pool } from 'pg';
import type { z } from 'zod';
import { formatPath } from '../../core/spec/spec';
import {
  IngestConflictError,
  insertMetricPoints,
  metricBatchSchema,
  recordTrialResult,
  trialResultSchema,
  UnknownTrialError,
} from '../../core/ingest/store';
import { verifyIngestToken } from '../../core/ingest/tokens';

export interface IngestRoutesOptions {
  pool: Pool;
  /** Shared with the worker, which hands each job its token. */
  secret: string;
  /** Largest accepted body; default 16 MiB (50k points ≈ 3 MiB). */
  maxBodyBytes?: number;
  log?: (message: string, fields?: Record<string, unknown>) => void;
}

const ROUTE = /^\/ingest\/v1\/trials\/([A-Za-z0-9._-]{1,200})\/(metrics|result)$/;

class HttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

/** Returns a handler that answers ingest requests and returns false for any other path. */
export function createIngestRoutes(options: IngestRoutesOptions) {
  const maxBodyBytes = options.maxBodyBytes ?? 16 * 1024 * 1024;

  return async function handleIngest(req: IncomingMessage, res: ServerResponse): Promise<boolean> {
    const url = new URL(req.url ?? '/', 'http://ingest');
    if (!url.pathname.startsWith('/ingest/')) return false;
    try {
      const match = ROUTE.exec(url.pathname);
      if (!match) throw new HttpError(404, 'no such ingest route');
      if (req.method !== 'POST') throw new HttpError(405, 'use POST');
      const trialId = match[1]!;
      const auth = req.headers.authorization ?? '';
      const token = auth.startsWith('Bearer ') ? auth.slice(7).trim() : '';
      if (!token) throw new HttpError(401, 'missing bearer token');
      if (!verifyIngestToken(options.secret, trialId, token)) throw new HttpError(403, 'token is not valid for this trial');
      const body = await readJson(req, maxBodyBytes);

      if (match[2] === 'metrics') {
        const batch = validate(metricBatchSchema, body);
        const inserted = await insertMetricPoints(options.pool, trialId, batch.points);
        send(res, 200, { accepted: batch.points.length, inserted });
      } else {
        const result = validate(trialResultSchema, body);
        await recordTrialResult(options.pool, trialId, result);
        send(res, 200, { ok: true });
      }
    } catch (err) {
      if (err instanceof HttpError) send(res, err.status, { error: err.message });
      else if (err instanceof UnknownTrialError) send(res, 404, { error: err.message });
      else if (err instanceof IngestConflictError) send(res, 409, { error: err.message });
      else {
        options.log?.('ingest failed', { error: (err as Error).message });
        send(res, 503, { error: 'ingest temporarily unavailable' });
      }
    }
    return true;
  };
}

function validate<S extends z.ZodType>(schema: S, body: unknown): z.output<S> {
  const parsed = schema.safeParse(body);
  if (parsed.success) return parsed.data;
  const issue = parsed.error.issues[0]!;
  const where = issue.code === 'unrecognized_keys' ? formatPath([...issue.path, issue.keys[0]!]) : formatPath(issue.path);
  const more = parsed.error.issues.length > 1 ? ` (and ${parsed.error.issues.length - 1} more problems)` : '';
  throw new HttpError(400, `${where || 'body'}: ${issue.code === 'unrecognized_keys' ? 'unknown key' : issue.message}${more}`);
}

async function readJson(req: IncomingMessage, limit: number): Promise<unknown> {
  const declared = Number(req.headers['content-length'] ?? 0);
  if (declared > limit) throw new HttpError(413, `body larger than ${limit} bytes`);
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > limit) throw new HttpError(413, `body larger than ${limit} bytes`);
    chunks.push(chunk as Buffer);
  }
  try {
    return JSON.parse(Buffer.concat(chunks).toString('utf8'));
  } catch {
    throw new HttpError(400, 'body is not valid JSON');
  }
}

function send(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
  res.end(text);
}
