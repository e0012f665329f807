import type { GraphNode } from "../onnx/model";
import type { GraphIndex } from "./index";
import type { NormMatch } from "./norms";
import { modulePathFromNodeName, modulePathFromWeightName } from "./module-path";

/** Where the normalization of a residual block sits (the seed's Pre-Norm vs Post-Norm). */
export type NormPlacement = "pre-norm" | "post-norm" | "none";

/** What the branch of a residual block computes. */
export type BranchKind = "attention" | "feed-forward" | "conv" | "other";

/** `output = skip + branch(skip)`: an Add joining a branch to the tensor it was computed from. */
export interface ResidualBlock {
  /** The join: Add, Sum or a fused SkipLayerNormalization. */
  readonly join: GraphNode;
  /** The residual stream entering the block. */
  readonly skip: string;
  /** The branch's output, added to `skip`. */
  readonly branchOutput: string;
  /** Nodes on data paths from `skip` to `branchOutput` (shape computations excluded). */
  readonly branch: readonly GraphNode[];
  readonly kind: BranchKind;
  readonly placement: NormPlacement;
  /** Pre-Norm: the normalization the branch starts with. */
  readonly preNorm?: NormMatch;
  /** Post-Norm: the normalization applied to the sum. */
  readonly postNorm?: NormMatch;
  /** Width of the residual stream (the normalization's gamma, else the branch's last projection). */
  readonly width?: number;
  /** Common module path of the branch's weights (`layers.0.self_attn`), when the exporter left one. */
  readonly module?: string;
}

/** Ops that change neither values nor their meaning for placement purposes. */
const TRANSPARENT = new Set(["Transpose", "Reshape", "Cast", "Identity", "Squeeze", "Unsqueeze", "Dropout", "Flatten"]);
/** Inputs of these ops are shapes, not data: dependencies through them are not data paths. */
const SHAPE_SOURCES = new Set(["Shape", "Size"]);
const WEIGHT_OPS = new Set(["MatMul", "Gemm", "Conv", "ConvTranspose"]);
const ATTENTION_OPS = new Set(["Attention", "MultiHeadAttention", "GroupQueryAttention", "PackedAttention"]);
/** Stop searching a branch after this many nodes: real residual branches are far smaller. */
const MAX_BRANCH_NODES = 4000;

/**
 * Finds residual blocks: for every Add of two computed tensors, the input that the other one was
 * computed from is the skip connection. Placement: Pre-Norm when the branch starts with a
 * normalization of the skip (x + f(LN(x))); Post-Norm when the sum goes only into a normalization
 * (LN(x + f(x))), so the un-normalized sum never continues.
 */
export function findResidualBlocks(index: GraphIndex, norms: readonly NormMatch[]): ResidualBlock[] {
  const model = index.model;
  const order = new Map(model.nodes.map((n, i) => [n, i]));
  const normByInput = new Map<string, NormMatch[]>();
  const normOfNode = new Map<GraphNode, NormMatch>();
  for (const m of norms) {
    normByInput.set(m.input, [...(normByInput.get(m.input) ?? []), m]);
    for (const n of m.nodes) normOfNode.set(n, m);
  }
  const computed = (t: string): boolean => !!t && !index.isConstant(t) && (index.producer.has(t) || model.inputs.some((i) => i.name === t));
  const blocks: ResidualBlock[] = [];
  for (const join of model.nodes) {
    let pair: [string, string] | undefined;
    if (join.opType === "Add" || (join.opType === "Sum" && join.inputs.length === 2)) pair = [join.inputs[0], join.inputs[1]];
    else if (join.opType === "SkipLayerNormalization" || join.opType === "SkipSimplifiedLayerNormalization") pair = [join.inputs[0], join.inputs[1]];
    if (!pair || !pair.every(computed) || pair[0] === pair[1]) continue;
    // Part of a normalization pattern (the eps Add, beta Add): not a join.
    if (normOfNode.has(join) && join.opType === "Add") continue;
    let found: { skip: string; out: string; branch: GraphNode[] } | undefined;
    for (const [a, b] of [pair, [pair[1], pair[0]] as [string, string]]) {
      const branch = branchBetween(index, a, b, order);
      if (branch) {
        found = { skip: a, out: b, branch };
        break;
      }
    }
    if (!found || found.branch.length === 0) continue;
    const kind = branchKind(found.branch, index);
    const preNorm = normAtStart(found.skip, found.branch, index, normByInput);
    const postNorm = join.opType.startsWith("Skip") ? normOfNode.get(join) : normAfter(join.outputs[0], index, normByInput);
    const placement: NormPlacement = preNorm ? "pre-norm" : postNorm ? "post-norm" : "none";
    const width = (preNorm ?? postNorm)?.scale?.size ?? lastProjectionWidth(found.branch, index);
    blocks.push({
      join, skip: found.skip, branchOutput: found.out, branch: found.branch, kind, placement, preNorm, postNorm,
      width, module: commonModule(found.branch, index),
    });
  }
  return blocks;
}

