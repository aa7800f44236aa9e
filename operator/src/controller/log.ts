import { destination, pino, type Logger as Pino } from 'pino';

/*
 * The operator's logs: pino (as the API's), one JSON object per line on stderr (what log collectors
 * expect from a pod), with an ISO time, pino's numeric level and `service`. Tests pass their own
 * sink to collect or silence lines. Call sites keep the (message, fields) order that reads well.
 */

export type LogLevel = 'debug' | 'info' | 'warn' | 'error' | 'silent';

export interface Logger {
  debug(message: string, fields?: Record<string, unknown>): void;
  info(message: string, fields?: Record<string, unknown>): void;
  warn(message: string, fields?: Record<string, unknown>): void;
  error(message: string, fields?: Record<string, unknown>): void;
  child(fields: Record<string, unknown>): Logger;
}

export type LogSink = (line: string) => void;

export function createLogger(level: LogLevel = 'info', sink?: LogSink): Logger {
  const stream = sink ? { write: (line: string) => sink(line.endsWith('\n') ? line.slice(0, -1) : line) } : destination({ fd: 2, sync: true });
  return wrap(pino({ level, base: { service: 'loadlab-operator' }, timestamp: pino.stdTimeFunctions.isoTime }, stream));
}

function wrap(logger: Pino): Logger {
  return {
    debug: (message, fields) => logger.debug(fields ?? {}, message),
    info: (message, fields) => logger.info(fields ?? {}, message),
    warn: (message, fields) => logger.warn(fields ?? {}, message),
    error: (message, fields) => logger.error(fields ?? {}, message),
    child: (fields) => wrap(logger.child(fields)),
  };
}

export const silentLogger: Logger = createLogger('silent', () => undefined);
