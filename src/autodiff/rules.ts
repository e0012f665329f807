import { TensorProto_DataType as DT } from "../onnx/gen/onnx_pb";
import { attrFloat, attrInt, attrInts, attrString, type GraphNode } from "../onnx/model";
import type { DType } from "../onnx/dtype";
import type { FloatType, GradEmitter } from "./emit";
import { onnxFloat } from "./emit";
import { gruVjp, lstmVjp, rnnVjp } from "./recurrent";

/**
 * What a vector-Jacobian rule sees: the forward node, the gradients of its outputs (undefined =
 * exactly zero), which inputs need a gradient, and static shapes and small integer values
 * (axes, pads, Slice bounds) of the forward tensors.
 */
export interface VjpArgs {
  readonly node: GraphNode;
  readonly e: GradEmitter;
  /** Gradient of each output; undefined when it is zero (unused output). */
  readonly gy: readonly (string | undefined)[];
  /** Whether input i needs a gradient (it lies between a requested tensor and the loss). */
  readonly wants: readonly boolean[];
  /** Element type of the node's float tensors. */
  readonly ft: FloatType;
  readonly opset: number;
  shape(tensor: string): readonly number[];
  /** Element type of a tensor, if known (a Cast's input differs from the node's type). */
  dtype(tensor: string): DType | undefined;
  /** Values of a small integer tensor (a constant, or computed from shapes), if known. */
  ints(tensor: string): number[] | undefined;
  /** Values of a constant float tensor, if it is one. */
  floats(tensor: string): number[] | undefined;
  /** A scalar constant of the node's float type. */
  k(v: number): string;
}

/** Gradients of the inputs, in input order; undefined = no gradient (zero or not wanted). */
export type VjpResult = readonly (string | undefined)[];

export interface VjpRule {
  /**
   * Inputs whose returned gradient has the shape of output 0 and must be summed down to the
   * input's own shape (numpy broadcasting). The builder does this, not the rule.
   */
  readonly unbroadcast?: "all" | readonly number[];
  /**
   * Inputs the rule treats as constants (BatchNorm running statistics, a Pow exponent, Clip
   * bounds, a Pad value, a Dropout ratio): the node is still differentiated, but a requested
   * gradient of such an input is reported unavailable rather than silently zero.
   */
  readonly constants?: readonly number[];
  /**
   * Inputs that are buffers in every framework (BatchNorm's running mean and variance): no
   * gradient flows into them, as in torch. Unlike `constants` they do not stop the gradient of a
   * tensor they share with a parameter: PyTorch's exporter merges equal initializers, so a fresh
   * BatchNorm's weight (all ones) often also feeds its running variance through an Identity.
   */
  readonly statistics?: readonly number[];
  readonly vjp: (a: VjpArgs) => VjpResult;
}

/** Thrown by a rule for a node it cannot differentiate (training-mode Dropout, reflect Pad, ...). */
export class VjpUnsupported extends Error {}

const unsupported = (reason: string): never => {
  throw new VjpUnsupported(reason);
};

const product = (xs: readonly number[]): number => xs.reduce((a, b) => a * b, 1);
const range = (from: number, to: number): number[] => Array.from({ length: Math.max(0, to - from) }, (_, i) => from + i);
const norm = (axis: number, rank: number): number => (axis < 0 ? axis + rank : axis);
/** Permutation swapping the last two axes. */
const swapLast = (rank: number): number[] => [...range(0, rank - 2), rank - 1, rank - 2];

// ---------------------------------------------------------------------------------------------
// Elementwise helpers
// ---------------------------------------------------------------------------------------------

/** A rule for y = f(x) whose derivative is built from x, y and the emitter. */
function unary(derivative: (a: VjpArgs, x: string, y: string) => string): VjpRule {
  return { vjp: (a) => [a.e.mul(a.gy[0]!, derivative(a, a.node.inputs[0], a.node.outputs[0]))] };
}

const gt = (a: VjpArgs, x: string, v: number | string): string => a.e.op("Greater", [x, typeof v === "number" ? a.k(v) : v]);
const lt = (a: VjpArgs, x: string, v: number | string): string => a.e.op("Less", [x, typeof v === "number" ? a.k(v) : v]);
const not = (a: VjpArgs, b: string): string => a.e.op("Not", [b]);
const and = (a: VjpArgs, p: string, q: string): string => a.e.op("And", [p, q]);

/** Reshapes g to `to` (Identity, Reshape, Flatten, Squeeze, Unsqueeze). */
const reshapeBack: VjpRule = { vjp: (a) => [a.e.reshape(a.gy[0]!, a.shape(a.node.inputs[0]))] };

// ---------------------------------------------------------------------------------------------
// Attributes with opset-dependent forms
// ---------------------------------------------------------------------------------------------

/** Axes of a reduction: attribute before opset 13 (ReduceSum) / 18 (others), input after. */
function reduceAxes(a: VjpArgs): number[] {
  const n = a.node;
  const rank = a.shape(n.inputs[0]).length;
  let axes: number[] | undefined;
  const asInput = n.opType === "ReduceSum" ? a.opset >= 13 : a.opset >= 18;
  if (asInput) {
    if (n.inputs[1]) {
      axes = a.ints(n.inputs[1]);
      if (!axes) unsupported("its axes are computed at run time");
    }
  } else {
    axes = attrInts(n, "axes");
  }
  if (!axes || axes.length === 0) {
    // noop_with_empty_axes=1 makes an empty axes list the identity.
    if (asInput && attrInt(n, "noop_with_empty_axes", 0) === 1) return [];
    return range(0, rank);
  }
  return axes.map((x) => norm(x, rank));
}

/** Softmax/LogSoftmax axes: one axis from opset 13; before, the input is coerced to 2-D at `axis`. */
function softmaxAxes(a: VjpArgs): number[] {
  const rank = a.shape(a.node.inputs[0]).length;
  if (a.opset >= 13) return [norm(attrInt(a.node, "axis", -1), rank)];
  return range(norm(attrInt(a.node, "axis", 1), rank), rank);
}

/** Kernel window of a Conv/ConvTranspose/pool: explicit pads resolved from auto_pad with static shapes. */
interface Window {
  readonly k: number[];
  readonly s: number[];
  readonly d: number[];
  readonly pb: number[];
  readonly pe: number[];
}

function window(node: GraphNode, kernel: readonly number[], inSpatial: readonly number[], outSpatial: readonly number[]): Window {
  const r = kernel.length;
  const s = attrInts(node, "strides") ?? new Array<number>(r).fill(1);
  const d = attrInts(node, "dilations") ?? new Array<number>(r).fill(1);
  const autoPad = attrString(node, "auto_pad") ?? "NOTSET";
  let pb: number[];
  let pe: number[];
  if (autoPad === "SAME_UPPER" || autoPad === "SAME_LOWER") {
    const total = kernel.map((k, i) => Math.max(0, (outSpatial[i] - 1) * s[i] + (k - 1) * d[i] + 1 - inSpatial[i]));
    pb = total.map((t) => (autoPad === "SAME_UPPER" ? Math.floor(t / 2) : Math.ceil(t / 2)));
    pe = total.map((t, i) => t - pb[i]);
  } else if (autoPad === "VALID") {
    pb = new Array<number>(r).fill(0);
    pe = new Array<number>(r).fill(0);
  } else {
    const pads = attrInts(node, "pads") ?? new Array<number>(2 * r).fill(0);
    pb = pads.slice(0, r);
    pe = pads.slice(r);
  }
  return { k: [...kernel], s, d, pb, pe };
}

