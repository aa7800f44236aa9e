import { activeDevicesAt, type TrafficPlan } from '../traffic/plan.js';
import type { PhaseRange } from '../traffic/schedule.js';

/*
 * Which phase of the plan the driver's schedule is in, and when (wall clock) it entered and left
 * each: the run's timeline, which the analysis cuts its stage windows from.
 */

export interface PhaseTimeline {
  index: number;
  kind: 'ramp' | 'hold';
  stage?: number;
  step?: number;
  /** Unix seconds when the schedule entered and left the phase (an abort ends the running phase; later ones stay undefined). */
  startUnixS?: number;
  endUnixS?: number;
}

export class PhaseTracker {
  readonly timeline: PhaseTimeline[];
  private cursor = 0;
  private readonly endS: number;

  constructor(
    private readonly plan: TrafficPlan,
    range: PhaseRange,
  ) {
    this.endS = plan.phases[range.to - 1]!.endS;
    this.timeline = plan.phases.slice(range.from, range.to).map((phase) => ({
      index: phase.index,
      kind: phase.kind,
      ...(phase.stage !== undefined ? { stage: phase.stage } : {}),
      ...(phase.step !== undefined ? { step: phase.step } : {}),
    }));
  }

  /**
   * Records the phase entries and exits the schedule has passed by planTimeS, each at the wall time
   * of its plan time (`unixAt`): exact, however often the driver wakes up.
   */
  follow(planTimeS: number, unixAt: (planS: number) => number): void {
    while (this.cursor < this.timeline.length) {
      const entry = this.timeline[this.cursor]!;
      const phase = this.plan.phases[entry.index]!;
      if (entry.startUnixS === undefined && planTimeS >= phase.startS) entry.startUnixS = unixAt(phase.startS);
      if (planTimeS < phase.endS) break;
      entry.endUnixS = unixAt(phase.endS);
      this.cursor++;
    }
  }

  /** The run stops early (an abort): the running phase ends now; later ones never started. */
  cut(nowUnixS: number): void {
    const current = this.timeline[this.cursor];
    if (current?.startUnixS !== undefined && current.endUnixS === undefined) current.endUnixS = nowUnixS;
  }

  /** The plan phase running now (-1 once the range is over). */
  get phase(): number {
    return this.cursor < this.timeline.length ? this.timeline[this.cursor]!.index : -1;
  }

  /** Devices online in the schedule at planTimeS (0 after the range). */
  fleetAt(planTimeS: number): number {
    return planTimeS < this.endS ? activeDevicesAt(this.plan, planTimeS) : 0;
  }
}
