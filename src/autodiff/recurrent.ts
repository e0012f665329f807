import { create } from "@bufbuild/protobuf";
import { AttributeProto_AttributeType as AT, AttributeProtoSchema } from "../onnx/gen/onnx_pb";
import { attrFloat, attrInt, attrString } from "../onnx/model";
import type { VjpArgs, VjpResult } from "./rules";
import { VjpUnsupported } from "./rules";

/**
 * Vector-Jacobian rules of the ONNX recurrent ops LSTM, GRU and RNN: backpropagation through
 * time, unrolled into primitive ONNX ops.
 *
 * Shapes are static per probe batch, so the sequence length T is known and the rule emits one
 * small block of nodes per time step. Everything that does not depend on the recurrence runs
 * batched over all steps: the input projection X W^T, the gate activations and their derivative
 * coefficients (recomputed from the node's own Y output when the graph computes it, so only the
 * LSTM cell-state recurrence is replayed step by step), and at the end the weight, bias and input
 * gradients as one MatMul each over the gate gradients of all steps. What stays sequential is the
 * backward recurrence itself: per step a handful of elementwise ops and one MatMul by R.
 *
 * Supported: directions forward, reverse and bidirectional; layout 0 and 1; activations Sigmoid,
 * Tanh and Relu in any slot (the defaults are Sigmoid/Tanh/Tanh for LSTM, Sigmoid/Tanh for GRU,
 * Tanh for RNN); GRU linear_before_reset 0 and 1; LSTM peepholes; gradients of all outputs
 * (Y, Y_h, Y_c) to X, W, R, B, initial_h, initial_c and P. Refused with a reason (the builder
 * stops the gradient there): clip, input_forget, other activations, sequence_lens shorter than
 * the sequence (or unknown), and sequences longer than {@link MAX_RECURRENT_STEPS} steps (both
 * directions counted).
 */

/**
 * Most time steps the rules unroll, both directions of a bidirectional node counted: 5-20 nodes
 * per step and direction. onnxruntime's session creation grows faster than linearly with the node
 * count (measured for one LSTM, hidden 64, batch 8: 0.3 s at 64 steps, 2.2 s at 512, 7-12 s at
 * 1,024), so longer sequences are refused rather than stalling the probe.
 */
export const MAX_RECURRENT_STEPS = 512;

type Act = "sigmoid" | "tanh" | "relu";
type Direction = "forward" | "reverse";

const fail = (reason: string): never => {
  throw new VjpUnsupported(reason);
};

const ACTS: Record<string, Act> = { sigmoid: "sigmoid", tanh: "tanh", relu: "relu" };
const ACT_OP: Record<Act, string> = { sigmoid: "Sigmoid", tanh: "Tanh", relu: "Relu" };

/** Everything a cell needs, with X, Y and the output gradients in layout 0. */
interface Setup {
  readonly op: string;
  readonly T: number;
  readonly N: number;
  readonly I: number;
  readonly H: number;
  readonly nd: number;
  readonly layout: number;
  readonly dirs: readonly Direction[];
  readonly acts: readonly (readonly Act[])[];
  /** X as [T, N, I]. */
  readonly x: string;
  /** Y as [T, nd, N, H], when the node computes it. */
  readonly y?: string;
  /** Gradients of Y ([T, nd, N, H]), Y_h and Y_c ([nd, N, H]). */
  readonly gY?: string;
  readonly gYh?: string;
  readonly gYc?: string;
}

/** Per-direction input gradients, each without the direction axis. */
interface DirGrads {
  dX?: string;
  dW?: string;
  dR?: string;
  dB?: string;
  dh0?: string;
  dc0?: string;
  dP?: string;
}

