import { Module } from '@nestjs/common';
import { AuthModule } from '../auth/auth.module.js';
import { CONFIG, type Config } from '../config/config.js';
import { Database } from '../db/database.js';
import { DatabaseModule } from '../db/database.module.js';
import { ApiMetrics } from '../metrics/metrics.js';
import { MetricsModule } from '../metrics/metrics.module.js';
import { CommandsController } from './commands.controller.js';
import { CommandsRepository } from './commands.repository.js';
import { DueCommands } from './due-commands.js';

@Module({
  imports: [DatabaseModule, AuthModule, MetricsModule],
  controllers: [CommandsController],
  providers: [
    CommandsRepository,
    {
      provide: DueCommands,
      // Built before the database module's init opens the control connection it listens on.
      useFactory: (commands: CommandsRepository, db: Database, metrics: ApiMetrics, config: Config) =>
        new DueCommands(commands, db, metrics, { enabled: config.COMMAND_INDEX, reconcileMs: config.COMMAND_RECONCILE_MS }),
      inject: [CommandsRepository, Database, ApiMetrics, CONFIG],
    },
  ],
})
export class CommandsModule {}
