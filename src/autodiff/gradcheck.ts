import { readFileSync } from "node:fs";
import { basename } from "node:path";
import { findLayers } from "../graph/layers";
import { serializeWith } from "../instrument/stats-graph";
import { DoctorError, oneLine } from "../onnx/errors";
import { loadModel } from "../onnx/load";
import { attrInt, defaultOpset, type Model } from "../onnx/model";
import { planProbe } from "../probe/inputs";
import { parseNpy } from "../probe/npy";
import { RuntimeSession, type HostTensor } from "../runtime/session";
import { Random } from "../stats/random";
import type { UnsupportedOp } from "./backward";
import { checkableModel } from "./check-model";
import type { FloatType } from "./emit";
import { buildGradientGraph } from "./graph";
import { VJP_RULES } from "./rules";
import { lossDefinition, TargetFeeder, type LossName } from "./loss";
import { probeTensorInfo } from "./shapes";

export type Grade = "good" | "look closer" | "wrong";

/**
 * The seed's verdicts on difference = ||a - n|| / (||a|| + ||n||): about 1e-7 or less is good,
 * around 1e-5 deserves a closer look, 1e-3 or more means the derivative is wrong. They assume
 * double precision; in float32 the central difference itself is only good to ~1e-4, so the bars
 * move up by the ratio of the achievable accuracies.
 */
export const TOLERANCES: Readonly<Record<FloatType, { good: number; wrong: number; epsilon: number }>> = {
  float64: { good: 1e-7, wrong: 1e-3, epsilon: 1e-6 },
  float32: { good: 1e-3, wrong: 2e-2, epsilon: 1e-3 },
};

export interface TensorCheck {
  readonly tensor: string;
  /** The layer the tensor belongs to (its weight or bias), when it is a parameter of one. */
  readonly layer: string | null;
  readonly kind: "input" | "parameter";
  readonly size: number;
  readonly checked: number;
  /** ||analytic - numeric|| / (||analytic|| + ||numeric||) over the checked elements. */
  readonly difference: number;
  /**
   * What finite differences can resolve here: ||D(eps) - D(2 eps)|| on the same scale. Tiny
   * gradients (a vanishing layer) drown in rounding; a difference within 3x of this is not evidence
   * of a wrong derivative.
   */
  readonly resolution: number;
  readonly analyticNorm: number;
  readonly numericNorm: number;
  readonly grade: Grade;
  /** The gradient could not be built (an op without a rule lies between this tensor and the loss). */
  readonly unavailable?: string;
}

export interface GradcheckResult {
  readonly precision: FloatType;
  readonly precisionNote: string;
  readonly epsilon: number;
  readonly tolerance: { good: number; wrong: number };
  readonly loss: { name: LossName; definition: string; value: number };
  readonly checks: readonly TensorCheck[];
  readonly unsupported: readonly UnsupportedOp[];
  /** Float tensors not checked because they are not learned (BatchNorm running statistics, exponents). */
  readonly constants: readonly string[];
  readonly warnings: readonly string[];
  readonly seconds: number;
}

export interface GradcheckOptions {
  /** Model inputs (float32 as planned by the probe; converted to float64 when that precision applies). */
  feeds: Record<string, HostTensor>;
  loss?: LossName;
  labels?: HostTensor;
  /** Elements checked per tensor (a seeded random subset); Infinity checks all. */
  samples?: number;
  precision?: "auto" | FloatType;
  /** Finite-difference step; per precision when given as an object (default {@link TOLERANCES}). */
  epsilon?: number | Partial<Record<FloatType, number>>;
  seed?: number;
  /** Check these tensors only (parameter or input names); default: every float parameter and input. */
  tensors?: readonly string[];
  /** Go on although Dropout runs in training mode (the result is then meaningless). */
  allowTrainingDropout?: boolean;
  intraOpThreads?: number;
}

