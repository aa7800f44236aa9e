import { EXPERIMENT_SETTABLE } from '@loadlab/api/config';
import { z } from 'zod';
import { DEFAULT_THRESHOLDS, THRESHOLD_DOCS, type ThresholdDoc, type Thresholds } from './thresholds.js';
import { durationMs, isDuration } from './duration.js';
import { boundsText } from './bounds.js';
import { durationText, numberIn, numberWithin, positiveDuration, resources, RESOURCES_RULES, wholeNumber } from './fields.js';
import { imageReferenceRule, NODE_SELECTOR_RULES, nodeSelectorSchema, TOLERATION_RULES, tolerationSchema } from './pod-fields.js';
import { enforce, type Rule } from './rules.js';
import { MAX_SEARCH_STEPS, searchDurationMs, searchStepDevices, stagesDurationMs } from './search-steps.js';

/*
 * The spec of a LoadExperiment. Every field carries a description (kubectl explain shows it), and
 * objects the user may leave out default to {} (zod: prefault) so their own defaults apply, exactly
 * as the apiserver's structural defaulting does.
 */

export const MAX_DEVICES = 10_000_000;
export const MAX_STAGES = 50;

// ---------------------------------------------------------------------------------------- fleet

const fleetRules = {
  reportInterval: positiveDuration('spec.fleet.reportInterval', '30s'),
  pollInterval: positiveDuration('spec.fleet.pollInterval', '30s'),
};

export const fleetSchema = z
  .strictObject({
    devices: wholeNumber(1, MAX_DEVICES).describe(
      'How many distinct devices (serials) the fleet has: the population the load draws from and the ' +
        'devices preloaded history is written for. Every stage and search step must stay within it.',
    ),
    reportInterval: enforce(durationText().describe('How often each device posts a measurement (POST /v1/measurements).'), [
      fleetRules.reportInterval,
    ]).default('30s'),
    pollInterval: enforce(durationText().describe('How often each device polls for a command (GET /v1/command).'), [
      fleetRules.pollInterval,
    ]).default('30s'),
    jitter: numberIn(0, 1, ' (a fraction of the interval, e.g. 0.1)')
      .describe(
        'How far a request may move off its device\'s regular schedule, as a fraction of the interval: ' +
          '0.1 lets a 30s report arrive up to 1.5s early or late; 0 makes every device strictly periodic.',
      )
      .default(0.1),
    seed: wholeNumber(0, 4_294_967_295)
      .describe('Seeds device serials, schedules and payloads: the same seed replays the same traffic.')
      .default(1),
    realism: z
      .strictObject({
        enabled: z
          .boolean({ error: 'must be true or false' })
          .describe(
            'Each device follows its own deterministic random walk: the battery drains and charges, the ' +
              'reservoir fills, boils and empties, the room warms by day. Off: every device reports the same ' +
              'constant, plausible values.',
          )
          .default(true),
      })
      .describe('How lifelike the measurement payloads are.')
      .prefault({}),
    serialPrefix: z
      .string({ error: 'must be a string' })
      .min(1, 'must not be empty')
      .max(64, 'must be at most 64 characters')
      .regex(/^[A-Za-z0-9._:-]+$/, 'may only contain letters, digits and . _ : - (the API\'s serial alphabet)')
      .describe('Device serials are <serialPrefix>-<seed>-<index>, e.g. kettle-1-00000042.')
      .default('kettle'),
  })
  .describe('The simulated devices: how many, how often they talk to the API, and what they say.');

// ----------------------------------------------------------------------------------------- load

const stageRules = {
  duration: positiveDuration('spec.load.stages[].duration', '2m'),
  nonEmpty: {
    path: 'spec.load.stages',
    cel: 'size(self) > 0',
    message: 'must list at least one stage, e.g. [{devices: 1000, duration: "2m"}]',
    check: (self: readonly unknown[]) => self.length > 0,
  } satisfies Rule<readonly unknown[]>,
  someLoad: {
    path: 'spec.load.stages',
    cel: 'self.size() == 0 || self.exists(s, s.devices > 0)',
    message: 'must bring at least one device online: every stage has devices: 0, so the plan offers no load',
    check: (self: readonly { devices: number }[]) => self.length === 0 || self.some((stage) => stage.devices > 0),
  } satisfies Rule<readonly { devices: number }[]>,
};