/**
 * The adjoint of a strided window op on the input side: a ConvTranspose with weight `w` whose
 * output has the input's spatial size `inSpatial` exactly (output_padding for the rows no window
 * reached, extra end padding when windows ran past the padded input, as with ceil_mode).
 */
function windowAdjoint(a: VjpArgs, g: string, w: string, win: Window, inSpatial: readonly number[], outSpatial: readonly number[], group: number): string {
  const outputPadding: number[] = [];
  const pe: number[] = [];
  inSpatial.forEach((S, i) => {
    const reach = (outSpatial[i] - 1) * win.s[i] + (win.k[i] - 1) * win.d[i] + 1 - win.pb[i];
    const extra = S - (reach - win.pe[i]);
    if (extra >= 0) {
      outputPadding.push(extra);
      pe.push(win.pe[i]);
    } else {
      outputPadding.push(0);
      pe.push(reach - S);
    }
  });
  if (outputPadding.some((p, i) => p >= Math.max(win.s[i], win.d[i]))) unsupported("its output padding would exceed the stride");
  const attrs: Record<string, number[] | number> = {
    kernel_shape: win.k, strides: win.s, dilations: win.d, pads: [...win.pb, ...pe], group,
  };
  if (outputPadding.some((p) => p > 0)) attrs.output_padding = outputPadding;
  return a.e.op("ConvTranspose", [g, w], attrs);
}

/**
 * Input gradient of a convolution. With stride 1 it is itself a convolution, of the output
 * gradient with the spatially flipped weight whose in/out channels are swapped per group, which
 * onnxruntime runs on its fast (NCHWc) Conv path; a flipped constant weight is folded once when
 * the session is created. Strided convolutions use the transposed convolution.
 */
function convInputGrad(a: VjpArgs, g: string, w: string, ws: readonly number[], win: Window, inSpatial: readonly number[], outSpatial: readonly number[], group: number): string {
  const e = a.e;
  const r = win.k.length;
  const reach = win.k.map((k, i) => (k - 1) * win.d[i]);
  const pb = reach.map((v, i) => v - win.pb[i]);
  const pe = reach.map((v, i) => v - win.pe[i]);
  if (a.opset < 10 || win.s.some((v) => v !== 1) || [...pb, ...pe].some((p) => p < 0)) {
    return windowAdjoint(a, g, w, win, inSpatial, outSpatial, group);
  }
  const [M, Cg] = ws;
  const Mg = M / group;
  const swapped = group === 1
    ? e.transpose(w, [1, 0, ...range(2, 2 + r)])
    : e.reshape(e.transpose(e.reshape(w, [group, Mg, Cg, ...win.k]), [0, 2, 1, ...range(3, 3 + r)]), [group * Cg, Mg, ...win.k]);
  const flipped = e.slice(swapped, new Array<number>(r).fill(-1), new Array<number>(r).fill(-Number.MAX_SAFE_INTEGER), range(2, 2 + r), new Array<number>(r).fill(-1));
  return e.op("Conv", [g, flipped], { kernel_shape: win.k, dilations: win.d, pads: [...pb, ...pe], group });
}

/**
 * Weight gradient of a convolution, dW[m, c, t] = sum over n, o of g[n, m, o] * xpad[n, c, o*s + t*d],
 * in the cheapest of three forms onnxruntime runs well (measured on ResNet-18 shapes, see
 * scripts/bench-gradients.ts):
 * - pointwise kernels: one strided Slice of the input and a batched matrix product;
 * - few input channels (an RGB or audio stem): a convolution of the input, batch and channel axes
 *   swapped, with the output gradient as its kernel (the stride becomes its dilation), because the
 *   im2col gather below would copy rows of only C elements;
 * - otherwise one large GEMM, dW[M, C K] = G[M, N O] x cols[N O, C K], where cols is the input
 *   unfolded into its receptive fields (im2col) by a Gather with a constant index of the taps of
 *   every window; ORT then runs one GEMM per layer instead of a convolution whose kernel is the
 *   whole output map (5x slower). Groups become a batched MatMul.
 * Returns [M, C/group, *K].
 */
function convWeightGrad(a: VjpArgs, input: string, inShape: readonly number[], gout: string, outShape: readonly number[], win: Window, group: number): string {
  const e = a.e;
  const [N, C] = inShape;
  const M = outShape[1];
  const S = inShape.slice(2);
  const O = outShape.slice(2);
  const r = S.length;
  const Sp = S.map((v, i) => v + win.pb[i] + win.pe[i]);
  if (O.some((o, i) => (o - 1) * win.s[i] + (win.k[i] - 1) * win.d[i] >= Sp[i])) unsupported("its windows reach past the padded input");
  const On = product(O);
  const Kn = product(win.k);
  const Cg = C / group;
  const Mg = M / group;
  if (group === 1 && Kn === 1 && a.opset >= 10) {
    const taps = e.reshape(e.slice(e.pad(input, [0, 0, ...win.pb, 0, 0, ...win.pe], a.ft), new Array<number>(r).fill(0), O.map((o, i) => (o - 1) * win.s[i] + 1), range(2, 2 + r), win.s), [N, C, On]);
    const perSample = e.op("MatMul", [e.reshape(gout, [N, M, On]), e.transpose(taps, [0, 2, 1])]);
    return e.reshape(e.reduce("ReduceSum", perSample, [0], false), [M, C, ...win.k]);
  }
  if (group === 1 && C * (a.ft === "float64" ? 8 : 4) < 32) {
    const full = e.op("Conv", [e.transpose(input, [1, 0, ...range(2, 2 + r)]), e.transpose(gout, [1, 0, ...range(2, 2 + r)])], {
      kernel_shape: O, strides: win.d, dilations: win.s, pads: [...win.pb, ...win.pe],
    });
    const reach = Sp.map((sp, i) => Math.floor((sp - (O[i] - 1) * win.s[i] - 1) / win.d[i]) + 1);
    const dw = reach.some((v, i) => v !== win.k[i]) ? e.slice(full, new Array<number>(r).fill(0), win.k, range(2, 2 + r)) : full;
    return e.transpose(dw, [1, 0, ...range(2, 2 + r)]);
  }
  // Flat index, in the padded input, of tap t of window o.
  const strides = Sp.map((_, i) => product(Sp.slice(i + 1)));
  const index: number[] = [];
  for (const o of cartesian(O)) {
    for (const t of cartesian(win.k)) index.push(o.reduce((acc, oi, i) => acc + (oi * win.s[i] + t[i] * win.d[i]) * strides[i], 0));
  }
  const padded = e.pad(input, [0, 0, ...win.pb, 0, 0, ...win.pe], a.ft);
  const flat = e.transpose(e.reshape(padded, [N, C, product(Sp)]), [0, 2, 1]);
  const cols = e.op("Gather", [flat, e.intTensor(index, [On, Kn])], { axis: 1 });
  const g = e.reshape(gout, [N, M, On]);
  if (group === 1 && N * On >= 4096 && a.opset >= 11) {
    // Long sums (early, large feature maps; Gemm without C needs opset 11): dW^T = cols^T G^T with the output gradient as the
    // small operand. MLAS packs the second operand, so G x cols would copy all of cols first:
    // 33 vs 42 ms at 64 channels of 56x56, batch 8 (scripts/bench-gradients.ts shapes).
    const dwT = e.op("Gemm", [e.reshape(cols, [N * On, Kn * C]), e.reshape(e.transpose(g, [0, 2, 1]), [N * On, M])], { transA: 1 });
    return e.transpose(e.reshape(dwT, [...win.k, C, M]), [r + 1, r, ...range(0, r)]);
  }
  if (group === 1) {
    const dw = e.op("MatMul", [e.reshape(e.transpose(g, [1, 0, 2]), [M, N * On]), e.reshape(cols, [N * On, Kn * C])]);
    return e.transpose(e.reshape(dw, [M, ...win.k, C]), [0, r + 1, ...range(1, r + 1)]);
  }
  const colsG = e.reshape(e.transpose(e.reshape(cols, [N * On, Kn, group, Cg]), [2, 0, 1, 3]), [group, N * On, Kn * Cg]);
  const gG = e.reshape(e.transpose(e.reshape(g, [N, group, Mg, On]), [1, 2, 0, 3]), [group, Mg, N * On]);
  const dw = e.op("MatMul", [gG, colsG]);
  return e.reshape(e.transpose(e.reshape(dw, [group, Mg, ...win.k, Cg]), [0, 1, 2 + r, ...range(2, 2 + r)]), [M, Cg, ...win.k]);
}