function setup(a: VjpArgs, gates: number, actsPerDirection: number, defaults: readonly Act[]): Setup {
  const n = a.node;
  const e = a.e;
  const op = n.opType;
  const [X, W] = n.inputs;
  const layout = attrInt(n, "layout", 0);
  if (layout !== 0 && layout !== 1) fail(`${op} with layout ${layout}`);
  if (n.attrs.has("clip")) fail(`${op} with clip (cell clipping at ±${attrFloat(n, "clip", 0)}) has no gradient rule`);
  if (op === "LSTM" && attrInt(n, "input_forget", 0) !== 0) fail("LSTM with input_forget (coupled input and forget gates) has no gradient rule");
  const xs = a.shape(X);
  const ws = a.shape(W);
  if (xs.length !== 3 || ws.length !== 3) fail(`${op} with X of rank ${xs.length} and W of rank ${ws.length}`);
  const [T, N, I] = layout === 0 ? xs : [xs[1], xs[0], xs[2]];
  const nd = ws[0];
  if (ws[1] % gates !== 0) fail(`${op} weight of shape [${ws}] is not ${gates} gates`);
  const H = ws[1] / gates;
  const hidden = attrInt(n, "hidden_size", H);
  if (hidden !== H) fail(`${op} hidden_size ${hidden} does not match its weight of shape [${ws}]`);
  const direction = attrString(n, "direction") ?? "forward";
  const dirs: Direction[] = direction === "bidirectional" ? ["forward", "reverse"] : direction === "forward" || direction === "reverse" ? [direction] : fail(`${op} with direction "${direction}"`);
  if (dirs.length !== nd) fail(`${op} direction ${direction} with ${nd} weight directions`);
  const given = n.attrs.get("activations")?.strings.map((s) => new TextDecoder().decode(s));
  if (given && given.length !== actsPerDirection * nd) fail(`${op} with ${given.length} activations (expected ${actsPerDirection * nd})`);
  const acts = dirs.map((_, d) => {
    if (!given) return defaults;
    return given.slice(d * actsPerDirection, (d + 1) * actsPerDirection).map((s) => ACTS[s.toLowerCase()] ?? fail(`${op} with activation ${s} (the rules support Sigmoid, Tanh and Relu)`));
  });
  const lens = n.inputs[4];
  if (lens) {
    const v = a.ints(lens);
    if (!v) fail(`${op} with sequence_lens computed at run time`);
    if (v!.some((l) => l !== T)) fail(`${op} with sequence_lens shorter than the sequence (${T} steps; padded batches) has no gradient rule`);
  }
  if (T < 1) fail(`${op} over an empty sequence`);
  if (T * nd > MAX_RECURRENT_STEPS) fail(`${op} over ${T} time steps${nd > 1 ? " in both directions" : ""}: the backward pass is unrolled step by step and limited to ${MAX_RECURRENT_STEPS} steps (directions counted separately)`);
  const yName = n.outputs[0];
  const toL0 = (t: string | undefined, perm: number[]): string | undefined => (t && layout === 1 ? e.transpose(t, perm) : t);
  return {
    op, T, N, I, H, nd, layout, dirs, acts,
    x: toL0(X, [1, 0, 2])!,
    y: toL0(yName || undefined, [1, 2, 0, 3]),
    gY: toL0(a.gy[0], [1, 2, 0, 3]),
    gYh: toL0(a.gy[1], [1, 0, 2]),
    gYc: toL0(a.gy[2], [1, 0, 2]),
  };
}

// ---------------------------------------------------------------------------------------------
// Emission helpers
// ---------------------------------------------------------------------------------------------

/** Split along `axis` into parts of the given sizes, in the form of the model's opset. */
function split(a: VjpArgs, x: string, axis: number, sizes: readonly number[]): string[] {
  if (sizes.length === 1) return [x];
  const e = a.e;
  const axisAttr = create(AttributeProtoSchema, { name: "axis", type: AT.INT, i: BigInt(axis) });
  if (a.opset >= 13) return e.multi("Split", [x, e.constInts([...sizes])], sizes.length, [axisAttr]);
  return e.multi("Split", [x], sizes.length, [axisAttr, create(AttributeProtoSchema, { name: "split", type: AT.INTS, ints: sizes.map(BigInt) })]);
}

/** The T time steps of a [T, ...] tensor, each [1, ...], indexed by time. */
const steps = (a: VjpArgs, x: string, T: number): string[] => split(a, x, 0, new Array<number>(T).fill(1));

const cat = (a: VjpArgs, xs: readonly string[], axis: number): string => (xs.length === 1 ? xs[0] : a.e.op("Concat", [...xs], { axis }));

/** a + b where undefined is zero. */
function plus(a: VjpArgs, x: string | undefined, y: string | undefined): string | undefined {
  if (x === undefined) return y;
  if (y === undefined) return x;
  return a.e.add(x, y);
}

const activate = (a: VjpArgs, f: Act, z: string): string => a.e.op(ACT_OP[f], [z]);

