import { z } from 'zod';
import { enforce, type Rule } from './rules.js';
import { loadExperimentSpecSchema } from './spec.js';
import { loadExperimentStatusSchema } from './status.js';

export const GROUP = 'loadlab.dev';
export const VERSION = 'v1alpha1';
export const API_VERSION = `${GROUP}/${VERSION}`;
export const KIND = 'LoadExperiment';

/**
 * Names of the objects loadlab creates are derived from the experiment's name (e.g. <name>-api, a
 * Service, which must be a DNS-1035 label of at most 63 characters), so the name leaves room.
 */
export const NAME_PATTERN = '^[a-z]([-a-z0-9]*[a-z0-9])?$';
export const MAX_NAME_LENGTH = 48;

type Named = { metadata: { name?: string | undefined } };

// On the root because CEL may read metadata.name only from there; generateName is resolved by then.
export const nameRule = {
  path: '',
  cel: `self.metadata.name.size() <= ${MAX_NAME_LENGTH} && self.metadata.name.matches('${NAME_PATTERN}')`,
  message:
    `metadata.name must be at most ${MAX_NAME_LENGTH} characters of lowercase letters, digits and "-", ` +
    'starting with a letter, so the names of the objects loadlab derives from it stay valid',
  check: (self: Named) => {
    const name = self.metadata.name ?? '';
    return name.length <= MAX_NAME_LENGTH && new RegExp(NAME_PATTERN).test(name);
  },
} satisfies Rule<Named>;

export const ROOT_RULES: readonly Rule<never>[] = [nameRule] as readonly Rule<never>[];

const metadataSchema = z
  .looseObject({
    name: z.string({ error: 'is required: the experiment\'s name, e.g. quickstart' }).min(1, 'must not be empty').describe('The experiment\'s name.'),
    namespace: z.string().optional().describe('The namespace the experiment lives in.'),
    labels: z.record(z.string(), z.string()).optional().describe('Labels.'),
    annotations: z.record(z.string(), z.string()).optional().describe('Annotations.'),
  })
  .describe('Standard object metadata; loadlab needs name.');

/** A whole LoadExperiment manifest, as `kubectl apply` or `loadlab run` reads it. */
export const loadExperimentSchema = enforce(
  z
    .object({
      apiVersion: z.literal(API_VERSION, { error: `must be ${API_VERSION}` }).describe('The API version, loadlab.dev/v1alpha1.'),
      kind: z.literal(KIND, { error: `must be ${KIND}` }).describe('The kind, LoadExperiment.'),
      metadata: metadataSchema,
      spec: loadExperimentSpecSchema,
      status: loadExperimentStatusSchema.optional(),
    })
    .describe(
      'A LoadExperiment asks how the API behaves as a fleet of devices grows: it provisions the API, ' +
        'drives the fleet\'s traffic, judges the SLO and names the bottleneck.',
    ),
  [nameRule],
);

/** An experiment with every default filled in (the apiserver's view after defaulting). */
export type LoadExperiment = z.output<typeof loadExperimentSchema>;
export type LoadExperimentSpec = z.output<typeof loadExperimentSpecSchema>;
export type LoadExperimentStatus = z.output<typeof loadExperimentStatusSchema>;
/** What a person may write: defaulted fields are optional. */
export type LoadExperimentInput = z.input<typeof loadExperimentSchema>;