/** Sum over every axis but the channel axis 1: bias and per-channel scale gradients. */
const channelSum = (a: VjpArgs, g: string, rank: number): string => a.e.reduce("ReduceSum", g, [0, ...range(2, rank)], false);

/**
 * Normalisation backward over `axes` given xhat and rstd: rstd * (gh - mean(gh) - xhat * mean(gh * xhat)),
 * where gh is the gradient with respect to xhat.
 */
function normalizedGrad(a: VjpArgs, gh: string, xhat: string, rstd: string, axes: number[]): string {
  const e = a.e;
  const m1 = e.reduce("ReduceMean", gh, axes, true);
  const m2 = e.reduce("ReduceMean", e.mul(gh, xhat), axes, true);
  return e.mul(rstd, e.sub(e.sub(gh, m1), e.mul(xhat, m2)));
}

/** mean and 1/sqrt(var + eps) over `axes` (biased variance, as the normalisation ops use). */
function moments(a: VjpArgs, x: string, axes: number[], eps: number): { xhat: string; rstd: string } {
  const e = a.e;
  const mu = e.reduce("ReduceMean", x, axes, true);
  const xc = e.sub(x, mu);
  const variance = e.reduce("ReduceMean", e.mul(xc, xc), axes, true);
  const rstd = e.op("Reciprocal", [e.op("Sqrt", [e.add(variance, a.k(eps))])]);
  return { xhat: e.mul(xc, rstd), rstd };
}

/** Values of Clip's bound: attribute before opset 11, optional input after. */
function clipBound(a: VjpArgs, which: "min" | "max"): string | undefined {
  const n = a.node;
  if (a.opset < 11) {
    return n.attrs.has(which) ? a.k(attrFloat(n, which, 0)) : undefined;
  }
  const input = n.inputs[which === "min" ? 1 : 2];
  if (!input) return undefined;
  return input;
}

/** Gradient scattered to the argmax positions of a variadic or reducing Max/Min: ties share it evenly, as in torch. */
function extremumMask(a: VjpArgs, x: string, y: string, isMax: boolean): string {
  // x == extremum  <=>  not (x < max)  (resp. not (x > min)); Equal on floats needs opset 11.
  return a.e.mask(not(a, isMax ? lt(a, x, y) : gt(a, x, y)), a.ft);
}

// ---------------------------------------------------------------------------------------------
// Op-specific rules
// ---------------------------------------------------------------------------------------------

function matmulRule(a: VjpArgs): VjpResult {
  const e = a.e;
  const [A, B] = a.node.inputs;
  const sa = a.shape(A);
  const sb = a.shape(B);
  const so = a.shape(a.node.outputs[0]);
  // Promote 1-D operands to matrices as numpy does, then undo at the end.
  const sa2 = sa.length === 1 ? [1, sa[0]] : sa;
  const sb2 = sb.length === 1 ? [sb[0], 1] : sb;
  const batch = so.slice(0, so.length - (sa.length === 1 ? 0 : 1) - (sb.length === 1 ? 0 : 1));
  const so2 = [...batch, sa2[sa2.length - 2], sb2[sb2.length - 1]];
  const g = so2.length === so.length ? a.gy[0]! : e.reshape(a.gy[0]!, so2);
  const A2 = sa2 === sa ? A : e.reshape(A, sa2);
  const B2 = sb2 === sb ? B : e.reshape(B, sb2);
  let gA: string | undefined;
  let gB: string | undefined;
  if (a.wants[0]) {
    gA = e.op("MatMul", [g, e.transpose(B2, swapLast(sb2.length))]);
    gA = e.sumTo(gA, [...so2.slice(0, -1), sa2[sa2.length - 1]], sa2);
    if (sa2 !== sa) gA = e.reshape(gA, sa);
  }
  if (a.wants[1]) {
    gB = e.op("MatMul", [e.transpose(A2, swapLast(sa2.length)), g]);
    gB = e.sumTo(gB, [...so2.slice(0, -2), sb2[sb2.length - 2], so2[so2.length - 1]], sb2);
    if (sb2 !== sb) gB = e.reshape(gB, sb);
  }
  return [gA, gB];
}

function gemmRule(a: VjpArgs): VjpResult {
  const e = a.e;
  const n = a.node;
  const [A, B] = n.inputs;
  const g = a.gy[0]!;
  const alpha = attrFloat(n, "alpha", 1);
  const beta = attrFloat(n, "beta", 1);
  const transA = attrInt(n, "transA", 0) === 1;
  const transB = attrInt(n, "transB", 0) === 1;
  let gA: string | undefined;
  let gB: string | undefined;
  let gC: string | undefined;
  if (a.wants[0]) {
    // d(A') = g B'^T, with B'^T = B when transB.
    const gAp = e.op("MatMul", [g, transB ? B : e.transpose(B, [1, 0])]);
    gA = e.scale(transA ? e.transpose(gAp, [1, 0]) : gAp, alpha, a.ft);
  }
  if (a.wants[1]) {
    // d(B') = A'^T g; with transB, dB = g^T A'.
    const Ap = transA ? e.transpose(A, [1, 0]) : A;
    const gBm = transB ? e.op("MatMul", [e.transpose(g, [1, 0]), Ap]) : e.op("MatMul", [transA ? A : e.transpose(A, [1, 0]), g]);
    gB = e.scale(gBm, alpha, a.ft);
  }
  if (a.wants[2]) gC = e.scale(g, beta, a.ft);
  return [gA, gB, gC];
}

function convRule(a: VjpArgs): VjpResult {
  const n = a.node;
  const [x, w, bias] = n.inputs;
  const xs = a.shape(x);
  const ws = a.shape(w);
  const ys = a.shape(n.outputs[0]);
  const group = attrInt(n, "group", 1);
  const kernel = attrInts(n, "kernel_shape") ?? ws.slice(2);
  const win = window(n, kernel, xs.slice(2), ys.slice(2));
  const g = a.gy[0]!;
  return [
    a.wants[0] ? convInputGrad(a, g, w, ws, win, xs.slice(2), ys.slice(2), group) : undefined,
    a.wants[1] ? convWeightGrad(a, x, xs, g, ys, win, group) : undefined,
    bias && a.wants[2] ? channelSum(a, g, ys.length) : undefined,
  ];
}

