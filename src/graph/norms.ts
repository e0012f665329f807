import { attrFloat, attrInt, type ConstTensor, type GraphNode } from "../onnx/model";
import type { GraphIndex } from "./index";
import { modulePathFromNodeName, modulePathFromWeightName } from "./module-path";

/** What a normalization normalizes over (the seed's BatchNorm / LayerNorm / RMSNorm). */
export type NormKind = "batch" | "layer" | "rms" | "instance" | "group";

/**
 * One normalization in the graph: a single op (LayerNormalization, BatchNormalization, ...) or a
 * decomposed chain as exporters write it when the opset has no LayerNormalization:
 *   LayerNorm: ReduceMean(x) -> Sub(x, mean) -> Pow(2) -> ReduceMean -> Add(eps) -> Sqrt -> Div(x - mean, .)
 *   RMSNorm:   Pow(x, 2) -> ReduceMean -> Add(eps) -> Sqrt -> Div(x, .)   (no mean subtraction)
 * with Mul by x itself instead of Pow, Reciprocal + Mul instead of Div, Casts anywhere, and an
 * optional affine Mul(gamma) / Add(beta) after it.
 */
export interface NormMatch {
  readonly kind: NormKind;
  readonly form: "op" | "decomposed";
  /** The op type, or "decomposed LayerNorm" / "decomposed RMSNorm". */
  readonly label: string;
  /** The tensor being normalized. */
  readonly input: string;
  /** The normalized tensor, after gamma and beta when present. */
  readonly output: string;
  /** Every node of the pattern (one for an op). */
  readonly nodes: readonly GraphNode[];
  readonly epsilon?: number;
  /** Constant holding epsilon in a decomposed form (its dtype matters in float16). */
  readonly epsilonTensor?: ConstTensor;
  readonly scale?: ConstTensor;
  readonly bias?: ConstTensor;
  /** The module path as the user knows it (`layers.0.norm1`), when the exporter left one. */
  readonly module?: string;
  /** Node name for findings. */
  readonly node: string;
}

const opKinds: Record<string, NormKind> = {
  BatchNormalization: "batch", LayerNormalization: "layer", SimplifiedLayerNormalization: "rms", RMSNormalization: "rms",
  SkipLayerNormalization: "layer", SkipSimplifiedLayerNormalization: "rms", InstanceNormalization: "instance", GroupNormalization: "group",
};

export const NORM_OPS: ReadonlySet<string> = new Set(Object.keys(opKinds));

/** Finds every normalization of the main graph, ops and decomposed chains alike, in topological order. */
export function findNorms(index: GraphIndex, nodes: readonly GraphNode[] = index.model.nodes): NormMatch[] {
  const constants = index.model.constants;
  const floatConst = (name: string | undefined): ConstTensor | undefined => {
    const t = name ? constants.get(name) : undefined;
    return t && (t.dtype === "float32" || t.dtype === "float16" || t.dtype === "bfloat16" || t.dtype === "float64") ? t : undefined;
  };
  const matches: NormMatch[] = [];
  const used = new Set<GraphNode>();
  for (const node of nodes) {
    if (used.has(node)) continue;
    let m: NormMatch | undefined;
    const kind = opKinds[node.opType];
    if (kind) {
      const skip = node.opType.startsWith("Skip");
      const scale = floatConst(node.inputs[skip ? 2 : 1]);
      const bias = node.opType === "BatchNormalization" || node.opType === "InstanceNormalization" || node.opType === "LayerNormalization" || node.opType === "GroupNormalization"
        ? floatConst(node.inputs[2]) : node.opType === "SkipLayerNormalization" ? floatConst(node.inputs[3]) : undefined;
      const defaultEps = node.opType === "BatchNormalization" || node.opType === "InstanceNormalization" || node.opType === "LayerNormalization" || node.opType === "GroupNormalization" ? 1e-5 : 1e-6;
      m = {
        kind, form: "op", label: node.opType, input: node.inputs[0], output: node.outputs[0], nodes: [node],
        epsilon: attrFloat(node, "epsilon", defaultEps), scale, bias,
        module: modulePathFromNodeName(node.name) ?? moduleOfWeight(scale), node: node.name || node.outputs[0],
      };
    } else if (node.opType === "ReduceMean") {
      m = matchLayerNorm(node, index, floatConst);
    } else if (node.opType === "Pow" || node.opType === "Mul") {
      m = matchRmsNorm(node, index, floatConst);
    }
    if (!m) continue;
    for (const n of m.nodes) used.add(n);
    matches.push(m);
  }
  return matches;
}

