// Structured logs. Every line about a slot, store or operation carries `slot`, `store`, `epoch` and `op` fields:
// make a child logger with `withContext` instead of writing them into messages.
import pino, { type Logger, type DestinationStream } from 'pino';

export type { Logger } from 'pino';

export interface LogContext {
  machine?: string;
  slot?: string;
  store?: string;
  epoch?: number;
  op?: string;
}

/**
 * Keys whose value may be a secret, wherever they are in a logged object or a child logger's bindings: printed as
 * [Redacted]. The replication password travels as `syncPassword` (AgentOptions.auth) and `sync_password` (imapd.conf),
 * an IMAP client's as `pass`, TLS material as `key`.
 */
export const SECRET_FIELDS: ReadonlySet<string> = new Set(['password', 'pass', 'passwd', 'secret', 'syncPassword', 'sync_password', 'sasl_password', 'authorization', 'cookie', 'token', 'key', 'privateKey', 'private_key']);

export const REDACTED = '[Redacted]';

/**
 * A copy of `value` with every SECRET_FIELDS key at any depth (plain objects and arrays) replaced by [Redacted];
 * `value` itself when there is none. The logged object goes through it (formatters.log) rather than through wildcard
 * paths of pino's `redact` (`*.password`, `*.*.password`…), measured at 16 µs a line for one level and 62 µs for
 * three against 3.8 µs without: this walk costs about nothing on the small objects logged here, at any depth.
 */
export function redactSecrets<T>(value: T, depth = 0): T {
  if (depth > 8 || value === null || typeof value !== 'object') return value;
  if (Array.isArray(value)) {
    let out: unknown[] | undefined;
    value.forEach((v: unknown, i) => {
      const r = redactSecrets(v, depth + 1);
      if (r !== v) (out ??= [...value])[i] = r;
    });
    return (out ?? value) as T;
  }
  // an Error, a Buffer, a Date… is left to pino's serializers (only plain objects are walked)
  const proto = Object.getPrototypeOf(value) as unknown;
  if (proto !== Object.prototype && proto !== null) return value;
  let out: Record<string, unknown> | undefined;
  for (const [k, v] of Object.entries(value)) {
    const r = SECRET_FIELDS.has(k) ? REDACTED : redactSecrets(v, depth + 1);
    if (r !== v) (out ??= { ...(value as Record<string, unknown>) })[k] = r;
  }
  return (out ?? value) as T;
}

export function createLogger(name: string, options: { level?: string; destination?: DestinationStream } = {}): Logger {
  const level = options.level ?? process.env.SLOTCTL_LOG_LEVEL ?? 'info';
  const settings = {
    level,
    base: { name, pid: process.pid },
    timestamp: pino.stdTimeFunctions.isoTime,
    formatters: { log: (o: Record<string, unknown>) => redactSecrets(o) },
    // pino passes a child's bindings through no formatter: its `redact` covers their top-level keys (exact paths, cheap)
    redact: { paths: [...SECRET_FIELDS], censor: REDACTED },
  };
  return options.destination ? pino(settings, options.destination) : pino(settings);
}

export function withContext(logger: Logger, context: LogContext): Logger {
  return logger.child(context);
}