export const stageSchema = z
  .strictObject({
    devices: wholeNumber(0, MAX_DEVICES).describe('Fleet size at the end of the stage.'),
    duration: enforce(durationText().describe('How long the stage lasts.'), [stageRules.duration]),
    shape: z
      .enum(['ramp', 'hold'], { error: 'must be "ramp" or "hold"' })
      .describe(
        'ramp: grow or shrink the fleet linearly from the previous stage\'s size (0 before the first) to ' +
          'devices; hold: set the fleet to devices at once and keep it for the whole stage.',
      )
      .default('ramp'),
  })
  .describe('One stage of the load: where the fleet size goes and how long it takes.');

const stepRules = {
  factorXorDevices: {
    path: 'spec.load.search.step',
    cel: 'has(self.factor) != has(self.devices)',
    message: 'set exactly one of factor (multiply the fleet at each step, e.g. 1.5) or devices (add this many devices at each step)',
    check: (self: { factor?: number | undefined; devices?: number | undefined }) =>
      (self.factor !== undefined) !== (self.devices !== undefined),
  } satisfies Rule<{ factor?: number | undefined; devices?: number | undefined }>,
};

const searchStepSchema = enforce(
  z
    .strictObject({
      factor: z
        .number({ error: 'must be a number greater than 1, e.g. 1.5' })
        .gt(1, 'must be greater than 1, e.g. 1.5 (each step multiplies the fleet by it)')
        .max(10, 'must be at most 10')
        .optional()
        .describe('Multiply the fleet by this at each step, e.g. 1.5.'),
      devices: wholeNumber(1, MAX_DEVICES).optional().describe('Add this many devices at each step.'),
    })
    .describe('How each step grows the fleet: set exactly one of factor or devices.'),
  [stepRules.factorXorDevices],
);

type SearchShape = {
  startDevices: number;
  maxDevices: number;
  step: { factor?: number | undefined; devices?: number | undefined };
  hold: string;
  rampUp: string;
};

const searchRules = {
  hold: positiveDuration('spec.load.search.hold', '60s'),
  maxAtLeastStart: {
    path: 'spec.load.search',
    field: 'maxDevices',
    cel: 'self.maxDevices >= self.startDevices',
    message: 'must be at least startDevices: the search starts at startDevices and stops at maxDevices',
    check: (self: SearchShape) => self.maxDevices >= self.startDevices,
  } satisfies Rule<SearchShape>,
  boundedSteps: {
    path: 'spec.load.search',
    celGap: 'a factor search has log(max/start)/log(factor) steps, and CEL has no logarithm',
    message: `must reach maxDevices in at most ${MAX_SEARCH_STEPS} steps: use a larger step or a smaller maxDevices`,
    check: (self: SearchShape) => searchStepDevices(self).length <= MAX_SEARCH_STEPS,
  } satisfies Rule<SearchShape>,
};

export const searchSchema = enforce(
  z
    .strictObject({
      startDevices: wholeNumber(1, MAX_DEVICES).describe('Fleet size of the first step.'),
      step: searchStepSchema,
      maxDevices: wholeNumber(1, MAX_DEVICES).describe(
        'The largest fleet to try; the last step is clamped to it. The search stops earlier when the SLO breaks.',
      ),
      hold: enforce(
        durationText().describe('How long each step keeps its fleet size; the SLO is judged over the hold.'),
        [searchRules.hold],
      ).default('60s'),
      rampUp: durationText()
        .describe('How long the fleet takes to grow to each step\'s size before the hold; "0s" jumps at once.')
        .default('10s'),
    })
    .describe('Find the breaking point: raise the fleet step by step until the SLO breaks, then stop.'),
  [searchRules.maxAtLeastStart, searchRules.boundedSteps],
);

