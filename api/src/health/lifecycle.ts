/** Shared shutdown flag: readiness turns 503 first, so load balancers stop sending traffic. */
export class Lifecycle {
  shuttingDown = false;
}