function convTransposeRule(a: VjpArgs): VjpResult {
  const e = a.e;
  const n = a.node;
  const [x, w, bias] = n.inputs;
  const xs = a.shape(x);
  const ws = a.shape(w);
  const ys = a.shape(n.outputs[0]);
  const group = attrInt(n, "group", 1);
  const kernel = attrInts(n, "kernel_shape") ?? ws.slice(2);
  const r = kernel.length;
  const s = attrInts(n, "strides") ?? new Array<number>(r).fill(1);
  const d = attrInts(n, "dilations") ?? new Array<number>(r).fill(1);
  const op = attrInts(n, "output_padding") ?? new Array<number>(r).fill(0);
  const autoPad = attrString(n, "auto_pad") ?? "NOTSET";
  let pb: number[];
  let pe: number[];
  if (n.attrs.has("output_shape") || autoPad === "SAME_UPPER" || autoPad === "SAME_LOWER") {
    // onnxruntime 1.30 (measured by finite differences in the rule tests): total padding from the
    // shapes; SAME_UPPER puts the odd pixel at the end, SAME_LOWER and output_shape at the start.
    const total = kernel.map((k, i) => s[i] * (xs[2 + i] - 1) + op[i] + (k - 1) * d[i] + 1 - ys[2 + i]);
    pb = total.map((t) => (autoPad === "SAME_UPPER" ? Math.floor(t / 2) : t - Math.floor(t / 2)));
    pe = total.map((t, i) => t - pb[i]);
  } else {
    const pads = autoPad === "VALID" ? new Array<number>(2 * r).fill(0) : attrInts(n, "pads") ?? new Array<number>(2 * r).fill(0);
    pb = pads.slice(0, r);
    pe = pads.slice(r);
  }
  if ([...pb, ...pe].some((p) => p < 0)) unsupported("its output_shape is larger than the kernel reaches (negative padding)");
  const win: Window = { k: kernel, s, d, pb, pe };
  const g = a.gy[0]!;
  let gx: string | undefined;
  if (a.wants[0]) {
    // The adjoint of a transposed convolution is the convolution with the same weight.
    const convOut = ys.slice(2).map((O, i) => Math.floor((O + pb[i] + pe[i] - (kernel[i] - 1) * d[i] - 1) / s[i]) + 1);
    if (convOut.some((c, i) => c < xs[2 + i])) unsupported("its output padding exceeds the stride");
    gx = e.op("Conv", [g, w], { kernel_shape: kernel, strides: s, dilations: d, pads: [...pb, ...pe], group });
    if (convOut.some((c, i) => c > xs[2 + i])) gx = e.slice(gx, new Array<number>(r).fill(0), xs.slice(2), range(2, 2 + r));
  }
  // dW[c, m', k]: the weight gradient of the convolution that maps g back to x.
  const gw = a.wants[1] ? convWeightGrad(a, g, ys, x, xs, win, group) : undefined;
  return [gx, gw, bias && a.wants[2] ? channelSum(a, g, ys.length) : undefined];
}

function maxPoolRule(a: VjpArgs): VjpResult {
  const e = a.e;
  const n = a.node;
  const x = n.inputs[0];
  const xs = a.shape(x);
  const ys = a.shape(n.outputs[0]);
  if (a.gy[1]) unsupported("the gradient of its Indices output is not defined");
  if (a.opset < 8) unsupported("MaxPool before opset 8 has no Indices output");
  const kernel = attrInts(n, "kernel_shape")!;
  const S = xs.slice(2);
  const O = ys.slice(2);
  const r = kernel.length;
  const win = window(n, kernel, S, O);
  const total = product(xs);
  // Flat argmax indices (row-major over the whole tensor) from a twin MaxPool with storage_order 0.
  let idx = n.outputs[1] && attrInt(n, "storage_order", 0) === 0 ? n.outputs[1] : undefined;
  if (!idx) idx = e.multi("MaxPool", [x], 2, n.proto.attribute.filter((t) => t.name !== "storage_order"))[1];
  const g = a.gy[0]!;
  if (a.opset >= 16) {
    const scattered = e.op("ScatterElements", [e.zeros([total], a.ft), e.reshape(idx, [-1]), e.reshape(g, [-1])], { axis: 0, reduction: "add" });
    return [e.reshape(scattered, xs)];
  }
  const span = win.k.map((k, i) => (k - 1) * win.d[i] + 1);
  if (a.opset >= 11) {
    // ScatterElements overwrites duplicates before opset 16: scatter classes of windows that
    // cannot overlap (every c-th window along each axis, c = ceil(span/stride)) and add them.
    const c = span.map((sp, i) => Math.min(O[i], Math.ceil(sp / win.s[i])));
    const parts: string[] = [];
    const offsets = cartesian(c);
    for (const off of offsets) {
      const axes = range(2, 2 + r);
      const gs = offsets.length === 1 ? g : e.slice(g, off, O, axes, c);
      const is = offsets.length === 1 ? idx : e.slice(idx, off, O, axes, c);
      parts.push(e.op("ScatterElements", [e.zeros([total], a.ft), e.reshape(is, [-1]), e.reshape(gs, [-1])], { axis: 0 }));
    }
    return [e.reshape(parts.length === 1 ? parts[0] : e.op("Sum", parts), xs)];
  }
  const overlapping = span.some((sp, i) => sp > win.s[i]) || [...win.pb, ...win.pe].some((p) => p !== 0);
  if (overlapping && a.opset >= 9) {
    // Opset 9-10: MaxUnpool places values at the flat indices into zeros, overwriting duplicates;
    // as above, unpool classes of windows that cannot overlap (picked with Gather) and add them.
    const c = span.map((sp, i) => Math.min(O[i], Math.ceil(sp / win.s[i])));
    const parts = cartesian(c).map((off) => {
      let gs = g;
      let is = idx!;
      off.forEach((o, i) => {
        if (c[i] === 1) return;
        const pick = e.intTensor(range(0, Math.ceil((O[i] - o) / c[i])).map((j) => o + j * c[i]), [Math.ceil((O[i] - o) / c[i])]);
        gs = e.op("Gather", [gs, pick], { axis: 2 + i });
        is = e.op("Gather", [is, pick], { axis: 2 + i });
      });
      return e.op("MaxUnpool", [gs, is, e.constInts([...xs])], { kernel_shape: win.k, strides: win.s });
    });
    return [parts.length === 1 ? parts[0] : e.op("Sum", parts)];
  }
  // Opset 8 has neither: windows must not overlap. Repeat g and the indices over each window
  // and keep the position the index names.
  if (overlapping) unsupported("overlapping or padded MaxPool windows need MaxUnpool (opset 9)");
  const [N, C] = xs;
  const up = (t: string): string => {
    const inter = [N, C, ...O.flatMap((o) => [o, 1])];
    const rep = [N, C, ...O.flatMap((o, i) => [o, win.s[i]])];
    return e.reshape(e.expand(e.reshape(t, inter), rep), [N, C, ...O.map((o, i) => o * win.s[i])]);
  };
  const upIdx = up(idx);
  let mask: string | undefined;
  let stride = 1;
  for (let i = r - 1; i >= 0; i--) {
    // coordinate along spatial axis i = (idx / stride) mod S_i
    const q = e.op("Div", [upIdx, e.intTensor([stride], [])]);
    const coord = e.op("Sub", [q, e.op("Mul", [e.op("Div", [q, e.intTensor([S[i]], [])]), e.intTensor([S[i]], [])])]);
    const extent = O[i] * win.s[i];
    const posShape = new Array<number>(2 + r).fill(1);
    posShape[2 + i] = extent;
    const eq = e.op("Equal", [coord, e.intTensor(range(0, extent), posShape)]);
    mask = mask ? and(a, mask, eq) : eq;
    stride *= S[i];
  }
  let gx = e.mul(up(g), e.mask(mask!, a.ft));
  const ext = O.map((o, i) => o * win.s[i]);
  if (ext.some((v, i) => v > S[i])) gx = e.slice(gx, new Array<number>(r).fill(0), ext.map((v, i) => Math.min(v, S[i])), range(2, 2 + r));
  if (ext.some((v, i) => v < S[i])) gx = e.pad(gx, [...new Array<number>(2 + r).fill(0), 0, 0, ...ext.map((v, i) => Math.max(0, S[i] - v))], a.ft);
  return [gx];
}

