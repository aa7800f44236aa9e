// The architecture rules `npm run lint` enforces (docs/architecture.md explains them).
//
// Inside operator/src, each layer imports only the layers below it, and folders of one layer do not
// import each other:
//   1 schema          the LoadExperiment schema: CRD, types, validation, the thresholds table
//   2 contract        names and labels, the device token format, the API's environment
//   3 traffic         the traffic model: plan, schedule (arrivals, logins), phase ranges, search policy
//   4 k6 | driver | driver-job | analysis | dataset
//                     the generators (k6 TestRuns, the load driver, the driver as a Job), the Prometheus
//                     analysis, the experiment's database contents
//   5 controller | local
//                     the operator's reconciler, local mode
//   6 cli             the `loadlab` command
// Across workspaces: api (the system under test) and sandbox (throwaway infrastructure) import no
// other workspace of ours; nothing under src imports tests; no cycles anywhere.
const LAYERS = [['schema'], ['contract'], ['traffic'], ['k6', 'driver', 'driver-job', 'analysis', 'dataset'], ['controller', 'local'], ['cli']];

const layerRules = LAYERS.flatMap((layer, index) => {
  const below = LAYERS.slice(0, index).flat();
  return layer.map((folder) => ({
    name: `layer-${folder}`,
    comment: `operator/src/${folder} may import only ${[...below, folder].join(', ')} (the layers below it, and itself)`,
    severity: 'error',
    from: { path: `^operator/src/${folder}/` },
    to: { path: '^operator/src/([^/]+)/', pathNot: `^operator/src/(${[...below, folder].join('|')})/` },
  }));
});

module.exports = {
  forbidden: [
    ...layerRules,
    {
      name: 'no-circular',
      comment: 'a cycle means two modules cannot be understood (or changed) one without the other',
      severity: 'error',
      from: {},
      to: { circular: true },
    },
    {
      name: 'no-test-code-in-src',
      comment: 'code that ships (src/) must not depend on tests, their support code or benchmarks',
      severity: 'error',
      from: { path: '^[^/]+/src/' },
      to: { path: '^[^/]+/(test|bench)/' },
    },
    {
      name: 'api-stands-alone',
      comment: 'the system under test knows nothing of the harness that measures it',
      severity: 'error',
      from: { path: '^api/' },
      to: { path: '^(operator|cdk8s)/' },
    },
    {
      name: 'sandbox-stands-alone',
      comment: 'throwaway infrastructure is used by the others, never the other way round',
      severity: 'error',
      from: { path: '^sandbox/' },
      to: { path: '^(operator|cdk8s|api)/' },
    },
    {
      name: 'operator-src-not-into-api',
      comment: 'the operator starts the API as a process (local mode), it does not import its code; only the API\'s configuration contract (which environment names an experiment may set) is shared, as one list',
      severity: 'error',
      from: { path: '^operator/src/' },
      to: { path: '^api/', pathNot: '^api/dist/src/config/config\\.(d\\.ts|js)$' },
    },
  ],
  options: {
    includeOnly: '^(api|operator|sandbox|cdk8s)/',
    doNotFollow: { path: '^[^/]+/dist/' },
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.depcruise.json' },
    combinedDependencies: true,
    // A workspace import (@loadlab/x/...) resolves through its package.json exports to x/dist/...
    enhancedResolveOptions: { conditionNames: ['import', 'types', 'default'], exportsFields: ['exports'], extensions: ['.ts', '.js', '.d.ts'] },
  },
};
