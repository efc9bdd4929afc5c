/**
 * Who may talk to the API from a browser, and under which name.
 *
 * - CORS: same-origin by default. A cross-origin response carries CORS headers only when its
 *   `Origin` is in the allow-list (`allowedOrigins`, else `LADDER_ALLOWED_ORIGINS`, comma
 *   separated, e.g. `https://ladder.example.com`). Any other page gets no
 *   `access-control-allow-origin`, so the browser keeps the answer from it.
 * - Host: with `allowedHosts` set (else `LADDER_ALLOWED_HOSTS`), a request whose `Host` is not in
 *   it gets 421 before anything runs. This is what stops DNS rebinding: a page whose name was
 *   re-pointed at 127.0.0.1 still sends its own name as Host. The embedded stack allows only its
 *   loopback names (`loopbackHosts`).
 */
import type { Plugin } from 'graphql-yoga';
import { readSetting } from '../../core/settings';

/** The names a browser on this machine uses for a server on `port`. */
export function loopbackHosts(port: number): string[] {
  return [`127.0.0.1:${port}`, `localhost:${port}`, `[::1]:${port}`];
}

/** Origins compare as the URL standard serialises them (scheme, host, port; no path). */
function normaliseOrigin(origin: string): string {
  try {
    return new URL(origin).origin;
  } catch {
    throw new TypeError(`allowed origin ${JSON.stringify(origin)} is not a URL origin such as https://ladder.example.com`);
  }
}

export interface OriginPolicy {
  /** Yoga's `cors` option: headers for allowed origins, none for any other. */
  cors: (request: Request) => false | { origin: string[]; credentials: boolean; allowedHeaders: string[]; methods: string[] };
  /** The refusal for a request with this Host header, or null when it may go on. */
  checkHost: (host: string | null | undefined) => { status: number; message: string } | null;
  /** Sets the allowed hosts once the listening port is known (embedded stack). */
  setAllowedHosts: (hosts: readonly string[]) => void;
}

/**
 * `allowedHosts`: undefined → LADDER_ALLOWED_HOSTS, else any host; a list → only those (an empty
 * list answers no host, e.g. before the port is known).
 */

export function createOriginPolicy(options: { allowedOrigins?: readonly string[]; allowedHosts?: readonly string[] } = {}): OriginPolicy {
  const origins = new Set((options.allowedOrigins ?? readSetting('LADDER_ALLOWED_ORIGINS')).map(normaliseOrigin));
  let hosts: Set<string> | null = null;
  const setAllowedHosts = (list: readonly string[]) => {
    hosts = new Set(list.map((h) => h.toLowerCase()));
  };
  const fromEnv = readSetting('LADDER_ALLOWED_HOSTS');
  if (options.allowedHosts) setAllowedHosts(options.allowedHosts);
  else if (fromEnv.length) setAllowedHosts(fromEnv);
  return {
    cors(request) {
      const origin = request.headers.get('origin');
      if (!origin || !origins.has(origin)) return false;
      return { origin: [origin], credentials: true, allowedHeaders: ['authorization', 'content-type', 'accept'], methods: ['GET', 'POST', 'OPTIONS'] };
    },
    checkHost(host) {
      if (!hosts) return null;
      if (host && hosts.has(host.toLowerCase())) return null;
      const allowed = hosts.size ? `; use ${[...hosts].join(' or ')}` : '';
      return { status: 421, message: `this server does not answer for host ${JSON.stringify(host ?? '')} (DNS-rebinding guard)${allowed}` };
    },
    setAllowedHosts,
  };
}

/** The Host check for requests that reach yoga directly (`yoga.fetch`, tests). */
export function useHostCheck(policy: OriginPolicy): Plugin {
  return {
    onRequest({ request, url, endResponse, fetchAPI }) {
      const refusal = policy.checkHost(request.headers.get('host') ?? url.host);
      if (refusal) endResponse(new fetchAPI.Response(refusal.message, { status: refusal.status, headers: { 'content-type': 'text/plain' } }));
    },
  };
}