const loadRules = {
  stagesXorSearch: {
    path: 'spec.load',
    cel: 'has(self.stages) != has(self.search)',
    message: 'set exactly one of stages (fleet sizes you choose) or search (raise the fleet until the SLO breaks)',
    check: (self: { stages?: unknown; search?: unknown }) => (self.stages !== undefined) !== (self.search !== undefined),
  } satisfies Rule<{ stages?: unknown; search?: unknown }>,
};

export const loadSchema = enforce(
  z
    .strictObject({
      stages: enforce(
        z
          .array(stageSchema, { error: 'must be a list of stages' })
          .max(MAX_STAGES, `must have at most ${MAX_STAGES} items`)
          .describe('Explicit load stages, run in order. Set this or search, not both.'),
        [stageRules.nonEmpty, stageRules.someLoad],
      ).optional(),
      search: searchSchema.optional(),
    })
    .describe('The shape of the load over time: explicit stages, or a search for the breaking point.'),
  [loadRules.stagesXorSearch],
);

// ------------------------------------------------------------------------------------------ slo

const sloRules = {
  percentile: {
    path: 'spec.slo.latencyPercentile',
    cel: 'self > 0.0 && self < 100.0',
    message: 'must be between 0 and 100, both excluded, e.g. 95 or 99.9',
    check: (self: number) => self > 0 && self < 100,
  } satisfies Rule<number>,
  threshold: positiveDuration('spec.slo.latencyThreshold', '250ms'),
};

export const sloSchema = z
  .strictObject({
    latencyPercentile: enforce(
      z
        .number({ error: 'must be a number between 0 and 100, e.g. 95' })
        .describe('Which latency percentile the SLO bounds, e.g. 95 for p95.'),
      [sloRules.percentile],
    ).default(95),
    latencyThreshold: enforce(
      durationText().describe('The SLO holds while that percentile stays below this, e.g. "250ms".'),
      [sloRules.threshold],
    ).default('250ms'),
    maxErrorRate: numberIn(0, 1, ' (a fraction: 0.01 is 1%)')
      .describe('The SLO holds while at most this fraction of requests fail (5xx, timeouts, refused), e.g. 0.01.')
      .default(0.01),
    minDevices: wholeNumber(1, MAX_DEVICES)
      .optional()
      .describe('For the SLO gate: the fleet the API must hold. A search whose last good step is below it (or that breaks before any step holds) fails the gate: SloMet False, loadlab run exits 99. Stages need no floor: any break fails the gate.'),
  })
  .describe('The service level objective: the load the API holds is the load at which this stays true.');

// --------------------------------------------------------------------------------------- target

/** API knobs that have a typed field; setting them through env would silently fight that field. */
export const TYPED_KNOBS: Readonly<Record<string, string>> = {
  DB_POOL_SIZE: 'dbPoolSize',
  WRITE_BATCH_MAX_ROWS: 'writeBatchMaxRows',
  CPU_COST_MS: 'cpuCostMs',
  QUERY_DELAY_MS: 'queryDelayMs',
};
/** Variables loadlab sets itself so every replica reaches the experiment's database and port. */
export const MANAGED_ENV = ['DATABASE_URL', 'TOKEN_SECRET', 'PORT', 'HOST'] as const;
/**
 * What spec.target.env may set: the API's own list (api/src/config/config.ts), less the knobs
 * with a typed field. Nothing else: NODE_OPTIONS or LD_PRELOAD would run code in the API's pods
 * even where their images are restricted.
 */
export const ENV_KNOBS: readonly string[] = EXPERIMENT_SETTABLE.filter((name) => !(name in TYPED_KNOBS));

