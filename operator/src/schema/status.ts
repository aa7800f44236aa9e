import { z } from 'zod';
import { MAX_SCALING_COUNTS, type LoadEngine } from './spec.js';

/**
 * A run id as the operator writes it (r<generation>-<uid tag>; local mode: a timestamp). The
 * operator puts it into object names, label values and PromQL, so the CRD refuses a status write
 * with anything else (quotes, braces, regex characters) in it.
 */
const runIdField = z.string().max(32).regex(/^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/, 'must be lower-case letters, digits and -, as the operator writes it');

/*
 * What the operator reports. Fixed size on purpose (Argo Rollouts learned that unbounded
 * measurement lists overflow etcd): a phase, a handful of conditions and one summary; raw series go
 * to the report. Fields are permissive (all optional) because the analysis fills them in stages.
 */

export const PHASES = ['Pending', 'Provisioning', 'Running', 'Analyzing', 'Succeeded', 'Failed'] as const;

export const conditionSchema = z
  .object({
    type: z.string().max(64).describe('The aspect this condition reports, in CamelCase, e.g. Succeeded or ApiReady.'),
    status: z.enum(['True', 'False', 'Unknown']).describe('True, False or Unknown.'),
    reason: z.string().max(128).optional().describe('Why, as a CamelCase word, e.g. SloBroken or Timeout.'),
    message: z.string().max(1024).optional().describe('Why, for a person.'),
    lastTransitionTime: z.string().max(64).optional().describe('When status last changed (RFC 3339).'),
    observedGeneration: z.int().min(0).optional().describe('The spec generation this condition was computed from.'),
  })
  .describe('One condition, as in the Kubernetes API conventions.');

export const summarySchema = z
  .object({
    devicesAtBreak: z.int().min(0).optional().describe('Fleet size at which the SLO first broke; unset: it held throughout.'),
    breakingPointRps: z.number().min(0).optional().describe('Requests per second the API served when the SLO first broke.'),
    rps: z.number().min(0).optional().describe('Requests per second served at the highest load that held the SLO.'),
    p95Ms: z.number().min(0).optional().describe('95th percentile latency at that load, in milliseconds.'),
    errorRate: z.number().min(0).max(1).optional().describe('Fraction of failed requests at that load.'),
    bottleneck: z.string().max(64).optional().describe('The first resource to saturate, e.g. db-pool, api-cpu, event-loop, load-generator.'),
    verdict: z.string().max(1024).optional().describe('One sentence: where it broke, why, and the evidence.'),
  })
  .describe('The outcome in numbers; the full per-stage results are in the report.');

/*
 * What analysis/summary.ts buildSummary returns beyond the seven headline fields, bounded the same
 * way (it clips strings to byte budgets and keeps at most 3 evidence entries and 20 step rows): the
 * status holds the whole bounded summary, so `kubectl get -o yaml` tells the story without the report.
 */
export const MAX_STATUS_STEP_ROWS = 20;
export const MAX_STATUS_EVIDENCE = 3;

const headlineSchema = z
  .object({
    stage: z.string().max(128).describe('The stage, e.g. "step 4 hold".'),
    devices: z.number().min(0).describe('Fleet size in that stage.'),
    rps: z.number().min(0).optional().describe('Requests per second served.'),
    p95Ms: z.number().min(0).optional().describe('95th percentile latency, milliseconds.'),
    p99Ms: z.number().min(0).optional().describe('99th percentile latency, milliseconds.'),
    errorRate: z.number().min(0).max(1).optional().describe('Fraction of failed requests.'),
  })
  .describe('The numbers of one stage.');

export const runSummarySchema = summarySchema
  .extend({
    outcome: z.enum(['broke', 'held', 'undetermined']).optional().describe('broke: the SLO broke at some stage; held: it held throughout; undetermined: nothing could be judged.'),
    breakReasons: z.array(z.string().max(256).describe('One reason, e.g. "p95 412 ms > 250 ms".')).max(3).optional().describe('Why the breaking stage broke.'),
    lastGood: headlineSchema.optional().describe('The last stage that held the SLO.'),
    peak: headlineSchema.optional().describe('The judged stage that served the most.'),
    evidence: z
      .array(
        z
          .object({
            resource: z.string().max(64).describe('The resource, e.g. db-pool.'),
            signal: z.string().max(64).describe('The measure, e.g. pool_acquire.p95.'),
            query: z.string().max(64).describe('The catalog query behind it.'),
            value: z.number().describe('Its value at the breaking stage.'),
            threshold: z.number().optional().describe('The threshold it is compared with.'),
            unit: z.string().max(16).describe('The unit of value and threshold.'),
            stage: z.string().max(128).describe('The stage the value was measured in.'),
          })
          .describe('One number behind the verdict.'),
      )
      .max(MAX_STATUS_EVIDENCE)
      .optional()
      .describe('The numbers behind the verdict (at most 3).'),
    steps: z
      .object({
        columns: z.array(z.string().max(32).describe('A column name.')).max(8).describe('What each row holds, e.g. step, devices, offeredRps, achievedRps, p95Ms, errorRate.'),
        rows: z
          .array(z.array(z.number().nullable().describe('A value; null when not measured.')).max(8).describe('One judged step.'))
          .max(MAX_STATUS_STEP_ROWS)
          .describe('At most 20 rows: the first, last good, breaking and last steps, the rest evenly spaced.'),
        total: z.int().min(0).describe('How many judged steps the run had.'),
      })
      .optional()
      .describe('The judged steps, downsampled to at most 20 rows.'),
  })
  .describe('The outcome in numbers: the headline fields, the verdict\'s evidence and the judged steps (bounded); the full per-stage results are in the report.');

