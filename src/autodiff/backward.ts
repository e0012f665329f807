import { isFloat, type DType } from "../onnx/dtype";
import { defaultOpset, type GraphNode, type Model } from "../onnx/model";
import { capturedInputs, topologicalOrder } from "../onnx/order";
import { sharedParameterCopies } from "../graph/shared-weights";
import type { FloatType, GradEmitter } from "./emit";
import { VJP_RULES, VjpUnsupported, type VjpArgs } from "./rules";
import type { TensorInfo } from "./shapes";

/** A node whose gradient could not be formed; everything upstream of it has no gradient. */
export interface UnsupportedOp {
  readonly op: string;
  readonly node: string;
  readonly reason: string;
}

/**
 * A gradient as the builder hands it out: a tensor name, `0` when it is exactly zero (the tensor
 * does not influence the loss, or only through zero-gradient ops), or `null` when an op without a
 * rule sits between it and the loss, so the gradient is unknown.
 */
export type Gradient = string | 0 | null;

export interface Backward {
  grad(tensor: string): Gradient;
  readonly unsupported: readonly UnsupportedOp[];
  /**
   * Nodes where a dependence of the loss on the targets has an exactly zero derivative: rules
   * that return no gradient (Floor, Round, Sign, ...) and ops whose outputs are not float
   * (ArgMax, comparisons, a Cast to an integer type) on a path to the loss. Shape and Size are
   * left out (the shape of a tensor is not a function of its values).
   */
  readonly zeroCuts: readonly { op: string; node: string }[];
  /** Nodes differentiated (for the report and the tests). */
  readonly differentiated: number;
}

/** Ops that round floats to integers on the way to the loss (QDQ models): gradients stop there, reported. */
const QUANTIZERS = new Set(["QuantizeLinear", "DynamicQuantizeLinear"]);

/** The earliest opset whose forms our rules emit (Expand, Cast with `to`, Less on floats). */
export const MIN_OPSET = 8;

/**
 * Builds the reverse-mode graph: visits the nodes between the requested tensors and the loss in
 * reverse topological order, sums the gradients that fan in to each tensor, asks the rule table
 * for the input gradients and un-broadcasts them to the inputs' shapes.
 *
 * `seeds` maps tensors (the model outputs) to their already-emitted loss gradients. A node without
 * a rule (or that its rule refuses) poisons its inputs: they and everything upstream get `null`,
 * never a partial sum, because a gradient missing one path would be silently wrong.
 *
 * With `identityCopiesAreParameters`, an Identity of a constant passes no gradient back to the
 * constant: each copy is its own parameter. PyTorch's exporter merges parameters of equal value
 * (the weights of every fresh BatchNorm of one width) into one initializer read through Identity
 * copies; per layer, torch's gradient is the copy's own. Gradient checking leaves this off, since
 * a finite difference of the shared initializer moves every copy. Copies that are reuses of one
 * parameter (a module called several times, see {@link sharedParameterCopies}) pass the gradient
 * back, so the shared constant's gradient is the sum over its uses, as in torch.
 */
