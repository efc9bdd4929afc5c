/**
 * The orchestrator image (deploy/Dockerfile) copies a list of folders; a module in one of them
 * that imports from a folder left out would crash the worker or the API at start in the image
 * only (no container engine here to build it). Checked statically: the relative imports reached
 * from the image's entry points (its CMD, the chart's commands) all lie in copied folders.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { REPO_ROOT } from './harness';

function shippedFolders(): string[] {
  const text = fs.readFileSync(path.join(REPO_ROOT, 'deploy', 'Dockerfile'), 'utf8');
  const runtime = text.slice(text.lastIndexOf('\nFROM '));
  return [...runtime.matchAll(/^COPY --from=build \/src\/([\w.-]+)(?:\/\S*)? /gm)].map((m) => m[1]!);
}

/** Relative module specifiers a file loads at run time (type-only imports are erased). */
function runtimeImports(file: string): string[] {
  const text = fs.readFileSync(file, 'utf8');
  const specs: string[] = [];
  for (const m of text.matchAll(/^\s*(?:import|export)\s+(?!type\b)[^'";]*?from\s+'(\.[^']+)'/gm)) specs.push(m[1]!);
  for (const m of text.matchAll(/require(?:\.resolve)?\('(\.[^']+)'\)/g)) specs.push(m[1]!);
  return specs;
}

/** The modules the image starts: the Dockerfile's CMD and the commands of the Helm chart. */
function entryPoints(): string[] {
  const files = [path.join(REPO_ROOT, 'deploy', 'Dockerfile'), path.join(REPO_ROOT, 'deploy', 'helm', 'ladder', 'values.yaml')];
  const templates = path.join(REPO_ROOT, 'deploy', 'helm', 'ladder', 'templates');
  for (const f of fs.readdirSync(templates)) files.push(path.join(templates, f));
  const entries = new Set<string>();
  for (const f of files) {
    for (const m of fs.readFileSync(f, 'utf8').matchAll(/"([\w-]+\/[\w./-]+\.ts)"/g)) entries.add(m[1]!);
  }
  return [...entries];
}

function resolveModule(from: string, spec: string): string | null {
  const base = path.resolve(path.dirname(from), spec);
  for (const candidate of [base, `${base}.ts`, `${base}.tsx`, path.join(base, 'index.ts')]) {
    if (fs.statSync(candidate, { throwIfNoEntry: false })?.isFile()) return candidate;
  }
  return null;
}

describe('the orchestrator image', () => {
  it('ships every module its entry points load at run time', () => {
    const shipped = shippedFolders();
    const entries = entryPoints();
    assert.ok(shipped.includes('workers') && shipped.includes('core'), `folders read from the Dockerfile: ${shipped.join(', ')}`);
    assert.ok(entries.includes('workers/main.ts') && entries.includes('cli/main.ts'), `entry points: ${entries.join(', ')}`);
    const missing: string[] = [];
    const seen = new Set<string>();
    const queue = entries.map((e) => path.join(REPO_ROOT, e));
    while (queue.length > 0) {
      const file = queue.pop()!;
      if (seen.has(file)) continue;
      seen.add(file);
      const top = path.relative(REPO_ROOT, file).split(path.sep)[0]!;
      if (!shipped.includes(top)) missing.push(path.relative(REPO_ROOT, file));
      if (!/\.tsx?$/.test(file)) continue;
      for (const spec of runtimeImports(file)) {
        const target = resolveModule(file, spec);
        if (target) queue.push(target);
        else if (!spec.endsWith('.json')) missing.push(`${path.relative(REPO_ROOT, file)} → ${spec} (unresolved)`);
      }
    }
    assert.ok(seen.size > 50, `walked ${seen.size} modules`);
    assert.deepEqual(missing, [], 'modules the image loads but does not copy');
  });
});
