import { parentPort, workerData } from 'node:worker_threads';
import { loadConfig, type LoadConfigOptions } from './load-config.js';
import { shapeOf, toWire, type LoadAnswer } from './load-isolated.js';
import type { ResolvedConfig } from './resolve.js';

// The worker of loadConfigIsolated (load-isolated.ts): loads one file, answers once, and ends.
// What cannot be sent as it is (shapeOf throws) fails the worker: the file is then loaded in the
// calling thread.

const { file, options } = workerData as { file: string; options: LoadConfigOptions };

function answer(): LoadAnswer {
  let config: ResolvedConfig;
  try {
    config = loadConfig(file, options);
  } catch (e) {
    return { ok: false, error: toWire(e) };
  }
  return { ok: true, config, shape: shapeOf(config) };
}

parentPort!.postMessage(answer());
