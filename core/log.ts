/**
 * Structured logs: one JSON line per event on stderr (pino), with the component, the level and
 * the fields. Fields whose names look like secrets are redacted at any depth, so a careless
 * `log.info(…, { token })` or `{ headers: { authorization } }` cannot leak one. pino's own
 * `redact` takes fixed paths; a name rule needs the `formatters.log` hook.
 */
import pino, { type DestinationStream } from 'pino';
import { readSetting } from './settings';

export interface Logger {
  info(message: string, fields?: Record<string, unknown>): void;
  warn(message: string, fields?: Record<string, unknown>): void;
  error(message: string, fields?: Record<string, unknown>): void;
}

export const SECRET_FIELD = /token|secret|password|authorization|cookie/i;
const REDACTED = '[redacted]';
/** Deeper than this, a value is cut (a log line is not a dump). */
const MAX_DEPTH = 8;

function redact(value: unknown, depth = 0): unknown {
  if (value === null || typeof value !== 'object') return value;
  if (value instanceof Error) return { name: value.name, message: value.message };
  if (value instanceof Date) return value;
  if (depth >= MAX_DEPTH) return '[too deep]';
  if (Array.isArray(value)) return value.map((v) => redact(v, depth + 1));
  // Own keys onto a null-prototype object: a field named __proto__ stays a field.
  const out: Record<string, unknown> = Object.create(null);
  for (const [k, v] of Object.entries(value)) out[k] = SECRET_FIELD.test(k) ? REDACTED : redact(v, depth + 1);
  return out;
}

export interface LoggerOptions {
  /** Only warnings and errors. */
  quiet?: boolean;
  /** Where lines go; default stderr, written synchronously so a crash loses none. */
  destination?: DestinationStream;
}

export function createLogger(component: string, options: LoggerOptions = {}): Logger {
  const logger = pino(
    {
      base: { component },
      level: options.quiet ? 'warn' : readSetting('LADDER_LOG_LEVEL'),
      timestamp: pino.stdTimeFunctions.isoTime,
      formatters: {
        level: (label) => ({ level: label }),
        log: (fields) => redact(fields) as Record<string, unknown>,
      },
    },
    options.destination ?? pino.destination({ fd: 2, sync: true }),
  );
  return {
    info: (m, f) => logger.info(f ?? {}, m),
    warn: (m, f) => logger.warn(f ?? {}, m),
    error: (m, f) => logger.error(f ?? {}, m),
  };
}

export const silentLogger: Logger = { info() {}, warn() {}, error() {} };
