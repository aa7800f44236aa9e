import { Inject, Logger, Module, type OnApplicationShutdown, type OnModuleInit } from '@nestjs/common';
import { CONFIG, type Config } from '../config/config.js';
import { ApiMetrics } from '../metrics/metrics.js';
import { MetricsModule } from '../metrics/metrics.module.js';
import { Database, type DatabaseSettings } from './database.js';

export function databaseSettings(config: Config): DatabaseSettings {
  return {
    url: config.DATABASE_URL,
    poolSize: config.DB_POOL_SIZE,
    acquireTimeoutMs: config.DB_POOL_ACQUIRE_TIMEOUT_MS,
    statementTimeoutMs: config.DB_STATEMENT_TIMEOUT_MS,
    queryDelayMs: config.QUERY_DELAY_MS,
  };
}

/**
 * The request pool (Database) and its lifetime. Every feature that runs SQL imports this module,
 * so Nest initialises it before them and shuts it down after them: the first connection is open
 * before the app listens, and the pool closes only after the features' shutdown hooks (the
 * measurement writer's flush) have run.
 */
@Module({
  imports: [MetricsModule],
  providers: [
    {
      provide: Database,
      useFactory: (config: Config, metrics: ApiMetrics) => new Database(databaseSettings(config), metrics),
      inject: [CONFIG, ApiMetrics],
    },
  ],
  exports: [Database],
})
export class DatabaseModule implements OnModuleInit, OnApplicationShutdown {
  private readonly logger = new Logger('Database');

  constructor(@Inject(Database) private readonly db: Database) {}

  // In init (which listen() awaits) rather than in the factory: a failure here reaches
  // startApi's caller as an error; Nest aborts the process on one thrown while it builds providers.
  onModuleInit(): Promise<void> {
    return this.db.connect((attempt, error) => this.logger.warn(`database not reachable yet (attempt ${attempt}: ${error.message}); retrying`));
  }

  onApplicationShutdown(): Promise<void> {
    return this.db.end();
  }
}
