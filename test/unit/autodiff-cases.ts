// Small random graphs, one or a few ops each, for gradient-checking every vector-Jacobian rule
// (test/unit/autodiff-rules.test.ts). Every float input and float initializer is checked.
import { create } from "@bufbuild/protobuf";
import { AttributeProto_AttributeType as AT, AttributeProtoSchema, type AttributeProto, type NodeProto, type TensorProto } from "../../src/onnx/gen/onnx_pb";
import { Random } from "../../src/stats/random";
import { attr, DT, floatTensor, graph, modelBytes, node, rawTensor, valueInfo } from "./build-model";
import { RECURRENT_CASES } from "./autodiff-recurrent-cases";

export const fattr = (name: string, f: number): AttributeProto => create(AttributeProtoSchema, { name, type: AT.FLOAT, f });
export const sattr = (name: string, s: string): AttributeProto => create(AttributeProtoSchema, { name, type: AT.STRING, s: new TextEncoder().encode(s) });
export const iattr = (name: string, v: number | number[]): AttributeProto => attr(name, v);

/** How a float tensor's values are drawn, so finite differences do not straddle a kink. */
export type Fill = "normal" | "positive" | "away" | "distinct";

export interface FloatSpec {
  readonly shape: number[];
  readonly fill?: Fill;
  /** A weight (initializer) rather than a graph input; both are checked. */
  readonly init?: boolean;
  /** Not gradient-checked (BatchNorm running statistics, which have no gradient rule). */
  readonly check?: false;
}

export interface Case {
  readonly name: string;
  /** The op (or ops) under test; the rule table keys they exercise. */
  readonly ops: string[];
  readonly opset?: number;
  readonly floats: Record<string, FloatSpec>;
  readonly ints?: Record<string, { shape: number[]; values: number[]; dtype?: "int64" | "int32" | "bool" }>;
  readonly nodes: NodeProto[];
  readonly outputs: Record<string, number[]>;
}

export function int64(name: string, shape: number[], values: number[]): TensorProto {
  return rawTensor(name, DT.INT64, shape, new Uint8Array(BigInt64Array.from(values.map(BigInt)).buffer));
}

function draw(spec: FloatSpec, r: Random): number[] {
  const n = spec.shape.reduce((a, b) => a * b, 1);
  switch (spec.fill ?? "normal") {
    case "positive": return Array.from({ length: n }, () => 0.5 + Math.abs(r.normal()));
    case "away": return Array.from({ length: n }, () => { const v = r.normal(); return Math.sign(v || 1) * (0.3 + Math.abs(v)); });
    case "distinct": {
      // A shuffled ladder with steps of 0.1: maxima are unique and far apart relative to epsilon.
      const ladder = Array.from({ length: n }, (_, i) => (i - n / 2) * 0.1);
      for (let i = n - 1; i > 0; i--) { const j = r.int(i + 1); [ladder[i], ladder[j]] = [ladder[j], ladder[i]]; }
      return ladder;
    }
    default: return Array.from({ length: n }, () => r.normal());
  }
}

/** The model bytes and the float32 feeds of a case (seeded). */
export function buildCase(c: Case, seed = 1): { bytes: Uint8Array; feeds: Record<string, { dtype: "float32"; dims: number[]; data: Float32Array }> } {
  const r = new Random(seed);
  const inits: TensorProto[] = [];
  const inputs = [];
  const feeds: Record<string, { dtype: "float32"; dims: number[]; data: Float32Array }> = {};
  for (const [name, spec] of Object.entries(c.floats)) {
    const values = FIXED[c.name]?.[name] ?? draw(spec, r);
    if (spec.init) inits.push(floatTensor(name, spec.shape, values));
    else {
      inputs.push(valueInfo(name, spec.shape));
      feeds[name] = { dtype: "float32", dims: spec.shape, data: Float32Array.from(values) };
    }
  }
  for (const [name, t] of Object.entries(c.ints ?? {})) {
    if (t.dtype === "bool") inits.push(rawTensor(name, DT.BOOL, t.shape, Uint8Array.from(t.values)));
    else if (t.dtype === "int32") inits.push(rawTensor(name, DT.INT32, t.shape, new Uint8Array(Int32Array.from(t.values).buffer)));
    else inits.push(int64(name, t.shape, t.values));
  }
  const outputs = Object.entries(c.outputs).map(([name, shape]) => valueInfo(name, shape));
  return { bytes: modelBytes(graph(c.nodes, inits, inputs, outputs), c.opset ?? 17), feeds };
}

const n = node;

