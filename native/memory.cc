/*
 * guild_spawn's second function: reduceMemory(), V8's LowMemoryNotification on the calling
 * thread's isolate. It is V8's C++ API, not N-API: Node offers no way to it from JavaScript.
 *
 * Why: a `guild run` spends its life waiting on agents. While it starts them, V8 grows its young
 * generation to 4 MB of semi-spaces and keeps it until its own memory reducer notices the process
 * is idle, 8-16 s later. global.gc() collects but does not shrink the spaces; this does (full
 * collections with the flag that shrinks new space and releases emptied pages), once the run has
 * gone quiet. Measured on a waiting `guild run`: 57 MB of RSS in the first seconds of the wait,
 * 53-54 MB after it (bench/startup.ts). It costs one full collection of a heap of ~8 MB.
 */
#include <node_api.h>
#include <v8.h>

extern "C" napi_value guild_reduce_memory(napi_env env, napi_callback_info info) {
  v8::Isolate *isolate = v8::Isolate::GetCurrent();
  if (isolate != nullptr) isolate->LowMemoryNotification();
  return nullptr;
}
