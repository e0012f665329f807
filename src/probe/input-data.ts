import type { GraphIndex } from "../graph/index";
import type { NormMatch } from "../graph/norms";
import type { GraphNode } from "../onnx/model";
import type { InputStatsReport } from "../report/types";
import { conditionNumber, correlation, CovarianceAccumulator, explainedVarianceRatios, symmetricEigenvalues } from "../stats/linalg";
import type { ProbePlan } from "./inputs";
import { numericValues } from "./npy";

/** Covariance and PCA are computed for at most this many features (O(d^2) memory, O(d^3) eigenvalues). */
export const MAX_COVARIANCE_FEATURES = 256;
/** Inputs wider than this per sample (raw audio, flattened images) are summarised as one feature. */
const MAX_FEATURES = 4096;

type Layout = InputStatsReport["layout"] | "all";

/** Ops that read axis 1 as channels, and ops that read the last axis as features. */
const CHANNEL_OPS = new Set(["Conv", "ConvTranspose", "BatchNormalization", "InstanceNormalization", "MaxPool", "AveragePool", "LpPool", "GlobalAveragePool", "GlobalMaxPool"]);
const FEATURE_OPS = new Set(["MatMul", "Gemm", "LSTM", "GRU", "RNN", "LayerNormalization"]);
/** Ops an input may pass through on its way to the layer that decides its layout. */
const LAYOUT_KEEPING = new Set(["Cast", "Identity", "Add", "Sub", "Mul", "Div", "Relu", "Dropout", "Clip", "Flatten"]);

/** Ops that reshape a [N, T] waveform on its way into a convolution (framing, padding, an added channel axis). */
const SIGNAL_SHAPING = new Set(["Reshape", "Unsqueeze", "Squeeze", "Pad", "Slice", "Concat"]);

/**
 * The layout the model's first layer reads the input in, when one decides it: "signal" when a
 * convolution reads it after a reshape (a waveform given as [N, T]: Silero frames its audio that
 * way), "channels"/"last" for a convolution/matrix product reading it as it is.
 */
function layoutFromConsumers(index: GraphIndex, input: string): "channels" | "last" | "signal" | undefined {
  // First as the input is; then through reshapes, where a convolution means a framed signal.
  for (const [follow, channels] of [[LAYOUT_KEEPING, "channels"], [new Set([...LAYOUT_KEEPING, ...SIGNAL_SHAPING]), "signal"]] as const) {
    for (const [node] of index.consumersAlong(input, (n) => follow.has(n.opType))) {
      if (CHANNEL_OPS.has(node.opType)) return channels;
      if (FEATURE_OPS.has(node.opType)) return "last";
    }
  }
  return undefined;
}

/**
 * Which axis holds the features: [N, D] features, unless D is wide and a convolution reads it after
 * a reshape (a waveform framed for a convolution or an STFT: its time steps are one signal, not D
 * features to normalise one by one); for rank 3 and more, what the first layer reads
 * (a Conv reads channels on axis 1, a MatMul or LSTM the last axis), else [N, C, ...] channels when
 * C <= 16, else the last axis.
 */
function layoutOf(dims: readonly number[], reads?: "channels" | "last" | "signal"): { layout: Layout; axis: number; features: number } {
  const rank = dims.length;
  if (rank <= 1) return { layout: "all", axis: -1, features: 1 };
  if (rank === 2) {
    const signal = dims[1] > MAX_FEATURES || (dims[1] > MAX_COVARIANCE_FEATURES && reads === "signal");
    return signal ? { layout: "all", axis: -1, features: 1 } : { layout: "features", axis: 1, features: dims[1] };
  }
  if (reads === "channels" && dims[1] <= MAX_FEATURES) return { layout: "channels", axis: 1, features: dims[1] };
  if (reads !== "last" && dims[1] <= 16 && dims[1] < dims[rank - 1]) return { layout: "channels", axis: 1, features: dims[1] };
  if (dims[rank - 1] <= MAX_FEATURES) return { layout: "last", axis: rank - 1, features: dims[rank - 1] };
  return { layout: "all", axis: -1, features: 1 };
}