/**
 * Nodes on data paths from `from` to `to`, or undefined when `to` does not depend on `from`
 * (through data, not shapes). Walks back from `to`, bounded by MAX_BRANCH_NODES.
 */
function branchBetween(index: GraphIndex, from: string, to: string, order: ReadonlyMap<GraphNode, number>): GraphNode[] | undefined {
  const seen = new Set<GraphNode>();
  const stack = [to];
  const visitedTensors = new Set<string>();
  let reached = false;
  while (stack.length) {
    const t = stack.pop()!;
    if (t === from) {
      reached = true;
      continue;
    }
    if (visitedTensors.has(t)) continue;
    visitedTensors.add(t);
    const p = index.producer.get(t);
    if (!p || seen.has(p)) continue;
    seen.add(p);
    if (seen.size > MAX_BRANCH_NODES) return undefined;
    if (SHAPE_SOURCES.has(p.opType)) continue;
    for (const i of p.inputs) if (i && !index.isConstant(i)) stack.push(i);
  }
  if (!reached) return undefined;
  // Keep the nodes that depend on `from`, in topological order.
  const sorted = [...seen].sort((a, b) => (order.get(a) ?? 0) - (order.get(b) ?? 0));
  const live = new Set([from]);
  const branch: GraphNode[] = [];
  for (const n of sorted) {
    if (SHAPE_SOURCES.has(n.opType)) continue;
    if (n.inputs.some((i) => live.has(i))) {
      branch.push(n);
      for (const o of n.outputs) live.add(o);
    }
  }
  return live.has(to) ? branch : undefined;
}

function branchKind(branch: readonly GraphNode[], index: GraphIndex): BranchKind {
  const computedMatMul = branch.some((n) => n.opType === "MatMul" && n.inputs.every((i) => !index.isConstant(i)));
  if (branch.some((n) => ATTENTION_OPS.has(n.opType)) || (computedMatMul && branch.some((n) => n.opType === "Softmax"))) return "attention";
  const weightLayers = branch.filter((n) => WEIGHT_OPS.has(n.opType) && n.inputs.slice(0, 2).some((i) => index.isConstant(i)));
  if (weightLayers.some((n) => n.opType === "Conv" || n.opType === "ConvTranspose") && !weightLayers.every((n) => isPointwiseConv(n, index))) return "conv";
  if (weightLayers.length >= 2) return "feed-forward";
  return "other";
}

function isPointwiseConv(n: GraphNode, index: GraphIndex): boolean {
  if (n.opType !== "Conv") return n.opType !== "ConvTranspose";
  const w = index.model.constants.get(n.inputs[1]);
  return !!w && w.dims.slice(2).every((d) => d === 1);
}

/** A normalization of `skip` (through reshapes and casts) that the branch starts with. */
function normAtStart(skip: string, branch: readonly GraphNode[], index: GraphIndex, normByInput: ReadonlyMap<string, NormMatch[]>): NormMatch | undefined {
  const inBranch = new Set(branch);
  const stack = [skip];
  const seen = new Set<string>();
  while (stack.length) {
    const t = stack.pop()!;
    if (seen.has(t)) continue;
    seen.add(t);
    const m = normByInput.get(t)?.find((n) => n.nodes.some((x) => inBranch.has(x)));
    if (m) return m;
    for (const c of index.consumersOf(t)) if (inBranch.has(c) && TRANSPARENT.has(c.opType)) stack.push(c.outputs[0]);
  }
  return undefined;
}

