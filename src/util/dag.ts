// Pure algorithms over a workflow's dependency graph. They sit at the bottom of the layers because
// config rejects cycles while loading and telemetry measures the critical path, both below the
// workflow that runs the graph.

/** A node of the dependency graph: a task id and the ids it needs. */
export interface DagNode {
  id: string;
  needs: readonly string[];
}

/**
 * Finds one dependency cycle, returned as the ids along it with the first repeated at the end
 * (`a → b → a`), or null when the graph is acyclic. Iterative DFS: workflows may be large.
 */
export function findCycle(nodes: readonly DagNode[]): string[] | null {
  const byId = new Map(nodes.map((n) => [n.id, n]));
  const state = new Map<string, 1 | 2>(); // 1 = on the stack, 2 = done
  for (const root of nodes) {
    if (state.has(root.id)) continue;
    const stack: { id: string; next: number }[] = [{ id: root.id, next: 0 }];
    state.set(root.id, 1);
    while (stack.length > 0) {
      const top = stack[stack.length - 1]!;
      const needs = byId.get(top.id)?.needs ?? [];
      if (top.next >= needs.length) {
        state.set(top.id, 2);
        stack.pop();
        continue;
      }
      const dep = needs[top.next++]!;
      if (!byId.has(dep)) continue;
      const s = state.get(dep);
      if (s === 1) {
        const from = stack.findIndex((f) => f.id === dep);
        return [...stack.slice(from).map((f) => f.id), dep];
      }
      if (s === undefined) {
        state.set(dep, 1);
        stack.push({ id: dep, next: 0 });
      }
    }
  }
  return null;
}

/** Ids in an order where every task comes after the tasks it needs. Assumes no cycle. */
export function topologicalOrder(nodes: readonly DagNode[]): string[] {
  const indegree = new Map<string, number>();
  const dependents = new Map<string, string[]>();
  for (const n of nodes) {
    indegree.set(n.id, n.needs.length);
    for (const d of n.needs) {
      const list = dependents.get(d);
      if (list) list.push(n.id);
      else dependents.set(d, [n.id]);
    }
  }
  const out: string[] = [];
  const ready = nodes.filter((n) => n.needs.length === 0).map((n) => n.id);
  while (ready.length > 0) {
    const id = ready.pop()!;
    out.push(id);
    for (const t of dependents.get(id) ?? []) {
      const left = indegree.get(t)! - 1;
      indegree.set(t, left);
      if (left === 0) ready.push(t);
    }
  }
  return out;
}

/** The heaviest path through the DAG where each node weighs `weight(id)`: the critical path. */
export function longestChain(nodes: readonly DagNode[], weight: (id: string) => number): number {
  const byId = new Map(nodes.map((n) => [n.id, n]));
  const finish = new Map<string, number>();
  let best = 0;
  for (const id of topologicalOrder(nodes)) {
    let start = 0;
    for (const d of byId.get(id)!.needs) start = Math.max(start, finish.get(d) ?? 0);
    const end = start + weight(id);
    finish.set(id, end);
    best = Math.max(best, end);
  }
  return best;
}