const envNameRules: Rule<string>[] = [
  ...Object.entries(TYPED_KNOBS).map(([name, field]) => ({
    path: 'spec.target.env[].name',
    cel: `self != '${name}'`,
    message: `${name} is set by spec.target.${field}: use that field instead`,
    check: (self: string) => self !== name,
  })),
  {
    path: 'spec.target.env[].name',
    cel: `!(self in [${MANAGED_ENV.map((name) => `'${name}'`).join(', ')}])`,
    message: `is set by loadlab for every API replica (${MANAGED_ENV.join(', ')}) and cannot be overridden`,
    check: (self: string) => !(MANAGED_ENV as readonly string[]).includes(self),
  },
  {
    path: 'spec.target.env[].name',
    cel: `self in [${[...Object.keys(TYPED_KNOBS), ...MANAGED_ENV, ...ENV_KNOBS].map((name) => `'${name}'`).join(', ')}]`,
    message: `must be one of the API's knobs: ${ENV_KNOBS.join(', ')} (README: the API's configuration)`,
    check: (self: string) => self in TYPED_KNOBS || (MANAGED_ENV as readonly string[]).includes(self) || ENV_KNOBS.includes(self),
  },
];

const envRules = {
  uniqueNames: {
    path: 'spec.target.env',
    cel: 'self.all(e, self.exists_one(f, f.name == e.name))',
    message: 'must not set the same name twice',
    check: (self: readonly { name: string }[]) => new Set(self.map((e) => e.name)).size === self.length,
  } satisfies Rule<readonly { name: string }[]>,
};

export const envVarSchema = z
  .strictObject({
    name: enforce(
      z
        .string({ error: 'must be a string' })
        .max(128, 'must be at most 128 characters')
        .regex(/^[A-Za-z_][A-Za-z0-9_]*$/, 'must be an environment variable name such as MAX_IN_FLIGHT')
        .describe('The variable, one of the API\'s documented knobs, e.g. MAX_IN_FLIGHT or WRITE_BATCH_MAX_CONCURRENCY.'),
      envNameRules,
    ),
    value: z.string({ error: 'must be a string (quote numbers: "4")' }).max(1024, 'must be at most 1024 characters').describe('Its value, as a string.'),
  })
  .describe('One environment variable for the API.');

const imageRule = imageReferenceRule('spec.target.image');

export const targetSchema = z
  .strictObject({
    replicas: wholeNumber(1, 100).describe('How many API replicas serve the load (with spec.scaling: its counts, one run each, instead).').default(1),
    resources: resources('each API replica', RESOURCES_RULES.target).optional(),
    dbPoolSize: wholeNumber(1, 1000).describe('Database connections per replica (the API\'s DB_POOL_SIZE).').default(10),
    image: enforce(
      z
        .string({ error: 'must be a string' })
        .min(1, 'must not be empty')
        .max(512, 'must be at most 512 characters')
        .describe('The API container image; the operator runs only the images its installation allows (ALLOWED_API_IMAGES).'),
      [imageRule],
    ).default('loadlab/api:dev'),
    writeBatchMaxRows: wholeNumber(1, 10_000)
      .optional()
      .describe('Most measurements written in one INSERT (the API\'s WRITE_BATCH_MAX_ROWS); unset: the API\'s default.'),
    cpuCostMs: numberIn(0, 1000, ' (milliseconds)')
      .optional()
      .describe('Extra CPU each request burns, in milliseconds (the API\'s CPU_COST_MS), to make the API CPU-bound.'),
    queryDelayMs: numberIn(0, 10_000, ' (milliseconds)')
      .optional()
      .describe('Extra time each query holds its connection, in milliseconds (the API\'s QUERY_DELAY_MS), to saturate the pool.'),
    env: enforce(
      z
        .array(envVarSchema, { error: 'must be a list of {name, value}' })
        .max(50, 'must have at most 50 items')
        .describe('Other documented API knobs as environment variables; the typed fields above take precedence.'),
      [envRules.uniqueNames],
    ).optional(),
  })
  .describe('The system under test: the API deployment this experiment provisions.');

// -------------------------------------------------------------------------------------- scaling

/** Most replica counts a scaling study runs: each is a whole run of the load. */
export const MAX_SCALING_COUNTS = 8;

const scalingRules = {
  ascending: {
    path: 'spec.scaling.replicas',
    cel: 'self.isSorted() && self.all(n, self.exists_one(m, m == n))',
    message: 'must list each replica count once, in ascending order, e.g. [1, 2, 4]',
    check: (self: readonly number[]) => self.every((n, i) => i === 0 || n > self[i - 1]!),
  } satisfies Rule<readonly number[]>,
};