/**
 * Statistics of the user's probe data (the seed's input normalization and PCA): per-feature or
 * per-channel mean and std, and for up to MAX_COVARIANCE_FEATURES features the covariance, its
 * condition number and the PCA explained-variance ratios. Also recognises normalization the
 * model applies to the input itself. Only inputs that come from a file are described.
 */
export function describeInputData(plan: ProbePlan, index: GraphIndex, norms: readonly NormMatch[]): InputStatsReport[] {
  const out: InputStatsReport[] = [];
  for (const input of plan.inputs) {
    if (input.source !== "file" || !input.dtype.startsWith("float")) continue;
    const { layout, axis, features } = layoutOf(input.shape, layoutFromConsumers(index, input.name));
    const d = features;
    const s1 = new Float64Array(d);
    const s2 = new Float64Array(d);
    const min = new Float64Array(d).fill(Infinity);
    const max = new Float64Array(d).fill(-Infinity);
    const shift = new Float64Array(d).fill(NaN);
    const counts = new Float64Array(d);
    const cov = d >= 2 && d <= MAX_COVARIANCE_FEATURES && layout !== "all" ? new CovarianceAccumulator(d) : undefined;
    let samples = 0;
    for (let b = 0; b < plan.batches; b++) {
      const t = plan.feeds(b)[input.name];
      // An array fed whole to every batch (a fixed table, a scalar) is one example, described once.
      if (!t || (input.batchAxis === -1 && b > 0)) continue;
      // float16 arrives as its bits (Uint16Array): decode, or the statistics describe bit patterns.
      const data = t.dtype === "float16" ? numericValues(t) : t.data;
      const dims = t.dims;
      samples += input.batchAxis === -1 ? 1 : dims[input.batchAxis ?? 0] ?? 1;
      // Element (outer, f, inner): outer over the axes before the feature axis, inner after it.
      const fAxis = layout === "all" ? dims.length : axis;
      const inner = layout === "all" ? 1 : dims.slice(fAxis + 1).reduce((a, x) => a * x, 1);
      const outer = layout === "all" ? data.length : dims.slice(0, fAxis).reduce((a, x) => a * x, 1);
      const f = layout === "all" ? 1 : d;
      for (let o = 0; o < outer; o++) {
        for (let i = 0; i < inner; i++) {
          const base = o * f * inner + i;
          for (let k = 0; k < f; k++) {
            const v = Number(data[base + k * inner]);
            if (v - v !== 0) continue;
            if (shift[k] !== shift[k]) shift[k] = v;
            const x = v - shift[k];
            s1[k] += x;
            s2[k] += x * x;
            counts[k]++;
            if (v < min[k]) min[k] = v;
            if (v > max[k]) max[k] = v;
          }
          cov?.add(data as ArrayLike<number>, base, inner);
        }
      }
    }
    const mean = Array.from({ length: d }, (_, k) => (counts[k] ? shift[k] + s1[k] / counts[k] : NaN));
    const std = Array.from({ length: d }, (_, k) => (counts[k] ? Math.sqrt(Math.max(0, s2[k] / counts[k] - (s1[k] / counts[k]) ** 2)) : NaN));
    let covariance: InputStatsReport["covariance"] = null;
    if (cov && cov.count > d) {
      const c = cov.covariance();
      const eig = symmetricEigenvalues(c, d);
      const r = correlation(c, d);
      const reig = symmetricEigenvalues(r, d);
      let maxAbs = 0;
      let pair: [number, number] | null = null;
      for (let i = 0; i < d; i++) for (let j = i + 1; j < d; j++) if (Math.abs(r[i * d + j]) > maxAbs) { maxAbs = Math.abs(r[i * d + j]); pair = [i, j]; }
      const ratios = explainedVarianceRatios(eig);
      let cum = 0;
      let k99 = 0;
      while (k99 < ratios.length && cum < 0.99) cum += ratios[k99++];
      covariance = {
        conditionNumber: conditionNumber(eig), correlationConditionNumber: conditionNumber(reig), maxAbsCorrelation: maxAbs, maxPair: pair,
        explainedVarianceRatio: ratios, componentsFor99: k99,
      };
    }
    const pre = preprocessingOf(input.name, index, norms, d);
    let normalized: InputStatsReport["normalized"] = null;
    if (pre?.affine) {
      const m = [...mean];
      const s = [...std];
      for (const step of pre.affine) {
        for (let k = 0; k < d; k++) {
          const c = step.values.length === 1 ? step.values[0] : step.values[k];
          if (step.op === "Sub") m[k] -= c;
          else if (step.op === "Add") m[k] += c;
          else if (step.op === "Mul") { m[k] *= c; s[k] *= Math.abs(c); }
          else { m[k] /= c; s[k] /= Math.abs(c); }
        }
      }
      normalized = { mean: m, std: s };
    }
    out.push({
      name: input.name, samples, layout: layout === "all" ? "features" : layout, features: d,
      mean, std, min: Array.from(min), max: Array.from(max), covariance,
      preprocessing: pre ? { kind: pre.affine ? "affine" : "norm", node: pre.node, description: pre.description } : null,
      normalized,
    });
  }
  return out;
}