/**
 * Gradient checking (the seed, "梯度检验"): compares the backward graph's gradient with central
 * differences (J(θ+ε) - J(θ-ε)) / 2ε through onnxruntime, on a random subset of every parameter
 * tensor and input, and grades the relative difference. Runs in float64 when onnxruntime has
 * double kernels for every op of the model, else in float32, and says which.
 */
export async function gradcheck(model: Model, options: GradcheckOptions): Promise<GradcheckResult> {
  const started = performance.now();
  const warnings: string[] = [];
  const dropout = trainingDropout(model);
  if (dropout.length) {
    const text = `Dropout runs in training mode (${dropout.slice(0, 3).join(", ")}${dropout.length > 3 ? ", ..." : ""}): every run draws a new random mask, so finite differences compare different functions. Gradient checking cannot be combined with dropout; export in eval mode or set the dropout ratio to 0 first.`;
    if (!options.allowTrainingDropout) throw new DoctorError("model.unsupported", text);
    warnings.push(text);
  }
  const loss = options.loss ?? "random";
  const seed = options.seed ?? 0;
  const samples = options.samples ?? 8;
  let precision: FloatType = options.precision === "float32" ? "float32" : "float64";
  let precisionNote = "";
  let prepared: Prepared | undefined;
  if (precision === "float64") {
    try {
      prepared = await prepare(model, "float64", options, loss);
      precisionNote = "float64: onnxruntime has double kernels for every op of this model";
    } catch (e) {
      if (options.precision === "float64") throw e;
      precision = "float32";
      precisionNote = `float32: the float64 copy does not run (${oneLine(e).slice(0, 160)})`;
    }
  }
  prepared ??= await prepare(model, "float32", options, loss);
  if (!precisionNote) precisionNote = "float32, as requested";
  const tol = TOLERANCES[precision];
  const epsilon = (typeof options.epsilon === "number" ? options.epsilon : options.epsilon?.[precision]) ?? tol.epsilon;
  const { session, feeds, grads, lossValue, params, unsupported } = prepared;

  try {
    const base = await session.run(feeds, [lossValue, ...[...grads.values()].filter((g): g is string => typeof g === "string")]);
    const layerOf = layerNames(model);
    const baseLoss = Number(base[lossValue].data[0]);
    const random = new Random(seed + 17);
    const checks: TensorCheck[] = [];
    const wanted = options.tensors ? new Set(options.tensors) : undefined;
    for (const [tensor, g] of grads) {
      if (wanted && !wanted.has(tensor)) continue;
      const kind = params.includes(tensor) ? "parameter" : "input";
      const value = feeds[tensor];
      const size = value.data.length;
      const common = { tensor, layer: layerOf.get(tensor) ?? null, kind, size } as const;
      if (g === null) {
        const blocking = unsupported.map((u) => `${u.op} (${u.node})`).slice(0, 3).join(", ");
        checks.push({ ...common, checked: 0, difference: NaN, resolution: NaN, analyticNorm: NaN, numericNorm: NaN, grade: "wrong", unavailable: `no gradient: ${blocking}` });
        continue;
      }
      const analytic = g === 0 ? undefined : base[g].data as Float32Array | Float64Array;
      const picks = pick(size, samples, random);
      let dd = 0, aa = 0, nn = 0, uu = 0;
      const derivative = async (i: number, h: number): Promise<number> => {
        const original = value.data[i] as number;
        const perturbed = (value.data as Float32Array | Float64Array).slice();
        perturbed[i] = original + h;
        const plus = await lossAt(session, feeds, tensor, perturbed, lossValue);
        perturbed[i] = original - h;
        const minus = await lossAt(session, feeds, tensor, perturbed, lossValue);
        // The step actually taken, after rounding to the tensor's precision.
        const step = value.dtype === "float32" ? Math.fround(original + h) - Math.fround(original - h) : 2 * h;
        return (plus - minus) / step;
      };
      for (const i of picks) {
        const numeric = await derivative(i, epsilon);
        // The same difference with half and twice the step: their spread is the error of the
        // finite difference itself (rounding ~1/epsilon, truncation ~epsilon^2, a ReLU/max kink
        // crossed within the step).
        // Rounding of the loss itself (computed in float64) bounds it from below.
        const quantum = (2 * Math.abs(baseLoss) * 2 ** -52) / epsilon;
        const uncertainty = Math.max(quantum, Math.abs(numeric - await derivative(i, 2 * epsilon)), Math.abs(numeric - await derivative(i, epsilon / 2)));
        const a = analytic ? analytic[i] : 0;
        dd += (a - numeric) ** 2;
        aa += a * a;
        nn += numeric * numeric;
        uu += uncertainty * uncertainty;
      }
      const denominator = Math.sqrt(aa) + Math.sqrt(nn);
      const difference = denominator === 0 ? 0 : Math.sqrt(dd) / denominator;
      const resolution = denominator === 0 ? 0 : Math.sqrt(uu) / denominator;
      checks.push({
        ...common, checked: picks.length, difference, resolution, analyticNorm: Math.sqrt(aa), numericNorm: Math.sqrt(nn),
        grade: grade(difference, resolution, tol),
      });
    }
    return {
      precision, precisionNote, epsilon, tolerance: { good: tol.good, wrong: tol.wrong },
      loss: { name: loss, definition: lossDefinition(loss, prepared.lossOutputs), value: Number(base[lossValue].data[0]) },
      checks, unsupported, constants: prepared.held, warnings, seconds: (performance.now() - started) / 1000,
    };
  } finally {
    await session.release();
  }
}

