import { Module } from '@nestjs/common';
import { AuthModule } from '../auth/auth.module.js';
import { DatabaseModule } from '../db/database.module.js';
import { CommandsController } from './commands.controller.js';
import { CommandsRepository } from './commands.repository.js';

@Module({
  imports: [DatabaseModule, AuthModule],
  controllers: [CommandsController],
  providers: [CommandsRepository],
})
export class CommandsModule {}
