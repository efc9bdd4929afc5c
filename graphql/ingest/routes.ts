/**
 * HTTP routes through which running jobs push metric points and their final result:
 *   POST /ingest/v1/trials/:trialId/metrics   {"points": [{"name","step","value"}, …]}
 *   POST /ingest/v1/trials/:trialId/result    {"metrics": {…}, "config": {…}, "meta": {…}}
 * Authenticated by the per-attempt bearer token (core/ingest/tokens.ts). A body is validated
 * whole before anything is written, so a malformed batch stores nothing.
 *
 * Answers: 200; 400 a client mistake, naming the field (sending it again cannot help);
 * 401/403 token; 404 unknown trial or route; 409 the attempt may not write (the trial is not
 * running, the attempt is over, or it already recorded another result); 413 body too large;
 * 503 only for our own failures (the job retries those).
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Pool } from 'pg';
import {
  IngestBodyError,
  IngestConflictError,
  insertMetricPoints,
  MAX_METRICS_BODY_BYTES,
  MAX_RESULT_BODY_BYTES,
  parseMetricBatch,
  parseTrialResult,
  recordTrialResult,
  UnknownTrialError,
} from '../../core/ingest/store';
import { verifyIngestToken } from '../../core/ingest/tokens';

export interface IngestRoutesOptions {
  pool: Pool;
  /** Shared with the worker, which hands each job its token. */
  secret: string;
  log?: (message: string, fields?: Record<string, unknown>) => void;
}

const ROUTE = /^\/ingest\/v1\/trials\/([^/]{1,600})\/(metrics|result)$/;
const TRIAL_ID = /^[A-Za-z0-9._-]{1,200}$/;

/**
 * The trial id of the path. Percent-encoded letters are the same URL (RFC 3986 §6.2.2.2), and a
 * client that encodes every byte (the shell example does) must reach the same trial.
 */
function trialIdOf(segment: string): string | null {
  let id: string;
  try {
    id = decodeURIComponent(segment);
  } catch {
    return null;
  }
  return TRIAL_ID.test(id) ? id : null;
}

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
  return async function handleIngest(req: IncomingMessage, res: ServerResponse): Promise<boolean> {
    const url = new URL(req.url ?? '/', 'http://ingest');
    if (!url.pathname.startsWith('/ingest/')) return false;
    try {
      const match = ROUTE.exec(url.pathname);
      const trialId = match ? trialIdOf(match[1]!) : null;
      if (!match || trialId === null) throw new HttpError(404, 'no such ingest route');
      if (req.method !== 'POST') throw new HttpError(405, 'use POST');
      const route = match[2] as 'metrics' | 'result';
      const auth = req.headers.authorization ?? '';
      const token = auth.startsWith('Bearer ') ? auth.slice(7).trim() : '';
      if (!token) throw new HttpError(401, 'missing bearer token');
      const check = verifyIngestToken(options.secret, trialId, token);
      if (!check.ok) throw new HttpError(check.status, check.reason);
      const body = await readJson(req, route === 'metrics' ? MAX_METRICS_BODY_BYTES : MAX_RESULT_BODY_BYTES);

      if (route === 'metrics') {
        const batch = parseMetricBatch(body);
        const inserted = await insertMetricPoints(options.pool, trialId, check.attempt, batch.points);
        send(res, 200, { accepted: batch.points.length, inserted });
      } else {
        const result = parseTrialResult(body);
        const outcome = await recordTrialResult(options.pool, trialId, check.attempt, result);
        send(res, 200, { ok: true, ...(outcome === 'unchanged' ? { unchanged: true } : {}) });
      }
    } catch (err) {
      if (err instanceof HttpError) send(res, err.status, { error: err.message });
      else if (err instanceof IngestBodyError) send(res, 400, { error: err.message });
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
