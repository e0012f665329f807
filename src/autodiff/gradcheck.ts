import { basename } from "node:path";
import { findLayers } from "../graph/layers";
import { serializeWith } from "../instrument/stats-graph";
import { DoctorError, oneLine } from "../onnx/errors";
import { loadModel } from "../onnx/load";
import { attrInt, defaultOpset, type GraphNode, type Model } from "../onnx/model";
import { defaultedDimsHint, planProbe } from "../probe/inputs";
import { readLabelsFile } from "../probe/npy";
import { RuntimeSession, type HostTensor } from "../runtime/session";
import { Random } from "../stats/random";
import { inlineTakenBranches } from "../instrument/inline-branches";
import { generatedPrefix } from "../instrument/names";
import { TensorProto_DataType as DT, type ValueInfoProto } from "../onnx/gen/onnx_pb";
import { tensorValueInfo } from "../onnx/value-info";
import { buildBackward, MIN_OPSET, type UnsupportedOp } from "./backward";
import { capturedInputs } from "../onnx/order";
import { checkableModel } from "./check-model";
import { GradEmitter, onnxFloat, type FloatType } from "./emit";
import { VJP_RULES } from "./rules";
import { emitLoss, lossDefinition, TargetFeeder, type LossName, type ProbabilityOutput } from "./loss";
import { probeTensorInfo, type TensorInfo } from "./shapes";

/** "no gradient": nothing was compared, because an op on the way to the loss has no rule (not a wrong derivative). */
export type Grade = "good" | "look closer" | "wrong" | "no gradient";

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
   * What the comparison can resolve here, on the same scale as `difference`: the finite
   * differences' own error (||D(eps) - D(2 eps)||, at least the rounding of the outputs) and the
   * backward graph's rounding noise (how far the analytic gradient moves when the loss gradient is
   * jittered by a few ulps), combined in quadrature. Tiny gradients (a vanishing layer) drown in
   * rounding, and a true zero computed in float32 comes out as noise; a difference within 3x of
   * this is not evidence of a wrong derivative.
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
  /**
   * Float initializers not checked because they are not learned: BatchNorm running statistics,
   * exponents, and initializers from which no float path leads to an output (unused, shape-only).
   */
  readonly constants: readonly string[];
  readonly warnings: readonly string[];
  readonly seconds: number;
}

export interface GradcheckOptions {
  /** Model inputs (float32 as planned by the probe; converted to float64 when that precision applies). */
  feeds: Record<string, HostTensor>;
  loss?: LossName;
  labels?: HostTensor;
  /** Where the labels came from, for the loss definition in the report. */
  labelsName?: string;
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
  /** Called as the check goes: fraction done (0..1) and what it is doing. */
  progress?: (fraction: number, message: string) => void;
}

/** `text` cut at a word boundary within `max` characters, with an ellipsis when cut. */
const shortened = (text: string, max: number): string => (text.length <= max ? text : `${text.slice(0, text.lastIndexOf(" ", max - 1) > max / 2 ? text.lastIndexOf(" ", max - 1) : max - 1)}…`);

/**
 * The error for `--precision float64` when the float64 copy does not run: if the float32 model
 * does, the model is fine and only the precision is unavailable, so say which op has no double
 * kernel and that float32 (or auto) works; otherwise the float32 failure is the model's, and the
 * original error stands.
 */
async function float64Refusal(e: unknown, model: Model, options: GradcheckOptions, loss: LossName): Promise<unknown> {
  if (!(e instanceof DoctorError) || e.code !== "model.unsupported") return e;
  try {
    const prepared = await prepare(model, "float32", options, loss);
    await prepared.gradSession.release();
    await prepared.lossSession.release();
  } catch {
    return e;
  }
  // onnxruntime: "Could not find an implementation for Conv(1) node with name 'Convolution28'".
  const missing = /implementation for ([\w.]+)\(\d+\) node with name '([^']*)'/.exec(e.message);
  const why = missing
    ? `onnxruntime has no float64 (double) kernel for ${missing[1]}${missing[2] ? ` (node ${missing[2]})` : ""}`
    : `onnxruntime cannot run it (${shortened(e.message.replace(/^onnxruntime cannot load the model: /, ""), 200)})`;
  return new DoctorError("model.unsupported", `--precision float64: the model runs in float32, but its float64 copy does not: ${why}; use --precision float32, or the default auto, which falls back to float32`);
}