/** f'(z) written with y = f(z). */
function slope(a: VjpArgs, f: Act, y: string): string {
  const e = a.e;
  if (f === "sigmoid") return e.mul(y, e.sub(a.k(1), y));
  if (f === "tanh") return e.sub(a.k(1), e.mul(y, y));
  return e.mask(e.op("Greater", [y, a.k(0)]), a.ft);
}

/** Direction d of a tensor whose direction axis is `axis`, reshaped to `shape`. */
function direction(a: VjpArgs, s: Setup, t: string, d: number, axis: number, shape: readonly number[]): string {
  return a.e.reshape(s.nd === 1 ? t : a.e.slice(t, [d], [d + 1], [axis]), shape);
}

/** Time steps in processing order. */
const order = (T: number, dir: Direction): number[] => Array.from({ length: T }, (_, s) => (dir === "forward" ? s : T - 1 - s));

/** The state before each step, in time order, from all states [T, N, H] and the initial one [1, N, H]. */
function previous(a: VjpArgs, all: string, initial: string, T: number, dir: Direction): string {
  if (T === 1) return initial;
  return dir === "forward"
    ? cat(a, [initial, a.e.slice(all, [0], [T - 1], [0])], 0)
    : cat(a, [a.e.slice(all, [1], [T], [0]), initial], 0);
}

/** Per-direction operands: W [G H, I], R [G H, H], the two bias halves [G H], h0/c0 [1, N, H]. */
function operands(a: VjpArgs, s: Setup, d: number, gates: number) {
  const n = a.node;
  const e = a.e;
  const GH = gates * s.H;
  const W = direction(a, s, n.inputs[1], d, 0, [GH, s.I]);
  const R = direction(a, s, n.inputs[2], d, 0, [GH, s.H]);
  let Wb: string | undefined;
  let Rb: string | undefined;
  if (n.inputs[3]) {
    const B = direction(a, s, n.inputs[3], d, 0, [2 * GH]);
    Wb = e.slice(B, [0], [GH], [0]);
    Rb = e.slice(B, [GH], [2 * GH], [0]);
  }
  const state = (k: number): string => {
    const t = n.inputs[k];
    if (!t) return e.zeros([1, s.N, s.H], a.ft);
    return direction(a, s, t, d, s.layout === 0 ? 0 : 1, [1, s.N, s.H]);
  };
  return { W, R, Wb, Rb, h0: state(5), c0: state(6) };
}

/** Stacks per-direction gradients along a new direction axis; per-direction shape `shape`. */
function stack(a: VjpArgs, s: Setup, parts: readonly (string | undefined)[], shape: readonly number[]): string {
  const full = parts.map((p) => (p === undefined ? a.e.zeros(shape, a.ft) : p));
  return cat(a, full.map((p) => a.e.reshape(p, [1, ...shape])), 0);
}

/** Assembles the per-direction results into the node's input gradients. */
function assemble(a: VjpArgs, s: Setup, per: readonly DirGrads[], GH: number): (string | undefined)[] {
  const e = a.e;
  const out: (string | undefined)[] = new Array<string | undefined>(a.node.inputs.length).fill(undefined);
  const w = a.wants;
  if (w[0]) {
    const parts = per.map((p) => p.dX).filter((p): p is string => !!p);
    const dx = parts.length === 1 ? parts[0] : e.op("Sum", parts);
    out[0] = s.layout === 1 ? e.transpose(dx, [1, 0, 2]) : dx;
  }
  if (w[1]) out[1] = stack(a, s, per.map((p) => p.dW), [GH, s.I]);
  if (w[2]) out[2] = stack(a, s, per.map((p) => p.dR), [GH, s.H]);
  if (w[3]) out[3] = stack(a, s, per.map((p) => p.dB), [2 * GH]);
  for (const [k, key] of [[5, "dh0"], [6, "dc0"]] as const) {
    if (!w[k]) continue;
    const g = stack(a, s, per.map((p) => p[key]), [s.N, s.H]);
    out[k] = s.layout === 1 ? e.transpose(g, [1, 0, 2]) : g;
  }
  if (w[7]) out[7] = stack(a, s, per.map((p) => p.dP), [3 * s.H]);
  return out;
}

/**
 * The gradients that follow from dA, the gradient of the gate pre-activations of all steps
 * [T, N, G H] (time order): X through W, W through X, the input-side bias.
 */
