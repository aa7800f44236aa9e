import type { Arrival } from '../traffic/arrivals.js';

/*
 * Pacing on the devices' own clocks (the open model): arrivals fall due at their scheduled plan
 * time whatever the API's response times; the driver sends what is due while the engine has room.
 * What cannot be sent on time waits here, and the waiting is measured, never hidden: an arrival
 * more than maxLagS behind its time is dropped (counted, as k6's dropped_iterations), so a
 * generator that cannot keep up shows up as lag, late and dropped requests, not as a slower API.
 */

/** A FIFO of due arrivals in three typed arrays (time, device, stream), growing by doubling. */
export class DueQueue {
  private times = new Float64Array(1024);
  private devices = new Int32Array(1024);
  private streams = new Uint8Array(1024);
  private head = 0;
  length = 0;

  push(timeS: number, device: number, stream: number): void {
    if (this.length === this.times.length) this.grow();
    const index = (this.head + this.length) & (this.times.length - 1);
    this.times[index] = timeS;
    this.devices[index] = device;
    this.streams[index] = stream;
    this.length++;
  }

  shift(): void {
    this.head = (this.head + 1) & (this.times.length - 1);
    this.length--;
  }

  /** The oldest arrival's time, device and stream. */
  get time(): number {
    return this.times[this.head]!;
  }

  get device(): number {
    return this.devices[this.head]!;
  }

  get stream(): number {
    return this.streams[this.head]!;
  }

  private grow(): void {
    const size = this.times.length;
    const times = new Float64Array(size * 2);
    const devices = new Int32Array(size * 2);
    const streams = new Uint8Array(size * 2);
    for (let i = 0; i < this.length; i++) {
      const from = (this.head + i) & (size - 1);
      times[i] = this.times[from]!;
      devices[i] = this.devices[from]!;
      streams[i] = this.streams[from]!;
    }
    this.times = times;
    this.devices = devices;
    this.streams = streams;
    this.head = 0;
  }
}

export interface PacerEvents {
  /** An arrival fell due (it is offered). */
  offered(stream: number): void;
  /** An arrival waited longer than maxLagS and will not be sent. */
  dropped(stream: number): void;
}

/**
 * Merges several time-ordered arrival streams (one per endpoint) into one queue of due arrivals.
 * Streams are numbered by their position; an arrival carries its stream's number.
 */
export class Pacer {
  readonly due = new DueQueue();
  private readonly heads: (Arrival | undefined)[];

  constructor(
    private readonly streams: readonly Iterator<Arrival, void, undefined>[],
    private readonly maxLagS: number,
    private readonly events: PacerEvents,
  ) {
    if (!(maxLagS > 0)) throw new Error(`maxLagS: must be > 0 seconds, got ${maxLagS}`);
    this.heads = streams.map((stream) => stream.next().value ?? undefined);
  }

  /** Moves every arrival due by planTimeS into the queue (in time order), then drops what is too late. */
  advance(planTimeS: number): void {
    const heads = this.heads;
    for (;;) {
      let s = -1;
      for (let i = 0; i < heads.length; i++) {
        const head = heads[i];
        if (head && head.timeS <= planTimeS && (s < 0 || head.timeS < heads[s]!.timeS)) s = i;
      }
      if (s < 0) break;
      const arrival = heads[s]!;
      this.due.push(arrival.timeS, arrival.device, s);
      this.events.offered(s);
      heads[s] = this.streams[s]!.next().value ?? undefined;
    }
    while (this.due.length > 0 && planTimeS - this.due.time > this.maxLagS) {
      this.events.dropped(this.due.stream);
      this.due.shift();
    }
  }

  /** How far behind the schedule the oldest waiting arrival is (0 when nothing waits). */
  lagS(planTimeS: number): number {
    return this.due.length > 0 ? Math.max(0, planTimeS - this.due.time) : 0;
  }

  /** When the next arrival not yet in the queue falls due (Infinity when none is left). */
  get nextTimeS(): number {
    let next = Infinity;
    for (const head of this.heads) if (head && head.timeS < next) next = head.timeS;
    return next;
  }

  /** No arrival is waiting and none is left to come. */
  get exhausted(): boolean {
    return this.due.length === 0 && this.heads.every((head) => head === undefined);
  }
}
