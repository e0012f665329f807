import { attrFloat, attrInt, attrString, defaultOpset, type ConstTensor, type GraphNode, type Model } from "../onnx/model";
import type { LayerReport } from "../report/types";
import { spectralRadius } from "../stats/linalg";
import type { GraphIndex } from "./index";
import type { Layer } from "./layers";
import { modulePathFromNodeName, modulePathFromWeightName } from "./module-path";
import { findNorms, type NormMatch } from "./norms";
import { findResidualBlocks, type ResidualBlock } from "./residual";

/** A Dropout node: the seed's inverted dropout with keep-prob = 1 - rate. */
export interface DropoutInfo {
  readonly node: GraphNode;
  readonly module?: string;
  /** Drop probability; null when it is computed at run time. */
  readonly rate: number | null;
  /** true / false when constant (opset 12+ input), null when it is a graph input or computed. */
  readonly trainingMode: boolean | null;
}

/** Spectral radius of one recurrent weight matrix (one gate of one direction). */
export interface RecurrentMatrix {
  readonly gate: string;
  readonly direction: number;
  readonly spectralRadius: number;
}

export interface RecurrentInfo {
  readonly layer: string;
  readonly op: string;
  readonly node: string;
  readonly tensor: string;
  readonly hiddenSize: number;
  /** A plain (ungated) recurrence h' = f(W h + U x): ONNX RNN, or the same square weight applied step after step. */
  readonly vanilla: boolean;
  /** Unrolled in the graph: the number of steps that reuse the weight. */
  readonly unrolledSteps?: number;
  /** For an ONNX RNN/GRU/LSTM op: the sequence length when the model's input declares it. */
  readonly sequenceLength?: number;
  readonly activation?: string;
  readonly matrices: readonly RecurrentMatrix[];
}

/** The model's structure as the normalization, dropout and recurrence checks see it. */
export interface Architecture {
  readonly norms: readonly NormMatch[];
  readonly blocks: readonly ResidualBlock[];
  readonly dropouts: readonly DropoutInfo[];
  readonly recurrent: readonly RecurrentInfo[];
}

export function analyzeArchitecture(model: Model, index: GraphIndex, layers: readonly Layer[]): Architecture {
  const norms = findNorms(index);
  const blocks = findResidualBlocks(index, norms);
  return { norms, blocks, dropouts: findDropouts(model), recurrent: findRecurrent(model, index, layers) };
}

function findDropouts(model: Model): DropoutInfo[] {
  const opset = defaultOpset(model);
  const scalar = (name: string | undefined): number | undefined => {
    const t = name ? model.constants.get(name) : undefined;
    return t && t.size === 1 ? Number(t.values()[0]) : undefined;
  };
  return model.nodes.filter((n) => n.opType === "Dropout").map((n) => {
    let rate: number | null;
    let trainingMode: boolean | null;
    if (opset >= 12) {
      rate = n.inputs[1] ? scalar(n.inputs[1]) ?? null : 0.5;
      trainingMode = n.inputs[2] ? (scalar(n.inputs[2]) === undefined ? null : scalar(n.inputs[2]) !== 0) : false;
    } else {
      rate = attrFloat(n, "ratio", 0.5);
      // Before opset 7 `is_test` = 0 meant training; from 7 to 11 Dropout is always inference.
      trainingMode = opset < 7 ? (n.attrs.has("is_test") ? Number(n.attrs.get("is_test")!.i) === 0 : true) : false;
    }
    return { node: n, module: modulePathFromNodeName(n.name), rate, trainingMode };
  });
}

const GATES: Record<string, string[]> = { LSTM: ["input", "output", "forget", "cell"], GRU: ["update", "reset", "hidden"], RNN: ["hidden"] };

/** Cost cap of one spectral radius: iterations * n^2 multiply-adds. */
const RADIUS_BUDGET = 2e8;

function radius(values: ArrayLike<number>, n: number): number {
  const iterations = Math.max(60, Math.min(1000, Math.floor(RADIUS_BUDGET / (n * n))));
  const burnIn = Math.floor(iterations / 5);
  return spectralRadius(values, n, { burnIn, window: iterations - burnIn });
}