interface Prepared {
  session: RuntimeSession;
  feeds: Record<string, HostTensor>;
  grads: Map<string, string | 0 | null>;
  lossValue: string;
  lossOutputs: readonly string[];
  params: string[];
  held: string[];
  unsupported: readonly UnsupportedOp[];
}

async function prepare(model: Model, precision: FloatType, options: GradcheckOptions, loss: LossName): Promise<Prepared> {
  const { bytes, params: paramValues } = checkableModel(model, precision);
  const params = [...paramValues.keys()];
  const checkModel = loadModel(model.path, { bytes });
  const feeds: Record<string, HostTensor> = {};
  for (const [name, t] of Object.entries(options.feeds)) feeds[name] = precision === "float64" && t.dtype === "float32" ? { dtype: "float64", dims: t.dims, data: Float64Array.from(t.data as Float32Array) } : t;
  for (const [p, t] of paramValues) feeds[p] = t;
  const info = await probeTensorInfo(checkModel, feeds, options.intraOpThreads);
  const floatInputs = checkModel.inputs.filter((i) => (i.dtype === "float32" || i.dtype === "float64") && !params.includes(i.name)).map((i) => i.name);
  const held = params.filter((p) => heldOnly(checkModel, p));
  const targets = [...params.filter((p) => !held.includes(p)), ...floatInputs].filter((t) => !options.tensors || options.tensors.includes(t));
  const gg = buildGradientGraph(checkModel, info, loss, targets, { withTargets: loss === "mse" && !!options.labels, lossInDouble: true });
  const grads = new Map(targets.map((t) => [t, gg.backward.grad(t)] as const));
  const e = gg.emitter;
  const outputs = [gg.loss.value, ...[...grads.values()].filter((g): g is string => typeof g === "string")];
  const session = await RuntimeSession.open(serializeWith(checkModel, e.nodes, e.initializers, outputs, gg.loss.inputs), checkModel.externalFiles, { intraOpThreads: options.intraOpThreads });
  const feeder = new TargetFeeder(gg.loss.targets, options.seed ?? 0, options.labels);
  Object.assign(feeds, feeder.feeds(0));
  return { session, feeds, grads, lossValue: gg.loss.value, lossOutputs: gg.loss.outputs, params, held, unsupported: gg.backward.unsupported };
}

/**
 * The seed's grades, with the finite difference's own error taken into account: agreement within
 * what the differences resolve counts as good when that resolution is itself fine; a difference
 * beyond both the wrong-threshold and 3x the resolution is wrong; anything between is worth a
 * closer look.
 */