function inputSide(a: VjpArgs, s: Setup, dA: string, W: string, GH: number): Pick<DirGrads, "dX" | "dW"> & { dWb?: string } {
  const e = a.e;
  const w = a.wants;
  const TN = s.T * s.N;
  return {
    dX: w[0] ? e.op("MatMul", [dA, W]) : undefined,
    dW: w[1] ? weightGrad(a, dA, s.x, TN, GH, s.I) : undefined,
    dWb: w[3] ? e.reduce("ReduceSum", dA, [0, 1], false) : undefined,
  };
}

/** sum over steps and batch of g_t^T v_t: [G, K] from g [T, N, G] and v [T, N, K]. */
function weightGrad(a: VjpArgs, g: string, v: string, TN: number, G: number, K: number): string {
  const e = a.e;
  return e.op("MatMul", [e.transpose(e.reshape(g, [TN, G]), [1, 0]), e.reshape(v, [TN, K])]);
}

/** The gradient of Y (and of the final state) of direction d, per step in time order. */
function seeds(a: VjpArgs, s: Setup, d: number) {
  const gY = s.gY ? steps(a, direction(a, s, s.gY, d, 1, [s.T, s.N, s.H]), s.T) : undefined;
  const gYh = s.gYh ? direction(a, s, s.gYh, d, 0, [1, s.N, s.H]) : undefined;
  const gYc = s.gYc ? direction(a, s, s.gYc, d, 0, [1, s.N, s.H]) : undefined;
  return { gY, gYh, gYc };
}

// ---------------------------------------------------------------------------------------------
// LSTM: gates i, o, f, c (ONNX order)
// ---------------------------------------------------------------------------------------------

