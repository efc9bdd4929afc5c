/**
 * Per-trial ingest tokens: an HMAC of the trial id under the deployment's ingest secret.
 * Stateless on purpose: the API verifies without a lookup, and a token for trial A is useless
 * for trial B. Tokens are secrets: never log them.
 */
import { createHmac, timingSafeEqual } from 'node:crypto';

const PREFIX = 'lt1.';

export function ingestToken(secret: string, trialId: string): string {
  if (secret.length < 16) throw new Error('ingest secret must be at least 16 characters');
  return PREFIX + createHmac('sha256', secret).update(`ingest:${trialId}`).digest('base64url');
}

export function verifyIngestToken(secret: string, trialId: string, token: string): boolean {
  const expected = Buffer.from(ingestToken(secret, trialId));
  const given = Buffer.from(token);
  return given.length === expected.length && timingSafeEqual(given, expected);
}