/** Finite-difference runs per checked element: the loss at θ ± ε and at θ ± 2ε. */
const RUNS_PER_ELEMENT = 4;

/**
 * Gradient checking (the seed, "梯度检验"): compares the backward graph's gradient with central
 * differences (J(θ+ε) - J(θ-ε)) / 2ε through onnxruntime, on a random subset of every parameter
 * tensor and input, and grades the relative difference. Runs in float64 when onnxruntime has
 * double kernels for every op of the model, else in float32, and says which.
 *
 * Parameters are the trainable float initializers; Constant-node tensors (an STFT basis, a
 * LayerNorm epsilon, a 1/sqrt(d) scale), shape tensors and initializers that no differentiable
 * path leads from to the loss are not. The If branches the inputs take are inlined first, as the
 * probe does, so that gradients through them exist.
 */
export async function gradcheck(model: Model, options: GradcheckOptions): Promise<GradcheckResult> {
  const started = performance.now();
  const progress = options.progress ?? ((): void => undefined);
  const warnings: string[] = [];
  if (defaultOpset(model) < MIN_OPSET) {
    throw new DoctorError("model.unsupported", `gradients need opset ${MIN_OPSET} or later (the model uses ${defaultOpset(model)}); convert it with onnx.version_converter first`);
  }
  const inlined = await inlineTakenBranches(model, { batches: 1, feeds: () => ({ ...options.feeds }) }, options.intraOpThreads);
  if (inlined.taken.length) {
    warnings.push(`If nodes replaced by the branch these inputs take (${inlined.taken.join(", ")}), as the probe does; a perturbation that flips a condition is not followed.`);
  }
  model = inlined.model;
  // After inlining, so that a Dropout or random op inside a taken branch counts too.
  const dropout = trainingDropout(model);
  if (dropout.length) {
    const text = `Dropout runs in training mode (${dropout.slice(0, 3).join(", ")}${dropout.length > 3 ? ", ..." : ""}): every run draws a new random mask, so finite differences compare different functions. Gradient checking cannot be combined with dropout; export in eval mode or set the dropout ratio to 0 first (--allow-dropout checks anyway, expecting noise).`;
    if (!options.allowTrainingDropout) throw new DoctorError("model.unsupported", text);
    warnings.push(text);
  }
  const random = model.nodes.filter((n) => RANDOM_OPS.has(n.opType));
  if (random.length) {
    throw new DoctorError("model.unsupported", `the model draws random numbers (${random.slice(0, 3).map((n) => `${n.opType} ${n.name}`).join(", ")}${random.length > 3 ? ", ..." : ""}): every run computes a different function, so finite differences cannot check its gradients`);
  }
  const loss = options.loss ?? "random";
  const seed = options.seed ?? 0;
  const samples = options.samples ?? 8;
  let precision: FloatType = options.precision === "float32" ? "float32" : "float64";
  let precisionNote = "";
  let prepared: Prepared | undefined;
  if (precision === "float64") {
    progress(0, "building the float64 copy and its backward graph");
    try {
      prepared = await prepare(model, "float64", options, loss);
      precisionNote = "float64: onnxruntime has double kernels for every op of this model";
    } catch (e) {
      if (options.precision === "float64") throw await float64Refusal(e, model, options, loss);
      precision = "float32";
      precisionNote = `float32: the float64 copy does not run (${shortened(oneLine(e), 200)})`;
    }
  }
  if (!prepared) progress(0, "building the backward graph (float32)");
  prepared ??= await prepare(model, "float32", options, loss);
  if (!precisionNote) precisionNote = "float32, as requested";
  const tol = TOLERANCES[precision];
  const epsilon = (typeof options.epsilon === "number" ? options.epsilon : options.epsilon?.[precision]) ?? tol.epsilon;
  const { gradSession, lossSession, feeds, grads, lossValue, lossScale, params, unsupported } = prepared;
  if (prepared.lowPrecision.length) {
    warnings.push(`Not checked: ${prepared.lowPrecision.join(", ")} (stored in float16/bfloat16: a step small enough for a finite difference is below their resolution); their layers' inputs and the float32 weights are checked.`);
  }
  if (prepared.filled.length) {
    const names = prepared.filled;
    warnings.push(`Not checked: ${names.length} layer weight or bias tensor(s) that ConstantOfShape fills with a single value (${names.slice(0, 3).join(", ")}${names.length > 3 ? ", ..." : ""}): the file holds no trained values for them (a model published without its weights), so they are part of the function here, not parameters.`);
  }
  if (prepared.shared.length) {
    warnings.push(`Not checked: ${prepared.shared.join(", ")} also feed BatchNorm running statistics, directly or through Identity copies (the exporter merged tensors of equal value, e.g. fresh weights of ones and running variances of ones), so a finite difference would move the statistics too, which have no gradient (as in torch).`);
  }
  const lossFeeds = Object.fromEntries(Object.entries(feeds).filter(([name]) => !prepared.jitter.has(name)));

  let released = false;
  try {
    const fetched = [...new Set([...grads.values()].filter((g): g is string => typeof g === "string"))];
    progress(0, "running the backward graph");
    const base = await gradSession.run(feeds, [lossValue, lossScale, ...fetched]);
    // The same backward graph with the loss gradient jittered at rounding level (each element
    // times 1 + r·16u): the gradient is linear in it, so what moves by more than that is rounding.
    // A true gradient of zero, cancelled to rounding noise and amplified by an exploding
    // backward pass (light_resnet50), shows up here as noise as large as the gradient itself.
    const jitterFeeds: Record<string, HostTensor> = { ...feeds };
    const jitterRandom = new Random(seed + 29);
    const u = precision === "float64" ? 2 ** -53 : 2 ** -24;
    for (const [name, t] of prepared.jitter) {
      const data = t.dtype === "float64" ? new Float64Array(t.data.length) : new Float32Array(t.data.length);
      const unit = t.dtype === "float64" ? 2 ** -53 : 2 ** -24;
      for (let i = 0; i < data.length; i++) data[i] = 1 + 16 * unit * (2 * jitterRandom.uniform() - 1);
      jitterFeeds[name] = { ...t, data };
    }
    const jittered = fetched.length ? await gradSession.run(jitterFeeds, fetched) : {};
    // The finite differences need only the forward session: free the backward graph's memory.
    released = true;
    await gradSession.release();
    const layerOf = layerNames(model);
    const baseLoss = Number(base[lossValue].data[0]);
    if (!Number.isFinite(baseLoss)) {
      throw new DoctorError("model.unsupported", `the loss is ${baseLoss} on the probe batch, so finite differences are meaningless: check the weights, inputs and labels for NaN/Inf (onnx-doctor analyze shows where non-finite values first appear)`);
    }
    // Rounding of the model outputs bounds what a difference of two losses can resolve: outputs
    // that moved by less than half an ulp come out bit-identical (an exact 0), so each loss is
    // uncertain by about u·sqrt(Σ (∂L/∂y · y)^2) (one rounding per output, random signs); the loss
    // itself is summed in float64.
    const scale = Math.sqrt(Math.abs(Number(base[lossScale].data[0])));
    // The finite differences run in the forward-only session: it must compute the loss the
    // backward graph's session does, or every grade compares two different functions.
    const forwardLoss = Number((await lossSession.run(lossFeeds, [lossValue]))[lossValue].data[0]);
    const agreement = (precision === "float64" ? 1e-9 : 1e-4) * Math.max(Math.abs(baseLoss), scale, Number.MIN_VALUE);
    // (Training-mode Dropout, allowed on request, draws a new mask every run: no agreement to expect.)
    if (!dropout.length && !(Math.abs(forwardLoss - baseLoss) <= agreement)) {
      throw new DoctorError("model.unsupported", `onnxruntime computes the loss as ${baseLoss} with the backward graph and as ${forwardLoss} without it, so finite differences would not check this backward graph`);
    }
    const random = new Random(seed + 17);
    const checks: TensorCheck[] = [];
    const wanted = options.tensors ? new Set(options.tensors) : undefined;
    const todo = [...grads].filter(([tensor]) => !wanted || wanted.has(tensor));
    const picked = new Map(todo.map(([tensor, g]) => [tensor, g === null ? [] : pick(feeds[tensor].data as ArrayLike<number>, samples, random)]));
    const nonFinite = todo.filter(([tensor]) => (feeds[tensor].data as Float32Array | Float64Array).some((v) => !Number.isFinite(v))).map(([tensor]) => tensor);
    if (nonFinite.length) warnings.push(`Only the finite elements of ${nonFinite.join(", ")} were checked: a step on -inf or NaN (an attention mask kept in a float initializer) measures nothing.`);
    let totalRuns = [...picked.values()].reduce((a, p) => a + p.length * RUNS_PER_ELEMENT, 0);
    let runs = 0;
    let noisy = 0;
    const refinedAway: string[] = [];
    const overflowed: string[] = [];
    for (const [k, [tensor, g]] of todo.entries()) {
      const kind = params.includes(tensor) ? "parameter" : "input";
      const value = feeds[tensor];
      const size = value.data.length;
      const common = { tensor, layer: layerOf.get(tensor) ?? null, kind, size } as const;
      if (g === null) {
        const blocking = unsupported.map((u) => `${u.op} (${u.node})`).slice(0, 3).join(", ");
        checks.push({ ...common, checked: 0, difference: NaN, resolution: NaN, analyticNorm: NaN, numericNorm: NaN, grade: "no gradient", unavailable: blocking });
        continue;
      }
      const picks = picked.get(tensor)!;
      progress(totalRuns ? runs / totalRuns : 1, `tensor ${k + 1}/${todo.length}: ${tensor} (${picks.length} of ${size} elements, ${picks.length * RUNS_PER_ELEMENT} runs)`);
      const analytic = g === 0 ? undefined : base[g].data as Float32Array | Float64Array;
      const analyticJittered = g === 0 ? undefined : jittered[g].data as Float32Array | Float64Array;
      // One copy per tensor, perturbed in place and restored.
      const perturbed = (value.data as Float32Array | Float64Array).slice();
      const lossWith = async (): Promise<number> => {
        const r = await lossSession.run({ ...lossFeeds, [tensor]: { ...value, data: perturbed } }, [lossValue]);
        runs++;
        return Number(r[lossValue].data[0]);
      };
      // The unperturbed loss from the same session: the one-sided differences below need it.
      const f0 = await lossWith();
      totalRuns++;
      // Central difference, and half the gap between the one-sided ones, |f+ - 2 f0 + f-| / step:
      // about eps f''/2 where the loss is smooth, the slope's jump where the step straddles a kink
      // (a ReLU input exactly at 0 gives a central difference of half the slope, which no backward
      // graph should match).
      // The step is relative for elements above 1 (h = eps |value|): epsilon 1e-3 added to a
      // float32 2^20 (an audio scale constant in Silero) rounds back to 2^20 and would leave no
      // difference at all. `smallest` takes the least step that still moves the element instead
      // (4 ulps), the second opinion for functions that vary faster than the value's size.
      const derivative = async (i: number, eps: number, smallest = false): Promise<[number, number]> => {
        const original = value.data[i] as number;
        const h = smallest ? leastStep(original, eps, value.dtype === "float32") : relativeStep(original, eps);
        perturbed[i] = original + h;
        const plus = await lossWith();
        perturbed[i] = original - h;
        const minus = await lossWith();
        perturbed[i] = original;
        // The step actually taken, after rounding to the tensor's precision.
        const step = value.dtype === "float32" ? Math.fround(original + h) - Math.fround(original - h) : 2 * h;
        if (!(step > 0)) throw new DoctorError("probe.input", `epsilon ${eps} is below the ${value.dtype} resolution at ${tensor}[${i}] = ${original}; use a larger --epsilon`);
        return [(plus - minus) / step, Math.abs(plus - 2 * f0 + minus) / step];
      };
      let dd = 0, aa = 0, nn = 0, uu = 0, jj = 0;
      const numerics: number[] = [];
      for (const i of picks) {
        const [numeric, kink] = await derivative(i, epsilon);
        // The same difference with twice the step: the spread is the error of the finite
        // difference itself (rounding ~1/epsilon, 3x the truncation ~epsilon^2, a ReLU/max kink
        // crossed within the step). Rounding of the outputs and of the loss bounds it from below.
        // (Richardson extrapolation of the two did not help on Silero: kinks, not curvature,
        // limit float32 differences there.)
        const quantum = (2 * u * scale + 2 * Math.abs(baseLoss) * 2 ** -52) / relativeStep(value.data[i] as number, epsilon);
        const fdError = Math.max(quantum, kink, Math.abs(numeric - (await derivative(i, 2 * epsilon))[0]));
        const a = analytic ? analytic[i] : 0;
        const noise = analytic && analyticJittered ? Math.abs(a - analyticJittered[i]) : 0;
        numerics.push(numeric);
        dd += (a - numeric) ** 2;
        aa += a * a;
        nn += numeric * numeric;
        uu += fdError * fdError + noise * noise;
        jj += noise * noise;
      }
      const denominator = Math.sqrt(aa) + Math.sqrt(nn);
      const difference = denominator === 0 ? 0 : Math.sqrt(dd) / denominator;
      let resolution = denominator === 0 ? 0 : Math.sqrt(uu) / denominator;
      // A step that overflows the loss (a huge --epsilon, an exp near its limit) leaves finite
      // differences that measure nothing: the check cannot resolve this tensor, which is no
      // evidence against the backward graph. A non-finite analytic gradient stays wrong.
      const unresolved = numerics.some((v) => !Number.isFinite(v));
      if (unresolved) {
        resolution = Infinity;
        overflowed.push(tensor);
      }
      let verdict = unresolved ? "look closer" as const : grade(difference, resolution, tol);
      if (verdict === "wrong" && Number.isFinite(difference)) {
        // Before calling the derivative wrong, a second opinion with a ten times smaller step: when
        // the differences themselves move that much between steps (kinks of ReLU and max pooling
        // crossed within ε, as in the first conv of mnist_cntk), the spread counts as their error
        // too. A wrong backward graph disagrees with both steps alike and stays wrong.
        const refined = picks.length * 2;
        totalRuns += refined;
        progress(runs / totalRuns, `tensor ${k + 1}/${todo.length}: ${tensor} again with step ${epsilon / 10} (${refined} runs)`);
        for (const [j, i] of picks.entries()) {
          uu += (numerics[j] - (await derivative(i, epsilon / 10))[0]) ** 2;
          // Elements above 1 took relative steps; the least step that moves them is a third opinion.
          if (Math.abs(value.data[i] as number) > 1) uu += (numerics[j] - (await derivative(i, epsilon, true))[0]) ** 2;
        }
        resolution = Math.sqrt(uu) / denominator;
        verdict = grade(difference, resolution, tol);
        if (verdict !== "wrong") refinedAway.push(tensor);
      }
      if (aa > 0 && Math.sqrt(jj) * 3 >= Math.sqrt(aa)) noisy++;
      checks.push({
        ...common, checked: picks.length, difference, resolution, analyticNorm: Math.sqrt(aa), numericNorm: Math.sqrt(nn),
        grade: verdict,
      });
    }
    progress(1, "done");
    if (refinedAway.length) {
      warnings.push(`The finite differences of ${refinedAway.join(", ")} changed beyond their own spread when the step went from ${epsilon} to ${epsilon / 10} (kinks crossed within the step, or curvature): that change counts in their resolution, so the mismatch there is not evidence of a wrong derivative.`);
    }
    if (overflowed.length) {
      warnings.push(`The loss became non-finite when ${overflowed.join(", ")} moved by the finite-difference step (epsilon ${epsilon}), so their finite differences measure nothing and they grade "look closer": try a smaller --epsilon.`);
    }
    if (noisy) {
      warnings.push(`${noisy} of ${checks.length} tensors have a backward-graph gradient made of ${precision} rounding noise: jittering the loss gradient by a few ulps moves it by a third of its size or more. The true gradient is then below what ${precision} resolves (it cancels to zero along the way, e.g. every logit moving together before a softmax), and the finite differences say how small it is; such tensors grade "look closer", not "wrong".`);
    }
    return {
      precision, precisionNote, epsilon, tolerance: { good: tol.good, wrong: tol.wrong },
      loss: { name: loss, definition: lossDefinition(loss, prepared.lossOutputs, options.labels ? options.labelsName ?? "the given labels" : undefined, prepared.probabilities), value: baseLoss },
      checks, unsupported, constants: prepared.held.filter((t) => !prepared.shared.includes(t)), warnings, seconds: (performance.now() - started) / 1000,
    };
  } finally {
    if (!released) await gradSession.release();
    await lossSession.release();
  }
}