function moduleOfWeight(t: ConstTensor | undefined): string | undefined {
  return t ? modulePathFromWeightName(t.name) : undefined;
}

type FloatConst = (name: string | undefined) => ConstTensor | undefined;

/** Consumers of a tensor, looking through Cast nodes (which are collected into `via`). */
function consumersThroughCast(index: GraphIndex, tensor: string, via: GraphNode[]): { node: GraphNode; input: string }[] {
  const out: { node: GraphNode; input: string }[] = [];
  for (const c of index.consumersOf(tensor)) {
    if (c.opType === "Cast") {
      for (const cc of index.consumersOf(c.outputs[0])) if (cc.opType !== "Cast") out.push({ node: cc, input: c.outputs[0] });
      via.push(c);
    } else out.push({ node: c, input: tensor });
  }
  return out;
}

const constValue = (floatConst: FloatConst, name: string): number | undefined => {
  const t = floatConst(name);
  return t && t.size === 1 ? t.values()[0] : undefined;
};

/** Square of `t`: Pow(t, 2) or Mul(t, t). */
function isSquareOf(n: GraphNode, t: string, floatConst: FloatConst, index: GraphIndex): boolean {
  if (n.opType === "Pow") {
    if (n.inputs[0] !== t) return false;
    const e = constValue(floatConst, n.inputs[1]) ?? intScalar(index, n.inputs[1]);
    return e === 2;
  }
  return n.opType === "Mul" && n.inputs[0] === t && n.inputs[1] === t;
}

function intScalar(index: GraphIndex, name: string): number | undefined {
  const t = index.model.constants.get(name);
  return t && t.size === 1 ? Number(t.values()[0]) : undefined;
}

/**
 * From the variance (or mean square) `v`: [Add(eps)] -> Sqrt -> [Add(eps)] -> Div(numerator, .) or
 * Reciprocal -> Mul(numerator, .). Returns the normalized tensor and the nodes.
 */
function matchDenominator(v: string, numerators: ReadonlySet<string>, index: GraphIndex, floatConst: FloatConst): { out: string; nodes: GraphNode[]; eps?: number; epsTensor?: ConstTensor } | undefined {
  const nodes: GraphNode[] = [];
  let t = v;
  let eps: number | undefined;
  let epsTensor: ConstTensor | undefined;
  const takeEps = (): boolean => {
    const add = index.soleConsumer(t);
    if (add?.opType !== "Add") return false;
    const other = add.inputs[0] === t ? add.inputs[1] : add.inputs[0];
    const e = constValue(floatConst, other);
    if (e === undefined) return false;
    eps = e;
    epsTensor = floatConst(other);
    nodes.push(add);
    t = add.outputs[0];
    return true;
  };
  takeEps();
  const sqrt = index.soleConsumer(t);
  if (sqrt?.opType !== "Sqrt") return undefined;
  nodes.push(sqrt);
  t = sqrt.outputs[0];
  if (eps === undefined) takeEps();
  const via: GraphNode[] = [];
  for (const { node: c, input } of consumersThroughCast(index, t, via)) {
    if (c.opType === "Div" && c.inputs[1] === input && numerators.has(c.inputs[0])) {
      return { out: c.outputs[0], nodes: [...nodes, ...via, c], eps, epsTensor };
    }
    if (c.opType === "Reciprocal" || (c.opType === "Div" && c.inputs[1] === input && constValue(floatConst, c.inputs[0]) === 1)) {
      const r = c.outputs[0];
      const viaR: GraphNode[] = [];
      for (const { node: m, input: rIn } of consumersThroughCast(index, r, viaR)) {
        const other = m.inputs[0] === rIn ? m.inputs[1] : m.inputs[0];
        if (m.opType === "Mul" && numerators.has(other)) return { out: m.outputs[0], nodes: [...nodes, ...via, c, ...viaR, m], eps, epsTensor };
      }
    }
  }
  return undefined;
}

