import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { stringify } from 'yaml';
import { buildCatalog, defaultRateWindowS, measuresFor, type Source } from '../src/analysis/index.js';
import type { LoadEngine } from '../src/schema/index.js';

/** Local mode always runs the loadlab driver; a cluster runs either engine. */
const PLACES: { source: Source; engine: LoadEngine }[] = [
  { source: 'local', engine: 'loadlab' },
  { source: 'kubernetes', engine: 'k6' },
  { source: 'kubernetes', engine: 'loadlab' },
];
const SELECTOR = 'experiment="quickstart",run="3"';

describe('the query catalog', () => {
  for (const { source, engine } of PLACES) {
    const label = `${source}, engine ${engine}`;
    const catalog = buildCatalog({ selector: SELECTOR, source, engine, rateWindowS: 20, resourceSelector: 'namespace="lab",pod=~"quickstart-.*"' });

    it(`${label}: fewer than 50 queries, uniquely named, each selecting the run`, () => {
      assert.ok(catalog.length < 50, `${catalog.length} queries`);
      assert.equal(new Set(catalog.map((query) => query.name)).size, catalog.length);
      for (const query of catalog) {
        // Every vector selector carries the run's matchers (or, for cAdvisor/kube-state-metrics, the pod matchers).
        for (const [, metric, matchers] of query.promql.matchAll(/([a-zA-Z_:][\w:]*)?\{([^}]*)\}/g)) {
          if (matchers === 'id="/"') {
            // A node's whole CPU (cAdvisor's root cgroup) carries no pod: only the API's nodes are kept.
            assert.match(query.promql, /and on \(node\) group by \(node\) \(container_cpu_usage_seconds_total\{namespace="lab",pod=~"quickstart-\.\*",container="api"\}\)/, query.name);
            continue;
          }
          const expected = /^(container_|kube_)/.test(metric ?? '') ? 'namespace="lab",pod=~"quickstart-.*"' : SELECTOR;
          assert.ok(matchers!.startsWith(expected), `${query.name}: ${metric}{${matchers}}`);
        }
        if (/rate\(/.test(query.promql)) assert.ok(query.promql.includes('[20s]'), `${query.name} uses the rate window`);
      }
    });

    it(`${label}: every USE measure reads a query of the catalog`, () => {
      const names = new Set(catalog.map((query) => query.name));
      for (const measure of measuresFor(source, engine)) assert.ok(names.has(measure.query), `${measure.key} → ${measure.query}`);
    });

    it(`${label}: the generator's metrics are the engine's, and the API's Node.js metrics never include the driver's`, () => {
      const generator = catalog.filter((query) => query.resource === 'load-generator' || query.name.startsWith('generator_'));
      for (const query of generator) assert.match(query.promql, engine === 'loadlab' ? /loadlab_driver_|job="driver"/ : /\bk6_|container="k6"/, query.name);
      for (const query of catalog.filter((entry) => /nodejs_/.test(entry.promql))) {
        for (const [selector] of query.promql.matchAll(/nodejs_\w+\{[^}]*\}/g)) assert.match(selector, /job!="driver"/, `${query.name}: ${selector}`);
      }
    });

    it(`${label}: promtool (Prometheus' own parser, 2.42 from Debian) accepts every query`, () => {
      const directory = mkdtempSync(join(tmpdir(), 'loadlab-catalog-'));
      try {
        const file = join(directory, 'catalog.yml');
        writeFileSync(file, stringify({ groups: [{ name: 'catalog', rules: catalog.map((query) => ({ record: `loadlab:catalog:${query.name}`, expr: query.promql })) }] }));
        let output: string;
        try {
          output = execFileSync('promtool', ['check', 'rules', file], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
        } catch (error) {
          const failure = error as { code?: string; stdout?: string; stderr?: string };
          if (failure.code === 'ENOENT') assert.fail('promtool is not installed: run `npm run setup` (it installs the prometheus Debian package)');
          assert.fail(`promtool refused the catalog:\n${failure.stdout ?? ''}${failure.stderr ?? ''}`);
        }
        assert.match(output, new RegExp(`SUCCESS: ${catalog.length} rules found`));
      } finally {
        rmSync(directory, { recursive: true, force: true });
      }
    });
  }

  it('uses a rate window of at least four scrapes and one step', () => {
    assert.equal(defaultRateWindowS(15, 5), 20);
    assert.equal(defaultRateWindowS(15, 2), 15);
    assert.equal(defaultRateWindowS(15, 30), 120);
  });

  it('accepts a selector written with braces', () => {
    const [first] = buildCatalog({ selector: '{experiment="x"}', source: 'local', rateWindowS: 20 });
    assert.ok(first!.promql.includes('{experiment="x"}'));
  });
});
