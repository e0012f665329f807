import type { GraphNode, Model } from "../onnx/model";

/** Producer/consumer lookups over the top-level graph. */
export class GraphIndex {
  readonly producer = new Map<string, GraphNode>();
  readonly consumers = new Map<string, GraphNode[]>();
  readonly graphOutputs: ReadonlySet<string>;

  constructor(readonly model: Model) {
    for (const n of model.nodes) {
      for (const o of n.outputs) if (o) this.producer.set(o, n);
      for (const i of n.inputs) {
        if (!i) continue;
        const list = this.consumers.get(i);
        if (list) list.push(n);
        else this.consumers.set(i, [n]);
      }
    }
    this.graphOutputs = new Set(model.outputs.map((o) => o.name));
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

  /** Whether `tensor` depends on a graph input (i.e. is data, not a folded constant). */
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