interface AffineStep {
  op: "Sub" | "Add" | "Mul" | "Div";
  values: number[];
}

const PASS_THROUGH = new Set(["Cast", "Identity"]);

/**
 * Normalization the model applies to an input before anything else: a chain of Sub/Add/Mul/Div by
 * constants that hold one value or one per feature ((x - mean) / std), or a normalization layer
 * (BatchNorm, LayerNorm, InstanceNorm, decomposed LayerNorm) reading the input directly.
 */
function preprocessingOf(input: string, index: GraphIndex, norms: readonly NormMatch[], features: number): { node: string; description: string; affine?: AffineStep[] } | undefined {
  let t = input;
  for (let step = 0; step < 3; step++) {
    const norm = norms.find((n) => n.input === t);
    if (norm) return { node: norm.node, description: `${norm.label}${norm.module ? ` (${norm.module})` : ""} normalizes the input` };
    const cs = index.consumersOf(t);
    if (cs.length !== 1 || !PASS_THROUGH.has(cs[0].opType)) break;
    t = cs[0].outputs[0];
  }
  const steps: AffineStep[] = [];
  let first: GraphNode | undefined;
  for (let k = 0; k < 4; k++) {
    const cs = index.consumersOf(t).filter((c) => !PASS_THROUGH.has(c.opType) || index.consumersOf(c.outputs[0]).length);
    if (cs.length !== 1) break;
    const c = cs[0];
    if (PASS_THROUGH.has(c.opType)) { t = c.outputs[0]; continue; }
    if (!["Sub", "Add", "Mul", "Div"].includes(c.opType) || c.inputs[0] !== t) break;
    const k2 = index.model.constants.get(c.inputs[1]);
    if (!k2 || (k2.size !== 1 && k2.size !== features)) break;
    let values: number[];
    try {
      values = Array.from(k2.values());
    } catch {
      break;
    }
    steps.push({ op: c.opType as AffineStep["op"], values });
    first ??= c;
    t = c.outputs[0];
  }
  if (!steps.length || !first) return undefined;
  const text = steps.map((s) => `${s.op} ${s.values.length === 1 ? fmtShort(s.values[0]) : `[${s.values.map(fmtShort).join(", ")}]`}`).join(", then ");
  return { node: first.name || first.outputs[0], description: `the model applies ${text} to the input`, affine: steps };
}

function fmtShort(x: number): string {
  return Number(x.toPrecision(3)).toString();
}
