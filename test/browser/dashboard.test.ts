/**
 * The dashboard in headless Chromium (Debian's `chromium`, driven by playwright-core) against a
 * database seeded by real sweeps (simulated executor, real Temporal, real Postgres, real ingest):
 * the sweeps list, the sweep page (leaderboard values = what the API returns, scaling plot and
 * heatmaps drawn, promotions), the trial page, and a live update through `sweepProgress` when
 * trials finish, without a reload. Screenshots go to test/browser/screenshots/ (git-ignored).
 *
 * The test API server has no anonymous reads, so the page gets a viewer token through
 * localStorage (`ladder.token`), as a user of a non-embedded deployment would.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { Browser, Page } from 'playwright-core';
import { createApiToken } from '../../core/auth/tokens';
import { and, eq, isNotNull, sql } from 'drizzle-orm';
import { trials } from '../../core/db/schema';
import { launchSweep, type LaunchContext } from '../../core/sweeps/launch';
import { formatMeanStd } from '../../dashboard/src/lib';
import { createApiServer, type ApiServer } from '../../graphql/server';
import type { SimulatedExecutor } from '../../workers/executors/simulated';
import { createTestStack, eventually, REPO_ROOT, waitForSweepWithin as waitForSweep, type TestStack } from '../harness';

// eslint-disable-next-line @typescript-eslint/no-require-imports
const { ensureChromium, MISSING } = require('../../scripts/ensure-chromium.js') as { ensureChromium: () => string | null; MISSING: string };

const SHOTS = path.join(__dirname, 'screenshots');
const CHROMIUM_ARGS = [
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--no-first-run',
];

const chromiumPath = ensureChromium();
/** `npm test` and CI install Chromium themselves, so there a missing one is a failure, not a skip. */
const STRICT = process.env.CI === 'true' || process.env.LADDER_STRICT_TESTS === '1';
const skip = chromiumPath ? false : STRICT ? 'no Chromium: the strict check above fails this run' : MISSING;

it('has a Chromium to drive (strict mode: npm test, CI)', { skip: !STRICT && 'strict mode is off (a plain `node --test` run)' }, () => {
  assert.ok(chromiumPath, MISSING);
});

interface BoardRow {
  variantName: string;
  rungIndex: number;
  mean: number | null;
  std: number | null;
  count: number;
}

