/**
 * The argument templates of a `command` sweep: `{key}` takes that key of the trial's resolved
 * config (dotted paths reach into objects), `{args}` alone as an argument becomes `--key=value` for
 * every key, and `{{` / `}}` are literal braces. Only `{` + key characters + `}` is a placeholder,
 * (letters of any script, digits, `_ . -`),
 * so an argument such as `{"a": 1}` stays literal.
 *
 * The result is an argument list handed to the program as-is, never through a shell: a config
 * value with spaces, quotes or `$(...)` is one argument with exactly those characters.
 */
import { canonicalJson } from './identity';

/** The placeholder that expands to every config key. */
export const ARGS_PLACEHOLDER = 'args';

export type TemplatePiece = { text: string } | { key: string };

const PLACEHOLDER = /\{\{|\}\}|\{([\p{L}\p{N}_.-]+)\}/gu;

export class TemplateError extends Error {
  constructor(
    /** Index of the argument in the command. */
    readonly index: number,
    message: string,
  ) {
    super(message);
    this.name = 'TemplateError';
  }
}

/** Splits one argument into literal text and placeholders. */
export function parseTemplate(arg: string): TemplatePiece[] {
  const pieces: TemplatePiece[] = [];
  let text = '';
  let last = 0;
  for (const m of arg.matchAll(PLACEHOLDER)) {
    text += arg.slice(last, m.index);
    last = m.index + m[0].length;
    if (m[0] === '{{') text += '{';
    else if (m[0] === '}}') text += '}';
    else {
      if (text) pieces.push({ text });
      text = '';
      pieces.push({ key: m[1]! });
    }
  }
  text += arg.slice(last);
  if (text || pieces.length === 0) pieces.push({ text });
  return pieces;
}

/** Problems with a command's placeholders that no config can fix, as [argument index, message]. */
export function templateProblems(command: readonly string[]): Array<[number, string]> {
  const problems: Array<[number, string]> = [];
  command.forEach((arg, i) => {
    const pieces = parseTemplate(arg);
    for (const piece of pieces) {
      if (!('key' in piece)) continue;
      if (piece.key === ARGS_PLACEHOLDER && pieces.length > 1) {
        problems.push([i, `{${ARGS_PLACEHOLDER}} expands to several arguments, so it must be an argument on its own`]);
      } else if (piece.key.split('.').some((s) => s === '')) {
        problems.push([i, `"{${piece.key}}" has an empty path segment`]);
      }
    }
    if (i === 0 && pieces.some((p) => 'key' in p && p.key === ARGS_PLACEHOLDER)) {
      problems.push([0, `the program (the first argument) cannot be {${ARGS_PLACEHOLDER}}`]);
    }
  });
  return problems;
}

/** The config keys a command's placeholders name (`{args}` excluded), with the argument index. */
export function templateKeys(command: readonly string[]): Array<{ index: number; key: string }> {
  const keys: Array<{ index: number; key: string }> = [];
  command.forEach((arg, index) => {
    for (const piece of parseTemplate(arg)) {
      if ('key' in piece && piece.key !== ARGS_PLACEHOLDER) keys.push({ index, key: piece.key });
    }
  });
  return keys;
}

/** The value at a dotted path through own properties only, or `undefined`. */
export function lookupPath(config: Record<string, unknown>, dotted: string): unknown {
  let node: unknown = config;
  for (const part of dotted.split('.')) {
    if (node === null || typeof node !== 'object' || Array.isArray(node)) return undefined;
    if (!Object.hasOwn(node, part)) return undefined;
    node = (node as Record<string, unknown>)[part];
  }
  return node;
}

/** How a config value is written into an argument: strings as they are, everything else as JSON. */
export function formatArgValue(value: unknown): string {
  return typeof value === 'string' ? value : canonicalJson(value);
}

/** `--key=value` for every leaf of the config, nested objects as dotted keys, sorted by key. */
export function configArgs(config: Record<string, unknown>): string[] {
  const out: Array<[string, string]> = [];
  const walk = (node: Record<string, unknown>, prefix: string) => {
    for (const [key, value] of Object.entries(node)) {
      const name = prefix ? `${prefix}.${key}` : key;
      if (value !== null && typeof value === 'object' && !Array.isArray(value) && Object.keys(value).length > 0) {
        walk(value as Record<string, unknown>, name);
      } else {
        out.push([name, formatArgValue(value)]);
      }
    }
  };
  walk(config, '');
  out.sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  return out.map(([k, v]) => `--${k}=${v}`);
}

/**
 * The argument list of one trial. Throws TemplateError (with the argument's index) when a
 * placeholder names no key of the config.
 */
export function expandCommand(command: readonly string[], config: Record<string, unknown>): string[] {
  const argv: string[] = [];
  command.forEach((arg, index) => {
    const pieces = parseTemplate(arg);
    if (pieces.length === 1 && 'key' in pieces[0]! && pieces[0].key === ARGS_PLACEHOLDER) {
      argv.push(...configArgs(config));
      return;
    }
    let out = '';
    for (const piece of pieces) {
      if ('text' in piece) {
        out += piece.text;
        continue;
      }
      if (piece.key === ARGS_PLACEHOLDER) {
        throw new TemplateError(index, `{${ARGS_PLACEHOLDER}} must be an argument on its own`);
      }
      const value = lookupPath(config, piece.key);
      if (value === undefined) {
        throw new TemplateError(index, `"{${piece.key}}" names no key of the trial's config`);
      }
      out += formatArgValue(value);
    }
    argv.push(out);
  });
  return argv;
}
