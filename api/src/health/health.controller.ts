import { Controller, Get, Inject, Res, ServiceUnavailableException } from '@nestjs/common';
import type { FastifyReply } from 'fastify';
import { Database } from '../db/database.js';
import { Lifecycle } from './lifecycle.js';
import { retryAfterSeconds } from '../http/retry-after.js';

@Controller()
export class HealthController {
  constructor(
    @Inject(Database) private readonly db: Database,
    @Inject(Lifecycle) private readonly lifecycle: Lifecycle,
  ) {}

  /** Liveness: the process serves HTTP. Never touches the database, so an outage causes no restarts. */
  @Get('healthz')
  live() {
    return { status: 'ok' };
  }

  /** Readiness: the database answers within a second (on a connection of its own), and the process is not shutting down. */
  @Get('readyz')
  async ready(@Res({ passthrough: true }) reply: FastifyReply) {
    if (this.lifecycle.shuttingDown) {
      reply.header('Retry-After', retryAfterSeconds());
      throw new ServiceUnavailableException('shutting down');
    }
    if (!(await this.db.ping(1000))) {
      reply.header('Retry-After', retryAfterSeconds());
      throw new ServiceUnavailableException('database unreachable');
    }
    return { status: 'ready' };
  }
}
