import type { MigrationInterface, QueryRunner } from 'typeorm';

/** The channel every API process LISTENs on (commands/due-commands.ts). */
export const COMMAND_DUE_CHANNEL = 'loadlab_command_due';

/**
 * A command that becomes pending (inserted, or given back with delivered_at NULL, or moved to
 * another not_before) is announced on COMMAND_DUE_CHANNEL, whoever wrote it: the API's processes keep
 * the devices with pending commands in memory and answer every other poll without a statement.
 * The payload is `<device_id> <not_before in epoch ms> <schema>`: experiments may share one
 * database in schemas of their own, and a process takes only its own schema's announcements.
 * PostgreSQL sends a notification when its transaction commits, so a listener that receives it
 * can already read the row.
 */
export class CommandDueNotify1732700000002 implements MigrationInterface {
  name = 'CommandDueNotify1732700000002';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`
      CREATE FUNCTION command_due_notify() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN
        PERFORM pg_notify('${COMMAND_DUE_CHANNEL}', NEW.device_id || ' ' || floor(extract(epoch FROM NEW.not_before) * 1000)::bigint || ' ' || TG_TABLE_SCHEMA);
        RETURN NULL;
      END $$`);
    await q.query(`
      CREATE TRIGGER command_due_notify AFTER INSERT OR UPDATE OF not_before, delivered_at ON command
      FOR EACH ROW WHEN (NEW.delivered_at IS NULL) EXECUTE FUNCTION command_due_notify()`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query('DROP TRIGGER command_due_notify ON command');
    await q.query('DROP FUNCTION command_due_notify()');
  }
}
