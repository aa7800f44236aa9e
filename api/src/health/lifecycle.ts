import { Injectable, type BeforeApplicationShutdown } from '@nestjs/common';

/** Shared shutdown flag: readiness turns 503 first, so load balancers stop sending traffic. */
@Injectable()
export class Lifecycle implements BeforeApplicationShutdown {
  shuttingDown = false;

  // Before Nest closes the HTTP server, which waits for the requests in flight.
  beforeApplicationShutdown(): void {
    this.shuttingDown = true;
  }
}
