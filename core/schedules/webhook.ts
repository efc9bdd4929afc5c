/**
 * The regression webhook: one JSON POST per run that found a regression. The URL comes from a
 * user's spec and the worker calls it, so it is treated as hostile: http(s) only and without
 * credentials (checked at parse, core/spec/schedule.ts), no redirects followed, a deadline, a
 * bounded body, and (unless the operator allows it) no loopback, private or link-local address,
 * which would let a spec reach the worker's own network (cloud metadata, the database). The
 * address is checked where the connection is made (the agent's DNS lookup), not in a lookup of
 * its own before: a name that resolves to a public address for the check and to 127.0.0.1 for
 * the connection (DNS rebinding) would pass a check made first.
 * The body holds names and numbers only: no spec, no environment, no token.
 */
import dns from 'node:dns';
import net from 'node:net';
import { Agent, fetch } from 'undici';
import type { ScheduleFindingRow } from './store';

export const MAX_WEBHOOK_BODY_BYTES = 64 * 1024;
export const MAX_WEBHOOK_FINDINGS = 100;
export const WEBHOOK_TIMEOUT_MS = 10_000;

export class WebhookError extends Error {
  /** `retryable`: a later attempt may succeed (network, 5xx, 429, 408). */
  constructor(
    message: string,
    readonly retryable: boolean,
  ) {
    super(message);
    this.name = 'WebhookError';
  }
}

export interface WebhookPayload {
  event: 'ladder.schedule.regression';
  schedule: string;
  project: string;
  run: number;
  sweep: string | null;
  codeVersion: string;
  regressions: number;
  improvements: number;
  findings: Array<Pick<ScheduleFindingRow, 'kind' | 'variant' | 'rung' | 'metric' | 'direction' | 'value' | 'baseline' | 'method' | 'threshold' | 'pValue'>>;
  /** Findings left out to keep the body bounded. */
  omitted: number;
}

/** The body, cut to MAX_WEBHOOK_FINDINGS findings and MAX_WEBHOOK_BODY_BYTES. */
export function webhookBody(payload: Omit<WebhookPayload, 'omitted' | 'event'>): string {
  let findings = payload.findings.slice(0, MAX_WEBHOOK_FINDINGS);
  for (;;) {
    const body = JSON.stringify({ event: 'ladder.schedule.regression', ...payload, findings, omitted: payload.findings.length - findings.length });
    if (Buffer.byteLength(body) <= MAX_WEBHOOK_BODY_BYTES || findings.length === 0) return body;
    findings = findings.slice(0, Math.floor(findings.length / 2));
  }
}

/** Loopback, private (RFC 1918, ULA), link-local, unspecified or CGNAT addresses. */
export function isInternalAddress(address: string): boolean {
  const v4 = net.isIPv4(address) ? address : address.toLowerCase().startsWith('::ffff:') && net.isIPv4(address.slice(7)) ? address.slice(7) : null;
  if (v4) {
    const [a, b] = v4.split('.').map(Number) as [number, number];
    return a === 0 || a === 10 || a === 127 || (a === 169 && b === 254) || (a === 172 && b >= 16 && b <= 31) || (a === 192 && b === 168) || (a === 100 && b >= 64 && b <= 127);
  }
  const v6 = address.toLowerCase();
  return v6 === '::' || v6 === '::1' || v6.startsWith('fc') || v6.startsWith('fd') || v6.startsWith('fe8') || v6.startsWith('fe9') || v6.startsWith('fea') || v6.startsWith('feb');
}

/** dns.lookup's signature (what a socket's `lookup` option takes). */
export type Lookup = (hostname: string, options: dns.LookupOptions, callback: (err: NodeJS.ErrnoException | null, address: string | dns.LookupAddress[], family?: number) => void) => void;

export interface PostOptions {
  /** Allow loopback and private addresses (tests, or a webhook receiver on the same network). */
  allowInternal?: boolean;
  timeoutMs?: number;
  /** How names resolve (default dns.lookup); a test swaps it to play a rebinding DNS server. */
  lookup?: Lookup;
}

