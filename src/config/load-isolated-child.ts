import { writeSync } from 'node:fs';
import { serialize } from 'node:v8';
import { loadConfig, type LoadConfigOptions } from './load-config.js';
import { ANSWER_ON_STDOUT, shapeOf, toWire, type LoadAnswer } from './load-isolated.js';
import type { ResolvedConfig } from './resolve.js';

// The child process of loadConfigIsolated (load-isolated.ts): loads one file, answers once, on its
// stdout (a pipe, V8's serializer) or over IPC, and exits (over IPC its parent disconnects; so does
// it, should the parent be gone). What cannot be sent as it is (shapeOf throws) fails the child:
// the file is then loaded in the parent.

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

if (process.argv[4] === ANSWER_ON_STDOUT) {
  const bytes = serialize(answer());
  for (let at = 0; at < bytes.length; ) at += writeSync(1, bytes, at, bytes.length - at);
} else {
  process.send!(answer(), () => {
    if (process.connected) process.disconnect();
  });
}
