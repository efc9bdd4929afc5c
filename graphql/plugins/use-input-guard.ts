/**
 * Input rules that hold for every argument of every field, checked once before execution on the
 * raw variables and on the literals of the document, so no resolver can forget them:
 *
 * - no NUL character (U+0000) in any string or object key: Postgres refuses it in text and jsonb,
 *   which would surface as a masked 500 for what is the client's mistake;
 * - no `__proto__` object key in JSON input: code that copies such an object with assignment
 *   would replace the copy's prototype;
 * - JSON values nested at most `MAX_INPUT_DEPTH` deep: deeper ones would overflow the stack of a
 *   recursive consumer (the spec parser, jsonb) instead of getting an answer.
 *
 * A breach is BAD_USER_INPUT (HTTP 400) naming the variable or argument and the path inside it.
 */
import type { Plugin } from 'graphql-yoga';
import { GraphQLError, Kind, visit, type DocumentNode, type ValueNode } from 'graphql';
import { apiError } from '../errors';
import { useOperationCheck } from './operation-check';

export const MAX_INPUT_DEPTH = 64;

type Problem = { path: string; message: string };

const describe = (s: string) => (s.includes('\u0000') ? 'contains a NUL character (\\u0000), which cannot be stored' : null);

function keyProblem(key: string): string | null {
  if (key === '__proto__') return 'uses the key "__proto__", which is not allowed';
  return describe(key) ? 'has a key with a NUL character (\\u0000), which cannot be stored' : null;
}

/** The first problem in a JSON value, walked without recursion so depth cannot blow the stack. */
export function findInputProblem(value: unknown, root: string): Problem | null {
  const stack: { value: unknown; path: string; depth: number }[] = [{ value, path: root, depth: 0 }];
  while (stack.length) {
    const item = stack.pop()!;
    if (typeof item.value === 'string') {
      const message = describe(item.value);
      if (message) return { path: item.path, message };
      continue;
    }
    if (item.value === null || typeof item.value !== 'object') continue;
    if (item.depth >= MAX_INPUT_DEPTH) return { path: item.path, message: `is nested deeper than ${MAX_INPUT_DEPTH} levels` };
    if (Array.isArray(item.value)) {
      item.value.forEach((v, i) => stack.push({ value: v, path: `${item.path}[${i}]`, depth: item.depth + 1 }));
      continue;
    }
    for (const key of Object.keys(item.value)) {
      const message = keyProblem(key);
      if (message) return { path: `${item.path}`, message };
      stack.push({ value: (item.value as Record<string, unknown>)[key], path: `${item.path}.${key}`, depth: item.depth + 1 });
    }
  }
  return null;
}

/** The same rules over a literal of the document (variables are checked on their values). */
function findLiteralProblem(node: ValueNode, root: string): Problem | null {
  const stack: { node: ValueNode; path: string; depth: number }[] = [{ node, path: root, depth: 0 }];
  while (stack.length) {
    const item = stack.pop()!;
    const { node: n } = item;
    if (n.kind === Kind.STRING || n.kind === Kind.ENUM) {
      const message = describe(n.value);
      if (message) return { path: item.path, message };
    } else if (n.kind === Kind.LIST || n.kind === Kind.OBJECT) {
      if (item.depth >= MAX_INPUT_DEPTH) return { path: item.path, message: `is nested deeper than ${MAX_INPUT_DEPTH} levels` };
      if (n.kind === Kind.LIST) n.values.forEach((v, i) => stack.push({ node: v, path: `${item.path}[${i}]`, depth: item.depth + 1 }));
      else {
        for (const f of n.fields) {
          const message = keyProblem(f.name.value);
          if (message) return { path: item.path, message };
          stack.push({ node: f.value, path: `${item.path}.${f.name.value}`, depth: item.depth + 1 });
        }
      }
    }
  }
  return null;
}

/**
 * Per document: yoga's parser cache hands the same DocumentNode to every request with the same
 * text, so a dashboard's repeated query is walked once, not once per request.
 */
const documentProblems = new WeakMap<DocumentNode, Problem | null>();

function documentProblem(document: DocumentNode): Problem | null {
  let found = documentProblems.get(document);
  if (found === undefined) documentProblems.set(document, (found = findDocumentProblem(document)));
  return found;
}

function findDocumentProblem(document: DocumentNode): Problem | null {
  let found: Problem | null = null;
  const fields: string[] = [];
  visit(document, {
    Field: { enter: (node) => void fields.push(node.name.value), leave: () => void fields.pop() },
    Argument(node) {
      found ??= findLiteralProblem(node.value, `argument ${node.name.value} of field ${fields.at(-1) ?? '?'}`);
      return found ? false : undefined;
    },
    VariableDefinition(node) {
      if (node.defaultValue) found ??= findLiteralProblem(node.defaultValue, `default of variable $${node.variable.name.value}`);
    },
  });
  return found;
}

export function inputProblem(document: DocumentNode, variables: Record<string, unknown> | null | undefined): Problem | null {
  for (const name of Object.keys(variables ?? {})) {
    const bad = keyProblem(name);
    if (bad) return { path: 'variables', message: bad };
    const problem = findInputProblem(variables![name], `variable $${name}`);
    if (problem) return problem;
  }
  return documentProblem(document);
}

/**
 * A document that does not parse or validate is the client's mistake: HTTP 400 whatever the
 * client accepts. Yoga would answer 200 to `accept: application/json` (the GraphQL-over-HTTP
 * legacy rule), which monitoring and retries read as success.
 */
export function useClientErrorStatus(): Plugin {
  // At result processing, after every plugin that sets `spec` on parse and validation errors.
  const mark = (error: unknown) => {
    if (!(error instanceof GraphQLError)) return;
    const extensions = error.extensions as Record<string, unknown>;
    const http = extensions.http as { status?: number; spec?: boolean } | undefined;
    if (http?.spec) extensions.http = { ...http, status: http.status ?? 400, spec: false };
  };
  return {
    onResultProcess({ result }) {
      if (Symbol.asyncIterator in Object(result)) return;
      for (const single of Array.isArray(result) ? result : [result]) (single as { errors?: readonly unknown[] }).errors?.forEach(mark);
    },
  };
}

export function useInputGuard(): Plugin {
  return useOperationCheck((args) => {
    const problem = inputProblem(args.document, args.variableValues);
    return problem ? apiError('BAD_USER_INPUT', `${problem.path} ${problem.message}`, { path: problem.path }) : null;
  });
}
