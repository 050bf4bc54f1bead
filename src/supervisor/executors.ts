import type { Execution, Executor } from '../executors/executor.js';
import { FunctionExecutor, type FunctionRequest } from '../executors/function-executor.js';
import { ProcessExecutor, type ProcessRequest } from '../executors/process-executor.js';
import { systemCgroupControl } from '../system/cgroup-control.js';
import type { SystemProbe } from '../system/probe.js';

/** Something that starts executions from requests of type R (an `Executor`, or a test double). */
export interface Starter<R> {
  start(request: R): Execution;
}

/**
 * The executors a supervisor starts executions through, by kind. `process` and `function` are
 * Guild's own; another kind (a remote executor, a test's) plugs in under its own name.
 */
export interface Executors {
  /** Shell commands in process groups. @default a ProcessExecutor */
  process?: Executor<ProcessRequest>;
  /** In-process async functions (library use). @default a FunctionExecutor */
  function?: Executor<FunctionRequest>;
  // Any other kind: its owner knows its request type.
  [kind: string]: Starter<any> | undefined;
}

/** The request type of an executor kind. */
export type RequestOf<E extends Executors, K extends keyof E> = NonNullable<E[K]> extends Starter<infer R> ? R : never;

/** The given executors, with Guild's own filled in where missing. */
export function withDefaultExecutors(given: Executors | undefined, probe: SystemProbe): Executors {
  // A cgroup per task where Guild can make one; the walked tree, measured through the probe, elsewhere.
  const process = given?.process ?? new ProcessExecutor({ probe, containment: systemCgroupControl() });
  return { ...given, process, function: given?.function ?? new FunctionExecutor() };
}