export function grade(difference: number, resolution: number, tol: { good: number; wrong: number }): Grade {
  if (!Number.isFinite(difference)) return "wrong";
  const floor = 3 * resolution;
  if (difference <= tol.good || (difference <= floor && floor < tol.wrong)) return "good";
  if (difference >= Math.max(tol.wrong, floor)) return "wrong";
  return "look closer";
}

async function lossAt(session: RuntimeSession, feeds: Record<string, HostTensor>, tensor: string, data: Float32Array | Float64Array, loss: string): Promise<number> {
  const r = await session.run({ ...feeds, [tensor]: { ...feeds[tensor], data } }, [loss]);
  return Number(r[loss].data[0]);
}

/** `count` distinct indices below `size` (all of them when size <= count), in increasing order. */
function pick(size: number, count: number, random: Random): number[] {
  if (size <= count) return Array.from({ length: size }, (_, i) => i);
  const chosen = new Set<number>();
  while (chosen.size < count) chosen.add(random.int(size));
  return [...chosen].sort((a, b) => a - b);
}

/** Parameter tensor -> the layer it belongs to (weights, biases, and initializers behind Identity/Transpose). */
function layerNames(model: Model): Map<string, string> {
  const out = new Map<string, string>();
  const producer = new Map(model.nodes.flatMap((n) => n.outputs.map((o) => [o, n] as const)));
  for (const l of findLayers(model)) {
    for (const t of [l.weight?.name, l.bias?.name]) {
      let name = t;
      while (name && !out.has(name)) {
        out.set(name, l.name);
        const p = producer.get(name);
        name = p && (p.opType === "Identity" || p.opType === "Transpose" || p.opType === "Cast" || p.opType === "Reshape") ? p.inputs[0] : undefined;
      }
    }
  }
  return out;
}

/** Parameters only read where the rules hold inputs constant (BatchNorm running statistics, exponents): not learned. */
function heldOnly(model: Model, tensor: string): boolean {
  const uses = model.nodes.flatMap((n) => n.inputs.flatMap((x, k) => (x === tensor ? [VJP_RULES[n.opType]?.constants?.includes(k) ?? false] : [])));
  return uses.length > 0 && uses.every(Boolean);
}

/** Dropout nodes that run in training mode (a random mask per run). */
export function trainingDropout(model: Model): string[] {
  const opset = defaultOpset(model);
  return model.nodes.filter((n) => {
    if (n.opType !== "Dropout") return false;
    if (opset < 7) return attrInt(n, "is_test", 0) === 0;
    if (opset < 12 || !n.inputs[2]) return false;
    const c = model.constants.get(n.inputs[2]);
    return !c || c.values()[0] !== 0;
  }).map((n) => n.name);
}

/** Options of {@link checkGradients}: the probe's input options plus the check's own. */
export interface CheckGradientsOptions extends Omit<GradcheckOptions, "feeds" | "labels"> {
  inputFile?: string;
  dims?: Record<string, number>;
  fill?: Record<string, number>;
  /** Rows of the probe batch (default 2: finite differences run the model twice per element). */
  batchSize?: number;
  labelsFile?: string;
}

/**
 * The facade for `onnx-doctor gradcheck` and the extension's Check Gradients command: loads the
 * model, plans one probe batch (synthetic or from `inputFile`) and runs {@link gradcheck}.
 */
export async function checkGradients(path: string, options: CheckGradientsOptions = {}): Promise<GradcheckResult & { model: string; batchSize: number }> {
  const model = loadModel(path);
  const plan = planProbe(model, { inputFile: options.inputFile, dims: options.dims, fill: options.fill, batchSize: options.batchSize ?? 2, batches: 1, seed: options.seed });
  const labels = options.labelsFile ? parseNpy(readFileSync(options.labelsFile), basename(options.labelsFile)) : undefined;
  const loss = options.loss ?? (labels ? "ce" : "random");
  const result = await gradcheck(model, { ...options, loss, feeds: plan.feeds(0), labels });
  return { ...result, model: path, batchSize: plan.batchSize };
}