interface Prepared {
  /** Forward, loss and backward graph. */
  gradSession: RuntimeSession;
  /** Forward and loss only, for the finite differences (onnxruntime runs every node of a graph, fetched or not). */
  lossSession: RuntimeSession;
  feeds: Record<string, HostTensor>;
  /** Inputs multiplying the loss gradients (ones), by name, for the rounding-noise run. */
  jitter: Map<string, HostTensor>;
  grads: Map<string, string | 0 | null>;
  lossValue: string;
  /** Σ (∂L/∂y · y)^2 over the outputs the loss reads: the square of the scale of the loss's rounding. */
  lossScale: string;
  lossOutputs: readonly string[];
  probabilities?: ProbabilityOutput;
  params: string[];
  held: string[];
  /** Of `held`: parameters the exporter merged with running statistics. */
  shared: string[];
  /** Layer weights stored in float16/bfloat16, which are not checked. */
  lowPrecision: string[];
  /** Layer weights that ConstantOfShape fills with one value, which are not checked. */
  filled: string[];
  unsupported: readonly UnsupportedOp[];
}

async function prepare(model: Model, precision: FloatType, options: GradcheckOptions, loss: LossName): Promise<Prepared> {
  // Layer weights and biases stored as Constant nodes (Paddle exports every weight that way; an
  // STFT basis too) are checked like initializers; other Constant nodes are part of the function.
  const producer = producers(model);
  const roots = [...weightSources(model, producer).keys()].filter((t) => !VIEW_OPS.has(producer.get(t)?.opType ?? ""));
  const isFloat = (t: string): boolean => ["float32", "float64"].includes(model.constants.get(t)?.dtype ?? "");
  const constantWeights = new Set(roots.filter((t) => producer.get(t)?.opType === "Constant" && isFloat(t)));
  const lowPrecision = [...new Set(roots.filter((t) => ["float16", "bfloat16"].includes(model.constants.get(t)?.dtype ?? "")))];
  const filled = roots.filter((t) => producer.get(t)?.opType === "ConstantOfShape");
  const { bytes, params: paramValues } = checkableModel(model, precision, constantWeights);
  const checkModel = loadModel(model.path, { bytes });
  const feeds: Record<string, HostTensor> = {};
  for (const [name, t] of Object.entries(options.feeds)) feeds[name] = precision === "float64" && t.dtype === "float32" ? { dtype: "float64", dims: t.dims, data: Float64Array.from(t.data as Float32Array) } : t;
  for (const [p, t] of paramValues) feeds[p] = t;
  const info = await probeTensorInfo(checkModel, feeds, options.intraOpThreads);
  const floatInputs = checkModel.inputs.filter((i) => (i.dtype === "float32" || i.dtype === "float64") && !paramValues.has(i.name)).map((i) => i.name);
  const reaching = reachesOutputs(checkModel, info);
  const held = [...paramValues.keys()].filter((p) => heldOnly(checkModel, p) || !reaching.has(p));
  const shared = [...paramValues.keys()].filter((p) => !held.includes(p) && sharedWithStatistics(checkModel, p));
  held.push(...shared);
  // In the order the graph uses them (the file's initializer order is often alphabetical: layer.10 before layer.2).
  const firstUse = new Map<string, number>();
  checkModel.nodes.forEach((n, i) => n.inputs.forEach((x, slot) => { if (!firstUse.has(x)) firstUse.set(x, i * 1024 + slot); }));
  const params = [...paramValues.keys()].filter((p) => !held.includes(p)).sort((a, b) => (firstUse.get(a) ?? Infinity) - (firstUse.get(b) ?? Infinity));
  const targets = [...params, ...floatInputs].filter((t) => !options.tensors || options.tensors.includes(t));

  const e = new GradEmitter(generatedPrefix(checkModel, "__doctor_grad"), defaultOpset(checkModel));
  const emitted = emitLoss(e, checkModel, info, loss, loss === "mse" && !!options.labels, true);
  // Σ (∂L/∂y · y)^2 in float64, for the rounding bound of the finite differences.
  const scaleParts = [...emitted.seeds].map(([y, g]) => e.reduce("ReduceSumSquare", e.op("Cast", [e.mul(g, y)], { to: DT.DOUBLE }), undefined, false));
  const lossScale = scaleParts.length === 1 ? scaleParts[0] : e.op("Sum", scaleParts);
  const lossNodes = e.nodes.length;
  const jitter = new Map<string, HostTensor>();
  const jitterInputs: ValueInfoProto[] = [];
  const seeds = new Map<string, string>();
  for (const [y, g] of emitted.seeds) {
    const name = e.fresh("seed_jitter");
    const ft: FloatType = info.dtypes.get(y) === "float64" ? "float64" : "float32";
    const dims = info.shapes.get(y) ?? [];
    const n = dims.reduce((a, b) => a * b, 1);
    jitter.set(name, { dtype: ft, dims, data: (ft === "float64" ? new Float64Array(n) : new Float32Array(n)).fill(1) });
    jitterInputs.push(tensorValueInfo(name, onnxFloat(ft), dims));
    seeds.set(y, e.mul(g, name));
  }
  const backward = buildBackward(checkModel, info, e, seeds, targets);
  const grads = new Map(targets.map((t) => [t, backward.grad(t)] as const));
  const outputs = [emitted.value, lossScale, ...[...grads.values()].filter((g): g is string => typeof g === "string")];
  const feeder = new TargetFeeder(emitted.targets, options.seed ?? 0, options.labels);
  Object.assign(feeds, feeder.feeds(0));
  // No fusions ("basic"): both sessions must compute the model as written (onnxruntime's float64
  // RMSNorm fusion swaps the epsilon for 1e-5; its QuickGelu has no double kernel).
  const gradSession = await RuntimeSession.open(serializeWith(checkModel, e.nodes, e.initializers, outputs, [...emitted.inputs, ...jitterInputs]), checkModel.externalFiles, { intraOpThreads: options.intraOpThreads, optimization: "basic" });
  let lossSession: RuntimeSession;
  try {
    lossSession = await RuntimeSession.open(serializeWith(checkModel, e.nodes.slice(0, lossNodes), e.initializers, [emitted.value], emitted.inputs), checkModel.externalFiles, { intraOpThreads: options.intraOpThreads, optimization: "basic" });
  } catch (err) {
    await gradSession.release();
    throw err;
  }
  for (const [name, t] of jitter) feeds[name] = t;
  return { gradSession, lossSession, feeds, jitter, grads, lossValue: emitted.value, lossScale, lossOutputs: emitted.outputs, probabilities: emitted.probabilities, params, held, shared, lowPrecision, filled, unsupported: backward.unsupported };
}

