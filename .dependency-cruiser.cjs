// The layers of DESIGN.md ("The shape of the code"), checked by dependency-cruiser in CI
// (`npm run lint:layers`, called from .ci/run). Top to bottom:
//
//   cli
//   gateway · distributed · regression
//   dashboard
//   workflow
//   telemetry · cache
//   supervisor
//   governor · scheduler
//   executors · store
//   config
//   system · io · util · errors
//
// A runtime import points to a lower line, or within its line where it makes no cycle: no cycle of
// modules (no-runtime-cycle), and no pair of domains importing each other (DIRECTIONS below).
// Type-only imports (`import type`, `export type`) are exempt: they vanish at compile time, and a
// lower layer may name a shape an upper one implements. src/index.ts is the package root: it
// re-exports every layer and nothing under src/ imports it at runtime.
//
// The rules are generated from LAYERS, one entry per line of the diagram; change both together.
// Paths are relative to the directory depcruise runs in; SRC lets the layering test point the same
// rules at a fixture tree (test/fixtures/layers/src) without copying them.

/** One entry per line of the diagram, top first; each names its domains (folders under src/). */
const LAYERS = [
  ['cli'],
  ['gateway', 'distributed', 'regression'],
  ['dashboard'],
  ['workflow'],
  ['telemetry', 'cache'],
  ['supervisor'],
  ['governor', 'scheduler'],
  ['executors', 'store'],
  ['config'],
  ['system', 'io', 'util', 'errors'],
];

const SRC = process.env.GUILD_LAYERS_SRC ?? 'src';
const escape = (s) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
const root = `^${escape(SRC)}/`;
/** A domain is a folder under src/, or for `errors` the single file src/errors.ts. */
const domainPath = (d) => `${root}${d}(?:/|[.]ts$)`;
const layerPaths = (layer) => layer.map(domainPath);

/**
 * Rules match runtime imports only: with tsPreCompilationDeps, an `import type` / `export type`
 * edge stays in the graph marked `type-only`, and `dependencyTypesNot` leaves it out.
 */
const TYPE_ONLY = ['type-only'];

const upward = LAYERS.slice(1).map((layer, i) => {
  const above = LAYERS.slice(0, i + 1).flat();
  return {
    name: `upward-import-from-${layer.join('-')}`,
    severity: 'error',
    comment:
      `${layer.join(' · ')} may import at runtime only a lower line of DESIGN.md's layers ` +
      `(or its own line without a cycle); ${above.join(', ')} sit above it. ` +
      'Move the shared piece down, invert the dependency with an interface the lower layer owns, ' +
      'or make the import `import type` if only a type is needed.',
    from: { path: layerPaths(layer) },
    to: { path: above.map(domainPath), dependencyTypesNot: TYPE_ONLY },
  };
});

/**
 * Domains of one line whose direction is settled: the first may import the second at runtime, never
 * the reverse. The cycle rule sees modules only, so without this two domains of a line could import
 * each other through different files (governor.ts importing scheduler/queue-key while
 * scheduler.ts imports the governor, which issue 10 found) and pass.
 */
const DIRECTIONS = [
  ['telemetry', 'cache'], // telemetry reads the task memo's namespace; the cache reports nothing to telemetry
  ['scheduler', 'governor'], // the governor owns the interfaces the scheduler implements
];

const sideways = DIRECTIONS.map(([upper, lower]) => ({
  name: `same-line-direction-${lower}-to-${upper}`,
  severity: 'error',
  comment:
    `${upper} and ${lower} share a line; ${upper} may import ${lower} at runtime, so ${lower} must not ` +
    `import ${upper} (their folders would form a cycle). Move the shared piece into ${lower} or lower, ` +
    'or make the import `import type`.',
  from: { path: domainPath(lower) },
  to: { path: domainPath(upper), dependencyTypesNot: TYPE_ONLY },
}));

/** Every module must sit in a known layer, so a new domain cannot slip past the rules. */
const known = LAYERS.flat().map(domainPath).concat(`${root}index[.]ts$`);

module.exports = {
  forbidden: [
    ...upward,
    ...sideways,
    {
      name: 'no-runtime-cycle',
      severity: 'error',
      comment:
        'Within one line an import is allowed only where it makes no cycle; this one closes a ' +
        'cycle of runtime imports. Type-only links do not count.',
      from: { path: root },
      to: { circular: true, dependencyTypesNot: TYPE_ONLY, viaOnly: { dependencyTypesNot: TYPE_ONLY } },
    },
    {
      name: 'not-to-package-root',
      severity: 'error',
      comment:
        `${SRC}/index.ts is the package root, above every layer: modules import the module that ` +
        'defines a name, not the root.',
      from: { path: root, pathNot: `${root}index[.]ts$` },
      to: { path: `${root}index[.]ts$`, dependencyTypesNot: TYPE_ONLY },
    },
    {
      name: 'layer-unknown',
      severity: 'error',
      comment:
        "This module is in no layer of DESIGN.md's diagram: add its domain to LAYERS in " +
        '.dependency-cruiser.cjs (and to the diagram) before using it.',
      from: { path: root, pathNot: known },
      to: {},
    },
  ],
  options: {
    // Only the source tree; tests, benchmarks and node_modules are outside the layers.
    includeOnly: root,
    doNotFollow: { path: 'node_modules' },
    // Keeps `import type` edges (marked `type-only`) in the graph, so rules can exempt them by type
    // rather than losing them silently.
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.json' },
    moduleSystems: ['es6'],
    enhancedResolveOptions: {
      exportsFields: ['exports'],
      conditionNames: ['import', 'require', 'node', 'default'],
      extensions: ['.ts', '.js'],
    },
  },
};