function lstmDirection(a: VjpArgs, s: Setup, d: number): DirGrads {
  const e = a.e;
  const { T, N, H } = s;
  const GH = 4 * H;
  const [fa, ga, ha] = s.acts[d];
  const dir = s.dirs[d];
  const times = order(T, dir);
  const { W, R, Wb, Rb, h0, c0 } = operands(a, s, d, 4);
  const RT = e.transpose(R, [1, 0]);
  const peep = a.node.inputs[7] ? split(a, direction(a, s, a.node.inputs[7], d, 0, [3 * H]), 0, [H, H, H]) : undefined;
  let XW = e.op("MatMul", [s.x, e.transpose(W, [1, 0])]);
  if (Wb && Rb) XW = e.add(XW, e.add(Wb, Rb));

  // Forward, recomputed: gates I, O, F, G (the cell candidate), cell states C, and the states
  // before each step, all [T, N, H] in time order.
  let I: string, O: string, F: string, G: string, C: string, Cprev: string, Hprev: string;
  if (s.y && !peep) {
    Hprev = previous(a, direction(a, s, s.y, d, 1, [T, N, H]), h0, T, dir);
    const [zi, zo, zf, zc] = split(a, e.add(XW, e.op("MatMul", [Hprev, RT])), 2, [H, H, H, H]);
    [I, O, F, G] = [activate(a, fa, zi), activate(a, fa, zo), activate(a, fa, zf), activate(a, ga, zc)];
    const Fs = steps(a, F, T);
    const IGs = steps(a, e.mul(I, G), T);
    const Cs: string[] = new Array<string>(T);
    let c = c0;
    for (const t of times) c = Cs[t] = e.add(e.mul(Fs[t], c), IGs[t]);
    C = cat(a, Cs, 0);
    Cprev = previous(a, C, c0, T, dir);
  } else {
    const XWs = steps(a, XW, T);
    const rec = { I: [] as string[], O: [] as string[], F: [] as string[], G: [] as string[], C: [] as string[], Cp: [] as string[], Hp: [] as string[] };
    let h = h0;
    let c = c0;
    for (const t of times) {
      const z = split(a, e.add(XWs[t], e.op("MatMul", [h, RT])), 2, [H, H, H, H]);
      let [zi, zo, zf] = z;
      const zc = z[3];
      if (peep) {
        zi = e.add(zi, e.mul(peep[0], c));
        zf = e.add(zf, e.mul(peep[2], c));
      }
      const i = activate(a, fa, zi);
      const f = activate(a, fa, zf);
      const g = activate(a, ga, zc);
      const cn = e.add(e.mul(f, c), e.mul(i, g));
      if (peep) zo = e.add(zo, e.mul(peep[1], cn));
      const o = activate(a, fa, zo);
      rec.I[t] = i; rec.O[t] = o; rec.F[t] = f; rec.G[t] = g; rec.C[t] = cn; rec.Cp[t] = c; rec.Hp[t] = h;
      h = e.mul(o, activate(a, ha, cn));
      c = cn;
    }
    [I, O, F, G, C, Cprev, Hprev] = [rec.I, rec.O, rec.F, rec.G, rec.C, rec.Cp, rec.Hp].map((xs) => cat(a, xs, 0));
  }
  const HC = activate(a, ha, C);

  // Backward through time. With dH, dC the gradients of the step's outputs H_t and C_t:
  // dC_t = dC(from t+1) * F_{t+1} + dH_t * O h'(C_t) [+ dz_o P_o];  dz_o = dH_t h(C_t) f'(o);
  // dz_i = dC_t G f'(i); dz_f = dC_t C_{t-1} f'(f); dz_c = dC_t I g'(G); dH_{t-1} = dz_t R.
  const Ao = steps(a, e.mul(O, slope(a, ha, HC)), T);
  const Ko = steps(a, e.mul(HC, slope(a, fa, O)), T);
  const Ki = steps(a, e.mul(G, slope(a, fa, I)), T);
  const Kf = steps(a, e.mul(Cprev, slope(a, fa, F)), T);
  const Kc = steps(a, e.mul(I, slope(a, ga, G)), T);
  const Fs = steps(a, F, T);
  const { gY, gYh, gYc } = seeds(a, s, d);
  const dz: string[] = new Array<string>(T);
  let dH = gYh;
  let dC = gYc;
  for (const t of [...times].reverse()) {
    dH = plus(a, dH, gY?.[t]);
    const dzo = dH ? e.mul(dH, Ko[t]) : undefined;
    let dCt = plus(a, dC, dH ? e.mul(dH, Ao[t]) : undefined);
    if (peep && dzo) dCt = plus(a, dCt, e.mul(dzo, peep[1]));
    if (!dCt) dCt = e.zeros([1, N, H], a.ft);
    const dzi = e.mul(dCt, Ki[t]);
    const dzf = e.mul(dCt, Kf[t]);
    dz[t] = cat(a, [dzi, dzo ?? e.zeros([1, N, H], a.ft), dzf, e.mul(dCt, Kc[t])], 2);
    dH = e.op("MatMul", [dz[t], R]);
    dC = e.mul(dCt, Fs[t]);
    if (peep) dC = e.add(dC, e.add(e.mul(dzi, peep[0]), e.mul(dzf, peep[2])));
  }
  const dZ = cat(a, dz, 0);
  const w = a.wants;
  const { dX, dW, dWb } = inputSide(a, s, dZ, W, GH);
  const out: DirGrads = { dX, dW, dh0: dH, dc0: dC };
  if (w[2]) out.dR = weightGrad(a, dZ, Hprev, T * N, GH, H);
  if (w[3]) out.dB = cat(a, [dWb!, dWb!], 0);
  if (w[7]) {
    const [dzi, dzo, dzf] = split(a, dZ, 2, [H, H, H, H]);
    const sum = (g: string, v: string): string => e.reduce("ReduceSum", e.mul(g, v), [0, 1], false);
    out.dP = cat(a, [sum(dzi, Cprev), sum(dzo, C), sum(dzf, Cprev)], 0);
  }
  return out;
}

export function lstmVjp(a: VjpArgs): VjpResult {
  const s = setup(a, 4, 3, ["sigmoid", "tanh", "tanh"]);
  return assemble(a, s, s.dirs.map((_, d) => lstmDirection(a, s, d)), 4 * s.H);
}

// ---------------------------------------------------------------------------------------------
// GRU: gates z, r, h (ONNX order)
// ---------------------------------------------------------------------------------------------