/** Optional Mul(gamma) then Add(beta) by constants (either operand order), looking through Casts. */
function matchAffine(t: string, index: GraphIndex, floatConst: FloatConst): { out: string; nodes: GraphNode[]; scale?: ConstTensor; bias?: ConstTensor } {
  const nodes: GraphNode[] = [];
  let out = t;
  const step = (op: "Mul" | "Add"): ConstTensor | undefined => {
    let c = index.soleConsumer(out);
    const casts: GraphNode[] = [];
    while (c?.opType === "Cast") {
      casts.push(c);
      c = index.soleConsumer(c.outputs[0]);
    }
    if (c?.opType !== op) return undefined;
    const input = casts.length ? casts[casts.length - 1].outputs[0] : out;
    const other = c.inputs[0] === input ? c.inputs[1] : c.inputs[0];
    const k = floatConst(other);
    if (!k || k.size <= 1 && op === "Add") return undefined; // Add of a scalar is not a LayerNorm beta
    nodes.push(...casts, c);
    out = c.outputs[0];
    return k;
  };
  const scale = step("Mul");
  const bias = step("Add");
  return { out, nodes, scale, bias };
}

function matchLayerNorm(mean: GraphNode, index: GraphIndex, floatConst: FloatConst): NormMatch | undefined {
  const x = mean.inputs[0];
  const centered = index.consumersOf(x).find((c) => c.opType === "Sub" && c.inputs[0] === x && c.inputs[1] === mean.outputs[0]);
  if (!centered) return undefined;
  const d = centered.outputs[0];
  const via: GraphNode[] = [];
  const numerators = new Set([d]);
  for (const c of index.consumersOf(d)) if (c.opType === "Cast") numerators.add(c.outputs[0]);
  const square = consumersThroughCast(index, d, via).find(({ node, input }) => isSquareOf(node, input, floatConst, index));
  if (!square) return undefined;
  const variance = index.soleConsumer(square.node.outputs[0]);
  if (variance?.opType !== "ReduceMean") return undefined;
  const den = matchDenominator(variance.outputs[0], numerators, index, floatConst);
  if (!den) return undefined;
  const affine = matchAffine(den.out, index, floatConst);
  const nodes = [mean, centered, ...via, square.node, variance, ...den.nodes, ...affine.nodes];
  return {
    kind: "layer", form: "decomposed", label: "decomposed LayerNorm", input: x, output: affine.out, nodes,
    epsilon: den.eps, epsilonTensor: den.epsTensor, scale: affine.scale, bias: affine.bias,
    module: moduleOfWeight(affine.scale) ?? moduleOfNodes(nodes), node: mean.name || mean.outputs[0],
  };
}

function matchRmsNorm(square: GraphNode, index: GraphIndex, floatConst: FloatConst): NormMatch | undefined {
  const x = square.inputs[0];
  if (!isSquareOf(square, x, floatConst, index)) return undefined;
  // x - mean(x) squared is a LayerNorm's variance, matched from its ReduceMean.
  const producer = index.producer.get(x);
  if (producer?.opType === "Sub" && index.producer.get(producer.inputs[1])?.opType === "ReduceMean") return undefined;
  const meanSquare = index.soleConsumer(square.outputs[0]);
  if (meanSquare?.opType !== "ReduceMean") return undefined;
  const numerators = new Set([x]);
  // The numerator may be the tensor before a Cast to float32 (mixed-precision exports).
  if (producer?.opType === "Cast") numerators.add(producer.inputs[0]);
  for (const c of index.consumersOf(x)) if (c.opType === "Cast") numerators.add(c.outputs[0]);
  const den = matchDenominator(meanSquare.outputs[0], numerators, index, floatConst);
  if (!den) return undefined;
  const affine = matchAffine(den.out, index, floatConst);
  const nodes = [square, meanSquare, ...den.nodes, ...affine.nodes];
  return {
    kind: "rms", form: "decomposed", label: "decomposed RMSNorm", input: x, output: affine.out, nodes,
    epsilon: den.eps, epsilonTensor: den.epsTensor, scale: affine.scale,
    module: moduleOfWeight(affine.scale) ?? moduleOfNodes(nodes), node: square.name || square.outputs[0],
  };
}

function moduleOfNodes(nodes: readonly GraphNode[]): string | undefined {
  for (const n of nodes) {
    const m = modulePathFromNodeName(n.name);
    if (m) return m;
  }
  return undefined;
}

/** The normalization's name as the user knows it: module path, else its label and node. */
export function normTitle(m: NormMatch): string {
  return m.module ? `${m.module} (${m.label})` : `${m.label} at ${m.node}`;
}

/** BatchNormalization's training_mode, from the attribute (opset 14+) or extra outputs (older opsets). */
export function batchNormTrainingMode(n: GraphNode): boolean {
  if (attrInt(n, "training_mode", 0) === 1) return true;
  return n.outputs.slice(1).some((o) => o !== "");
}
