#!/usr/bin/env node
// Runs before `npm test` and `npm run demo` (after ensure-node-modules.js): builds the dashboard
// (`npm run build:dashboard` → dashboard/dist) when the build is missing or older than any of its
// sources, so the API server always serves the current dashboard at `/`.
const { execSync } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');

const root = path.resolve(__dirname, '..');
const dashboard = path.join(root, 'dashboard');
const built = path.join(dashboard, 'dist', 'index.html');
/** What the dashboard imports from outside its folder, and what its build reads (scripts/ensure-dashboard.test.ts checks the list). */
const OUTSIDE_SOURCES = ['core/format.ts', 'core/sweeps/metric-choice.ts', 'loadtests/capacity/thresholds.ts', 'graphql/schema.graphql', 'package-lock.json'];

/** Newest modification time under `p` (a file or a folder, recursively); 0 when absent. */
function newest(p) {
  let stat;
  try {
    stat = fs.statSync(p);
  } catch {
    return 0;
  }
  if (!stat.isDirectory()) return stat.mtimeMs;
  let max = 0;
  for (const entry of fs.readdirSync(p)) max = Math.max(max, newest(path.join(p, entry)));
  return max;
}

function isStale() {
  if (!fs.existsSync(built)) return 'missing';
  const builtAt = fs.statSync(built).mtimeMs;
  const sources = ['src', 'index.html', 'vite.config.mts', 'tsconfig.json'].map((f) => path.join(dashboard, f));
  for (const f of OUTSIDE_SOURCES) sources.push(path.join(root, f));
  return sources.some((s) => newest(s) > builtAt) ? 'older than its sources' : null;
}

if (require.main === module) {
  const why = fs.existsSync(dashboard) ? isStale() : null;
  if (why) {
    console.log(`building the dashboard (dashboard/dist is ${why})…`);
    execSync('npm run --silent build:dashboard', { cwd: root, stdio: 'inherit' });
  }
}

module.exports = { isStale, OUTSIDE_SOURCES };