function gruDirection(a: VjpArgs, s: Setup, d: number): DirGrads {
  const e = a.e;
  const { T, N, H } = s;
  const GH = 3 * H;
  const [fa, ga] = s.acts[d];
  const dir = s.dirs[d];
  const times = order(T, dir);
  const lbr = attrInt(a.node, "linear_before_reset", 0) !== 0;
  const { W, R, Wb, Rb, h0 } = operands(a, s, d, 3);
  const Rzr = e.slice(R, [0], [2 * H], [0]);
  const Rh = e.slice(R, [2 * H], [3 * H], [0]);
  const RzrT = e.transpose(Rzr, [1, 0]);
  const RhT = e.transpose(Rh, [1, 0]);
  let XW = e.op("MatMul", [s.x, e.transpose(W, [1, 0])]);
  let Rbh: string | undefined;
  if (Wb && Rb) {
    // Before the reset, Rb_h is added inside r * (H Rh^T + Rb_h); otherwise with the input side.
    if (lbr) {
      Rbh = e.slice(Rb, [2 * H], [3 * H], [0]);
      XW = e.add(XW, e.add(Wb, e.pad(e.slice(Rb, [0], [2 * H], [0]), [0, H], a.ft)));
    } else {
      XW = e.add(XW, e.add(Wb, Rb));
    }
  }
  const [XWzr, XWh] = split(a, XW, 2, [2 * H, H]);
  const cell = (xzr: string, xh: string, hp: string) => {
    const [z, r] = split(a, activate(a, fa, e.add(xzr, e.op("MatMul", [hp, RzrT]))), 2, [H, H]);
    let hr: string | undefined;
    let hh: string;
    if (lbr) {
      hr = e.op("MatMul", [hp, RhT]);
      if (Rbh) hr = e.add(hr, Rbh);
      hh = activate(a, ga, e.add(xh, e.mul(r, hr)));
    } else {
      hh = activate(a, ga, e.add(xh, e.op("MatMul", [e.mul(r, hp), RhT])));
    }
    return { z, r, hr, hh };
  };

  // Forward, recomputed (batched from Y when the node computes it): Z, Rg (the reset gate), Hh
  // (the candidate), HR (H Rh^T + Rb_h, linear_before_reset only), Hprev, all [T, N, H].
  let Z: string, Rg: string, Hh: string, HR: string | undefined, Hprev: string;
  if (s.y) {
    Hprev = previous(a, direction(a, s, s.y, d, 1, [T, N, H]), h0, T, dir);
    ({ z: Z, r: Rg, hr: HR, hh: Hh } = cell(XWzr, XWh, Hprev));
  } else {
    const xzr = steps(a, XWzr, T);
    const xh = steps(a, XWh, T);
    const rec = { Z: [] as string[], R: [] as string[], Hh: [] as string[], HR: [] as string[], Hp: [] as string[] };
    let h = h0;
    for (const t of times) {
      const c = cell(xzr[t], xh[t], h);
      rec.Z[t] = c.z; rec.R[t] = c.r; rec.Hh[t] = c.hh; rec.Hp[t] = h;
      if (c.hr) rec.HR[t] = c.hr;
      h = e.add(c.hh, e.mul(c.z, e.sub(h, c.hh)));
    }
    [Z, Rg, Hh, Hprev] = [rec.Z, rec.R, rec.Hh, rec.Hp].map((xs) => cat(a, xs, 0));
    HR = lbr ? cat(a, rec.HR, 0) : undefined;
  }

  // Backward through time: H_t = Hh + Z (H_{t-1} - Hh).
  // dz_z = dH (H_{t-1} - Hh) f'(Z); da_h = dH (1 - Z) g'(Hh);
  // linear_before_reset: dHR = da_h Rg, dz_r = da_h HR f'(Rg), dH_{t-1} = dH Z + [dz_z, dz_r, dHR] R;
  // otherwise: d(r H) = da_h Rh, dz_r = d(r H) H_{t-1} f'(Rg), dH_{t-1} = dH Z + [dz_z, dz_r] Rzr + d(r H) Rg.
  const Kz = steps(a, e.mul(e.sub(Hprev, Hh), slope(a, fa, Z)), T);
  const Kh = steps(a, e.mul(e.sub(a.k(1), Z), slope(a, ga, Hh)), T);
  const Kr = steps(a, e.mul(lbr ? HR! : Hprev, slope(a, fa, Rg)), T);
  const Zs = steps(a, Z, T);
  const Rs = steps(a, Rg, T);
  const { gY, gYh } = seeds(a, s, d);
  const dAs: string[] = new Array<string>(T);
  const dRs: string[] = new Array<string>(T);
  let dH = gYh;
  for (const t of [...times].reverse()) {
    dH = plus(a, dH, gY?.[t])!;
    const dzz = e.mul(dH, Kz[t]);
    const dah = e.mul(dH, Kh[t]);
    if (lbr) {
      const dzr = e.mul(dah, Kr[t]);
      dAs[t] = cat(a, [dzz, dzr, dah], 2);
      dRs[t] = cat(a, [dzz, dzr, e.mul(dah, Rs[t])], 2);
      dH = e.add(e.mul(dH, Zs[t]), e.op("MatMul", [dRs[t], R]));
    } else {
      const drh = e.op("MatMul", [dah, Rh]);
      const dzr = e.mul(drh, Kr[t]);
      dAs[t] = cat(a, [dzz, dzr, dah], 2);
      dH = e.op("Sum", [e.mul(dH, Zs[t]), e.op("MatMul", [cat(a, [dzz, dzr], 2), Rzr]), e.mul(drh, Rs[t])]);
    }
  }
  const dA = cat(a, dAs, 0);
  const w = a.wants;
  const { dX, dW, dWb } = inputSide(a, s, dA, W, GH);
  const out: DirGrads = { dX, dW, dh0: dH };
  const TN = T * N;
  if (lbr) {
    const dRp = cat(a, dRs, 0);
    if (w[2]) out.dR = weightGrad(a, dRp, Hprev, TN, GH, H);
    if (w[3]) out.dB = cat(a, [dWb!, e.reduce("ReduceSum", dRp, [0, 1], false)], 0);
  } else {
    if (w[2]) {
      const [dzr, dah] = split(a, dA, 2, [2 * H, H]);
      out.dR = cat(a, [weightGrad(a, dzr, Hprev, TN, 2 * H, H), weightGrad(a, dah, e.mul(Rg, Hprev), TN, H, H)], 0);
    }
    if (w[3]) out.dB = cat(a, [dWb!, dWb!], 0);
  }
  return out;
}

