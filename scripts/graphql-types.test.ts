/**
 * The checked-in schema (graphql/schema.graphql) and the dashboard's generated types must match
 * what `npm run gen:graphql` would write now: a schema change the dashboard was not regenerated
 * for fails here (and in `npm run build:dashboard`), not in a user's browser.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { Kind, parse, print, visit } from 'graphql';
import { GENERATED_TYPES, SCHEMA_FILE } from '../codegen';
import { renderSchema, renderTypes, ROOT, staleFiles } from './graphql-types';

/** `sdl` without `type.field`: what the schema would print if the server dropped that field. */
function withoutField(sdl: string, type: string, field: string): string {
  let removed = false;
  const doc = visit(parse(sdl), {
    [Kind.OBJECT_TYPE_DEFINITION]: (node) => {
      if (node.name.value !== type) return undefined;
      const fields = node.fields?.filter((f) => f.name.value !== field);
      removed = fields?.length !== node.fields?.length;
      return { ...node, fields };
    },
  });
  assert.ok(removed, `${type}.${field} is in the schema`);
  return print(doc);
}

describe('generated GraphQL types', { timeout: 300_000 }, () => {
  let copy: string;
  before(() => {
    // A copy of what codegen reads, so the test can change it without touching the repo.
    copy = fs.mkdtempSync(path.join(os.tmpdir(), 'ladder-codegen-test-'));
    fs.cpSync(path.join(ROOT, 'dashboard', 'src'), path.join(copy, 'dashboard', 'src'), { recursive: true });
    fs.mkdirSync(path.join(copy, 'graphql'));
    fs.copyFileSync(path.join(ROOT, SCHEMA_FILE), path.join(copy, SCHEMA_FILE));
  });
  after(() => fs.rmSync(copy, { recursive: true, force: true }));

  it('are current in the repo (else: npm run gen:graphql)', async () => {
    assert.deepEqual(await staleFiles(), []);
  });

  it('notice a schema printed from older code, and a dashboard operation edited without regenerating', async () => {
    assert.deepEqual(await staleFiles(copy), []);
    const schemaFile = path.join(copy, SCHEMA_FILE);
    fs.writeFileSync(schemaFile, withoutField(fs.readFileSync(schemaFile, 'utf8'), 'ScalingAnalysis', 'verdict'));
    const queriesFile = path.join(copy, 'dashboard', 'src', 'queries.ts');
    const queries = fs.readFileSync(queriesFile, 'utf8');
    assert.match(queries, /verdict metric mode/);
    fs.writeFileSync(queriesFile, queries.replace('verdict metric mode', 'metric mode'));
    assert.deepEqual((await staleFiles(copy)).sort(), [GENERATED_TYPES, SCHEMA_FILE].sort());
  });

  it('refuse to generate when the schema lost a field the dashboard asks for', async () => {
    await assert.rejects(renderTypes(withoutField(renderSchema(), 'ScalingAnalysis', 'targetNote'), copy), /targetNote/);
  });
});