/** The timeline of a run is kept as one checkpoint per load object, so a restarted operator resumes it. */
export const MAX_TIMELINE_CHECKPOINTS = 100;

/** The objects that run a unit of the load: a k6-operator TestRun (engine k6) or a Job of loadlab drivers (engine loadlab). */
export const LOAD_OBJECT_KINDS = ['TestRun', 'Job'] as const;
export type LoadObjectKind = (typeof LOAD_OBJECT_KINDS)[number];
export const LOAD_OBJECT_OF_ENGINE: Readonly<Record<LoadEngine, LoadObjectKind>> = { k6: 'TestRun', loadlab: 'Job' };

export const checkpointSchema = z
  .object({
    unit: z.int().min(0).describe('Which part of the plan: the search step (0-based), or 0 for a run of stages (one load object).'),
    kind: z.enum(LOAD_OBJECT_KINDS).describe('What runs this part: a TestRun (engine k6) or a Job (engine loadlab).'),
    name: z.string().max(63).describe('The TestRun or Job that runs this part (its script or config ConfigMap has the same name).'),
    uid: z.string().max(64).optional().describe('Its uid, to tell it from a later one of the same name.'),
    phases: z
      .object({
        from: z.int().min(0).describe('First plan phase (0-based).'),
        to: z.int().min(0).describe('One past the last plan phase.'),
      })
      .describe('The plan phases it runs.'),
    startTime: z.string().max(64).optional().describe('When the load started (the TestRun went to started; a Job\'s runners\' common start time; RFC 3339).'),
    endTime: z.string().max(64).optional().describe('When the load ended (the TestRun finished, the Job completed; RFC 3339).'),
    outcome: z
      .enum(['Held', 'Broke', 'Undetermined', 'Finished', 'Error', 'Stopped'])
      .optional()
      .describe('Held, Broke or Undetermined: the SLO judged after a search step; Finished: a run of stages ended; Error or Stopped: it did not end normally.'),
  })
  .describe('One load object (TestRun or Job) of the run and when its load really ran.');

export const previousSummarySchema = runSummarySchema
  .extend({
    runId: runIdField.optional().describe('The run it summarises.'),
    generation: z.int().min(0).optional().describe('The spec generation that run ran.'),
    phase: z.enum(PHASES).optional().describe('How that run ended.'),
    completionTime: z.string().max(64).optional().describe('When that run ended (RFC 3339).'),
    grafanaUrl: z.string().max(2048).optional().describe('That run\'s dashboard.'),
  })
  .describe('The summary of the previous run (before the spec was last edited), kept for comparison.');

/** At most this many worse (and better) differences are named in status.comparison; the rest are counted. */
export const MAX_COMPARISON_LINES = 5;

/** How a comparison judges one difference (analysis/compare/compare.ts). */
export const COMPARISON_FLAGS = ['worse', 'better', 'within-noise', 'not-measured', 'not-judged'] as const;
const comparisonFlag = z.enum(COMPARISON_FLAGS);

export const comparisonSchema = z
  .object({
    baseline: z.string().max(320).describe('The baseline: namespace/name and run id.'),
    regressed: z.boolean().describe('True when at least one difference is worse beyond both runs\' noise and its minimum effect.'),
    breakingPoint: comparisonFlag.describe('How the breaking point (last good fleet, in judged steps) compares: worse, better, within-noise, not-measured.'),
    bottleneck: z.string().max(160).describe('The baseline\'s and this run\'s bottleneck, e.g. "db-pool → api-cpu".'),
    worse: z.array(z.string().max(256).describe('One difference, e.g. "stage 2 hold: p95 +52 % (95 % CI +40 % … +63 %)".')).max(MAX_COMPARISON_LINES).describe('The differences flagged worse (at most 5).'),
    better: z.array(z.string().max(256).describe('One difference.')).max(MAX_COMPARISON_LINES).describe('The differences flagged better (at most 5).'),
    counts: z
      .object({
        worse: z.int().min(0).describe('Measures flagged worse.'),
        better: z.int().min(0).describe('Measures flagged better.'),
        withinNoise: z.int().min(0).describe('Measures whose difference is within noise or below its minimum effect.'),
        notJudged: z.int().min(0).describe('Measures not judged (too few intervals, too few requests above a quantile, an idle API) or not measured.'),
      })
      .describe('Every compared measure of every stage, by outcome.'),
  })
  .describe('This run against spec.baseline (bounded: at most 5 lines each way; `loadlab compare` shows every stage).');

