import type { GraphProto } from "../onnx/gen/onnx_pb";
import type { Model } from "../onnx/model";

/**
 * Bases of the names the engine adds to a model's graph (statistics, per-channel moments, the NaN
 * locator's counters, the shape probe, loss and backward graph). A builder names everything
 * `<prefix>/<op>_<n>`; {@link generatedPrefix} turns a base into a prefix the model does not use.
 */
export type GeneratedBase = "__doctor" | "__doctor_channels" | "__doctor_nan" | "__doctor_shape" | "__doctor_grad";

// Names of each model (node and tensor names of the graph and every subgraph) that start with
// "__", the only ones a prefix can collide with.
const reservedCache = new WeakMap<Model, readonly string[]>();

function reservedNames(model: Model): readonly string[] {
  let names = reservedCache.get(model);
  if (names) return names;
  const found = new Set<string>();
  const add = (n: string): void => {
    if (n.startsWith("__")) found.add(n);
  };
  const visit = (g: GraphProto | undefined): void => {
    if (!g) return;
    for (const v of [...g.input, ...g.output, ...g.valueInfo]) add(v.name);
    for (const t of g.initializer) add(t.name);
    for (const s of g.sparseInitializer) add(s.values?.name ?? "");
    for (const n of g.node) {
      add(n.name);
      n.input.forEach(add);
      n.output.forEach(add);
      for (const a of n.attribute) {
        visit(a.g);
        a.graphs.forEach(visit);
      }
    }
  };
  visit(model.proto.graph);
  for (const n of [...model.nodes, ...model.subgraphNodes]) {
    add(n.name);
    n.inputs.forEach(add);
    n.outputs.forEach(add);
  }
  names = [...found];
  reservedCache.set(model, names);
  return names;
}

/**
 * The prefix for a builder's names in `model`: the base itself, or the base with the smallest
 * number appended, such that no node or tensor name of the model (subgraphs included) starts with
 * it. A model that happens to name tensors `__doctor/const_10` (or floods every such name) then
 * cannot collide with what the engine appends. Different bases never give the same prefix.
 */
export function generatedPrefix(model: Model, base: GeneratedBase): string {
  const names = reservedNames(model).filter((n) => n.startsWith(base));
  if (!names.length) return base;
  for (let k = 1; ; k++) {
    const candidate = `${base}${k}`;
    if (!names.some((n) => n.startsWith(candidate))) return candidate;
  }
}
