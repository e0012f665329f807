import type { GraphProto } from "./gen/onnx_pb";
import type { GraphNode } from "./model";

/**
 * Outer-scope tensors read inside a node's subgraphs (If branches, Loop and Scan bodies, nested
 * ones included): names a subgraph uses but neither declares as an input or initializer nor
 * computes itself.
 */
export function capturedInputs(n: GraphNode): string[] {
  const out = new Set<string>();
  const visit = (g: GraphProto, outerDefined: ReadonlySet<string>): void => {
    const defined = new Set<string>([...outerDefined, ...g.input.map((v) => v.name), ...g.initializer.map((t) => t.name)]);
    for (const sub of g.node) {
      for (const x of sub.input) if (x && !defined.has(x)) out.add(x);
      for (const a of sub.attribute) for (const body of [...(a.g ? [a.g] : []), ...a.graphs]) visit(body, defined);
      for (const o of sub.output) if (o) defined.add(o);
    }
  };
  for (const a of n.attrs.values()) for (const body of [...(a.g ? [a.g] : []), ...a.graphs]) visit(body, new Set());
  return [...out];
}

/**
 * The nodes in an order where every node comes after the producers of its inputs (Kahn's
 * algorithm, ties in file order); file order when the graph has a cycle (onnxruntime refuses it).
 */
export function topologicalOrder(nodes: readonly GraphNode[], inputsOf: (n: GraphNode) => readonly string[]): readonly GraphNode[] {
  const producer = new Map<string, number>();
  nodes.forEach((n, i) => n.outputs.forEach((o) => o && producer.set(o, i)));
  const waiting = new Array<number>(nodes.length).fill(0);
  const consumers: number[][] = nodes.map(() => []);
  let sorted = true;
  nodes.forEach((n, i) => {
    for (const x of new Set(inputsOf(n))) {
      const p = producer.get(x);
      if (p === undefined || p === i) continue;
      if (p > i) sorted = false;
      waiting[i]++;
      consumers[p].push(i);
    }
  });
  if (sorted) return nodes;
  const ready = nodes.map((_, i) => i).filter((i) => waiting[i] === 0);
  const order: GraphNode[] = [];
  // A binary heap would keep ties in file order at n log n; the simple sorted insert is fine for
  // the rare unsorted file.
  while (ready.length) {
    const i = ready.shift()!;
    order.push(nodes[i]);
    for (const c of consumers[i]) {
      if (--waiting[c] === 0) {
        let k = ready.findIndex((r) => r > c);
        if (k < 0) k = ready.length;
        ready.splice(k, 0, c);
      }
    }
  }
  return order.length === nodes.length ? order : nodes;
}