describe('dashboard (headless chromium)', { skip, timeout: 300_000 }, () => {
  let stack: TestStack;
  let ctx: LaunchContext;
  let browser: Browser;
  let page: Page;
  let token: string;
  let ladderId: string;
  const pageErrors: string[] = [];
  /** The simulated executor's clock runs this far ahead of real time: the live test moves it. */
  let clockShiftMs = 0;
  let sim: SimulatedExecutor;
  /** A second API server on the same database that can read the simulated executor's logs. */
  let logApi: ApiServer | undefined;

  const api = async <T>(query: string, variables: Record<string, unknown> = {}): Promise<T> => {
    const res = await fetch(`${stack.apiUrl}/graphql`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
      body: JSON.stringify({ query, variables }),
    });
    const body = (await res.json()) as { data: T; errors?: unknown[] };
    assert.equal(body.errors, undefined, JSON.stringify(body.errors));
    return body.data;
  };
  const shot = (name: string) => page.screenshot({ path: path.join(SHOTS, `${name}.png`), fullPage: true });

  before(async () => {
    // The served build must be current (same rule as `npm test` / `npm run demo`).
    execFileSync(process.execPath, [path.join(REPO_ROOT, 'scripts', 'ensure-dashboard.js')], { stdio: 'inherit' });
    fs.mkdirSync(SHOTS, { recursive: true });
    stack = await createTestStack('dashboard');
    sim = stack.simulatedExecutor({ now: () => Date.now() + clockShiftMs });
    await stack.startWorker({ executor: sim, pollIntervalMs: 50 });
    ctx = { db: stack.database.db, temporal: stack.temporal, taskQueue: stack.taskQueue, codeVersion: 'dash-test', executor: 'simulated' };
    token = (await createApiToken(stack.database.db, { project: 'default', role: 'viewer', name: 'dashboard test' })).token;

    // 3 rungs × 4 variants × 2 seeds, top-3 promotion, scaling analysis after every rung.
    const ladder = await launchSweep(ctx, {
      spec: {
        name: 'dash-ladder',
        kind: 'synthetic',
        base: { steps: 40, noise: 0.01, checkpoint_every: 10 },
        grid: { lr: [1e-4, 3e-4, 1e-3, 1e-2] },
        seeds: 2,
        scale: { key: 'scale', rungs: [1e5, 1e6, 1e7] },
        promotion: { metric: 'loss', mode: 'min', topK: 3 },
        analysis: { metric: 'loss', mode: 'min' },
        concurrency: 8,
      },
    });
    ladderId = ladder.id;
    assert.equal(await waitForSweep(ctx, ladderId), 'succeeded');
    await eventually('the scaling analysis of all 3 rungs', async () => {
      const d = await api<{ sweep: { scalingAnalysis: { rungs: number[] } | null } }>(`query($id: ID!) { sweep(id: $id) { scalingAnalysis { rungs } } }`, { id: ladderId });
      return d.sweep.scalingAnalysis?.rungs.length === 3;
    }, 30_000);

    browser = await (await import('playwright-core')).chromium.launch({ executablePath: chromiumPath!, headless: true, args: CHROMIUM_ARGS });
    page = await browser.newPage({ viewport: { width: 1400, height: 1000 } });
    page.on('pageerror', (e) => pageErrors.push(e.message));
    await page.addInitScript((t) => window.localStorage.setItem('ladder.token', t), token);
  });

  after(async () => {
    await browser?.close();
    await logApi?.close();
    await stack?.close();
  });

  it('serves the dashboard at / with the API routes kept', async () => {
    const root = await fetch(`${stack.apiUrl}/`);
    assert.equal(root.status, 200);
    assert.match(root.headers.get('content-type') ?? '', /^text\/html/);
    const html = await root.text();
    const asset = /src="(\/assets\/[^"]+\.js)"/.exec(html)?.[1];
    assert.ok(asset, 'index.html links its script');
    const js = await fetch(`${stack.apiUrl}${asset}`);
    assert.match(js.headers.get('content-type') ?? '', /^text\/javascript/);
    assert.equal((await fetch(`${stack.apiUrl}/sweeps/anything`)).status, 200, 'SPA fallback');
    assert.equal((await fetch(`${stack.apiUrl}/assets/missing.js`)).status, 404);
    assert.equal(await (await fetch(`${stack.apiUrl}/healthz`)).text(), 'ok');
    const gql = await fetch(`${stack.apiUrl}/graphql`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ query: '{ __typename }' }),
    });
    assert.equal(gql.status, 200);
  });

  it('lists the sweep, and opens it with the leaderboard values the API returns', async () => {
    await page.goto(`${stack.apiUrl}/`);
    const row = page.locator(`[data-testid=sweeps] tr[data-sweep-id="${ladderId}"]`);
    await row.waitFor({ timeout: 10_000 });
    assert.match(await row.innerText(), /dash-ladder/);
    assert.match(await row.locator('.badge').innerText(), /succeeded/);
    await shot('01-sweeps-list');

    await row.locator('a').click();
    await page.waitForURL(/#\/sweeps\//);
    await page.locator('[data-testid=leaderboard] tbody tr').first().waitFor({ timeout: 10_000 });
    assert.equal(await page.locator('[data-testid=sweep-name]').innerText(), 'dash-ladder');

    const { sweep } = await api<{ sweep: { leaderboard: BoardRow[] } }>(
      `query($id: ID!) { sweep(id: $id) { leaderboard(metric: "loss", mode: min) { variantName rungIndex mean std count } } }`,
      { id: ladderId },
    );
    const valued = sweep.leaderboard.filter((r) => r.mean !== null);
    assert.equal(valued.length, 4 + 3 + 3, 'API leaderboard: 4 variants at rung 0, the 3 promoted above');
    for (const r of valued) {
      const cell = page.locator(`[data-testid=leaderboard] tr[data-variant="${r.variantName}"] td[data-rung="${r.rungIndex}"]`);
      const text = await cell.innerText();
      assert.ok(text.startsWith(formatMeanStd(r.mean, r.std)), `${r.variantName} @ rung ${r.rungIndex}: page "${text}" vs API ${r.mean} ± ${r.std}`);
      assert.match(text, new RegExp(`n=${r.count}`));
      assert.equal(Number(await cell.getAttribute('data-mean')), r.mean);
      // The text's leading number is the API's mean to 4 significant digits.
      const shown = Number(text.split('±')[0]);
      assert.ok(Math.abs(shown - r.mean!) <= Math.abs(r.mean!) * 1e-3, `${shown} ≈ ${r.mean}`);
    }

    // Sorting by the variant column orders the rows by name.
    await page.locator('[data-testid=leaderboard] th', { hasText: 'variant' }).click();
    const names = await page.locator('[data-testid=leaderboard] tbody tr').evaluateAll((trs) => trs.map((tr) => tr.getAttribute('data-variant')!));
    assert.deepEqual(names, [...names].sort((a, b) => a.localeCompare(b, undefined, { numeric: true })));
  });

  it('draws the scaling plot, the consistency heatmaps, the promotions and the curves', async () => {
    const plot = page.locator('[data-testid=scaling-plot]');
    await plot.locator('svg.recharts-surface').first().waitFor({ timeout: 10_000 });
    const paths = await plot.locator('path.recharts-curve').evaluateAll((ps) => ps.map((p) => p.getAttribute('d') ?? ''));
    const drawn = paths.filter((d) => d.length > 10 && /L/.test(d));
    assert.ok(drawn.length >= 4, `one line per variant at least, got ${drawn.length} non-empty paths`);
    assert.ok((await plot.locator('.recharts-area-area').count()) + (await plot.locator('.recharts-errorBar').count()) > 0, 'an extrapolation interval is drawn');

    for (const id of ['heatmap-r2', 'heatmap-spearman']) assert.equal(await page.locator(`[data-testid=${id}] svg:not(.heat-legend) rect`).count(), 9, `${id}: 3 × 3 cells`);
    const promotions = page.locator('[data-testid=promotions]');
    assert.equal(await promotions.locator('tr.promoted').count(), 3 + 3, 'top-3 promoted after rungs 0 and 1');
    assert.match(await promotions.innerText(), /stopped/);

    const curves = page.locator('[data-testid=curves] path.recharts-curve');
    await curves.first().waitFor({ timeout: 10_000 });
    assert.ok(((await curves.first().getAttribute('d')) ?? '').length > 10);
    await page.waitForTimeout(300);
    await shot('02-sweep-page');
  });

  it('shows the verdict first, readably, with legends, error bars and which direction is better', async () => {
    const { sweep } = await api<{ sweep: { scalingAnalysis: { verdict: string; criticalRung: { scale: number | null } } } }>(
      `query($id: ID!) { sweep(id: $id) { scalingAnalysis { verdict criticalRung { scale } } } }`,
      { id: ladderId },
    );
    assert.ok(sweep.scalingAnalysis.verdict.length > 20, sweep.scalingAnalysis.verdict);
    await page.goto(`${stack.apiUrl}/#/sweeps/${ladderId}`);
    await page.locator('[data-testid=verdict-text]').waitFor({ timeout: 10_000 });
    assert.equal(await page.locator('section.card').first().getAttribute('id'), 'verdict', 'the verdict is the first card');
    assert.equal((await page.locator('[data-testid=verdict-text]').innerText()).trim(), sweep.scalingAnalysis.verdict);
    const facts = await page.locator('[data-testid=critical-rung]').innerText();
    assert.match(facts, /critical rung/);
    assert.doesNotMatch(facts, /\d\.\d{5,}/, `no raw floats: ${facts}`);
    assert.doesNotMatch(facts, /[{}"]/, 'not JSON');
    // The numbers behind it, one click away.
    await page.locator('[data-testid=verdict-details] summary').click();
    assert.ok((await page.locator('[data-testid=verdict-details] tbody tr').count()) >= 2);
    assert.doesNotMatch(await page.locator('[data-testid=verdict-details]').innerText(), /\d\.\d{5,}/);

    assert.equal(await page.locator('[data-testid=heat-legend]').count(), 2, 'a colour legend under each heatmap');
    assert.match(await page.locator('[data-testid=leaderboard-direction]').innerText(), /lower is better/);
    assert.match(await page.locator('[data-testid=promotions]').innerText(), /lower is better/);
    // Finished sweep: no remaining-time estimate at all (not "0.0 s").
    assert.equal((await page.locator('[data-testid=total-eta]').innerText()).trim(), '');

    const plot = page.locator('[data-testid=scaling-plot]');
    await plot.locator('svg.recharts-surface').first().waitFor({ timeout: 10_000 });
    // Seed error bars on the observed means: more bars than the ≤ 4 prediction markers.
    await eventually('error bars over seeds', async () => (await plot.locator('.recharts-errorBar').count()) > 4, 10_000, 100);
    const dashes = await plot.locator('path.scaling-line, .scaling-line path.recharts-curve').evaluateAll((ps) => ps.map((p) => p.getAttribute('stroke-dasharray') ?? ''));
    assert.ok(new Set(dashes).size >= 2, `lines differ in dash pattern: ${JSON.stringify(dashes)}`);
    const entry = plot.locator('[data-testid=legend] button').first();
    await entry.click();
    assert.equal(await entry.getAttribute('aria-pressed'), 'true', 'a legend entry pins its variant');
    await entry.click();
    await page.locator('#verdict').screenshot({ path: path.join(SHOTS, '06-verdict-card.png') });
  });

  it('serves GraphiQL at /graphql with no request leaving the server', async () => {
    const html = await (await fetch(`${stack.apiUrl}/graphql`, { headers: { accept: 'text/html' } })).text();
    assert.match(html, /graphiql/i);
    assert.doesNotMatch(html, /(src|href)=["']https?:\/\//, 'no script or style from elsewhere');
    const gpage = await browser.newPage();
    const external: string[] = [];
    await gpage.route('**/*', (route) => {
      const url = route.request().url();
      if (url.startsWith(stack.apiUrl) || url.startsWith('data:') || url.startsWith('blob:')) return route.continue();
      external.push(url);
      return route.abort();
    });
    const errors: string[] = [];
    gpage.on('pageerror', (e) => errors.push(e.message));
    try {
      await gpage.goto(`${stack.apiUrl}/graphql`);
      await gpage.locator('.graphiql-container').first().waitFor({ timeout: 30_000 });
      await gpage.locator('.graphiql-query-editor .monaco-editor, .graphiql-query-editor textarea').first().waitFor({ timeout: 30_000 });
      await gpage.screenshot({ path: path.join(SHOTS, '08-graphiql.png') });
      assert.deepEqual(external, [], 'GraphiQL asked for nothing outside this server');
      assert.deepEqual(errors, [], 'no uncaught error in GraphiQL');
    } finally {
      await gpage.close();
    }
  });

  it('shows why a trial failed and the end of its log', async () => {
    const failing = await launchSweep(ctx, {
      spec: { name: 'dash-fail', kind: 'synthetic', base: { steps: 10, fail_attempts: 9 }, seeds: 1, retries: 0, concurrency: 1 },
    });
    assert.equal(await waitForSweep(ctx, failing.id), 'failed');
    const [failed] = await stack.database.db.select().from(trials).where(and(eq(trials.sweepId, failing.id), eq(trials.status, 'failed')));
    assert.ok(failed?.exitReason, 'the failed trial has a reason');
    logApi = createApiServer({ database: stack.database, ingestSecret: 'x'.repeat(32), readLogs: (ref, tail) => sim.logs(ref, tail) });
    const logUrl = await logApi.listen(0);
    await page.goto(`${logUrl}/#/trials/${failed.id}`);
    const reason = page.locator('[data-testid=failure-reason]');
    await reason.waitFor({ timeout: 10_000 });
    assert.ok((await reason.innerText()).includes(failed.exitReason), `reason shown: ${await reason.innerText()}`);
    assert.equal(await page.locator('section.card').first().getAttribute('id'), 'failure', 'the failure comes first');
    await page.locator('[data-testid=log-tail]').waitFor({ timeout: 10_000 });
    assert.match(await page.locator('[data-testid=log-tail]').innerText(), /simulated crash/);
    await shot('07-failed-trial');
  });

  it('opens a trial page with config, result, curves and events', async () => {
    await page.goto(`${stack.apiUrl}/#/sweeps/${ladderId}`);
    await page.locator('[data-testid=trials] tbody tr a').first().click();
    await page.waitForURL(/#\/trials\//);
    await page.locator('[data-testid=events] tbody tr').first().waitFor({ timeout: 10_000 });
    const text = await page.locator('main').innerText();
    assert.match(text, /"lr"/);
    assert.match(await page.locator('[data-testid=result-metrics]').innerText(), /loss/);
    assert.ok((await page.locator('[data-testid^=curve-] path.recharts-curve').count()) > 0);
    await shot('03-trial-page');
  });

  it('updates the sweep page live through the subscription when trials finish, without a reload', async () => {
    // Each trial would take 10 minutes; the test moves the executor's clock past one trial at a
    // time once the page is subscribed, so no trial can finish before the page has loaded, and
    // every step of the page is checked against a known number of finished trials.
    const TRIAL_MS = 10 * 60_000;
    const live = await launchSweep(ctx, {
      spec: {
        name: 'dash-live',
        kind: 'synthetic',
        base: { steps: 10, step_sleep: TRIAL_MS / 10 / 1000, noise: 0.01 },
        grid: { lr: [3e-4, 1e-3] },
        seeds: 2,
        concurrency: 1,
      },
    });
    await page.goto(`${stack.apiUrl}/#/sweeps/${live.id}`);
    await page.locator('[data-testid=total-counts]').waitFor({ timeout: 10_000 });
    await page.locator('.live.on').waitFor({ timeout: 10_000 });
    const before = await page.locator('[data-testid=total-counts]').innerText();
    assert.doesNotMatch(before, /[1-9] succeeded/, `no trial can have finished yet: ${before}`);
    await page.evaluate(() => ((window as unknown as { __noReload: boolean }).__noReload = true));
    await shot('04-live-before');

    const submitted = async () => {
      const rows = await stack.database.db
        .select({ n: sql<number>`count(*)::int` })
        .from(trials)
        .where(and(eq(trials.sweepId, live.id), eq(trials.status, 'running'), isNotNull(trials.execution)));
      return (rows[0]?.n ?? 0) > 0;
    };
    for (let done = 1; done <= 4; done++) {
      await eventually(`trial ${done} of the live sweep submitted`, submitted, 30_000, 50);
      clockShiftMs += TRIAL_MS + 1_000;
      // The page must follow without reloading.
      await page.locator('[data-testid=total-counts]', { hasText: `${done} succeeded` }).waitFor({ timeout: 30_000 });
    }
    await page.locator('.toolbar .badge', { hasText: 'succeeded' }).waitFor({ timeout: 10_000 });
    assert.equal(await page.evaluate(() => (window as unknown as { __noReload?: boolean }).__noReload), true, 'no reload happened');
    assert.ok(Number(await page.locator('[data-testid=updates]').getAttribute('data-updates')) >= 3, 'several subscription events arrived');
    // The counts changed, so the details (trials, leaderboard) were fetched again.
    await page.waitForFunction(
      () =>
        document.querySelectorAll('[data-testid=trials] [data-status=succeeded]').length === 4 &&
        [...document.querySelectorAll('[data-testid=leaderboard] tbody td[data-rung]')].filter((td) => /n=2/.test(td.textContent ?? '')).length === 2,
      undefined,
      { timeout: 10_000 },
    );
    assert.equal(await waitForSweep(ctx, live.id), 'succeeded');
    await shot('05-live-after');
    assert.deepEqual(pageErrors, [], 'no uncaught error in the page');
  });
});