export function buildBackward(model: Model, info: TensorInfo, e: GradEmitter, seeds: ReadonlyMap<string, string>, targets: readonly string[], options: { identityCopiesAreParameters?: boolean } = {}): Backward {
  const opset = defaultOpset(model);
  const reuses = options.identityCopiesAreParameters ? sharedParameterCopies(model) : new Map<string, string>();
  const dtype = (t: string): DType | undefined => info.dtypes.get(t);
  const isFloatTensor = (t: string): boolean => !!t && isFloat(dtype(t) ?? "unsupported");

  // A node's inputs include the outer-scope tensors its subgraphs read (an If branch that only
  // returns Squeeze(x) has the condition as its one declared input): left out, the path through
  // the If would vanish and everything upstream would read an exactly zero gradient.
  const inputsOf = new Map<GraphNode, readonly string[]>(model.nodes.map((n) => {
    const implicit = capturedInputs(n);
    return [n, implicit.length ? [...n.inputs, ...implicit.filter((x) => !n.inputs.includes(x))] : n.inputs];
  }));
  const allInputs = (n: GraphNode): readonly string[] => inputsOf.get(n) ?? n.inputs;
  // onnxruntime runs graphs whose nodes are not in topological order; the walks below need it.
  const nodes = topologicalOrder(model.nodes, allInputs);

  // Tensors from which any path reaches the loss.
  const upAny = new Set<string>([...seeds.keys()]);
  for (let i = nodes.length - 1; i >= 0; i--) {
    const n = nodes[i];
    if (n.outputs.some((o) => upAny.has(o))) for (const x of allInputs(n)) if (x) upAny.add(x);
  }
  // Tensors that reach the loss through float edges (or through a quantizer, which is then
  // refused below), and tensors that depend on a target.
  const up = new Set<string>([...seeds.keys()]);
  for (let i = nodes.length - 1; i >= 0; i--) {
    const n = nodes[i];
    const quantizerOnPath = QUANTIZERS.has(n.opType) && n.outputs.some((o) => upAny.has(o));
    if (quantizerOnPath || n.outputs.some((o) => up.has(o))) for (const x of allInputs(n)) if (isFloatTensor(x)) up.add(x);
  }
  const down = new Set<string>(targets);
  for (const n of nodes) {
    if (allInputs(n).some((x) => down.has(x))) for (const o of n.outputs) if (isFloatTensor(o)) down.add(o);
  }
  const active = (t: string): boolean => !!t && up.has(t) && down.has(t);

  // Where the targets influence the loss only through non-float tensors.
  const zeroCuts: { op: string; node: string }[] = [];
  for (const n of nodes) {
    if (n.opType === "Shape" || n.opType === "Size" || QUANTIZERS.has(n.opType) || !allInputs(n).some((x) => down.has(x))) continue;
    if (n.outputs.some((o) => o && !isFloatTensor(o) && upAny.has(o))) zeroCuts.push({ op: n.opType, node: n.name });
  }

  const contributions = new Map<string, string[]>();
  const summed = new Map<string, string>();
  const poisoned = new Set<string>();
  const unsupported: UnsupportedOp[] = [];
  const contribute = (t: string, g: string): void => {
    const list = contributions.get(t);
    if (list) list.push(g);
    else contributions.set(t, [g]);
  };
  const total = (t: string): string | undefined => {
    const done = summed.get(t);
    if (done) return done;
    const list = contributions.get(t);
    if (!list?.length) return undefined;
    const g = list.length === 1 ? list[0] : e.op("Sum", list);
    summed.set(t, g);
    return g;
  };
  for (const [t, g] of seeds) contribute(t, g);

  const shape = (t: string): readonly number[] => {
    const s = info.shapes.get(t);
    if (!s) throw new VjpUnsupported(`the shape of ${t} is unknown`);
    return s;
  };
  const ints = (t: string): number[] | undefined => {
    const c = model.constants.get(t);
    if (c && c.size <= 1024 && !isFloat(c.dtype)) return Array.from(c.values(), Number);
    return info.values?.get(t);
  };
  const floats = (t: string): number[] | undefined => {
    const c = model.constants.get(t);
    return c && c.size <= 1024 && isFloat(c.dtype) ? Array.from(c.values(), Number) : undefined;
  };

  let differentiated = 0;
  const refuse = (n: GraphNode, reason: string, inputs: readonly string[]): void => {
    unsupported.push({ op: n.opType, node: n.name, reason });
    for (const x of inputs) poisoned.add(x);
  };
  // Quantizers have integer outputs, so the walk below never reaches them; refuse them first.
  for (const n of nodes) {
    const activeInputs = allInputs(n).filter(active);
    if (QUANTIZERS.has(n.opType) && activeInputs.length && n.outputs.some((o) => upAny.has(o))) {
      refuse(n, `${n.opType} rounds to integers, so its derivative is zero almost everywhere; quantization-aware training passes gradients through it with a straight-through estimator, which this check does not assume`, activeInputs);
    }
  }
  for (let i = nodes.length - 1; i >= 0; i--) {
    const n = nodes[i];
    if (!n.outputs.some(active)) continue;
    const activeInputs = allInputs(n).filter(active);
    if (activeInputs.length === 0) continue;
    if (n.outputs.some((o) => active(o) && poisoned.has(o))) {
      for (const x of activeInputs) poisoned.add(x);
      continue;
    }
    const gy = n.outputs.map((o) => (active(o) ? total(o) : undefined));
    if (gy.every((g) => g === undefined)) continue;
    if (options.identityCopiesAreParameters && n.opType === "Identity" && model.constants.has(n.inputs[0]) && !reuses.has(n.outputs[0])) continue;
    const rule = n.domain === "" || n.domain === "ai.onnx" ? VJP_RULES[n.opType] : undefined;
    const captured = activeInputs.filter((x) => !n.inputs.includes(x));
    if (!rule || captured.length) {
      const subgraph = captured.length ? ` (its subgraph reads ${captured.slice(0, 3).join(", ")}${captured.length > 3 ? ", ..." : ""} from the outer graph; no rule differentiates through subgraphs)` : "";
      refuse(n, `${n.domain && n.domain !== "ai.onnx" ? `no gradient rule for ${n.domain}.${n.opType}` : `no gradient rule for ${n.opType}`}${subgraph}`, activeInputs);
      continue;
    }
    if (opset < MIN_OPSET) {
      refuse(n, `gradients need opset ${MIN_OPSET} or later (the model uses ${opset})`, activeInputs);
      continue;
    }
    // The first output that exists: an LSTM/GRU/RNN may leave Y unnamed and return only Y_h.
    const ftRaw = dtype(n.outputs.find((o) => o) ?? "");
    if (ftRaw !== "float32" && ftRaw !== "float64") {
      refuse(n, `gradients of ${ftRaw ?? "untyped"} tensors are not supported (float32 and float64 are)`, activeInputs);
      continue;
    }
    const ft: FloatType = ftRaw;
    // Inputs the rule holds constant get no gradient; if one was requested, it is unavailable.
    const held = (k: number): boolean => rule.constants?.includes(k) ?? false;
    const buffer = (k: number): boolean => rule.statistics?.includes(k) ?? false;
    n.inputs.forEach((x, k) => {
      if (held(k) && active(x) && !poisoned.has(x)) {
        unsupported.push({ op: n.opType, node: n.name, reason: `input ${k} (${x}) is held constant by the rule` });
        poisoned.add(x);
      }
    });
    const args: VjpArgs = {
      node: n, e, gy, ft, opset, shape, dtype, ints, floats,
      wants: n.inputs.map((x, k) => active(x) && !held(k) && !buffer(k)),
      k: (v) => e.scalar(v, ft),
    };
    let result: readonly (string | undefined)[];
    try {
      result = rule.vjp(args);
    } catch (err) {
      // A rule that cannot handle this instance (or an emitter limit) stops the gradient here.
      refuse(n, err instanceof Error ? err.message : String(err), activeInputs);
      continue;
    }
    differentiated++;
    // A rule that returns no gradient for any input it could differentiate: a zero derivative.
    const differentiable = n.inputs.map((x, k) => active(x) && !held(k) && !buffer(k));
    if (differentiable.some(Boolean) && !differentiable.some((d, k) => d && result[k] !== undefined)) zeroCuts.push({ op: n.opType, node: n.name });
    n.inputs.forEach((x, k) => {
      const g = result[k];
      if (!active(x) || held(k) || buffer(k) || g === undefined) return;
      const broadcast = rule.unbroadcast === "all" || (rule.unbroadcast?.includes(k) ?? false);
      contribute(x, broadcast ? e.sumTo(g, shape(n.outputs[0]), shape(x)) : g);
    });
  }

  return {
    unsupported,
    zeroCuts,
    differentiated,
    grad: (t) => {
      if (poisoned.has(t)) return null;
      return total(t) ?? 0;
    },
  };
}
