/**
 * Per-attempt ingest tokens: `lt2.<payload>.<mac>`, where payload is base64url of
 * `<trialId>\n<attempt>\n<expiresAt unix seconds>` and mac an HMAC-SHA256 of it under the
 * deployment's ingest secret.
 *
 * Stateless on purpose: the API verifies without a lookup. The token names its attempt, so the
 * ingest routes can refuse writes from an attempt that is over, and it expires, so a token that
 * leaked (a log, a launch file) stops working once its attempt could no longer be running.
 * Tokens are secrets: never log them.
 */
import { createHmac, timingSafeEqual } from 'node:crypto';

const PREFIX = 'lt2';

/**
 * How long a token outlives the attempt's timeout: the worker cancels a job at its timeout, but
 * the job's last flush and its result may still be in flight, and the worker's and the API's
 * clocks may differ.
 */
export const INGEST_TOKEN_GRACE_SECONDS = 15 * 60;

/** Longest token accepted for verification; real ones are well under 400 characters. */
const MAX_TOKEN_LENGTH = 1024;

export interface IngestGrant {
  trialId: string;
  /** 1-based attempt number, as in `trials.attempts`. */
  attempt: number;
  /** Unix seconds after which the token is refused. */
  expiresAt: number;
}

export type IngestTokenCheck =
  | { ok: true; attempt: number; expiresAt: number }
  | { ok: false; status: 401 | 403; reason: string };

function mac(secret: string, payload: string): string {
  return createHmac('sha256', secret).update(`ingest:v2:${payload}`).digest('base64url');
}

export function ingestToken(secret: string, grant: IngestGrant): string {
  if (secret.length < 16) throw new Error('ingest secret must be at least 16 characters');
  if (!Number.isSafeInteger(grant.attempt) || grant.attempt < 1) throw new Error(`attempt must be a positive integer, got ${grant.attempt}`);
  if (!Number.isSafeInteger(grant.expiresAt) || grant.expiresAt < 0) throw new Error(`expiresAt must be unix seconds, got ${grant.expiresAt}`);
  if (grant.trialId.includes('\n')) throw new Error('trial id must not contain a newline');
  const payload = Buffer.from(`${grant.trialId}\n${grant.attempt}\n${grant.expiresAt}`, 'utf8').toString('base64url');
  return `${PREFIX}.${payload}.${mac(secret, payload)}`;
}

/** The token a worker hands to one attempt: valid for the attempt's timeout plus the grace. */
export function mintIngestToken(
  secret: string,
  input: { trialId: string; attempt: number; timeoutSeconds: number },
  nowMs: number = Date.now(),
): string {
  const expiresAt = Math.ceil(nowMs / 1000) + Math.ceil(input.timeoutSeconds) + INGEST_TOKEN_GRACE_SECONDS;
  return ingestToken(secret, { trialId: input.trialId, attempt: input.attempt, expiresAt });
}

/**
 * Checks a token for the trial named in the request path. 401 when the token is not a valid
 * token at all (malformed, forged, expired); 403 when it is valid but for another trial.
 */
export function verifyIngestToken(secret: string, trialId: string, token: string, nowMs: number = Date.now()): IngestTokenCheck {
  const invalid = { ok: false, status: 401, reason: 'token is not a valid ingest token' } as const;
  if (token.length > MAX_TOKEN_LENGTH) return invalid;
  const parts = token.split('.');
  if (parts[0] === 'lt1') return { ok: false, status: 401, reason: 'token has the retired lt1 format (it never expired); relaunch the attempt for a new one' };
  if (parts.length !== 3 || parts[0] !== PREFIX) return invalid;
  const [, payload, given] = parts as [string, string, string];
  // Compare the MAC before looking inside the payload: nothing unauthenticated is parsed.
  const expected = Buffer.from(mac(secret, payload));
  const actual = Buffer.from(given);
  if (actual.length !== expected.length || !timingSafeEqual(actual, expected)) return invalid;

  const fields = Buffer.from(payload, 'base64url').toString('utf8').split('\n');
  if (fields.length !== 3) return invalid;
  const [tokenTrial, attemptText, expiresText] = fields as [string, string, string];
  if (!/^[1-9][0-9]{0,8}$/.test(attemptText) || !/^[0-9]{1,12}$/.test(expiresText)) return invalid;
  if (tokenTrial !== trialId) return { ok: false, status: 403, reason: 'token is not valid for this trial' };
  const expiresAt = Number(expiresText);
  if (expiresAt * 1000 <= nowMs) {
    return { ok: false, status: 401, reason: `token expired at ${new Date(expiresAt * 1000).toISOString()}` };
  }
  return { ok: true, attempt: Number(attemptText), expiresAt };
}
