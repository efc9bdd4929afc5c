#!/usr/bin/env node
// Runs before `npm test`: makes sure Debian's Chromium is installed for the browser test
// (test/browser/dashboard.test.ts drives it with playwright-core; no browser is downloaded by
// npm). As root it installs the `chromium` package with apt-get; otherwise it only says what to
// run. Under CI=true a Chromium it cannot find or install fails the run here, with what to do;
// elsewhere the browser test then fails in strict mode or skips, saying why (scripts/test.ts).
const { execSync } = require('node:child_process');
const fs = require('node:fs');

const CANDIDATES = [process.env.LADDER_CHROMIUM, '/usr/bin/chromium', '/usr/bin/chromium-browser'].filter(Boolean);

function findChromium() {
  return CANDIDATES.find((p) => fs.existsSync(p)) ?? null;
}

function ensureChromium() {
  const found = findChromium();
  if (found) return found;
  const isRoot = typeof process.getuid === 'function' && process.getuid() === 0;
  if (!isRoot) {
    console.warn('chromium not found; install it with: sudo apt-get install -y --no-install-recommends chromium');
    return null;
  }
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  const install = () => execSync('apt-get install -y --no-install-recommends chromium', { stdio: 'inherit', env });
  console.log('installing Debian chromium for the browser test (apt-get)…');
  try {
    install();
  } catch {
    try {
      execSync('apt-get update', { stdio: 'inherit', env });
      install();
    } catch (err) {
      console.warn(`could not install chromium: ${err.message}`);
    }
  }
  return findChromium();
}

const MISSING = 'Debian chromium is not installed and could not be installed: run `sudo apt-get install -y --no-install-recommends chromium` or set LADDER_CHROMIUM to a Chromium binary';

if (require.main === module) {
  if (!ensureChromium() && process.env.CI === 'true') {
    console.error(`ensure-chromium: ${MISSING} (CI=true: the browser test may not skip)`);
    process.exit(1);
  }
}

module.exports = { ensureChromium, findChromium, MISSING };