export const CASES: Case[] = [
  // ---- MatMul / Gemm ----------------------------------------------------------------------
  { name: "MatMul 2-D", ops: ["MatMul"], floats: { x: { shape: [3, 4] }, W: { shape: [4, 5], init: true } }, nodes: [n("MatMul", ["x", "W"], ["y"])], outputs: { y: [3, 5] } },
  { name: "MatMul batched, weight broadcast over the batch", ops: ["MatMul"], floats: { x: { shape: [2, 3, 4] }, W: { shape: [4, 5], init: true } }, nodes: [n("MatMul", ["x", "W"], ["y"])], outputs: { y: [2, 3, 5] } },
  { name: "MatMul batch dims broadcast both ways", ops: ["MatMul"], floats: { a: { shape: [2, 1, 3, 4] }, b: { shape: [3, 4, 2] } }, nodes: [n("MatMul", ["a", "b"], ["y"])], outputs: { y: [2, 3, 3, 2] } },
  { name: "MatMul 1-D operands", ops: ["MatMul"], floats: { v: { shape: [4] }, W: { shape: [4, 5] }, u: { shape: [5] } }, nodes: [n("MatMul", ["v", "W"], ["h"]), n("MatMul", ["h", "u"], ["y"])], outputs: { y: [] } },
  { name: "Gemm plain with bias row", ops: ["Gemm"], floats: { x: { shape: [3, 4] }, W: { shape: [4, 5], init: true }, b: { shape: [5], init: true } }, nodes: [n("Gemm", ["x", "W", "b"], ["y"])], outputs: { y: [3, 5] } },
  { name: "Gemm transA transB alpha beta, column bias", ops: ["Gemm"], floats: { x: { shape: [4, 3] }, W: { shape: [5, 4], init: true }, b: { shape: [3, 1], init: true } }, nodes: [n("Gemm", ["x", "W", "b"], ["y"], [iattr("transA", 1), iattr("transB", 1), fattr("alpha", 0.7), fattr("beta", -1.3)])], outputs: { y: [3, 5] } },
  { name: "Gemm transB (Linear), no bias", ops: ["Gemm"], floats: { x: { shape: [3, 4] }, W: { shape: [5, 4], init: true } }, nodes: [n("Gemm", ["x", "W"], ["y"], [iattr("transB", 1)])], outputs: { y: [3, 5] } },
  { name: "Gemm transA only, scalar bias", ops: ["Gemm"], opset: 9, floats: { x: { shape: [4, 3] }, W: { shape: [4, 5], init: true }, b: { shape: [1], init: true } }, nodes: [n("Gemm", ["x", "W", "b"], ["y"], [iattr("transA", 1)])], outputs: { y: [3, 5] } },

  // ---- Elementwise arithmetic with broadcasting ----------------------------------------------
  { name: "Add broadcast [2,3,4] + [3,1]", ops: ["Add"], floats: { a: { shape: [2, 3, 4] }, b: { shape: [3, 1] } }, nodes: [n("Add", ["a", "b"], ["y"])], outputs: { y: [2, 3, 4] } },
  { name: "Sub broadcast [4] - [2,3,4]", ops: ["Sub"], floats: { a: { shape: [4] }, b: { shape: [2, 3, 4] } }, nodes: [n("Sub", ["a", "b"], ["y"])], outputs: { y: [2, 3, 4] } },
  { name: "Mul broadcast [2,1,4] * [3,1] and x*x", ops: ["Mul"], floats: { a: { shape: [2, 1, 4] }, b: { shape: [3, 1] } }, nodes: [n("Mul", ["a", "b"], ["h"]), n("Mul", ["h", "h"], ["y"])], outputs: { y: [2, 3, 4] } },
  { name: "Div broadcast with positive denominators", ops: ["Div"], floats: { a: { shape: [2, 3] }, b: { shape: [1, 3], fill: "positive" } }, nodes: [n("Div", ["a", "b"], ["y"])], outputs: { y: [2, 3] } },
  { name: "Sum and Mean (variadic, broadcast)", ops: ["Sum", "Mean"], floats: { a: { shape: [2, 3] }, b: { shape: [3] }, c: { shape: [2, 1] } }, nodes: [n("Sum", ["a", "b", "c"], ["s"]), n("Mean", ["s", "b"], ["y"])], outputs: { y: [2, 3] } },
  { name: "Neg", ops: ["Neg"], floats: { x: { shape: [5] } }, nodes: [n("Neg", ["x"], ["y"])], outputs: { y: [5] } },
  { name: "Pow with constant exponents 2, 3 and 0.5", ops: ["Pow"], floats: { x: { shape: [2, 3], fill: "positive" }, two: { shape: [], init: true }, three: { shape: [1], init: true }, half: { shape: [], init: true } }, nodes: [], outputs: {} },
  { name: "Pow with a constant exponent tensor broadcast over x", ops: ["Pow"], floats: { x: { shape: [2, 3], fill: "positive" }, p: { shape: [4, 1, 1], init: true } }, nodes: [], outputs: {} },
  { name: "Floor, Ceil, Round and Sign have zero gradient", ops: ["Floor", "Ceil", "Round", "Sign"], floats: { x: { shape: [6], fill: "away" } }, nodes: [n("Floor", ["x"], ["a"]), n("Ceil", ["x"], ["b"]), n("Round", ["x"], ["c"]), n("Sign", ["x"], ["d"]), n("Sum", ["a", "b", "c", "d", "x"], ["s"]), n("Mul", ["s", "x"], ["y"])], outputs: { y: [6] } },
  { name: "Sqrt, Exp, Log, Reciprocal", ops: ["Sqrt", "Exp", "Log", "Reciprocal"], floats: { x: { shape: [2, 3], fill: "positive" } }, nodes: [n("Sqrt", ["x"], ["a"]), n("Log", ["x"], ["b"]), n("Reciprocal", ["x"], ["c"]), n("Exp", ["a"], ["d"]), n("Sum", ["a", "b", "c", "d"], ["y"])], outputs: { y: [2, 3] } },
  { name: "Abs, Sin, Cos", ops: ["Abs", "Sin", "Cos"], floats: { x: { shape: [6], fill: "away" } }, nodes: [n("Abs", ["x"], ["a"]), n("Sin", ["a"], ["b"]), n("Cos", ["x"], ["c"]), n("Add", ["b", "c"], ["y"])], outputs: { y: [6] } },
  { name: "Max and Min, variadic with broadcast", ops: ["Max", "Min"], floats: { a: { shape: [2, 3], fill: "distinct" }, b: { shape: [3], fill: "distinct" }, c: { shape: [2, 1], fill: "distinct" } }, nodes: [n("Max", ["a", "b", "c"], ["m"]), n("Min", ["a", "b", "c"], ["k"]), n("Add", ["m", "k"], ["y"])], outputs: { y: [2, 3] } },
  { name: "Where with a broadcast condition", ops: ["Where"], floats: { a: { shape: [2, 3] }, b: { shape: [3] } }, ints: { cond: { shape: [2, 1], values: [1, 0], dtype: "bool" } }, nodes: [n("Where", ["cond", "a", "b"], ["y"])], outputs: { y: [2, 3] } },

  // ---- Activations --------------------------------------------------------------------------
  { name: "Relu, LeakyRelu, Sigmoid, Tanh, Softplus, Softsign", ops: ["Relu", "LeakyRelu", "Sigmoid", "Tanh", "Softplus", "Softsign"], floats: { x: { shape: [3, 4], fill: "away" } },
    nodes: [n("Relu", ["x"], ["a"]), n("LeakyRelu", ["x"], ["b"], [fattr("alpha", 0.2)]), n("Sigmoid", ["x"], ["c"]), n("Tanh", ["x"], ["d"]), n("Softplus", ["x"], ["e"]), n("Softsign", ["x"], ["f"]), n("Sum", ["a", "b", "c", "d", "e", "f"], ["y"])], outputs: { y: [3, 4] } },
  { name: "PRelu with a per-channel slope", ops: ["PRelu"], floats: { x: { shape: [2, 3, 2, 2], fill: "away" }, slope: { shape: [3, 1, 1], init: true } }, nodes: [n("PRelu", ["x", "slope"], ["y"])], outputs: { y: [2, 3, 2, 2] } },
  { name: "HardSigmoid and HardSwish", ops: ["HardSigmoid", "HardSwish"], floats: { x: { shape: [12], fill: "away" } }, nodes: [n("HardSigmoid", ["x"], ["a"], [fattr("alpha", 0.3), fattr("beta", 0.4)]), n("HardSwish", ["x"], ["b"]), n("Add", ["a", "b"], ["y"])], outputs: { y: [12] } },
  { name: "Elu and Selu", ops: ["Elu", "Selu"], floats: { x: { shape: [8], fill: "away" } }, nodes: [n("Elu", ["x"], ["a"], [fattr("alpha", 0.7)]), n("Selu", ["x"], ["b"]), n("Add", ["a", "b"], ["y"])], outputs: { y: [8] } },
  { name: "Erf", ops: ["Erf"], floats: { x: { shape: [2, 5] } }, nodes: [n("Erf", ["x"], ["y"])], outputs: { y: [2, 5] } },
  { name: "Gelu exact and tanh (opset 20)", ops: ["Gelu"], opset: 20, floats: { x: { shape: [2, 5] } }, nodes: [n("Gelu", ["x"], ["a"]), n("Gelu", ["x"], ["b"], [sattr("approximate", "tanh")]), n("Add", ["a", "b"], ["y"])], outputs: { y: [2, 5] } },
  { name: "GELU decomposed through Erf (torch export at opset 17)", ops: ["Div", "Erf", "Add", "Mul"], floats: { x: { shape: [3, 4] }, sqrt2: { shape: [], init: true }, one: { shape: [], init: true }, half: { shape: [], init: true } }, nodes: [], outputs: {} },
  { name: "Clip with bound inputs (opset 13)", ops: ["Clip"], opset: 13, floats: { x: { shape: [10], fill: "distinct" }, lo: { shape: [], init: true }, hi: { shape: [], init: true } }, nodes: [], outputs: {} },
  { name: "Clip with attributes (opset 9)", ops: ["Clip"], opset: 9, floats: { x: { shape: [10], fill: "distinct" } }, nodes: [n("Clip", ["x"], ["y"], [fattr("min", -0.25), fattr("max", 0.15)])], outputs: { y: [10] } },
  { name: "Softmax and LogSoftmax on axis 1 of a 3-D tensor", ops: ["Softmax", "LogSoftmax"], floats: { x: { shape: [2, 3, 4] } }, nodes: [n("Softmax", ["x"], ["a"], [iattr("axis", 1)]), n("LogSoftmax", ["x"], ["b"], [iattr("axis", -1)]), n("Add", ["a", "b"], ["y"])], outputs: { y: [2, 3, 4] } },
  { name: "Softmax and LogSoftmax before opset 13 (coerced to 2-D)", ops: ["Softmax", "LogSoftmax"], opset: 11, floats: { x: { shape: [2, 3, 4] } }, nodes: [n("Softmax", ["x"], ["a"], [iattr("axis", 1)]), n("LogSoftmax", ["x"], ["b"], [iattr("axis", 2)]), n("Add", ["a", "b"], ["y"])], outputs: { y: [2, 3, 4] } },

  // ---- Convolutions and pooling ---------------------------------------------------------------
  { name: "Conv 2-D, bias, stride 2, pads", ops: ["Conv"], floats: { x: { shape: [2, 3, 7, 6] }, W: { shape: [4, 3, 3, 3], init: true }, b: { shape: [4], init: true } }, nodes: [n("Conv", ["x", "W", "b"], ["y"], [iattr("strides", [2, 2]), iattr("pads", [1, 0, 1, 2]), iattr("kernel_shape", [3, 3])])], outputs: { y: [2, 4, 4, 3] } },
  { name: "Conv 2-D, groups 2, dilation 2", ops: ["Conv"], floats: { x: { shape: [1, 4, 7, 7] }, W: { shape: [6, 2, 2, 3], init: true } }, nodes: [n("Conv", ["x", "W"], ["y"], [iattr("group", 2), iattr("dilations", [2, 2]), iattr("pads", [1, 1, 1, 1])])], outputs: { y: [1, 6, 7, 5] } },
  { name: "Conv depthwise, SAME_UPPER, stride 2", ops: ["Conv"], floats: { x: { shape: [2, 3, 6, 5] }, W: { shape: [3, 1, 3, 3], init: true }, b: { shape: [3], init: true } }, nodes: [n("Conv", ["x", "W", "b"], ["y"], [iattr("group", 3), iattr("strides", [2, 2]), sattr("auto_pad", "SAME_UPPER")])], outputs: { y: [2, 3, 3, 3] } },
  { name: "Conv 1-D, stride 3 with an uncovered tail", ops: ["Conv"], floats: { x: { shape: [2, 2, 11] }, W: { shape: [3, 2, 3], init: true }, b: { shape: [3], init: true } }, nodes: [n("Conv", ["x", "W", "b"], ["y"], [iattr("strides", [3]), iattr("pads", [1, 0])])], outputs: { y: [2, 3, 3] } },
  { name: "Conv 2-D, 9 channels, stride 2, dilation 2, pads (im2col gather)", ops: ["Conv"], floats: { x: { shape: [2, 9, 9, 8] }, W: { shape: [4, 9, 3, 3], init: true } }, nodes: [n("Conv", ["x", "W"], ["y"], [iattr("strides", [2, 2]), iattr("dilations", [2, 2]), iattr("pads", [1, 0, 1, 2])])], outputs: { y: [2, 4, 4, 3] } },
  { name: "Conv 2-D, 8 channels on 48x48, asymmetric pads (long im2col sum: transposed GEMM)", ops: ["Conv"], floats: { x: { shape: [2, 8, 48, 48], check: false }, W: { shape: [3, 8, 3, 3], init: true } }, nodes: [n("Conv", ["x", "W"], ["y"], [iattr("pads", [1, 0, 1, 2])])], outputs: { y: [2, 3, 48, 48] } },
  { name: "Conv 2-D, 8 channels on 48x48 at opset 9 (long im2col sum where Gemm needs its C input)", ops: ["Conv"], opset: 9, floats: { x: { shape: [2, 8, 48, 48], check: false }, W: { shape: [3, 8, 3, 3], init: true } }, nodes: [n("Conv", ["x", "W"], ["y"], [iattr("pads", [1, 1, 1, 1])])], outputs: { y: [2, 3, 48, 48] } },
  { name: "Conv pointwise, stride 2 (strided Slice)", ops: ["Conv"], floats: { x: { shape: [2, 5, 7, 6] }, W: { shape: [3, 5, 1, 1], init: true }, b: { shape: [3], init: true } }, nodes: [n("Conv", ["x", "W", "b"], ["y"], [iattr("strides", [2, 2])])], outputs: { y: [2, 3, 4, 3] } },
  { name: "Conv pointwise 1-D with pads", ops: ["Conv"], floats: { x: { shape: [1, 4, 5] }, W: { shape: [2, 4, 1], init: true } }, nodes: [n("Conv", ["x", "W"], ["y"], [iattr("pads", [1, 2])])], outputs: { y: [1, 2, 8] } },
  { name: "Conv one input channel, stride 2, dilation 2 (stem as a convolution)", ops: ["Conv"], floats: { x: { shape: [2, 1, 9, 9] }, W: { shape: [4, 1, 3, 3], init: true } }, nodes: [n("Conv", ["x", "W"], ["y"], [iattr("strides", [2, 2]), iattr("dilations", [2, 2]), iattr("pads", [2, 2, 2, 2])])], outputs: { y: [2, 4, 5, 5] } },
  { name: "ConvTranspose 2-D, stride 2, pads, output_padding", ops: ["ConvTranspose"], floats: { x: { shape: [1, 3, 3, 4] }, W: { shape: [3, 2, 3, 3], init: true }, b: { shape: [2], init: true } }, nodes: [n("ConvTranspose", ["x", "W", "b"], ["y"], [iattr("strides", [2, 2]), iattr("pads", [1, 1, 1, 0]), iattr("output_padding", [1, 0])])], outputs: { y: [1, 2, 6, 8] } },
  { name: "ConvTranspose SAME_UPPER, stride 2, odd total padding", ops: ["ConvTranspose"], floats: { x: { shape: [1, 2, 3, 3] }, W: { shape: [2, 3, 3, 3], init: true } }, nodes: [n("ConvTranspose", ["x", "W"], ["y"], [iattr("strides", [2, 2]), sattr("auto_pad", "SAME_UPPER")])], outputs: { y: [1, 3, 6, 6] } },
  { name: "ConvTranspose SAME_LOWER, stride 2, odd total padding", ops: ["ConvTranspose"], floats: { x: { shape: [1, 2, 3, 3] }, W: { shape: [2, 3, 3, 3], init: true } }, nodes: [n("ConvTranspose", ["x", "W"], ["y"], [iattr("strides", [2, 2]), sattr("auto_pad", "SAME_LOWER")])], outputs: { y: [1, 3, 6, 6] } },
  { name: "ConvTranspose SAME_UPPER, kernel 2, stride 1", ops: ["ConvTranspose"], floats: { x: { shape: [1, 2, 4, 4] }, W: { shape: [2, 2, 2, 2], init: true } }, nodes: [n("ConvTranspose", ["x", "W"], ["y"], [sattr("auto_pad", "SAME_UPPER")])], outputs: { y: [1, 2, 4, 4] } },
  { name: "ConvTranspose output_shape with an odd total padding", ops: ["ConvTranspose"], floats: { x: { shape: [1, 2, 3, 3] }, W: { shape: [2, 3, 3, 3], init: true } }, nodes: [n("ConvTranspose", ["x", "W"], ["y"], [iattr("strides", [2, 2]), iattr("output_shape", [6, 6])])], outputs: { y: [1, 3, 6, 6] } },
  { name: "ConvTranspose groups 2, dilation 2 (1-D)", ops: ["ConvTranspose"], floats: { x: { shape: [2, 4, 5] }, W: { shape: [4, 1, 2], init: true } }, nodes: [n("ConvTranspose", ["x", "W"], ["y"], [iattr("group", 2), iattr("dilations", [2])])], outputs: { y: [2, 2, 7] } },
  { name: "MaxPool overlapping 3x3/2 with pads (ScatterElements add, opset 17)", ops: ["MaxPool"], floats: { x: { shape: [2, 2, 7, 6], fill: "distinct" } }, nodes: [n("MaxPool", ["x"], ["y"], [iattr("kernel_shape", [3, 3]), iattr("strides", [2, 2]), iattr("pads", [1, 1, 1, 1])])], outputs: { y: [2, 2, 4, 3] } },
  { name: "MaxPool overlapping, ceil_mode, dilation (classes of ScatterElements, opset 12)", ops: ["MaxPool"], opset: 12, floats: { x: { shape: [1, 2, 8, 7], fill: "distinct" } }, nodes: [n("MaxPool", ["x"], ["y"], [iattr("kernel_shape", [3, 2]), iattr("strides", [2, 1]), iattr("ceil_mode", 1), iattr("dilations", [1, 2])])], outputs: { y: [1, 2, 4, 5] } },
  { name: "MaxPool 2x2/2 with odd size (opset 8, no scatter)", ops: ["MaxPool"], opset: 8, floats: { x: { shape: [2, 3, 5, 4], fill: "distinct" } }, nodes: [n("MaxPool", ["x"], ["y"], [iattr("kernel_shape", [2, 2]), iattr("strides", [2, 2])])], outputs: { y: [2, 3, 2, 2] } },
  { name: "MaxPool overlapping 3x3/2 with pads (MaxUnpool classes, opset 9)", ops: ["MaxPool"], opset: 9, floats: { x: { shape: [2, 2, 7, 6], fill: "distinct" } }, nodes: [n("MaxPool", ["x"], ["y"], [iattr("kernel_shape", [3, 3]), iattr("strides", [2, 2]), iattr("pads", [1, 1, 1, 1])])], outputs: { y: [2, 2, 4, 3] } },
  { name: "MaxPool 3x2/1 ceil_mode (MaxUnpool classes, opset 10)", ops: ["MaxPool"], opset: 10, floats: { x: { shape: [1, 2, 6, 5], fill: "distinct" } }, nodes: [n("MaxPool", ["x"], ["y"], [iattr("kernel_shape", [3, 2]), iattr("strides", [2, 1]), iattr("ceil_mode", 1)])], outputs: { y: [1, 2, 3, 4] } },
  { name: "MaxPool 1-D", ops: ["MaxPool"], floats: { x: { shape: [2, 2, 9], fill: "distinct" } }, nodes: [n("MaxPool", ["x"], ["y"], [iattr("kernel_shape", [3]), iattr("strides", [2])])], outputs: { y: [2, 2, 4] } },
  { name: "AveragePool 3x3/2, pads, count_include_pad 0", ops: ["AveragePool"], floats: { x: { shape: [2, 2, 7, 6] } }, nodes: [n("AveragePool", ["x"], ["y"], [iattr("kernel_shape", [3, 3]), iattr("strides", [2, 2]), iattr("pads", [1, 1, 1, 1])])], outputs: { y: [2, 2, 4, 3] } },
  { name: "AveragePool count_include_pad 1, ceil_mode", ops: ["AveragePool"], floats: { x: { shape: [1, 2, 7, 5] } }, nodes: [n("AveragePool", ["x"], ["y"], [iattr("kernel_shape", [2, 3]), iattr("strides", [2, 2]), iattr("pads", [0, 1, 0, 1]), iattr("count_include_pad", 1), iattr("ceil_mode", 1)])], outputs: { y: [1, 2, 4, 3] } },
  { name: "GlobalAveragePool and GlobalMaxPool", ops: ["GlobalAveragePool", "GlobalMaxPool"], floats: { x: { shape: [2, 3, 4, 3], fill: "distinct" } }, nodes: [n("GlobalAveragePool", ["x"], ["a"]), n("GlobalMaxPool", ["x"], ["b"]), n("Mul", ["a", "b"], ["y"])], outputs: { y: [2, 3, 1, 1] } },

  // ---- Normalizations ------------------------------------------------------------------------
  { name: "BatchNormalization, inference mode", ops: ["BatchNormalization"], floats: { x: { shape: [3, 4, 2, 3] }, scale: { shape: [4], init: true }, B: { shape: [4], init: true }, mean: { shape: [4], init: true, check: false }, var: { shape: [4], init: true, fill: "positive", check: false } }, nodes: [n("BatchNormalization", ["x", "scale", "B", "mean", "var"], ["y"], [fattr("epsilon", 1e-3)])], outputs: { y: [3, 4, 2, 3] } },
  { name: "BatchNormalization on [N, C] (opset 9)", ops: ["BatchNormalization"], opset: 9, floats: { x: { shape: [5, 3] }, scale: { shape: [3], init: true }, B: { shape: [3], init: true }, mean: { shape: [3], init: true, check: false }, var: { shape: [3], init: true, fill: "positive", check: false } }, nodes: [n("BatchNormalization", ["x", "scale", "B", "mean", "var"], ["y"])], outputs: { y: [5, 3] } },
  { name: "LayerNormalization over the last axis", ops: ["LayerNormalization"], floats: { x: { shape: [2, 3, 5] }, scale: { shape: [5], init: true }, B: { shape: [5], init: true } }, nodes: [n("LayerNormalization", ["x", "scale", "B"], ["y"], [fattr("epsilon", 1e-5)])], outputs: { y: [2, 3, 5] } },
  { name: "LayerNormalization over axes 1.. without bias", ops: ["LayerNormalization"], floats: { x: { shape: [2, 3, 4] }, scale: { shape: [3, 4], init: true } }, nodes: [n("LayerNormalization", ["x", "scale"], ["y"], [iattr("axis", 1)])], outputs: { y: [2, 3, 4] } },
  { name: "LayerNorm decomposed into primitive ops (opset 11)", ops: ["ReduceMean", "Sub", "Pow", "Add", "Sqrt", "Div", "Mul"], opset: 11, floats: { x: { shape: [2, 3, 6] }, two: { shape: [], init: true }, eps: { shape: [], init: true }, g: { shape: [6], init: true }, b: { shape: [6], init: true } }, nodes: [], outputs: {} },
  { name: "LayerNorm decomposed into primitive ops (opset 18, axes as inputs)", ops: ["ReduceMean", "Sub", "Pow", "Add", "Sqrt", "Div", "Mul"], opset: 18, floats: { x: { shape: [2, 3, 6] }, two: { shape: [], init: true }, eps: { shape: [], init: true }, g: { shape: [6], init: true }, b: { shape: [6], init: true } }, ints: { axes: { shape: [1], values: [-1] } }, nodes: [], outputs: {} },
  { name: "InstanceNormalization", ops: ["InstanceNormalization"], floats: { x: { shape: [2, 3, 4, 2] }, scale: { shape: [3], init: true }, B: { shape: [3], init: true } }, nodes: [n("InstanceNormalization", ["x", "scale", "B"], ["y"])], outputs: { y: [2, 3, 4, 2] } },

  // ---- Reductions -----------------------------------------------------------------------------
  { name: "ReduceSum/ReduceMean with attribute axes (opset 11), keepdims 0 and 1", ops: ["ReduceSum", "ReduceMean"], opset: 11, floats: { x: { shape: [2, 3, 4] } }, nodes: [n("ReduceSum", ["x"], ["a"], [iattr("axes", [1]), iattr("keepdims", 0)]), n("ReduceMean", ["x"], ["b"], [iattr("axes", [0, 2]), iattr("keepdims", 1)]), n("Mul", ["a", "a"], ["c"]), n("Mul", ["b", "b"], ["d"])], outputs: { c: [2, 4], d: [1, 3, 1] } },
  { name: "ReduceSum with axes input (opset 13), ReduceMean over all axes", ops: ["ReduceSum", "ReduceMean"], opset: 13, floats: { x: { shape: [2, 3, 4] } }, ints: { axes: { shape: [2], values: [0, -1] } }, nodes: [n("ReduceSum", ["x", "axes"], ["a"], [iattr("keepdims", 0)]), n("ReduceMean", ["x"], ["b"], [iattr("keepdims", 0)]), n("Mul", ["a", "b"], ["y"])], outputs: { y: [3] } },
  { name: "ReduceSumSquare, ReduceL2, ReduceL1, ReduceLogSumExp, ReduceMax, ReduceMin (opset 18)", ops: ["ReduceSumSquare", "ReduceL2", "ReduceL1", "ReduceLogSumExp", "ReduceMax", "ReduceMin"], opset: 18, floats: { x: { shape: [2, 5], fill: "distinct" } }, ints: { axes: { shape: [1], values: [1] } },
    nodes: [n("ReduceSumSquare", ["x", "axes"], ["a"]), n("ReduceL2", ["x", "axes"], ["b"]), n("ReduceL1", ["x", "axes"], ["c"]), n("ReduceLogSumExp", ["x", "axes"], ["d"]), n("ReduceMax", ["x", "axes"], ["e"]), n("ReduceMin", ["x", "axes"], ["f"]), n("Sum", ["a", "b", "c", "d", "e", "f"], ["y"])], outputs: { y: [2, 1] } },

  // ---- Shape ops --------------------------------------------------------------------------------
  { name: "Reshape, Flatten, Transpose, Identity, Squeeze and Unsqueeze (opset 13 inputs)", ops: ["Reshape", "Flatten", "Transpose", "Identity", "Squeeze", "Unsqueeze"], opset: 13, floats: { x: { shape: [2, 3, 4] }, w: { shape: [6, 1], init: true } }, ints: { shape: { shape: [3], values: [4, 1, -1] }, ax0: { shape: [1], values: [0] }, ax1: { shape: [1], values: [1] } },
    nodes: [n("Transpose", ["x"], ["t"], [iattr("perm", [2, 0, 1])]), n("Reshape", ["t", "shape"], ["r"]), n("Squeeze", ["r", "ax1"], ["s"]), n("Unsqueeze", ["s", "ax0"], ["u"]), n("Flatten", ["u"], ["f"], [iattr("axis", 2)]), n("Identity", ["f"], ["i"]), n("MatMul", ["i", "w"], ["y"])], outputs: { y: [4, 1] } },
  { name: "Squeeze and Unsqueeze with attribute axes (opset 11), default Transpose", ops: ["Squeeze", "Unsqueeze", "Transpose"], opset: 11, floats: { x: { shape: [2, 1, 3] } }, nodes: [n("Squeeze", ["x"], ["s"], [iattr("axes", [1])]), n("Transpose", ["s"], ["t"]), n("Unsqueeze", ["t"], ["y"], [iattr("axes", [0, 3])])], outputs: { y: [1, 3, 2, 1] } },
  { name: "Concat of three with a reused input", ops: ["Concat"], floats: { a: { shape: [2, 1, 3] }, b: { shape: [2, 2, 3] } }, nodes: [n("Concat", ["a", "b", "a"], ["y"], [iattr("axis", 1)])], outputs: { y: [2, 4, 3] } },
  { name: "Split with sizes as an input (opset 13), one output unused", ops: ["Split"], opset: 13, floats: { x: { shape: [2, 6] } }, ints: { sizes: { shape: [3], values: [1, 2, 3] } }, nodes: [n("Split", ["x", "sizes"], ["a", "b", "c"], [iattr("axis", 1)]), n("Mul", ["a", "c"], ["y"])], outputs: { y: [2, 3] } },
  { name: "Split with attribute sizes (opset 11)", ops: ["Split"], opset: 11, floats: { x: { shape: [4, 2] } }, nodes: [n("Split", ["x"], ["a", "b"], [iattr("axis", 0), iattr("split", [1, 3])]), n("Add", ["a", "b"], ["y"])], outputs: { y: [3, 2] } },
  { name: "Split into equal parts by num_outputs (opset 18)", ops: ["Split"], opset: 18, floats: { x: { shape: [3, 4] } }, nodes: [n("Split", ["x"], ["a", "b"], [iattr("axis", 1), iattr("num_outputs", 2)]), n("Mul", ["a", "b"], ["y"])], outputs: { y: [3, 2] } },
  { name: "Slice with steps and a negative step (opset 13)", ops: ["Slice"], opset: 13, floats: { x: { shape: [3, 10, 4] } }, ints: { st: { shape: [2], values: [1, -2] }, en: { shape: [2], values: [9, -11] }, ax: { shape: [2], values: [1, 2] }, sp: { shape: [2], values: [3, -1] } }, nodes: [n("Slice", ["x", "st", "en", "ax", "sp"], ["y"])], outputs: { y: [3, 3, 3] } },
  { name: "Slice with attributes (opset 9)", ops: ["Slice"], opset: 9, floats: { x: { shape: [4, 5] } }, nodes: [n("Slice", ["x"], ["y"], [iattr("starts", [1, -3]), iattr("ends", [3, 1000]), iattr("axes", [0, 1])])], outputs: { y: [2, 3] } },
  { name: "Gather: embedding lookup with repeated ids (ScatterND add, opset 16)", ops: ["Gather"], floats: { E: { shape: [6, 3], init: true } }, ints: { ids: { shape: [2, 3], values: [1, 4, 1, 0, 5, -1] } }, nodes: [n("Gather", ["E", "ids"], ["y"])], outputs: { y: [2, 3, 3] } },
  { name: "Gather on axis 1 with int32 ids (one-hot path, opset 13)", ops: ["Gather"], opset: 13, floats: { x: { shape: [2, 5, 3] } }, ints: { ids: { shape: [4], values: [4, 0, 4, 2], dtype: "int32" } }, nodes: [n("Gather", ["x", "ids"], ["y"], [iattr("axis", 1)])], outputs: { y: [2, 4, 3] } },
  { name: "Gather a single position (scalar index), the class-token pattern", ops: ["Gather"], floats: { x: { shape: [2, 4, 3] } }, ints: { i: { shape: [], values: [0] } }, nodes: [n("Gather", ["x", "i"], ["y"], [iattr("axis", 1)])], outputs: { y: [2, 3] } },
  { name: "Expand and Tile", ops: ["Expand", "Tile"], floats: { x: { shape: [3, 1] } }, ints: { shape: { shape: [3], values: [2, 3, 4] }, reps: { shape: [3], values: [1, 2, 1] } }, nodes: [n("Expand", ["x", "shape"], ["e"]), n("Tile", ["e", "reps"], ["y"])], outputs: { y: [2, 6, 4] } },
  { name: "Dropout in inference mode, Cast to double and back", ops: ["Dropout", "Cast"], floats: { x: { shape: [2, 3] }, ratio: { shape: [], init: true } }, ints: { training: { shape: [], values: [0], dtype: "bool" } }, nodes: [n("Dropout", ["x", "ratio", "training"], ["d"]), n("Cast", ["d"], ["c"], [iattr("to", DT.DOUBLE)]), n("Cast", ["c"], ["y"], [iattr("to", DT.FLOAT)])], outputs: { y: [2, 3] } },
  { name: "Pad constant with pads as an input, including a negative pad (opset 13)", ops: ["Pad"], opset: 13, floats: { x: { shape: [2, 3, 4] } }, ints: { pads: { shape: [6], values: [0, 1, -1, 1, 0, 2] } }, nodes: [n("Pad", ["x", "pads"], ["y"])], outputs: { y: [3, 4, 5] } },
  { name: "Pad reflect on two axes (opset 13)", ops: ["Pad"], opset: 13, floats: { x: { shape: [2, 4, 5] } }, ints: { pads: { shape: [6], values: [0, 2, 1, 0, 3, 4] } }, nodes: [n("Pad", ["x", "pads"], ["y"], [sattr("mode", "reflect")])], outputs: { y: [2, 9, 10] } },
  { name: "Pad edge (opset 11)", ops: ["Pad"], opset: 11, floats: { x: { shape: [3, 4] } }, ints: { pads: { shape: [4], values: [2, 0, 1, 3] } }, nodes: [n("Pad", ["x", "pads"], ["y"], [sattr("mode", "edge")])], outputs: { y: [6, 7] } },
  { name: "Pad with attribute pads (opset 9)", ops: ["Pad"], opset: 9, floats: { x: { shape: [2, 3] } }, nodes: [n("Pad", ["x"], ["y"], [iattr("pads", [1, 0, 0, 2])])], outputs: { y: [3, 5] } },
];