class InternalAddressError extends Error {
  readonly code = 'ELADDERINTERNAL';
}

/** `lookup` that fails the connection when any address of the name is internal. */
function guardedLookup(lookup: Lookup): Lookup {
  return (hostname, options, callback) => {
    lookup(hostname, { ...options, all: true }, (err, addresses) => {
      if (err) return callback(err, []);
      const list = addresses as dns.LookupAddress[];
      const internal = list.find((a) => isInternalAddress(a.address));
      if (internal || list.length === 0) return callback(new InternalAddressError(internal?.address ?? 'no address'), []);
      if (options.all) return callback(null, list);
      callback(null, list[0]!.address, list[0]!.family);
    });
  };
}

/** Where the URL points, with credentials and query left out: for logs and errors. */
export function redactedUrl(url: string): string {
  try {
    const u = new URL(url);
    return `${u.protocol}//${u.host}${u.pathname}`;
  } catch {
    return '(invalid URL)';
  }
}

export async function postWebhook(url: string, body: string, options: PostOptions = {}): Promise<number> {
  const u = new URL(url);
  if (u.protocol !== 'http:' && u.protocol !== 'https:') throw new WebhookError('webhook must be http or https', false);
  if (u.username || u.password) throw new WebhookError('webhook URL must not carry credentials', false);
  const host = u.hostname.replace(/^\[|\]$/g, '');
  const refused = () => new WebhookError(`webhook ${redactedUrl(url)} points at an internal address; set LADDER_WEBHOOK_ALLOW_INTERNAL=1 to allow it`, false);
  // An address literal is connected to without a lookup: check it here.
  if (!options.allowInternal && net.isIP(host) && isInternalAddress(host)) throw refused();
  const lookup = (options.lookup ?? dns.lookup) as Lookup;
  const dispatcher = new Agent({ connect: { lookup: (options.allowInternal ? lookup : guardedLookup(lookup)) as never }, connections: 1 });
  let res: Awaited<ReturnType<typeof fetch>>;
  try {
    res = await fetch(u, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'user-agent': 'ladder-schedules' },
      body,
      redirect: 'manual',
      signal: AbortSignal.timeout(options.timeoutMs ?? WEBHOOK_TIMEOUT_MS),
      dispatcher,
    });
  } catch (err) {
    void dispatcher.close().catch(() => {});
    if (hasCause(err, InternalAddressError)) throw refused();
    const code = causeCode(err);
    if (code === 'ENOTFOUND' || code === 'EAI_AGAIN') throw new WebhookError(`webhook host ${host} does not resolve (${code})`, true);
    throw new WebhookError(`webhook ${redactedUrl(url)} unreachable: ${(err as Error).message}${code ? ` (${code})` : ''}`, true);
  }
  try {
    // Nothing of the answer is used: do not let a hostile receiver make us read a large body.
    await res.body?.cancel().catch(() => {});
  } finally {
    void dispatcher.close().catch(() => {});
  }
  if (res.status >= 200 && res.status < 300) return res.status;
  const retryable = res.status >= 500 || res.status === 429 || res.status === 408;
  throw new WebhookError(`webhook ${redactedUrl(url)} answered ${res.status}${res.status >= 300 && res.status < 400 ? ' (redirects are not followed)' : ''}`, retryable);
}

function hasCause(err: unknown, type: new (...args: never[]) => Error): boolean {
  for (let e = err, depth = 0; e && depth < 5; e = (e as { cause?: unknown }).cause, depth++) if (e instanceof type) return true;
  return false;
}

function causeCode(err: unknown): string | undefined {
  for (let e = err, depth = 0; e && depth < 5; e = (e as { cause?: unknown }).cause, depth++) {
    const code = (e as { code?: unknown }).code;
    if (typeof code === 'string') return code;
  }
  return undefined;
}