export function gruVjp(a: VjpArgs): VjpResult {
  const s = setup(a, 3, 2, ["sigmoid", "tanh"]);
  return assemble(a, s, s.dirs.map((_, d) => gruDirection(a, s, d)), 3 * s.H);
}

// ---------------------------------------------------------------------------------------------
// RNN: H_t = f(X_t W^T + H_{t-1} R^T + Wb + Rb)
// ---------------------------------------------------------------------------------------------

function rnnDirection(a: VjpArgs, s: Setup, d: number): DirGrads {
  const e = a.e;
  const { T, N, H } = s;
  const [fa] = s.acts[d];
  const dir = s.dirs[d];
  const times = order(T, dir);
  const { W, R, Wb, Rb, h0 } = operands(a, s, d, 1);
  const RT = e.transpose(R, [1, 0]);
  let XW = e.op("MatMul", [s.x, e.transpose(W, [1, 0])]);
  if (Wb && Rb) XW = e.add(XW, e.add(Wb, Rb));
  // The states H [T, N, H] are Y itself when the node computes it.
  let Hall: string, Hprev: string;
  if (s.y) {
    Hall = direction(a, s, s.y, d, 1, [T, N, H]);
    Hprev = previous(a, Hall, h0, T, dir);
  } else {
    const xs = steps(a, XW, T);
    const Hs: string[] = new Array<string>(T);
    const Hps: string[] = new Array<string>(T);
    let h = h0;
    for (const t of times) {
      Hps[t] = h;
      h = Hs[t] = activate(a, fa, e.add(xs[t], e.op("MatMul", [h, RT])));
    }
    Hall = cat(a, Hs, 0);
    Hprev = cat(a, Hps, 0);
  }
  const K = steps(a, slope(a, fa, Hall), T);
  const { gY, gYh } = seeds(a, s, d);
  const das: string[] = new Array<string>(T);
  let dH = gYh;
  for (const t of [...times].reverse()) {
    dH = plus(a, dH, gY?.[t])!;
    das[t] = e.mul(dH, K[t]);
    dH = e.op("MatMul", [das[t], R]);
  }
  const dA = cat(a, das, 0);
  const w = a.wants;
  const { dX, dW, dWb } = inputSide(a, s, dA, W, H);
  const out: DirGrads = { dX, dW, dh0: dH };
  if (w[2]) out.dR = weightGrad(a, dA, Hprev, T * N, H, H);
  if (w[3]) out.dB = cat(a, [dWb!, dWb!], 0);
  return out;
}

export function rnnVjp(a: VjpArgs): VjpResult {
  const s = setup(a, 1, 1, ["tanh"]);
  return assemble(a, s, s.dirs.map((_, d) => rnnDirection(a, s, d)), s.H);
}