function findRecurrent(model: Model, index: GraphIndex, layers: readonly Layer[]): RecurrentInfo[] {
  const out: RecurrentInfo[] = [];
  for (const layer of layers) {
    if (layer.kind !== "recurrent") continue;
    const r = model.constants.get(layer.node.inputs[2]);
    if (!r || r.dims.length !== 3) continue;
    const [dirs, rows, h] = r.dims;
    const gates = GATES[layer.op] ?? [];
    if (!h || rows !== gates.length * h) continue;
    let values: Float32Array | Float64Array;
    try {
      values = r.values();
    } catch {
      continue;
    }
    const matrices: RecurrentMatrix[] = [];
    for (let d = 0; d < dirs; d++) {
      gates.forEach((gate, g) => {
        const start = (d * rows + g * h) * h;
        matrices.push({ gate, direction: d, spectralRadius: radius(values.subarray(start, start + h * h), h) });
      });
    }
    const acts = layer.node.attrs.get("activations")?.strings.map((s) => new TextDecoder().decode(s));
    const declared = model.inputs.find((i) => i.name === layer.node.inputs[0])?.shape?.[attrInt(layer.node, "layout", 0) === 1 ? 1 : 0];
    out.push({
      layer: layer.name, op: layer.op, node: layer.node.name || layer.node.outputs[0], tensor: r.name, hiddenSize: h,
      sequenceLength: typeof declared === "number" && declared > 0 ? declared : undefined,
      vanilla: layer.op === "RNN", activation: layer.op === "RNN" ? (acts?.[0] ?? attrString(layer.node, "activation") ?? "Tanh").toLowerCase() : undefined,
      matrices,
    });
  }
  out.push(...findUnrolled(model, index, layers));
  return out;
}

/**
 * Unrolled recurrences (a Python loop over an RNN cell, traced): one square constant weight
 * applied by three or more MatMul/Gemm nodes where each application feeds the next through
 * elementwise ops only (h' = tanh(W h + U x)). Weights shared across layers that pass through
 * other weights on the way (ALBERT-style sharing) are not recurrences in this sense.
 */
function findUnrolled(model: Model, index: GraphIndex, layers: readonly Layer[]): RecurrentInfo[] {
  const uses = new Map<string, GraphNode[]>();
  for (const n of model.nodes) {
    if (n.opType !== "MatMul" && n.opType !== "Gemm") continue;
    let w = n.inputs.slice(0, 2).find((i) => index.isConstant(i));
    if (!w) continue;
    // torch reads a weight shared across loop steps through anonymous Identity copies
    // (onnx::MatMul_81): follow them back. A copy with a parameter name of its own
    // (layers.1.weight) is a different parameter that happened to equal another (torch merges
    // equal initializers, e.g. constant-initialized layers), not a reuse.
    for (let p = index.producer.get(w); p?.opType === "Identity" && index.isConstant(p.inputs[0]) && !modulePathFromWeightName(w); p = index.producer.get(w)) w = p.inputs[0];
    uses.set(w, [...(uses.get(w) ?? []), n]);
  }
  const out: RecurrentInfo[] = [];
  for (const [name, nodes] of uses) {
    if (nodes.length < 3) continue;
    const w = model.constants.get(name)!;
    if (w.dims.length !== 2 || w.dims[0] !== w.dims[1]) continue;
    let steps = 1;
    let best = 1;
    for (let k = 1; k < nodes.length; k++) {
      steps = feedsThroughElementwise(index, nodes[k - 1], nodes[k]) ? steps + 1 : 1;
      best = Math.max(best, steps);
    }
    if (best < 3) continue;
    const layer = layers.find((l) => l.node === nodes[0]);
    const act = activationAfter(index, nodes[0]);
    out.push({
      layer: layer?.name ?? name, op: nodes[0].opType, node: nodes[0].name || nodes[0].outputs[0], tensor: name, hiddenSize: w.dims[0],
      vanilla: true, unrolledSteps: best, activation: act,
      matrices: [{ gate: "hidden", direction: 0, spectralRadius: radius(constValues(w), w.dims[0]) }],
    });
  }
  return out;
}

function constValues(t: ConstTensor): Float32Array | Float64Array {
  return t.fill !== undefined ? new Float64Array(t.size).fill(t.fill) : t.values();
}

const ELEMENTWISE = new Set(["Add", "Sub", "Mul", "Tanh", "Relu", "Sigmoid", "LeakyRelu", "Elu", "Cast", "Identity", "Reshape", "Squeeze", "Unsqueeze", "Clip", "Gelu"]);