/** A normalization that is the only (data) consumer of the sum, through reshapes and casts. */
function normAfter(sum: string, index: GraphIndex, normByInput: ReadonlyMap<string, NormMatch[]>): NormMatch | undefined {
  let t = sum;
  for (let step = 0; step < 4; step++) {
    if (index.graphOutputs.has(t)) return undefined;
    const data = index.consumersOf(t).filter((c) => !SHAPE_SOURCES.has(c.opType));
    const norm = normByInput.get(t)?.[0];
    if (norm && data.every((c) => norm.nodes.includes(c))) return norm;
    if (data.length !== 1 || !TRANSPARENT.has(data[0].opType)) return undefined;
    t = data[0].outputs[0];
  }
  return undefined;
}

function lastProjectionWidth(branch: readonly GraphNode[], index: GraphIndex): number | undefined {
  for (let i = branch.length - 1; i >= 0; i--) {
    const n = branch[i];
    if (!WEIGHT_OPS.has(n.opType)) continue;
    const w = index.model.constants.get(n.inputs[1]) ?? index.model.constants.get(n.inputs[0]);
    if (!w || w.dims.length < 2) continue;
    if (n.opType === "Gemm") return (n.attrs.get("transB")?.i ?? 0n) === 1n ? w.dims[0] : w.dims[1];
    if (n.opType === "MatMul") return index.isConstant(n.inputs[1]) ? w.dims[w.dims.length - 1] : w.dims[w.dims.length - 2];
    return w.dims[0];
  }
  return undefined;
}

/** The longest module path shared by the branch's weighted nodes (`layers.0.self_attn`). */
function commonModule(branch: readonly GraphNode[], index: GraphIndex): string | undefined {
  const paths: string[] = [];
  for (const n of branch) {
    // Parameters keep their names even when node names carry no scope (older exporters).
    const named = n.inputs.filter((i) => index.isConstant(i)).map((i) => modulePathFromWeightName(i)).filter((p): p is string => !!p);
    if (named.length) paths.push(...named);
    else if (WEIGHT_OPS.has(n.opType)) {
      const p = modulePathFromNodeName(n.name);
      if (p) paths.push(p);
    }
  }
  if (!paths.length) return undefined;
  let prefix = paths[0].split(".");
  for (const p of paths.slice(1)) {
    const parts = p.split(".");
    let k = 0;
    while (k < prefix.length && k < parts.length && prefix[k] === parts[k]) k++;
    prefix = prefix.slice(0, k);
  }
  return prefix.length ? prefix.join(".") : undefined;
}

/**
 * The layer is the last one of a residual block's branch: it lies in the branch of one of
 * `blocks` (found by {@link findResidualBlocks}: the skip is the tensor the branch was computed
 * from), the skip is not also added inside the branch (a time embedding added after every layer
 * looks like the skip of a chain of such Adds, and carries none of the input's signal), and the
 * layer's output reaches that join through ops that keep zero at zero.
 */
export function endsBlockBranch(layer: { readonly node: GraphNode; readonly output: string }, blocks: readonly ResidualBlock[], index: GraphIndex): boolean {
  const reached = new Set([...index.consumersAlong(layer.output, (n) => RESIDUAL_PASS.has(n.opType))].map(([n]) => n));
  return branchesHolding(layer, blocks).some((b) => reached.has(b.join));
}

/** The residual blocks whose branch holds the layer, as {@link endsBlockBranch} counts them (the skip not also added inside). */
export function branchesHolding(layer: { readonly node: GraphNode }, blocks: readonly ResidualBlock[]): ResidualBlock[] {
  const addsSkip = (b: ResidualBlock, n: GraphNode): boolean => n !== b.join && (n.opType === "Add" || n.opType === "Sum") && n.inputs.includes(b.skip);
  return blocks.filter((b) => b.branch.includes(layer.node) && !b.branch.some((n) => addsSkip(b, n)));
}

/** Ops between a branch's last layer and the residual Add that keep "zero in, zero out". */
const RESIDUAL_PASS = new Set(["BatchNormalization", "Mul", "Dropout", "Identity", "Reshape", "Transpose"]);
