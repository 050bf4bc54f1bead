import { loadConfig, type LoadConfigOptions } from './load-config.js';
import { shapeOf, toWire, type LoadAnswer } from './load-isolated.js';
import type { ResolvedConfig } from './resolve.js';

// The child process of loadConfigIsolated (load-isolated.ts): loads one file, answers once over
// IPC, and exits (its parent disconnects; so does it, should the parent be gone). What cannot be
// sent as it is (shapeOf throws) fails the child: the file is then loaded in the parent.

const [file, options] = [process.argv[2]!, JSON.parse(process.argv[3]!) as LoadConfigOptions];

function answer(): LoadAnswer {
  let config: ResolvedConfig;
  try {
    config = loadConfig(file, options);
  } catch (e) {
    return { ok: false, error: toWire(e) };
  }
  return { ok: true, config, shape: shapeOf(config) };
}

process.send!(answer(), () => {
  if (process.connected) process.disconnect();
});
