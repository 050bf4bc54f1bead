// Builds native/guild_spawn.node (Guild's posix_spawn, src/executors/native-spawn.ts) with node-gyp
// at `npm install`. It is an optimisation: where it cannot be built (not Linux, no compiler),
// install still succeeds and Guild uses Node's spawn; it says so here.
import { spawnSync } from 'node:child_process';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
if (process.platform !== 'linux') {
  console.log('guild: native spawn is Linux only; Node\'s spawn is used');
  process.exit(0);
}
// npm names its own node-gyp in scripts; else the one in node_modules (better-sqlite3 needs it too).
let gyp = process.env.npm_config_node_gyp;
if (!gyp) {
  try {
    gyp = createRequire(import.meta.url).resolve('node-gyp/bin/node-gyp.js');
  } catch {
    gyp = null;
  }
}
if (!gyp) {
  console.log('guild: node-gyp not found; the native spawn is not built and Node\'s spawn is used');
  process.exit(0);
}
const r = spawnSync(process.execPath, [gyp, 'rebuild', '--directory', join(root, 'native')], { stdio: 'inherit' });
if (r.status !== 0) console.log('guild: the native spawn did not build (see above); Node\'s spawn is used');
