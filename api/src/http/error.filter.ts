import { type ArgumentsHost, Catch, type ExceptionFilter, HttpException, Inject, Logger } from '@nestjs/common';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { DatabaseBusyError, DatabaseUnavailableError } from '../db/database.js';
import { UnknownDeviceError, WriteQueueFullError } from '../measurements/measurement-writer.js';
import { ApiMetrics } from '../metrics/metrics.js';
import { badRequest } from './validation.js';
import { retryAfterSeconds } from './retry-after.js';

// Fastify's JSON parser refuses these before any controller runs; Nest hands them over as an
// HttpException whose cause is the FastifyError. They get the field/reason body of every other 400.
const UNPARSABLE_BODY_REASONS: Record<string, string> = {
  FST_ERR_CTP_INVALID_JSON_BODY: 'is not valid JSON: check quotes, commas and brackets',
  FST_ERR_CTP_EMPTY_JSON_BODY: 'is empty: send a JSON document, or no content-type: application/json',
};

/** What a device is told for each 503, whatever the driver said. */
const PUBLIC_REASONS = {
  write_queue_full: 'overloaded: too many readings are waiting to be stored; retry later',
  database_busy: 'the database gave up on this request (timeout or conflict); retry later',
  database_unavailable: 'the database is unavailable; retry later',
} as const;

/**
 * Turns the API's own failures into the answers a device can act on: 503 + Retry-After when the
 * database is away or gave up on the statement (timeout, deadlock) or the write queue is full
 * (never a 500, never a 2xx for unstored data),
 * 401 for a device the database no longer knows, 500 only for real bugs (logged).
 */
@Catch()
export class ErrorFilter implements ExceptionFilter {
  private readonly logger = new Logger('http');

  constructor(@Inject(ApiMetrics) private readonly metrics: ApiMetrics) {}

  catch(error: unknown, host: ArgumentsHost): void {
    const reply = host.switchToHttp().getResponse<FastifyReply>();
    if (error instanceof HttpException) {
      const unparsable = UNPARSABLE_BODY_REASONS[(error.cause as { code?: string } | undefined)?.code ?? ''];
      if (unparsable) error = badRequest([{ field: 'body', reason: unparsable }]);
    }
    if (error instanceof HttpException) {
      const body = error.getResponse();
      void reply.status(error.getStatus()).send(typeof body === 'string' ? { statusCode: error.getStatus(), message: body } : body);
      return;
    }
    if (error instanceof DatabaseUnavailableError || error instanceof DatabaseBusyError || error instanceof WriteQueueFullError) {
      const reason = error instanceof WriteQueueFullError ? 'write_queue_full' : error instanceof DatabaseBusyError ? 'database_busy' : 'database_unavailable';
      this.metrics.shed.inc({ reason });
      // The driver's message names addresses and internals: the log gets it, the caller a reason.
      this.logger.debug(`${reason}: ${error.message}`);
      void reply.status(503).header('Retry-After', retryAfterSeconds()).send({ statusCode: 503, error: 'Service Unavailable', message: PUBLIC_REASONS[reason] });
      return;
    }
    if (error instanceof UnknownDeviceError) {
      void reply.status(401).send({ statusCode: 401, error: 'Unauthorized', message: error.message });
      return;
    }
    if (clientWentAway(error, host.switchToHttp().getRequest<FastifyRequest>())) {
      // The client hung up (or was cut off by a request timeout, which already answered 408)
      // while its body was being read: not the API's failure. 499 as in nginx, for the metrics.
      this.logger.debug('the client closed the connection before its request was read');
      void reply.status(499).send({ statusCode: 499, error: 'Client Closed Request', message: 'the connection closed before the request was read' });
      return;
    }
    this.logger.error(error instanceof Error ? (error.stack ?? error.message) : String(error));
    void reply.status(500).send({ statusCode: 500, error: 'Internal Server Error', message: 'unexpected error; see the API log' });
  }
}

function clientWentAway(error: unknown, request: FastifyRequest): boolean {
  const code = (error as NodeJS.ErrnoException | undefined)?.code;
  return (code === 'ECONNRESET' || (error as Error | undefined)?.message === 'aborted') && request.raw.socket.destroyed;
}
