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

export function createLogger(name: string, options: { level?: string; destination?: DestinationStream } = {}): Logger {
  const level = options.level ?? process.env.SLOTCTL_LOG_LEVEL ?? 'info';
  const base = { name, pid: process.pid };
  return options.destination
    ? pino({ level, base, timestamp: pino.stdTimeFunctions.isoTime }, options.destination)
    : pino({ level, base, timestamp: pino.stdTimeFunctions.isoTime });
}

export function withContext(logger: Logger, context: LogContext): Logger {
  return logger.child(context);
}