function cartesian(counts: readonly number[]): number[][] {
  let out: number[][] = [[]];
  for (const c of counts) out = out.flatMap((p) => range(0, c).map((i) => [...p, i]));
  return out;
}

function averagePoolRule(a: VjpArgs): VjpResult {
  const e = a.e;
  const n = a.node;
  const xs = a.shape(n.inputs[0]);
  const ys = a.shape(n.outputs[0]);
  const kernel = attrInts(n, "kernel_shape")!;
  const S = xs.slice(2);
  const O = ys.slice(2);
  const win = window(n, kernel, S, O);
  const includePad = attrInt(n, "count_include_pad", 0) === 1;
  // The divisor of each output position: the window's taps inside the (padded) input.
  const perAxis = O.map((o, i) => range(0, o).map((p) => {
    const start = p * win.s[i] - win.pb[i];
    let count = 0;
    for (let j = 0; j < win.k[i]; j++) {
      const at = start + j * win.d[i];
      if (includePad ? at < S[i] + win.pe[i] : at >= 0 && at < S[i]) count++;
    }
    return 1 / count;
  }));
  const inv: number[] = [];
  for (const idx of cartesian(O)) inv.push(idx.reduce((acc, p, i) => acc * perAxis[i][p], 1));
  const g = e.mul(a.gy[0]!, e.floatTensor(inv, [1, 1, ...O], a.ft));
  const C = xs[1];
  const ones = e.floatTensor(new Array<number>(C * product(kernel)).fill(1), [C, 1, ...kernel], a.ft);
  return [windowAdjoint(a, g, ones, win, S, O, C)];
}

function batchNormRule(a: VjpArgs): VjpResult {
  const e = a.e;
  const n = a.node;
  if (attrInt(n, "training_mode", 0) === 1 || n.outputs.slice(1).some(Boolean)) unsupported("BatchNormalization in training mode");
  if (a.opset < 9 && attrInt(n, "spatial", 1) === 0) unsupported("per-activation BatchNormalization (spatial=0)");
  const [x, scale, , mean, variance] = n.inputs;
  const xs = a.shape(x);
  const C = xs[1];
  const cshape = [C, ...new Array<number>(xs.length - 2).fill(1)];
  const eps = attrFloat(n, "epsilon", 1e-5);
  const rstd = e.reshape(e.op("Reciprocal", [e.op("Sqrt", [e.add(variance, a.k(eps))])]), cshape);
  const g = a.gy[0]!;
  const gx = a.wants[0] ? e.mul(g, e.mul(e.reshape(scale, cshape), rstd)) : undefined;
  // rstd is per channel, so it multiplies the channel sums rather than every element.
  const gs = a.wants[1] ? e.mul(channelSum(a, e.mul(g, e.sub(x, e.reshape(mean, cshape))), xs.length), e.reshape(rstd, [C])) : undefined;
  const gb = a.wants[2] ? channelSum(a, g, xs.length) : undefined;
  return [gx, gs, gb];
}

function layerNormRule(a: VjpArgs): VjpResult {
  const n = a.node;
  if (a.gy[1] || a.gy[2]) unsupported("gradients of its Mean/InvStdDev outputs are not supported");
  const [x, scale, bias] = n.inputs;
  const rank = a.shape(x).length;
  const axes = range(norm(attrInt(n, "axis", -1), rank), rank);
  const { xhat, rstd } = moments(a, x, axes, attrFloat(n, "epsilon", 1e-5));
  const g = a.gy[0]!;
  const gh = scale ? a.e.mul(g, scale) : g;
  return [
    a.wants[0] ? normalizedGrad(a, gh, xhat, rstd, axes) : undefined,
    scale && a.wants[1] ? a.e.mul(g, xhat) : undefined,
    bias && a.wants[2] ? g : undefined,
  ];
}

function instanceNormRule(a: VjpArgs): VjpResult {
  const e = a.e;
  const [x, scale] = a.node.inputs;
  const xs = a.shape(x);
  const axes = range(2, xs.length);
  const cshape = [xs[1], ...new Array<number>(xs.length - 2).fill(1)];
  const { xhat, rstd } = moments(a, x, axes, attrFloat(a.node, "epsilon", 1e-5));
  const g = a.gy[0]!;
  return [
    a.wants[0] ? normalizedGrad(a, e.mul(g, e.reshape(scale, cshape)), xhat, rstd, axes) : undefined,
    a.wants[1] ? channelSum(a, e.mul(g, xhat), xs.length) : undefined,
    a.wants[2] ? channelSum(a, g, xs.length) : undefined,
  ];
}

function reduceRule(a: VjpArgs): VjpResult {
  const e = a.e;
  const n = a.node;
  const x = n.inputs[0];
  const xs = a.shape(x);
  const axes = reduceAxes(a);
  if (axes.length === 0) return [a.gy[0]];
  const kept = xs.map((d, i) => (axes.includes(i) ? 1 : d));
  const spread = (t: string): string => e.expand(e.reshape(t, kept), xs);
  const g = spread(a.gy[0]!);
  const y = (): string => spread(n.outputs[0]);
  switch (n.opType) {
    case "ReduceSum": return [g];
    case "ReduceMean": return [e.scale(g, 1 / product(axes.map((i) => xs[i])), a.ft)];
    case "ReduceSumSquare": return [e.mul(g, e.scale(x, 2, a.ft))];
    case "ReduceL2": return [e.mul(g, e.div(x, e.op("Max", [y(), a.k(1e-30)])))];
    case "ReduceL1": return [e.mul(g, e.sign(x, a.ft))];
    case "ReduceLogSumExp": return [e.mul(g, e.op("Exp", [e.sub(x, y())]))];
    case "ReduceMax": case "ReduceMin": {
      const m = extremumMask(a, x, y(), n.opType === "ReduceMax");
      return [e.mul(g, e.div(m, e.expand(e.reduce("ReduceSum", m, axes, true), xs)))];
    }
    default: return unsupported(`no gradient for ${n.opType}`);
  }
}

function sliceRule(a: VjpArgs): VjpResult {
  const e = a.e;
  const n = a.node;
  const x = n.inputs[0];
  const xs = a.shape(x);
  const ys = a.shape(n.outputs[0]);
  const rank = xs.length;
  let starts: number[] | undefined;
  let ends: number[] | undefined;
  let axes: number[] | undefined;
  let steps: number[] | undefined;
  if (a.opset < 10) {
    starts = attrInts(n, "starts");
    ends = attrInts(n, "ends");
    axes = attrInts(n, "axes");
  } else {
    starts = a.ints(n.inputs[1]);
    ends = a.ints(n.inputs[2]);
    axes = n.inputs[3] ? a.ints(n.inputs[3]) : undefined;
    steps = n.inputs[4] ? a.ints(n.inputs[4]) : undefined;
    if (!starts || !ends || (n.inputs[3] && !axes) || (n.inputs[4] && !steps)) unsupported("its bounds are not known");
  }
  axes ??= range(0, starts!.length);
  if (ys.some((d) => d === 0)) return [e.zeros(xs, a.ft)];
  let g = a.gy[0]!;
  let cur = [...ys];
  const pads = new Array<number>(2 * rank).fill(0);
  axes.forEach((ax0, j) => {
    const ax = norm(ax0, rank);
    const D = xs[ax];
    const step = steps?.[j] ?? 1;
    let start = starts![j];
    if (start < 0) start += D;
    start = step > 0 ? Math.min(Math.max(start, 0), D) : Math.min(Math.max(start, 0), D - 1);
    const count = ys[ax];
    let first = start;
    let st = step;
    if (step < 0) {
      // Reverse so positions ascend.
      g = e.slice(g, [-1], [-Number.MAX_SAFE_INTEGER], [ax], [-1]);
      first = start + (count - 1) * step;
      st = -step;
    }
    if (st > 1) {
      // Interleave st-1 zeros after every element, then drop the trailing ones.
      const inter = [...cur.slice(0, ax + 1), 1, ...cur.slice(ax + 1)];
      const padInter = new Array<number>(2 * inter.length).fill(0);
      padInter[inter.length + ax + 1] = st - 1;
      const spread = [...cur];
      spread[ax] = count * st;
      g = e.reshape(e.pad(e.reshape(g, inter), padInter, a.ft), spread);
      g = e.slice(g, [0], [(count - 1) * st + 1], [ax]);
      cur = [...cur];
      cur[ax] = (count - 1) * st + 1;
    }
    pads[ax] = first;
    pads[rank + ax] = D - (first + cur[ax]);
  });
  return [e.pad(g, pads, a.ft)];
}