export const scalingSchema = z
  .strictObject({
    replicas: enforce(
      z
        .array(wholeNumber(1, 100), { error: 'must be a list of replica counts, e.g. [1, 2, 4]' })
        .min(2, 'must list at least 2 replica counts (3 or more for a Universal Scalability Law fit)')
        .max(MAX_SCALING_COUNTS, `must list at most ${MAX_SCALING_COUNTS} replica counts`)
        .describe('The replica counts to run the load at, ascending, e.g. [1, 2, 4]: three or more give a Universal Scalability Law fit.'),
      [scalingRules.ascending],
    ),
  })
  .describe(
    'A scaling study: the whole load (stages or search) runs once per replica count, in order, with the database ' +
      'prepared as for any run before each; the capacity at each count (the most any judged stage served) is fitted with the ' +
      'Universal Scalability Law. spec.timeout bounds each run. The operator scales the API Deployment between runs; ' +
      'loadlab run starts that many API processes.',
  );

/** The replica counts an experiment runs at: its scaling study's, or target.replicas. */
export function replicaCounts(spec: { target: { replicas: number }; scaling?: { replicas: readonly number[] } | undefined }): readonly number[] {
  return spec.scaling?.replicas ?? [spec.target.replicas];
}

// ------------------------------------------------------------------------ database, generator

export const databaseSchema = z
  .strictObject({
    mode: z
      .enum(['reset', 'keep'], { error: 'must be "reset" or "keep"' })
      .describe('reset: start from an empty database; keep: reuse what earlier experiments left.')
      .default('reset'),
    preloadDays: wholeNumber(0, 365)
      .describe('Days of measurement history to write for every device before the load starts (the seed\'s fill-database tool).')
      .default(0),
  })
  .describe('The database behind the API.');

/** What runs the load in a cluster (local mode always runs the loadlab driver in its own process). */
export const LOAD_ENGINES = ['k6', 'loadlab'] as const;
export type LoadEngine = (typeof LOAD_ENGINES)[number];
export const DEFAULT_LOAD_ENGINE: LoadEngine = 'k6';

export const generatorSchema = z
  .strictObject({
    engine: z
      .enum(LOAD_ENGINES, { error: 'must be "k6" or "loadlab"' })
      .describe(
        'What generates the load in a cluster. k6: k6 runners in k6-operator TestRuns (needs grafana/k6-operator ' +
          'installed; k6 is AGPL-3.0). loadlab: loadlab\'s own driver, the one local mode runs, as a Kubernetes Job of ' +
          'parallelism pods on the operator\'s image, each sending its own share of the schedule (Apache-2.0; needs ' +
          'nothing besides the operator). Both send the same devices at the same times. Local mode always runs the ' +
          'loadlab driver, in its own process.',
      )
      .default(DEFAULT_LOAD_ENGINE),
    parallelism: wholeNumber(1, 64)
      .describe('How many load-generator pods share the load (each sends an equal share of every endpoint\'s arrivals).')
      .default(1),
    resources: resources('each load-generator pod', RESOURCES_RULES.generator).optional(),
    nodeSelector: nodeSelectorSchema
      .optional()
      .describe('Node labels the load-generator pods must run on, e.g. {loadlab.dev/role: load}; within the installation\'s GENERATOR_PLACEMENT.'),
    tolerations: z
      .array(tolerationSchema, { error: 'must be a list of tolerations' })
      .max(20, 'must have at most 20 items')
      .optional()
      .describe('Taints the load-generator pods tolerate; only those the installation\'s GENERATOR_PLACEMENT tolerates.'),
    maxVUs: wholeNumber(1, 1_000_000)
      .optional()
      .describe(
        'Upper bound on concurrent requests per generator pod: k6\'s maxVUs, or the loadlab driver\'s requests in flight; ' +
          'unset: k6 sizes it from the rate and the SLO threshold, the loadlab driver allows 1000.',
      ),
  })
  .describe('The load generators.');

