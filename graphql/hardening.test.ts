/**
 * Requests an attacker or a careless client sends (issue "Trust I"): size and cost, cross-origin
 * reads and DNS rebinding, NUL bytes, forged cursors, out-of-range values and `__proto__` keys.
 * Each must get a 4xx that names the problem; the server must keep answering afterwards.
 */
import assert from 'node:assert/strict';
import { request as httpRequest } from 'node:http';
import { after, before, describe, it } from 'node:test';
import { parse, parseValue } from 'graphql';
import { projects, sweeps, trials } from '../core/db/schema';
import { createTestStack, type TestStack } from '../test/harness';
import { encodeCursor } from './data';
import { LIMIT_DEFAULTS, measureOperation, resolveLimits } from './plugins/use-limits';
import { MASKED_MESSAGE } from './plugins/use-masking';
import { createLadderSchema, resolvers } from './schema';
import { createApiServer, type ApiServer } from './server';
import { gqlClient, tokens } from '../test/graphql-helpers';

const aliases = (n: number, field: string) => `{ ${Array.from({ length: n }, (_, i) => `a${i}: ${field}`).join(' ')} }`;

describe('request hardening', () => {
  let stack: TestStack;
  let api: ApiServer;
  let gql: ReturnType<typeof gqlClient>;
  let tok: Awaited<ReturnType<typeof tokens>>;

  before(async () => {
    stack = await createTestStack('gqlhard');
    const { db } = stack.database;
    api = createApiServer({ database: stack.database, ingestSecret: 'x'.repeat(32), allowAnonymousRead: true });
    gql = gqlClient(api);
    tok = await tokens(db);
    await db.insert(projects).values([{ id: 'alpha', name: 'alpha' }]).onConflictDoNothing();
    await db.insert(sweeps).values({ id: 'h1', projectId: 'alpha', name: 'h1', kind: 'synthetic', spec: {}, codeVersion: 'test' });
    await db.insert(trials).values({
      id: 'h1-r0-v0-s0',
      sweepId: 'h1',
      rungIndex: 0,
      rungName: 'small',
      variantIndex: 0,
      variantName: 'v0',
      variant: {},
      seed: 0,
      config: {},
      identity: 'id-h1',
      maxAttempts: 1,
      result: { metrics: { loss: 1 } },
    });
  });
  after(async () => {
    await api?.close();
    await stack?.close();
  });

  describe('size and cost', () => {
    it('refuses 1,000 aliases of sweeps(first: 100) { totalCount }, three at once, before running any', async () => {
      const query = aliases(1000, 'sweeps(first: 100) { totalCount }');
      const results = await Promise.all([gql(query), gql(query), gql(query)]);
      for (const res of results) {
        assert.equal(res.status, 400);
        assert.equal(res.data ?? null, null);
        // 10 tokens an alias: the parser stops it before validation even counts the aliases.
        assert.match(res.errors?.[0]?.message ?? '', /Token limit of 5000 exceeded/);
      }
      const tooMany = await gql(aliases(150, 'sweeps(first: 100) { totalCount }'));
      assert.equal(tooMany.status, 400);
      assert.equal(tooMany.errors?.[0]?.extensions?.code, 'QUERY_TOO_LARGE', JSON.stringify(tooMany.errors));
      assert.match(tooMany.errors![0]!.message, /more than 100 aliases/);
      const ok = await gql(`{ sweeps(first: 1) { totalCount } }`);
      assert.equal(ok.data?.sweeps.totalCount, 1);
    });

    it('gives totalCount a cost of its own and a connection the rows it fetches', () => {
      const schema = createLadderSchema();
      const limits = resolveLimits();
      const one = measureOperation(schema, parse(`{ sweeps(first: 100) { totalCount } }`), null, {}, limits);
      assert.equal(one?.cost, 100 + LIMIT_DEFAULTS.totalCountCost);
      // At the alias bound this stays cheap, but lowering the cost bound refuses it.
      const many = parse(aliases(100, 'sweeps(first: 100) { totalCount }'));
      assert.equal(measureOperation(schema, many, null, {}, limits)?.cost, 100 * 200);
      assert.throws(() => measureOperation(schema, many, null, {}, resolveLimits({ maxCost: 10_000 })), /query cost \d+ exceeds 10000/);
    });

    it('stops a fragment bomb at the field bound instead of walking it exponentially', { timeout: 20_000 }, async () => {
      const frags = Array.from({ length: 40 }, (_, i) => `fragment F${i} on Sweep { ...F${i + 1} ...F${i + 1} }`).join('\n');
      const query = `{ sweep(id: "h1") { ...F0 } }\n${frags}\nfragment F40 on Sweep { id }`;
      const res = await gql(query);
      assert.equal(res.status, 400);
      assert.equal(res.errors?.[0]?.extensions?.code, 'QUERY_TOO_LARGE', JSON.stringify(res.errors));
    });

    it('refuses one field repeated 1,000 times before the quadratic merge rule runs', { timeout: 20_000 }, async () => {
      // ~5,000 tokens, under the token bound: on its own graphql-js's validation spends seconds of CPU here.
      const query = `{ ${Array.from({ length: 1000 }, () => 'sweeps{totalCount}').join(' ')} }`;
      const res = await gql(query);
      assert.equal(res.status, 400);
      assert.equal(res.errors?.[0]?.extensions?.code, 'QUERY_TOO_LARGE', JSON.stringify(res.errors));
      assert.match(res.errors![0]!.message, /repeats one field 1000 times/);
      const ok = await gql(`{ a: sweeps(first: 1) { totalCount } b: sweeps(first: 1) { totalCount } sweeps { totalCount } }`);
      assert.equal(ok.status, 200, JSON.stringify(ok.errors));
    });

    it('refuses a document above the token limit at parse time', async () => {
      const query = `{ ${Array.from({ length: 3000 }, () => 'sweeps { totalCount }').join(' ')} }`;
      const res = await gql(query);
      assert.equal(res.status, 400);
      assert.match(res.errors?.[0]?.message ?? '', /Token limit of 5000 exceeded/);
    });

    it('refuses a body above 1 MiB with 413, declared or streamed', async () => {
      const body = JSON.stringify({ query: '{ sweeps { totalCount } }', variables: { pad: 'x'.repeat(1024 * 1024) } });
      const declared = await api.yoga.fetch('http://ladder.test/graphql', { method: 'POST', headers: { 'content-type': 'application/json' }, body });
      assert.equal(declared.status, 413);
      assert.match(JSON.stringify(await declared.json()), /Request body too large/);
      const bytes = new TextEncoder().encode(body);
      const stream = new ReadableStream<Uint8Array>({
        start(controller) {
          for (let i = 0; i < bytes.length; i += 64 * 1024) controller.enqueue(bytes.slice(i, i + 64 * 1024));
          controller.close();
        },
      });
      const streamed = await api.yoga.fetch('http://ladder.test/graphql', {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: stream,
        duplex: 'half',
      } as RequestInit);
      assert.equal(streamed.status, 413);
      const small = await gql(`{ sweeps { totalCount } }`, { pad: 'x'.repeat(1000) });
      assert.equal(small.status, 200);
    });

    it('over HTTP, refuses a declared oversize body on its header before the body is sent, and a chunked one part-way', { timeout: 30_000 }, async () => {
      const local = createApiServer({ database: stack.database, ingestSecret: 'x'.repeat(32), allowAnonymousRead: true });
      const url = await local.listen(0);
      try {
        const send = (headers: Record<string, string | number>, writeBody: (req: ReturnType<typeof httpRequest>) => void) =>
          new Promise<{ status: number; text: string }>((resolve, reject) => {
            const req = httpRequest(`${url}/graphql`, { method: 'POST', headers: { 'content-type': 'application/json', ...headers } }, (res) => {
              let text = '';
              res.setEncoding('utf8').on('data', (c: string) => (text += c)).on('end', () => resolve({ status: res.statusCode ?? 0, text }));
            });
            req.on('error', reject);
            writeBody(req);
          });
        // Headers only: were the server to wait for the 2 MB it would never answer (the test times out).
        const declared = await send({ 'content-length': 2 * 1024 * 1024 }, (req) => req.flushHeaders());
        assert.equal(declared.status, 413);
        assert.match(declared.text, /Request body too large: at most 1048576 bytes/);
        const chunked = await send({ 'transfer-encoding': 'chunked' }, (req) => {
          const chunk = 'x'.repeat(64 * 1024);
          let sent = 0;
          const more = (): void => {
            while (sent < 4 * 1024 * 1024) {
              sent += chunk.length;
              if (!req.write(chunk)) return void req.once('drain', more);
            }
            req.end();
          };
          req.on('response', () => (sent = Infinity));
          more();
        });
        assert.equal(chunked.status, 413);
        const ok = await send({ 'transfer-encoding': 'chunked' }, (req) => req.end(JSON.stringify({ query: '{ sweeps { totalCount } }' })));
        assert.equal(ok.status, 200, ok.text);
        assert.equal(JSON.parse(ok.text).data.sweeps.totalCount, 1);
      } finally {
        await local.close();
      }
      const bogus = await api.yoga.fetch('http://ladder.test/graphql', { method: 'POST', headers: { 'content-type': 'application/json', 'content-length': '12abc' }, body: '{}' });
      assert.equal(bogus.status, 400);
    });
  });

  describe('origins and hosts', () => {
    const post = (server: ApiServer, headers: Record<string, string>) =>
      server.yoga.fetch('http://ladder.test/graphql', {
        method: 'POST',
        headers: { 'content-type': 'application/json', ...headers },
        body: JSON.stringify({ query: '{ sweeps { totalCount } }' }),
      });

    it('sends no CORS headers to a foreign origin, by default', async () => {
      const res = await post(api, { origin: 'https://evil.example' });
      assert.equal(res.headers.get('access-control-allow-origin'), null);
      assert.equal(res.headers.get('access-control-allow-credentials'), null);
      const preflight = await api.yoga.fetch('http://ladder.test/graphql', {
        method: 'OPTIONS',
        headers: { origin: 'https://evil.example', 'access-control-request-method': 'POST' },
      });
      assert.equal(preflight.headers.get('access-control-allow-origin'), null);
    });

    it('allows the origins of the allow-list, from the options or LADDER_ALLOWED_ORIGINS', async () => {
      const listed = createApiServer({ database: stack.database, ingestSecret: 'x'.repeat(32), allowAnonymousRead: true, allowedOrigins: ['https://ui.example'] });
      const saved = process.env.LADDER_ALLOWED_ORIGINS;
      process.env.LADDER_ALLOWED_ORIGINS = 'https://a.example, https://b.example:8443';
      const fromEnv = createApiServer({ database: stack.database, ingestSecret: 'x'.repeat(32), allowAnonymousRead: true });
      if (saved === undefined) delete process.env.LADDER_ALLOWED_ORIGINS;
      else process.env.LADDER_ALLOWED_ORIGINS = saved;
      try {
        const ok = await post(listed, { origin: 'https://ui.example' });
        assert.equal(ok.headers.get('access-control-allow-origin'), 'https://ui.example');
        assert.equal(ok.headers.get('access-control-allow-credentials'), 'true');
        assert.equal((await post(listed, { origin: 'https://evil.example' })).headers.get('access-control-allow-origin'), null);
        assert.equal((await post(fromEnv, { origin: 'https://b.example:8443' })).headers.get('access-control-allow-origin'), 'https://b.example:8443');
        assert.equal((await post(fromEnv, { origin: 'https://c.example' })).headers.get('access-control-allow-origin'), null);
      } finally {
        await listed.close();
        await fromEnv.close();
      }
    });

    it('answers only the allowed hosts, on every route of the listening server', { timeout: 30_000 }, async () => {
      const local = createApiServer({ database: stack.database, ingestSecret: 'x'.repeat(32), allowAnonymousRead: true, allowedHosts: 'loopback' });
      try {
        const url = await local.listen(0);
        const port = new URL(url).port;
        // node:http sends the Host we give, as a browser does for a rebound name.
        const ask = (host: string, path = '/graphql') =>
          new Promise<{ status: number; text: string }>((resolve, reject) => {
            const body = path === '/graphql' ? JSON.stringify({ query: '{ sweeps { totalCount } }' }) : undefined;
            const req = httpRequest(`${url}${path}`, { method: body ? 'POST' : 'GET', headers: { host, 'content-type': 'application/json' } }, (res) => {
              let text = '';
              res.setEncoding('utf8').on('data', (c: string) => (text += c)).on('end', () => resolve({ status: res.statusCode ?? 0, text }));
            });
            req.on('error', reject).end(body);
          });
        for (const path of ['/graphql', '/healthz', '/ingest/v1/x']) {
          const evil = await ask(`evil.example:${port}`, path);
          assert.equal(evil.status, 421, path);
          assert.match(evil.text, /does not answer for host "evil\.example:\d+"/);
        }
        for (const host of [`127.0.0.1:${port}`, `localhost:${port}`, `LOCALHOST:${port}`, `[::1]:${port}`]) {
          const res = await ask(host);
          assert.equal(res.status, 200, host);
          assert.equal(JSON.parse(res.text).data.sweeps.totalCount, 1);
        }
        // In-process requests meet the same rule.
        assert.equal((await post(local, {})).status, 421);
        const fixed = createApiServer({ database: stack.database, ingestSecret: 'x'.repeat(32), allowAnonymousRead: true, allowedHosts: ['ladder.test'] });
        try {
          assert.equal((await post(fixed, {})).status, 200);
          assert.equal((await fixed.yoga.fetch('http://rebound.example/graphql?query=%7B__typename%7D')).status, 421);
        } finally {
          await fixed.close();
        }
      } finally {
        await local.close();
      }
    });
  });

  describe('client mistakes are 400 with the field named', () => {
    const expectBadInput = (res: Awaited<ReturnType<typeof gql>>, pattern: RegExp) => {
      assert.equal(res.status, 400, JSON.stringify(res));
      const error = res.errors?.[0];
      assert.ok(error, JSON.stringify(res));
      assert.notEqual(error.message, MASKED_MESSAGE);
      assert.match(`${error.message} ${JSON.stringify(error.extensions)}`, pattern);
    };

    it('refuses NUL bytes in string arguments, literal or variable, nested or as keys', async () => {
      expectBadInput(await gql(`{ sweep(id: "a\\u0000b") { id } }`), /argument id of field sweep contains a NUL/);
      expectBadInput(await gql(`query($f: SweepFilter) { sweeps(filter: $f) { totalCount } }`, { f: { name: 'x\u0000' } }), /variable \$f\.name contains a NUL/);
      expectBadInput(await gql(`query($id: ID!) { trial(id: $id) { id } }`, { id: '\u0000' }), /variable \$id contains a NUL/);
      expectBadInput(
        await gql(`mutation($s: JSON!) { launchSweep(spec: $s) { trials } }`, { s: { name: 'n', base: { ['k\u0000']: 1 } } }, tok.alphaEditor),
        /variable \$s\.base has a key with a NUL/,
      );
      expectBadInput(await gql(`{ sweep(id: "h1") { leaderboard(metric: "lo\\u0000ss") { mean } } }`), /argument metric of field leaderboard/);
    });

    it('refuses cursors that decode to values Postgres would refuse', async () => {
      const Q = `query($after: String) { sweeps(first: 1, after: $after) { totalCount } }`;
      const T = `query($after: String) { sweep(id: "h1") { trials(first: 1, after: $after) { totalCount } } }`;
      for (const key of [['1', 'h1'], ['2025-02-31 00:00:00+00', 'h1'], ['2025-01-01 00:00:00+00', 'h\u0000'], ['2025-01-01 25:00:00+00', 'h1']]) {
        expectBadInput(await gql(Q, { after: encodeCursor(key) }), /invalid cursor.*"argument":"after"/);
      }
      for (const key of [[1e300, 0, 0, 'x'], [0, 2 ** 31, 0, 'x'], [0, 0, -(2 ** 31) - 1, 'x'], [0, 0, 0, 'x\u0000'], [0, 0, 0, 7]]) {
        expectBadInput(await gql(T, { after: encodeCursor(key) }), /invalid cursor.*"argument":"after"/);
      }
      expectBadInput(await gql(Q, { after: 'x'.repeat(10_000) }), /invalid cursor/);
    });

    it('refuses out-of-range numbers and dates', async () => {
      expectBadInput(await gql(`query($f: TrialFilter) { sweep(id: "h1") { trials(filter: $f) { totalCount } } }`, { f: { rung: 2 ** 31 } }), /rung/);
      expectBadInput(await gql(`{ sweeps(first: 3000000000) { totalCount } }`), /Int cannot represent/);
      expectBadInput(await gql(`{ sweeps(first: -1) { totalCount } }`), /first must be between 0 and 100/);
      expectBadInput(await gql(`query($f: SweepFilter) { sweeps(filter: $f) { totalCount } }`, { f: { createdAfter: '+275760-09-13T00:00:00Z' } }), /date-time out of range/);
      expectBadInput(await gql(`{ sweeps(filter: { createdBefore: "-000001-01-01T00:00:00Z" }) { totalCount } }`), /date-time out of range/);
    });

    it('refuses JSON nested deeper than 64 levels instead of overflowing a parser', async () => {
      // Built as text: JSON.stringify itself would overflow on it.
      const s = `${'['.repeat(5000)}1${']'.repeat(5000)}`;
      const res = await api.yoga.fetch('http://ladder.test/graphql', {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: `Bearer ${tok.alphaEditor}` },
        body: `{"query": "mutation($s: JSON!) { launchSweep(spec: $s) { trials } }", "variables": {"s": ${s}}}`,
      });
      expectBadInput({ status: res.status, ...((await res.json()) as object) }, /variable \$s\[0\](\[0\]){63} is nested deeper than 64/);
    });
  });

  describe('user keys never become prototypes', () => {
    it('builds JSON literals with own properties, so __proto__ cannot set a prototype', () => {
      const value = resolvers.JSON.parseLiteral(parseValue('{ __proto__: { project: "beta" }, name: "n" }'), {}) as Record<string, unknown>;
      assert.equal(Object.getPrototypeOf(value), null, 'graphql-scalars builds literal objects on a null prototype');
      assert.ok(Object.hasOwn(value, '__proto__'));
      assert.equal((value as { project?: unknown }).project, undefined);
    });

    it('refuses a __proto__ key in JSON input, literal or variable, naming where', async () => {
      const literal = await gql(`mutation { launchSweep(spec: { name: "n", __proto__: { project: "beta" } }) { trials } }`, {}, tok.alphaEditor);
      assert.equal(literal.status, 400);
      assert.match(literal.errors?.[0]?.message ?? '', /argument spec of field launchSweep uses the key "__proto__"/);
      const variable = await gql(`mutation($s: JSON!) { launchSweep(spec: $s) { trials } }`, { s: JSON.parse('{"base": {"__proto__": {"x": 1}}}') }, tok.alphaEditor);
      assert.equal(variable.status, 400);
      assert.match(variable.errors?.[0]?.message ?? '', /variable \$s\.base uses the key "__proto__"/);
      assert.equal(({} as Record<string, unknown>).x, undefined);
      assert.equal(({} as Record<string, unknown>).project, undefined);
    });
  });
});