function padRule(a: VjpArgs): VjpResult {
  const n = a.node;
  const mode = attrString(n, "mode") ?? "constant";
  if (mode !== "constant" && mode !== "reflect" && mode !== "edge") unsupported(`Pad mode "${mode}"`);
  const xs = a.shape(n.inputs[0]);
  const ys = a.shape(n.outputs[0]);
  const rank = xs.length;
  let pads: number[] | undefined;
  if (a.opset < 11) {
    pads = attrInts(n, "pads");
  } else {
    pads = a.ints(n.inputs[1]);
    const axesIn = n.inputs[3];
    if (pads && axesIn) {
      const axes = a.ints(axesIn);
      if (!axes) unsupported("its axes are not known");
      const full = new Array<number>(2 * rank).fill(0);
      axes!.forEach((ax, j) => {
        full[norm(ax, rank)] = pads![j];
        full[rank + norm(ax, rank)] = pads![axes!.length + j];
      });
      pads = full;
    }
  }
  if (!pads) return unsupported("its pads are not known");
  if (mode !== "constant") return [borderPadGrad(a, a.gy[0]!, mode, pads, xs)];
  // Crop where the forward padded, pad back where it cropped (negative pads).
  const starts = range(0, rank).map((i) => Math.max(pads![i], 0));
  const ends = range(0, rank).map((i) => ys[i] - Math.max(pads![rank + i], 0));
  const cropped = pads.some((p) => p > 0) ? a.e.slice(a.gy[0]!, starts, ends, range(0, rank)) : a.gy[0]!;
  return [a.e.pad(cropped, [...range(0, rank).map((i) => Math.max(-pads![i], 0)), ...range(0, rank).map((i) => Math.max(-pads![rank + i], 0))], a.ft)];
}

/**
 * Gradient of reflect/edge padding, one axis at a time (multi-axis padding is the per-axis
 * padding applied in turn): the centre of g, plus each padded border folded back onto the input
 * positions it copied (mirrored for reflect, summed onto the end element for edge).
 */
function borderPadGrad(a: VjpArgs, g: string, mode: string, pads: readonly number[], xs: readonly number[]): string {
  const e = a.e;
  const rank = xs.length;
  if (pads.some((p) => p < 0)) unsupported(`Pad mode "${mode}" with negative pads`);
  if (a.opset < 10) unsupported(`Pad mode "${mode}" needs opset 10 to be differentiated`);
  let cur = g;
  const shape = xs.map((d, i) => d + pads[i] + pads[rank + i]);
  for (let ax = 0; ax < rank; ax++) {
    const [pb, pe] = [pads[ax], pads[rank + ax]];
    if (!pb && !pe) continue;
    const D = xs[ax];
    if (mode === "reflect" && (pb >= D || pe >= D)) unsupported("reflect padding wider than the input");
    const padAxis = (t: string, before: number, after: number): string => {
      const p = new Array<number>(2 * rank).fill(0);
      p[ax] = before;
      p[rank + ax] = after;
      return e.pad(t, p, a.ft);
    };
    const parts = [e.slice(cur, [pb], [pb + D], [ax])];
    if (mode === "reflect") {
      // y[pb - j] = x[j] for j = 1..pb; y[pb + D - 1 + j] = x[D - 1 - j] for j = 1..pe.
      if (pb) parts.push(padAxis(e.slice(cur, [pb - 1], [-shape[ax] - 1], [ax], [-1]), 1, D - 1 - pb));
      if (pe) parts.push(padAxis(e.slice(cur, [pb + D + pe - 1], [pb + D - 1], [ax], [-1]), D - 1 - pe, 1));
    } else {
      if (pb) parts.push(padAxis(e.reduce("ReduceSum", e.slice(cur, [0], [pb], [ax]), [ax], true), 0, D - 1));
      if (pe) parts.push(padAxis(e.reduce("ReduceSum", e.slice(cur, [pb + D], [pb + D + pe], [ax]), [ax], true), D - 1, 0));
    }
    cur = parts.length === 1 ? parts[0] : e.op("Sum", parts);
    shape[ax] = D;
  }
  return cur;
}

function gatherRule(a: VjpArgs): VjpResult {
  const e = a.e;
  const n = a.node;
  const [data, indices] = n.inputs;
  const ds = a.shape(data);
  const is = a.shape(indices);
  const ax = norm(attrInt(n, "axis", 0), ds.length);
  const V = ds[ax];
  const pre = ds.slice(0, ax);
  const post = ds.slice(ax + 1);
  const P = product(is);
  const R = product(pre) * product(post);
  // g has shape pre + indices + post; bring the index axes to the front: [P, pre*post].
  const k = is.length;
  const perm = [...range(ax, ax + k), ...range(0, ax), ...range(ax + k, ax + k + post.length)];
  const g2 = e.reshape(e.transpose(a.gy[0]!, perm), [P, R]);
  let idx = e.reshape(e.op("Cast", [indices], { to: DT.INT64 }), [P, 1]);
  if (a.opset >= 9) {
    const negative = e.op("Cast", [e.op("Less", [idx, e.intTensor([0], [])])], { to: DT.INT64 });
    idx = e.op("Add", [idx, e.op("Mul", [negative, e.intTensor([V], [])])]);
  }
  let table: string;
  if (a.opset >= 16) {
    table = e.op("ScatterND", [e.zeros([V, R], a.ft), idx, g2], { reduction: "add" });
  } else {
    // One-hot [P, V] by comparison with 0..V-1, then (one-hot)^T g: sums repeated ids.
    const onehot = e.mask(e.op("Equal", [idx, e.intTensor(range(0, V), [1, V])]), a.ft);
    table = e.op("MatMul", [e.transpose(onehot, [1, 0]), g2]);
  }
  const back = e.reshape(table, [V, ...pre, ...post]);
  return [e.transpose(back, [...range(1, 1 + ax), 0, ...range(1 + ax, ds.length)])];
}

function splitRule(a: VjpArgs): VjpResult {
  const n = a.node;
  const x = n.inputs[0];
  const rank = a.shape(x).length;
  const ax = norm(attrInt(n, "axis", 0), rank);
  const parts = n.outputs.map((o, i) => a.gy[i] ?? a.e.zeros(a.shape(o), a.ft));
  return [parts.length === 1 ? parts[0] : a.e.op("Concat", parts, { axis: ax })];
}

function concatRule(a: VjpArgs): VjpResult {
  const n = a.node;
  const rank = a.shape(n.outputs[0]).length;
  const ax = norm(attrInt(n, "axis", 0), rank);
  let offset = 0;
  return n.inputs.map((input, i) => {
    const len = a.shape(input)[ax];
    const start = offset;
    offset += len;
    if (!a.wants[i]) return undefined;
    return a.e.slice(a.gy[0]!, [start], [start + len], [ax]);
  });
}