/** Tensors of the main graph from which a path of float tensors leads to a model output. */
function reachesOutputs(model: Model, info: TensorInfo): Set<string> {
  const isFloatTensor = (t: string): boolean => { const d = info.dtypes.get(t); return d === "float32" || d === "float64" || d === "float16"; };
  const up = new Set(model.outputs.map((o) => o.name));
  for (let i = model.nodes.length - 1; i >= 0; i--) {
    const n = model.nodes[i];
    if (n.outputs.some((o) => up.has(o))) for (const x of [...n.inputs, ...capturedInputs(n)]) if (x && isFloatTensor(x)) up.add(x);
  }
  return up;
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

/** The finite-difference step for an element: epsilon, relative to the element's size above 1. */
const relativeStep = (value: number, epsilon: number): number => epsilon * Math.max(1, Math.abs(value));

/** The least step that still moves an element: epsilon, or 4 units in its last place when that is larger. */
function leastStep(value: number, epsilon: number, float32: boolean): number {
  const a = Math.abs(value);
  if (!(a > 0) || !Number.isFinite(a)) return epsilon;
  const ulp = 2 ** (Math.floor(Math.log2(a)) - (float32 ? 23 : 52));
  return Math.max(epsilon, 4 * ulp);
}

/**
 * Up to `count` random finite elements of `data`, in order. A step on -inf (an attention mask held
 * in a float initializer) or NaN measures nothing.
 */
function pick(data: ArrayLike<number>, count: number, random: Random): number[] {
  const size = data.length;
  let finite: number[] | undefined;
  for (let i = 0; i < size; i++) {
    if (!Number.isFinite(data[i])) {
      finite = [];
      for (let j = 0; j < size; j++) if (Number.isFinite(data[j])) finite.push(j);
      break;
    }
  }
  const n = finite ? finite.length : size;
  const at = (k: number): number => (finite ? finite[k] : k);
  if (n <= count) return Array.from({ length: n }, (_, k) => at(k));
  const chosen = new Set<number>();
  while (chosen.size < count) chosen.add(at(random.int(n)));
  return [...chosen].sort((a, b) => a - b);
}

/** Parameter tensor -> the layer it belongs to (weights, biases, and initializers behind Identity/Transpose). */
function layerNames(model: Model): Map<string, string> {
  return weightSources(model, producers(model));
}

const producers = (model: Model): Map<string, GraphNode> => new Map(model.nodes.flatMap((n) => n.outputs.map((o) => [o, n] as const)));

/**
 * Every tensor a layer's weight or bias is, or comes from through ops that only relabel it
 * (VIEW_OPS), down to its initializer or Constant node, mapped to the layer's name.
 */
function weightSources(model: Model, producer: ReadonlyMap<string, GraphNode>): Map<string, string> {
  const out = new Map<string, string>();
  for (const l of findLayers(model)) {
    for (const t of [l.weight?.name, l.bias?.name]) {
      let name = t;
      while (name && !out.has(name)) {
        out.set(name, l.name);
        const p = producer.get(name);
        name = p && VIEW_OPS.has(p.opType) ? p.inputs[0] : undefined;
      }
    }
  }
  return out;
}

const heldSlot = (op: string, k: number): boolean => (VJP_RULES[op]?.constants?.includes(k) || VJP_RULES[op]?.statistics?.includes(k)) ?? false;

/** Ops that only relabel a weight on its way to a layer (exporters put them between a Constant and its Conv). */
const VIEW_OPS = new Set(["Identity", "Cast", "Reshape", "Transpose", "Squeeze", "Unsqueeze", "Flatten"]);

/** Parameters only read where the rules hold inputs constant (BatchNorm running statistics, exponents): not learned. */
function heldOnly(model: Model, tensor: string): boolean {
  const uses = model.nodes.flatMap((n) => n.inputs.flatMap((x, k) => (x === tensor ? [heldSlot(n.opType, k)] : [])));
  return uses.length > 0 && uses.every(Boolean);
}

/**
 * Parameters that also feed running statistics, directly or through Identity copies (PyTorch
 * merges a fresh BatchNorm's weight with its equal running variance): a finite difference moves
 * the statistics too, which have no gradient, so comparing says nothing about the rules.
 */
function sharedWithStatistics(model: Model, tensor: string): boolean {
  const reach = new Set([tensor]);
  for (const n of model.nodes) if (n.opType === "Identity" && reach.has(n.inputs[0])) reach.add(n.outputs[0]);
  const uses = model.nodes.flatMap((n) => n.inputs.flatMap((x, k) => (reach.has(x) && n.opType !== "Identity" ? [VJP_RULES[n.opType]?.statistics?.includes(k) ?? false] : [])));
  return uses.some(Boolean) && !uses.every(Boolean);
}

/** Ops that draw random numbers on every run. */
const RANDOM_OPS = new Set(["RandomUniform", "RandomNormal", "RandomUniformLike", "RandomNormalLike", "Multinomial", "Bernoulli"]);

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
  options.progress?.(0, "reading the model");
  const model = loadModel(path);
  const plan = planProbe(model, { inputFile: options.inputFile, dims: options.dims, fill: options.fill, batchSize: options.batchSize ?? 2, batches: 1, seed: options.seed });
  const labels = options.labelsFile ? readLabelsFile(options.labelsFile, options.loss ?? "ce", plan.fileRows) : undefined;
  const loss = options.loss ?? (labels ? "ce" : "random");
  let result: GradcheckResult;
  try {
    result = await gradcheck(model, { ...options, loss, feeds: plan.feeds(0), labels, labelsName: options.labelsFile ? basename(options.labelsFile) : undefined });
  } catch (e) {
    // A model that cannot run often only needs the right size for a dimension we guessed.
    const hint = defaultedDimsHint(plan);
    if (hint && e instanceof DoctorError && e.message.startsWith("onnxruntime failed to run")) throw new DoctorError(e.code, `${e.message}${hint}`);
    throw e;
  }
  if (plan.fileRows !== undefined && plan.fileRows > plan.batchSize) {
    result = { ...result, warnings: [...result.warnings, `Checked on the first ${plan.batchSize} of the ${plan.fileRows} rows of ${basename(options.inputFile!)} (one batch; --batch-size sets how many).`] };
  }
  return { ...result, model: path, batchSize: plan.batchSize };
}