// ------------------------------------------------------------------------------------- analysis

const UNIT_HINTS: Readonly<Record<ThresholdDoc['unit'], string>> = {
  fraction: 'a fraction: 0.2 is 20%',
  seconds: 'seconds',
  cores: 'CPU cores',
};

/*
 * Unset thresholds are left unset rather than defaulted (as target.writeBatchMaxRows is): the
 * defaults belong to the analysis library, and an experiment that stored them would keep today's
 * values after the library's change. The description names the default so kubectl explain shows it.
 */
function thresholdField(key: keyof Thresholds) {
  const doc = THRESHOLD_DOCS[key];
  const fallback = DEFAULT_THRESHOLDS[key];
  return numberWithin(doc, ` (${UNIT_HINTS[doc.unit]}; default ${fallback})`)
    .optional()
    .describe(`${doc.meaning} Default ${fallback}; ${boundsText(doc)}.`);
}

const thresholdsShape = Object.fromEntries(
  (Object.keys(DEFAULT_THRESHOLDS) as (keyof Thresholds)[]).map((key) => [key, thresholdField(key)]),
) as Record<keyof Thresholds, ReturnType<typeof thresholdField>>;

export const analysisSchema = z
  .strictObject({
    thresholds: z
      .strictObject(thresholdsShape)
      .describe(
        'Override the numbers the analysis judges a run by; each one left out keeps the analysis\' default ' +
          '(operator/src/analysis/README.md explains each and why its default is what it is).',
      )
      .optional(),
  })
  .describe('How the finished run is judged: where it broke and which resource saturated first.');

const OBJECT_NAME = '^[a-z0-9]([-.a-z0-9]*[a-z0-9])?$';

const baselineRules = {
  experimentName: {
    path: 'spec.baseline.experiment',
    cel: `self.matches('${OBJECT_NAME}')`,
    message: 'must be the name of a LoadExperiment in this namespace (lower-case letters, digits, - and ., e.g. quickstart-main)',
    check: (self: string) => new RegExp(OBJECT_NAME).test(self),
  } satisfies Rule<string>,
};

const baselineChoice = {
  path: 'spec.baseline',
  cel: "has(self.experiment) != (has(self.previousRun) && self.previousRun)",
  message: 'set exactly one: experiment (another LoadExperiment) or previousRun: true (this experiment\'s run before the current one)',
  check: (self: { experiment?: string | undefined; previousRun?: boolean | undefined }) => (self.experiment !== undefined) !== (self.previousRun === true),
} satisfies Rule<{ experiment?: string | undefined; previousRun?: boolean | undefined }>;

export const baselineSchema = enforce(
  z
    .strictObject({
      experiment: enforce(z.string().max(253, 'must be at most 253 characters'), [baselineRules.experimentName])
        .describe('Another LoadExperiment in this namespace (e.g. the same experiment run on the last release); its last successful run is the baseline.')
        .optional(),
      previousRun: z
        .boolean()
        .describe('true: the baseline is this experiment\'s run before the current one (edit the spec, e.g. the image, and the new run is compared with the old).')
        .optional(),
    })
    .describe(
      'Compare this run with a baseline when it ends, as `loadlab compare` does (differences beyond both runs\' noise and a minimum effect): ' +
        'the result goes to status.comparison and the Regressed condition.',
    ),
  [baselineChoice],
);

// ----------------------------------------------------------------------------------------- spec

type SpecShape = {
  fleet: { devices: number };
  load: {
    stages?: readonly { devices: number; duration: string }[] | undefined;
    search?: SearchShape | undefined;
  };
  timeout: string;
  scaling?: unknown;
  baseline?: unknown;
};

const timeoutMs = (self: SpecShape) => (isDuration(self.timeout) ? durationMs(self.timeout) : Infinity);