function feedsThroughElementwise(index: GraphIndex, from: GraphNode, to: GraphNode): boolean {
  const targets = new Set(to.inputs);
  const stack = [...from.outputs];
  const seen = new Set<string>();
  while (stack.length && seen.size < 64) {
    const t = stack.pop()!;
    if (targets.has(t)) return true;
    if (seen.has(t)) continue;
    seen.add(t);
    for (const c of index.consumersOf(t)) if (ELEMENTWISE.has(c.opType)) stack.push(...c.outputs);
  }
  return false;
}

function activationAfter(index: GraphIndex, node: GraphNode): string | undefined {
  const stack = [...node.outputs];
  for (let step = 0; step < 6 && stack.length; step++) {
    const t = stack.shift()!;
    for (const c of index.consumersOf(t)) {
      if (c.opType === "Tanh" || c.opType === "Relu" || c.opType === "Sigmoid") return c.opType.toLowerCase();
      if (c.opType === "Add" || c.opType === "Cast") stack.push(...c.outputs);
    }
  }
  return undefined;
}

/** Sum of squares of a layer's weights, from its summary (n * (std^2 + mean^2)), finite values only. */
export function squaredFrobenius(r: LayerReport): number | undefined {
  const w = r.weight;
  if (!w) return undefined;
  const n = w.shape.reduce((a, b) => a * b, 1) - w.nonFinite;
  return n > 0 && Number.isFinite(w.std) ? n * (w.std * w.std + w.mean * w.mean) : undefined;
}

/** Counts behind the one-line architecture summary. */
export interface ArchitectureSummary {
  /** Attention blocks, or feed-forward blocks when the model has no attention. */
  readonly transformerLayers: number;
  readonly attentionBlocks: number;
  readonly feedForwardBlocks: number;
  /** Transformer layers whose blocks are Post-Norm / Pre-Norm. */
  readonly postNormLayers: number;
  readonly preNormLayers: number;
  readonly placement: "pre-norm" | "post-norm" | "mixed" | "none" | null;
  readonly dModel: number | null;
  /** "LayerNormalization", "decomposed RMSNorm", ... of the blocks' normalizations. */
  readonly normLabels: readonly string[];
  readonly text: string;
}

/** Transformer blocks only: residual blocks whose branch is attention or a feed-forward net. */
export function transformerBlocks(arch: Architecture): ResidualBlock[] {
  return arch.blocks.filter((b) => b.kind === "attention" || b.kind === "feed-forward");
}

export function summarizeArchitecture(arch: Architecture): ArchitectureSummary {
  const blocks = transformerBlocks(arch);
  const attention = blocks.filter((b) => b.kind === "attention");
  const counted = attention.length ? attention : blocks;
  const post = counted.filter((b) => b.placement === "post-norm").length;
  const pre = counted.filter((b) => b.placement === "pre-norm").length;
  const placement = !counted.length ? null : post && pre ? "mixed" : post ? "post-norm" : pre ? "pre-norm" : "none";
  const widths = new Map<number, number>();
  for (const b of blocks) if (b.width) widths.set(b.width, (widths.get(b.width) ?? 0) + 1);
  // The widest stream that most blocks share (Silero's encoder goes 8 -> 16).
  const dModel = [...widths].sort((a, b) => b[1] - a[1] || b[0] - a[0])[0]?.[0] ?? null;
  const normLabels = [...new Set(blocks.map((b) => (b.preNorm ?? b.postNorm)?.label).filter((l): l is string => !!l))];
  const name = placement === "post-norm" ? "Post-Norm" : placement === "pre-norm" ? "Pre-Norm" : placement === "mixed" ? `mixed (${pre} Pre-Norm, ${post} Post-Norm)` : "un-normalized";
  const text = counted.length
    ? `${counted.length} ${name} transformer layer${counted.length === 1 ? "" : "s"} (${attention.length} attention + ${blocks.length - attention.length} feed-forward residual blocks${normLabels.length ? `, ${normLabels.join(" / ")}` : ""})${dModel ? `, d_model ${dModel}` : ""}`
    : "";
  return {
    transformerLayers: counted.length, attentionBlocks: attention.length, feedForwardBlocks: blocks.length - attention.length,
    postNormLayers: post, preNormLayers: pre, placement, dModel, normLabels, text,
  };
}
