import { Injectable, type BeforeApplicationShutdown } from '@nestjs/common';

/** Shared shutdown flag: readiness turns 503 first, so load balancers stop sending traffic. */
@Injectable()
export class Lifecycle implements BeforeApplicationShutdown {
  shuttingDown = false;

  // Nest calls this before it closes the HTTP server, which waits for the requests in flight:
  // readiness answers 503 while they drain.
  beforeApplicationShutdown(): void {
    this.shuttingDown = true;
  }
}