const specRules = {
  timeout: positiveDuration('spec.timeout', '1h'),
  stagesWithinFleet: {
    path: 'spec',
    field: 'load.stages',
    cel: '!has(self.load.stages) || self.load.stages.all(s, s.devices <= self.fleet.devices)',
    message: 'every stage must stay within fleet.devices: raise fleet.devices or lower the stage',
    check: (self: SpecShape) => (self.load.stages ?? []).every((stage) => stage.devices <= self.fleet.devices),
  } satisfies Rule<SpecShape>,
  searchWithinFleet: {
    path: 'spec',
    field: 'load.search.maxDevices',
    cel: '!has(self.load.search) || self.load.search.maxDevices <= self.fleet.devices',
    message: 'must be at most fleet.devices: the search can only use devices the fleet has',
    check: (self: SpecShape) => self.load.search === undefined || self.load.search.maxDevices <= self.fleet.devices,
  } satisfies Rule<SpecShape>,
  stagesFitTimeout: {
    path: 'spec',
    field: 'timeout',
    cel: "!has(self.load.stages) || self.load.stages.map(s, duration(s.duration)).sum() <= duration(self.timeout)",
    message: 'must be at least the total duration of the stages: raise timeout or shorten the stages',
    check: (self: SpecShape) => self.load.stages === undefined || stagesDurationMs(self.load.stages) <= timeoutMs(self),
  } satisfies Rule<SpecShape>,
  scalingWithoutBaseline: {
    path: 'spec',
    field: 'baseline',
    cel: '!has(self.scaling) || !has(self.baseline)',
    message: "cannot be set with spec.scaling: a study's result is its fit over the replica counts, not one run to compare with a baseline",
    check: (self: SpecShape) => self.scaling === undefined || self.baseline === undefined,
  } satisfies Rule<SpecShape>,
  searchFitsTimeout: {
    path: 'spec',
    field: 'timeout',
    celGap: 'the step count of a factor search needs a logarithm, which CEL lacks; the operator checks it too',
    message: 'must be at least the planned duration of the search, (rampUp + hold) for every step up to maxDevices: raise timeout or use fewer or shorter steps',
    check: (self: SpecShape) => self.load.search === undefined || searchDurationMs(self.load.search) <= timeoutMs(self),
  } satisfies Rule<SpecShape>,
};

export const loadExperimentSpecSchema = enforce(
  z
    .strictObject({
      fleet: fleetSchema,
      load: loadSchema,
      slo: sloSchema.prefault({}),
      target: targetSchema.prefault({}),
      scaling: scalingSchema.optional(),
      database: databaseSchema.prefault({}),
      generator: generatorSchema.prefault({}),
      analysis: analysisSchema.optional(),
      baseline: baselineSchema.optional(),
      cleanup: z
        .enum(['always', 'onSuccess', 'never'], { error: 'must be "always", "onSuccess" or "never"' })
        .describe('What to delete when the experiment ends: always, onSuccess (keep a failed run to inspect it) or never.')
        .default('onSuccess'),
      timeout: enforce(
        durationText().describe(
          'Upper bound on the whole experiment, from provisioning to the verdict; the planned load must fit in it.',
        ),
        [specRules.timeout],
      ).default('1h'),
    })
    .describe('What to run: the fleet, the load over time, the SLO, the system under test, how to judge the run and how to clean up.'),
  [specRules.stagesWithinFleet, specRules.searchWithinFleet, specRules.stagesFitTimeout, specRules.scalingWithoutBaseline, specRules.searchFitsTimeout],
);

/** Every rule of the spec, for the tests and for docs; the CRD carries those with `cel`. */
export const SPEC_RULES: readonly Rule<never>[] = [
  ...Object.values(fleetRules),
  ...Object.values(stageRules),
  ...Object.values(stepRules),
  ...Object.values(searchRules),
  ...Object.values(loadRules),
  ...Object.values(sloRules),
  ...envNameRules,
  imageRule,
  ...Object.values(RESOURCES_RULES),
  ...Object.values(NODE_SELECTOR_RULES),
  ...Object.values(TOLERATION_RULES),
  ...Object.values(baselineRules),
  baselineChoice,
  ...Object.values(envRules),
  ...Object.values(scalingRules),
  ...Object.values(specRules),
] as readonly Rule<never>[];