/** A scaling study's notes in status (analysis/scaling.ts says at most one per count and a few more). */
export const MAX_SCALING_NOTES = 12;

const scalingRunSchema = z
  .object({
    replicas: z.int().min(1).max(100).describe('The replica count of this run.'),
    runId: runIdField.describe('The run at this count (r<generation>-<uid tag>-n<replicas>): its objects, series and Grafana link carry it.'),
    loadStart: z.string().max(64).optional().describe('When its load started (RFC 3339): with loadEnd, the window to look at its series in.'),
    loadEnd: z.string().max(64).optional().describe('When its load ended (RFC 3339).'),
    capacityRps: z.number().min(0).optional().describe('Requests per second served at its best judged stage; unset when nothing could be judged.'),
    stage: z.string().max(128).optional().describe('The stage that served it.'),
    saturated: z.boolean().describe('True when the SLO broke, so the capacity is the API\'s own; false: a lower bound.'),
    bottleneck: z.string().max(64).optional().describe('The first resource to saturate at this count.'),
    verdict: z.string().max(512).optional().describe('The run\'s verdict, clipped.'),
  })
  .describe('One replica count of the study, once its run was analysed.');

export const scalingStatusSchema = z
  .object({
    position: z.int().min(0).max(MAX_SCALING_COUNTS - 1).describe('Which of spec.scaling.replicas runs now (0-based); the run at each count is a whole run of the load.'),
    runs: z.array(scalingRunSchema).max(MAX_SCALING_COUNTS).describe('The counts analysed so far, in order.'),
    fit: z
      .object({
        lambda: z.number().describe('λ: requests per second one replica serves.'),
        sigma: z.number().describe('σ: contention (the serial fraction, Amdahl).'),
        kappa: z.number().describe('κ: coherency (the cost of the replicas keeping each other consistent).'),
        rSquared: z.number().describe('R² of the fit over the measured capacities.'),
        peakReplicas: z.number().optional().describe('N*: the replica count at which capacity peaks (κ > 0); unset: no peak.'),
      })
      .optional()
      .describe('The Universal Scalability Law fitted to the capacities (three or more counts with a capacity).'),
    predictedMaxRps: z.number().min(0).optional().describe('The most the fit predicts any replica count serves: at N*, else Amdahl\'s λ/σ.'),
    notes: z.array(z.string().max(320).describe('One note.')).max(MAX_SCALING_NOTES).optional().describe('What the data can and cannot tell (lower bounds, too few counts, a loose fit).'),
  })
  .describe('A scaling study (spec.scaling): where it is, the capacity at each replica count analysed, and the Universal Scalability Law fit once the last count is analysed. status.summary is the latest count\'s.');

export const loadExperimentStatusSchema = z
  .object({
    phase: z.enum(PHASES).optional().describe('Where the experiment is: Pending, Provisioning, Running, Analyzing, Succeeded or Failed.'),
    observedGeneration: z.int().min(0).optional().describe('The spec generation the operator last acted on.'),
    conditions: z
      .array(conditionSchema)
      .max(16)
      .optional()
      .describe('Conditions, one per type.')
      .meta({ 'x-kubernetes-list-type': 'map', 'x-kubernetes-list-map-keys': ['type'] }),
    summary: runSummarySchema.optional(),
    runId: runIdField.optional().describe('Names the current run: the k6 tag run=<runId> and the objects of the run carry it.'),
    startTime: z.string().max(64).optional().describe('When the current run started (RFC 3339); spec.timeout counts from here.'),
    completionTime: z.string().max(64).optional().describe('When the current run ended (RFC 3339).'),
    timeline: z
      .array(checkpointSchema)
      .max(MAX_TIMELINE_CHECKPOINTS)
      .optional()
      .describe('The run so far, one checkpoint per TestRun or Job (at most 100): what the analysis reads and a restarted operator resumes from.'),
    databaseSchema: z.string().max(63).optional().describe('The PostgreSQL schema (and role) that isolates this experiment\'s data in the shared database. An output only: the operator derives it from the namespace, name and uid, never from here.'),
    grafanaUrl: z.string().max(2048).optional().describe('The Grafana dashboard of the current run, its time range and experiment preselected.'),
    previousSummary: previousSummarySchema.optional(),
    comparison: comparisonSchema.optional(),
    scaling: scalingStatusSchema.optional(),
  })
  .describe('What the operator observed; written by the operator only.');