// LSTM, GRU and RNN (autodiff-recurrent-cases.ts).
CASES.push(...RECURRENT_CASES);

// Cases whose nodes need constants defined above: filled in here to keep the table readable.
function fill(name: string, nodes: NodeProto[], outputs: Record<string, number[]>): void {
  const c = CASES.find((k) => k.name === name)! as { nodes: NodeProto[]; outputs: Record<string, number[]> };
  c.nodes.push(...nodes);
  Object.assign(c.outputs, outputs);
}
fill("Pow with constant exponents 2, 3 and 0.5", [n("Pow", ["x", "two"], ["a"]), n("Pow", ["x", "three"], ["b"]), n("Pow", ["x", "half"], ["c"]), n("Sum", ["a", "b", "c"], ["y"])], { y: [2, 3] });
fill("Pow with a constant exponent tensor broadcast over x", [n("Pow", ["x", "p"], ["y"])], { y: [4, 2, 3] });
fill("GELU decomposed through Erf (torch export at opset 17)", [n("Div", ["x", "sqrt2"], ["d"]), n("Erf", ["d"], ["e"]), n("Add", ["e", "one"], ["a"]), n("Mul", ["x", "a"], ["m"]), n("Mul", ["m", "half"], ["y"])], { y: [3, 4] });
fill("Clip with bound inputs (opset 13)", [n("Clip", ["x", "lo", "hi"], ["y"])], { y: [10] });
for (const opset of [11, 18]) {
  const axesIn = opset >= 18 ? ["axes"] : [];
  const axesAttr = opset >= 18 ? [] : [iattr("axes", [-1])];
  fill(`LayerNorm decomposed into primitive ops (opset ${opset}${opset >= 18 ? ", axes as inputs" : ""})`, [
    n("ReduceMean", ["x", ...axesIn], ["mu"], axesAttr), n("Sub", ["x", "mu"], ["xc"]), n("Pow", ["xc", "two"], ["sq"]),
    n("ReduceMean", ["sq", ...axesIn], ["var"], axesAttr), n("Add", ["var", "eps"], ["ve"]), n("Sqrt", ["ve"], ["sd"]),
    n("Div", ["xc", "sd"], ["xh"]), n("Mul", ["xh", "g"], ["sc"]), n("Add", ["sc", "b"], ["y"]),
  ], { y: [2, 3, 6] });
}

/** Initializer values some cases need exactly (exponents, epsilons, constants of decomposed ops). */
export const FIXED: Record<string, Record<string, number[]>> = {
  "Pow with constant exponents 2, 3 and 0.5": { two: [2], three: [3], half: [0.5] },
  "Pow with a constant exponent tensor broadcast over x": { p: [1, 2, 3, 0.5] },
  "GELU decomposed through Erf (torch export at opset 17)": { sqrt2: [Math.SQRT2], one: [1], half: [0.5] },
  "Clip with bound inputs (opset 13)": { lo: [-0.25], hi: [0.15] },
  "LayerNorm decomposed into primitive ops (opset 11)": { two: [2], eps: [1e-5] },
  "LayerNorm decomposed into primitive ops (opset 18, axes as inputs)": { two: [2], eps: [1e-5] },
  "Dropout in inference mode, Cast to double and back": { ratio: [0.5] },
};
