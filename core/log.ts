/**
 * A tiny structured logger: one line per event on stderr. Fields whose names look like secrets
 * are redacted, so a careless `log.info(…, { token })` cannot leak one.
 */
export interface Logger {
  info(message: string, fields?: Record<string, unknown>): void;
  warn(message: string, fields?: Record<string, unknown>): void;
  error(message: string, fields?: Record<string, unknown>): void;
}

const SECRET_FIELD = /token|secret|password|authorization/i;

export function createLogger(component: string, options: { quiet?: boolean } = {}): Logger {
  const write = (level: string, message: string, fields?: Record<string, unknown>) => {
    if (options.quiet && level === 'info') return;
    const safe = fields
      ? Object.fromEntries(Object.entries(fields).map(([k, v]) => [k, SECRET_FIELD.test(k) ? '[redacted]' : v]))
      : undefined;
    const tail = safe && Object.keys(safe).length ? ` ${JSON.stringify(safe)}` : '';
    process.stderr.write(`${new Date().toISOString()} ${level} [${component}] ${message}${tail}\n`);
  };
  return {
    info: (m, f) => write('info', m, f),
    warn: (m, f) => write('warn', m, f),
    error: (m, f) => write('error', m, f),
  };
}

export const silentLogger: Logger = { info() {}, warn() {}, error() {} };
