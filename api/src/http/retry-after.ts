/**
 * Retry-After for a 503, in whole seconds (the header's form): 1 to 3 at random. A constant would
 * send every device refused in the same moment back in the same moment, a wave that meets the
 * same overload; spread over three seconds, the retries arrive as a third of the wave each second.
 */
export function retryAfterSeconds(random: () => number = Math.random): string {
  return String(1 + Math.min(2, Math.floor(random() * 3)));
}