function tileRule(a: VjpArgs): VjpResult {
  const xs = a.shape(a.node.inputs[0]);
  const ys = a.shape(a.node.outputs[0]);
  const reps = xs.map((d, i) => ys[i] / d);
  const inter = xs.flatMap((d, i) => [reps[i], d]);
  return [a.e.reshape(a.e.reduce("ReduceSum", a.e.reshape(a.gy[0]!, inter), range(0, xs.length).map((i) => 2 * i), false), xs)];
}

function dropoutRule(a: VjpArgs): VjpResult {
  const n = a.node;
  if (a.opset < 7 && attrInt(n, "is_test", 0) === 0) unsupported("Dropout in training mode (random masks)");
  if (a.opset >= 12 && n.inputs[2]) {
    const training = a.ints(n.inputs[2]);
    if (!training || training[0] !== 0) unsupported("Dropout in training mode (random masks)");
  }
  return [a.gy[0]];
}

function softmaxRule(a: VjpArgs): VjpResult {
  const e = a.e;
  const y = a.node.outputs[0];
  const g = a.gy[0]!;
  return [e.mul(y, e.sub(g, e.reduce("ReduceSum", e.mul(g, y), softmaxAxes(a), true)))];
}

function logSoftmaxRule(a: VjpArgs): VjpResult {
  const e = a.e;
  const g = a.gy[0]!;
  return [e.sub(g, e.mul(e.op("Exp", [a.node.outputs[0]]), e.reduce("ReduceSum", g, softmaxAxes(a), true)))];
}

function powRule(a: VjpArgs): VjpResult {
  const e = a.e;
  const [x, p] = a.node.inputs;
  const g = a.gy[0]!;
  const pv = a.floats(p) ?? a.ints(p);
  if (pv && pv.length === 1) {
    const k = pv[0];
    if (k === 0) return [undefined];
    if (k === 1) return [g];
    if (k === 2) return [e.mul(g, e.scale(x, 2, a.ft))];
    return [e.mul(g, e.scale(e.op("Pow", [x, a.k(k - 1)]), k, a.ft))];
  }
  const pf = e.op("Cast", [p], { to: onnxFloat(a.ft) });
  return [e.mul(g, e.mul(pf, e.op("Pow", [x, e.sub(pf, a.k(1))])))];
}

function geluRule(a: VjpArgs): VjpResult {
  const e = a.e;
  const x = a.node.inputs[0];
  const g = a.gy[0]!;
  if ((attrString(a.node, "approximate") ?? "none") === "tanh") {
    // torch's tanh-approximation backward.
    const beta = Math.sqrt(2 / Math.PI);
    const kappa = 0.044715;
    const x2 = e.mul(x, x);
    const inner = e.scale(e.add(x, e.scale(e.mul(x2, x), kappa, a.ft)), beta, a.ft);
    const t = e.op("Tanh", [inner]);
    const left = e.scale(x, 0.5, a.ft);
    const right = e.add(t, a.k(1));
    const dInner = e.scale(e.add(a.k(1), e.scale(x2, 3 * kappa, a.ft)), beta, a.ft);
    const dRight = e.mul(e.sub(a.k(1), e.mul(t, t)), dInner);
    return [e.mul(g, e.add(e.scale(right, 0.5, a.ft), e.mul(left, dRight)))];
  }
  const cdf = e.scale(e.add(a.k(1), e.op("Erf", [e.scale(x, Math.SQRT1_2, a.ft)])), 0.5, a.ft);
  const pdf = e.scale(e.op("Exp", [e.scale(e.mul(x, x), -0.5, a.ft)]), 1 / Math.sqrt(2 * Math.PI), a.ft);
  return [e.mul(g, e.add(cdf, e.mul(x, pdf)))];
}

function variadicExtremum(isMax: boolean): VjpRule {
  return {
    unbroadcast: "all",
    vjp: (a) => {
      const e = a.e;
      const y = a.node.outputs[0];
      const g = a.gy[0]!;
      if (a.node.inputs.length === 1) return [g];
      const masks = a.node.inputs.map((x) => extremumMask(a, x, y, isMax));
      const count = e.op("Sum", masks);
      return masks.map((m, i) => (a.wants[i] ? e.mul(g, e.div(m, count)) : undefined));
    },
  };
}

// ---------------------------------------------------------------------------------------------
// The table
// ---------------------------------------------------------------------------------------------

/**
 * The vector-Jacobian rules: op type -> the ONNX nodes that map output gradients to input
 * gradients. Conventions follow torch autograd where the derivative is undefined (ReLU at 0 is
 * 0, Max/Min ties share the gradient, Clip passes at the bounds). An op not listed here stops the
 * gradient, and the report names it.
 */
