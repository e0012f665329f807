import type { GraphNode, Model } from "../onnx/model";

/** Producer/consumer lookups over one graph: the top-level graph unless `nodes` says otherwise. */
export class GraphIndex {
  readonly producer = new Map<string, GraphNode>();
  readonly consumers = new Map<string, GraphNode[]>();
  readonly graphOutputs: ReadonlySet<string>;

  constructor(readonly model: Model, nodes: readonly GraphNode[] = model.nodes) {
    for (const n of nodes) {
      for (const o of n.outputs) if (o) this.producer.set(o, n);
      for (const i of n.inputs) {
        if (!i) continue;
        const list = this.consumers.get(i);
        if (list) list.push(n);
        else this.consumers.set(i, [n]);
      }
    }
    // A subgraph's outputs are not declared at the top level; treat tensors nobody consumes as outputs.
    this.graphOutputs = nodes === model.nodes
      ? new Set(model.outputs.map((o) => o.name))
      : new Set(nodes.flatMap((n) => n.outputs).filter((o) => !this.consumers.has(o)));
  }

  consumersOf(tensor: string): readonly GraphNode[] {
    return this.consumers.get(tensor) ?? [];
  }

  /** The only consumer of a tensor, if it has exactly one and is not a graph output. */
  soleConsumer(tensor: string): GraphNode | undefined {
    const c = this.consumersOf(tensor);
    return c.length === 1 && !this.graphOutputs.has(tensor) ? c[0] : undefined;
  }

  isConstant(tensor: string): boolean {
    return this.model.constants.has(tensor);
  }

  /**
   * Every (consumer, tensor it reads) reachable from `start`, going on through the outputs of the
   * consumers `follow` accepts; each tensor is visited once.
   */
  *consumersAlong(start: string, follow: (node: GraphNode) => boolean): Generator<[GraphNode, string]> {
    const stack = [start];
    const seen = new Set<string>();
    while (stack.length) {
      const t = stack.pop()!;
      if (seen.has(t)) continue;
      seen.add(t);
      for (const c of this.consumersOf(t)) {
        yield [c, t];
        if (follow(c)) stack.push(...c.outputs.filter(Boolean));
      }
    }
  }

  /** Every node that (transitively) consumes one of `start`. */
  nodesDownstream(start: readonly string[]): Set<GraphNode> {
    const seen = new Set<GraphNode>();
    const stack = [...start];
    while (stack.length) {
      const t = stack.pop()!;
      for (const c of this.consumersOf(t)) {
        if (seen.has(c)) continue;
        seen.add(c);
        stack.push(...c.outputs);
      }
    }
    return seen;
  }
}