export const VJP_RULES: Readonly<Record<string, VjpRule>> = {
  // Shape and identity ops
  Identity: { vjp: (a) => [a.gy[0]] },
  Dropout: { constants: [1, 2], vjp: dropoutRule },
  // Back to the input's type (float64 -> float32 when the cast went up), not the output's.
  Cast: {
    vjp: (a) => {
      const from = a.dtype(a.node.inputs[0]);
      if (from !== "float32" && from !== "float64") unsupported(`the gradient of a Cast from ${from ?? "an untyped tensor"} is not supported (float32 and float64 are)`);
      return [from === a.ft ? a.gy[0] : a.e.op("Cast", [a.gy[0]!], { to: onnxFloat(from as FloatType) })];
    },
  },
  Reshape: reshapeBack,
  Flatten: reshapeBack,
  Squeeze: reshapeBack,
  Unsqueeze: reshapeBack,
  Transpose: {
    vjp: (a) => {
      const rank = a.shape(a.node.inputs[0]).length;
      const perm = attrInts(a.node, "perm") ?? range(0, rank).reverse();
      const inverse = new Array<number>(rank);
      perm.forEach((p, i) => (inverse[p] = i));
      return [a.e.transpose(a.gy[0]!, inverse)];
    },
  },
  Expand: { unbroadcast: [0], vjp: (a) => [a.gy[0]] },
  Tile: { vjp: tileRule },
  Concat: { vjp: concatRule },
  Split: { vjp: splitRule },
  Slice: { vjp: sliceRule },
  Pad: { constants: [2], vjp: padRule },
  Gather: { vjp: gatherRule },

  // Arithmetic with broadcasting
  Add: { unbroadcast: "all", vjp: (a) => [a.gy[0], a.gy[0]] },
  Sub: { unbroadcast: "all", vjp: (a) => [a.gy[0], a.wants[1] ? a.e.neg(a.gy[0]!) : undefined] },
  Mul: {
    unbroadcast: "all",
    vjp: (a) => {
      const [x, y] = a.node.inputs;
      return [a.wants[0] ? a.e.mul(a.gy[0]!, y) : undefined, a.wants[1] ? a.e.mul(a.gy[0]!, x) : undefined];
    },
  },
  Div: {
    unbroadcast: "all",
    vjp: (a) => {
      const [, d] = a.node.inputs;
      const g = a.gy[0]!;
      return [a.wants[0] ? a.e.div(g, d) : undefined, a.wants[1] ? a.e.neg(a.e.div(a.e.mul(g, a.node.outputs[0]), d)) : undefined];
    },
  },
  Sum: { unbroadcast: "all", vjp: (a) => a.node.inputs.map(() => a.gy[0]) },
  Mean: { unbroadcast: "all", vjp: (a) => a.node.inputs.map(() => a.e.scale(a.gy[0]!, 1 / a.node.inputs.length, a.ft)) },
  Neg: { vjp: (a) => [a.e.neg(a.gy[0]!)] },
  Pow: { unbroadcast: [0], constants: [1], vjp: powRule },
  Max: variadicExtremum(true),
  Min: variadicExtremum(false),
  Where: {
    unbroadcast: [1, 2],
    vjp: (a) => {
      const m = a.e.mask(a.node.inputs[0], a.ft);
      const g = a.gy[0]!;
      return [undefined, a.wants[1] ? a.e.mul(g, m) : undefined, a.wants[2] ? a.e.mul(g, a.e.sub(a.k(1), m)) : undefined];
    },
  },

  // Elementwise functions
  Sqrt: unary((a, _x, y) => a.e.div(a.k(0.5), y)),
  Exp: unary((_a, _x, y) => y),
  Log: unary((a, x) => a.e.op("Reciprocal", [x])),
  Reciprocal: unary((a, _x, y) => a.e.neg(a.e.mul(y, y))),
  Abs: unary((a, x) => a.e.sign(x, a.ft)),
  Sin: unary((a, x) => a.e.op("Cos", [x])),
  Cos: unary((a, x) => a.e.neg(a.e.op("Sin", [x]))),
  Erf: unary((a, x) => a.e.scale(a.e.op("Exp", [a.e.neg(a.e.mul(x, x))]), 2 / Math.sqrt(Math.PI), a.ft)),
  Floor: { vjp: () => [undefined] },
  Ceil: { vjp: () => [undefined] },
  Round: { vjp: () => [undefined] },
  Sign: { vjp: () => [undefined] },

  // Activations
  // Where(y > 0, g, 0): one pass fewer than g * Cast(y > 0), and ReLU is on every hot path. The
  // mask is read from the output (y > 0 exactly when x > 0), so onnxruntime can still fuse the
  // ReLU into the Conv (or BatchNorm) before it.
  Relu: { vjp: (a) => [a.opset >= 9 ? a.e.op("Where", [gt(a, a.node.outputs[0], 0), a.gy[0]!, a.k(0)]) : a.e.mul(a.gy[0]!, a.e.mask(gt(a, a.node.outputs[0], 0), a.ft))] },
  LeakyRelu: unary((a, x) => {
    const alpha = attrFloat(a.node, "alpha", 0.01);
    return a.e.add(a.e.scale(a.e.mask(gt(a, x, 0), a.ft), 1 - alpha, a.ft), a.k(alpha));
  }),
  PRelu: {
    unbroadcast: "all",
    vjp: (a) => {
      const [x, slope] = a.node.inputs;
      const pos = a.e.mask(gt(a, x, 0), a.ft);
      const neg = a.e.sub(a.k(1), pos);
      const g = a.gy[0]!;
      return [
        a.wants[0] ? a.e.mul(g, a.e.add(pos, a.e.mul(neg, slope))) : undefined,
        a.wants[1] ? a.e.mul(g, a.e.mul(neg, x)) : undefined,
      ];
    },
  },
  Elu: unary((a, x, y) => {
    const pos = a.e.mask(gt(a, x, 0), a.ft);
    return a.e.add(pos, a.e.mul(a.e.sub(a.k(1), pos), a.e.add(y, a.k(attrFloat(a.node, "alpha", 1)))));
  }),
  Selu: unary((a, x, y) => {
    const alpha = attrFloat(a.node, "alpha", 1.6732632423543772);
    const gamma = attrFloat(a.node, "gamma", 1.0507009873554805);
    const pos = a.e.mask(gt(a, x, 0), a.ft);
    return a.e.add(a.e.scale(pos, gamma, a.ft), a.e.mul(a.e.sub(a.k(1), pos), a.e.add(y, a.k(alpha * gamma))));
  }),
  Sigmoid: unary((a, _x, y) => a.e.mul(y, a.e.sub(a.k(1), y))),
  HardSigmoid: unary((a, _x, y) => a.e.scale(a.e.mask(and(a, gt(a, y, 0), lt(a, y, 1)), a.ft), attrFloat(a.node, "alpha", 0.2), a.ft)),
  HardSwish: unary((a, x) => {
    // torch: 0 below -3, x/3 + 1/2 in [-3, 3], 1 above 3.
    const low = lt(a, x, -3);
    const high = gt(a, x, 3);
    const mid = a.e.mask(not(a, a.e.op("Or", [low, high])), a.ft);
    return a.e.add(a.e.mul(mid, a.e.add(a.e.scale(x, 1 / 3, a.ft), a.k(0.5))), a.e.mask(high, a.ft));
  }),
  Tanh: unary((a, _x, y) => a.e.sub(a.k(1), a.e.mul(y, y))),
  Softplus: unary((a, x) => a.e.op("Sigmoid", [x])),
  Softsign: unary((a, x) => {
    const d = a.e.add(a.k(1), a.e.op("Abs", [x]));
    return a.e.op("Reciprocal", [a.e.mul(d, d)]);
  }),
  Gelu: { vjp: geluRule },
  Clip: {
    constants: [1, 2],
    vjp: (a) => {
      const x = a.node.inputs[0];
      const lo = clipBound(a, "min");
      const hi = clipBound(a, "max");
      let m: string | undefined;
      if (lo) m = not(a, lt(a, x, lo));
      if (hi) m = m ? and(a, m, not(a, gt(a, x, hi))) : not(a, gt(a, x, hi));
      return [m ? a.e.mul(a.gy[0]!, a.e.mask(m, a.ft)) : a.gy[0]];
    },
  },
  Softmax: { vjp: softmaxRule },
  LogSoftmax: { vjp: logSoftmaxRule },

  // Linear algebra and convolutions
  MatMul: { vjp: matmulRule },
  Gemm: { unbroadcast: [2], vjp: gemmRule },
  Conv: { vjp: convRule },
  ConvTranspose: { vjp: convTransposeRule },

  // Pooling
  MaxPool: { vjp: maxPoolRule },
  AveragePool: { vjp: averagePoolRule },
  GlobalAveragePool: {
    vjp: (a) => {
      const xs = a.shape(a.node.inputs[0]);
      return [a.e.expand(a.e.scale(a.gy[0]!, 1 / product(xs.slice(2)), a.ft), xs)];
    },
  },
  GlobalMaxPool: {
    vjp: (a) => {
      const e = a.e;
      const xs = a.shape(a.node.inputs[0]);
      const m = extremumMask(a, a.node.inputs[0], a.node.outputs[0], true);
      return [e.mul(a.gy[0]!, e.div(m, e.reduce("ReduceSum", m, range(2, xs.length), true)))];
    },
  },

  // Normalizations (inference mode)
  BatchNormalization: { statistics: [3, 4], vjp: batchNormRule },
  LayerNormalization: { unbroadcast: [1, 2], vjp: layerNormRule },
  InstanceNormalization: { vjp: instanceNormRule },

  // Reductions
  ReduceSum: { vjp: reduceRule },
  ReduceMean: { vjp: reduceRule },
  ReduceSumSquare: { vjp: reduceRule },
  ReduceL1: { vjp: reduceRule },
  ReduceL2: { vjp: reduceRule },
  ReduceLogSumExp: { vjp: reduceRule },
  ReduceMax: { vjp: reduceRule },
  ReduceMin: { vjp: reduceRule },

  // Recurrent ops: backpropagation through time, unrolled (recurrent.ts; called lazily, the two modules import each other)
  LSTM: { vjp: (a) => lstmVjp(a) },
  GRU: { vjp: (a) => gruVjp(a) },
  RNN: { vjp: (a) => rnnVjp(a) },
};
