import { TensorProto_DataType as DT, type ValueInfoProto } from "../onnx/gen/onnx_pb";
import { isFloat } from "../onnx/dtype";
import { DoctorError } from "../onnx/errors";
import { attrInt, type Model } from "../onnx/model";
import type { HostTensor } from "../runtime/session";
import { Random } from "../stats/random";
import { onnxFloat, type FloatType, type GradEmitter } from "./emit";
import type { TensorInfo } from "./shapes";
import { tensorValueInfo } from "../onnx/value-info";

/** The probe losses (issue 4): cross-entropy, mean square, or a fixed random cotangent. */
export type LossName = "ce" | "mse" | "random";
export const LOSS_NAMES: readonly LossName[] = ["ce", "mse", "random"];

/** A graph input the loss needs, fed per batch. */
export interface LossTarget {
  /** Name of the added graph input. */
  readonly input: string;
  /** The model output it belongs to. */
  readonly output: string;
  readonly shape: readonly number[];
  readonly ft: FloatType;
  /**
   * onehot: labels as one-hot rows over `classes`; binary: one 0/1 target per element (binary
   * cross-entropy); values: regression targets; cotangent: the random v.
   */
  readonly kind: "onehot" | "binary" | "values" | "cotangent";
  readonly classes?: ClassAxes;
}

/**
 * Where the classes of a ce loss sit in its logits: axes [axis, end), flattened row-major into one
 * class index; every index of the other axes, in order, is a position with one label. Mostly one
 * axis (end = axis + 1). A Softmax before opset 13 normalises its input coerced to 2-D at `axis`,
 * so on [N, C, T] at axis 1 it makes one distribution over C*T classes per sample: its classes
 * are axes 1..2 (end = rank), which is what the model computes, not one class per position.
 */
export interface ClassAxes {
  readonly axis: number;
  readonly end: number;
}

/** The number of classes: the product of the class axes. */
const classCount = (shape: readonly number[], c: ClassAxes): number => shape.slice(c.axis, c.end).reduce((a, b) => a * b, 1);

/** "axis 1", or "axes 1..2 flattened" for the classes of a Softmax before opset 13. */
const classAxesText = (c: ClassAxes): string => (c.end === c.axis + 1 ? `axis ${c.axis}` : `axes ${c.axis}..${c.end - 1} flattened`);

export interface EmittedLoss {
  readonly name: LossName;
  /** Scalar loss tensor (for the report). */
  readonly value: string;
  /** dL/d(output) for each model output the loss reads. */
  readonly seeds: ReadonlyMap<string, string>;
  readonly targets: readonly LossTarget[];
  readonly inputs: readonly ValueInfoProto[];
  /** The tensors the loss reads: model outputs, or the logits under a final Softmax, LogSoftmax or Sigmoid. */
  readonly outputs: readonly string[];
  /** ce on a model whose output is already a Softmax, LogSoftmax or Sigmoid: that output, bypassed for its logits. */
  readonly probabilities?: ProbabilityOutput;
}

/** A model output that holds (log-)probabilities, the op that made them from logits, and its classes. */
export interface ProbabilityOutput {
  readonly output: string;
  readonly op: "Softmax" | "LogSoftmax" | "Sigmoid";
  /** The class axes of a Softmax or LogSoftmax, for the loss definition. */
  readonly classes?: ClassAxes;
}

/**
 * Class axis of a logits tensor that no final Softmax or LogSoftmax says more about: the last axis
 * for [N, C] and sequence outputs [N, T, C]; axis 1 for image-shaped outputs [N, C, H, W, ...]
 * (segmentation maps), as torch's cross_entropy.
 */
export const classAxisOf = (rank: number): number => (rank >= 4 ? 1 : rank - 1);

/**
 * Emits the loss and its gradient with respect to the model outputs, in closed form (the seeds
 * of the backward graph):
 * - ce: L = -(1/P) sum_p log softmax(z_p)[label_p] over the P positions of the first float output
 *   of rank >= 2; dL/dz = (softmax(z) - onehot) / P. When that output is a Softmax or LogSoftmax,
 *   z is its input and the classes are on its axis (see ClassAxes). When the first float output
 *   is a Sigmoid, binary cross-entropy on its input z: L = mean(softplus(z) - t z),
 *   dL/dz = (sigmoid(z) - t) / n.
 * - mse: L = sum over float outputs of mean((y - t)^2), t = given targets or 0; dL/dy = 2 (y - t) / n.
 * - random: L = sum over float outputs of sum(v * y), v ~ N(0,1) fixed, scaled to unit RMS; dL/dy = v.
 */
export function emitLoss(e: GradEmitter, model: Model, info: TensorInfo, name: LossName, withTargets: boolean, inDouble = false): EmittedLoss {
  // Each output once (a graph may list one twice), and only outputs some node computes: an
  // output that is a graph input or a constant does not depend on any layer.
  const produced = new Set(model.nodes.flatMap((n) => n.outputs));
  const floatOutputs = [...new Set(model.outputs.map((o) => o.name))].filter((o) => {
    const t = info.dtypes.get(o);
    return produced.has(o) && (t === "float32" || t === "float64");
  });
  if (floatOutputs.length === 0) {
    const floats = model.outputs.filter((o) => isFloat(info.dtypes.get(o.name) ?? "unsupported"));
    const other = floats.find((o) => produced.has(o.name)) ?? floats[0];
    if (!other) throw new DoctorError("model.unsupported", "the model has no float output to put a loss on");
    // A float output no node computes (a graph input passed through, a constant) depends on no weight.
    if (!produced.has(other.name)) throw new DoctorError("model.unsupported", `the model's only float output "${other.name}" is ${model.constants.has(other.name) ? "a constant" : "a graph input passed through"}, which no weight affects: there is no float output to put a loss on`);
    throw new DoctorError("model.unsupported", `gradients of ${info.dtypes.get(other.name)} outputs are not supported`);
  }
  const shapeOf = (t: string): readonly number[] => info.shapes.get(t) ?? [];
  const native = (t: string): FloatType => (info.dtypes.get(t) === "float64" ? "float64" : "float32");
  // inDouble (gradient checking): the loss is computed in float64 so that its own rounding does
  // not quantise finite differences of a float32 model.
  const ftOf = (t: string): FloatType => (inDouble ? "float64" : native(t));
  const read = (t: string): string => (ftOf(t) !== native(t) ? e.op("Cast", [t], { to: DT.DOUBLE }) : t);
  const seeds = new Map<string, string>();
  const seed = (t: string, g: string): void => {
    seeds.set(t, ftOf(t) !== native(t) ? e.op("Cast", [g], { to: DT.FLOAT }) : g);
  };
  const targets: LossTarget[] = [];
  const parts: string[] = [];
  const addTarget = (output: string, kind: LossTarget["kind"], classes?: ClassAxes): string => {
    const input = e.fresh(`target_${kind}`);
    targets.push({ input, output, shape: shapeOf(output), ft: ftOf(output), kind, classes });
    return input;
  };

  if (name === "ce") {
    // A model that ends in Sigmoid (binary or multi-label classifier, Silero's speech
    // probability) outputs probabilities of independent classes: binary cross-entropy on the
    // logits under it, not softmax cross-entropy over probabilities.
    const first = model.nodes.find((n) => n.outputs[0] === floatOutputs[0]);
    if (first?.opType === "Sigmoid" && isFloat(info.dtypes.get(first.inputs[0]) ?? "unsupported")) {
      const z = first.inputs[0];
      const ft = ftOf(z);
      const n = shapeOf(z).reduce((a, b) => a * b, 1);
      const t = addTarget(z, "binary");
      const zr = read(z);
      // softplus(z) = max(z, 0) + log(1 + exp(-|z|)): stable, and onnxruntime's Softplus has no
      // double kernel (gradient checking computes the loss in float64).
      const softplus = e.op("Add", [e.op("Relu", [zr]), e.op("Log", [e.op("Add", [e.op("Exp", [e.op("Neg", [e.op("Abs", [zr])])]), e.floatTensor([1], [], ft)])])]);
      parts.push(e.reduce("ReduceMean", e.sub(softplus, e.mul(t, zr)), undefined, false));
      seed(z, e.scale(e.sub(e.op("Sigmoid", [zr]), t), 1 / n, ft));
      return finish([z], { output: floatOutputs[0], op: "Sigmoid" });
    }
    const out = floatOutputs.find((o) => shapeOf(o).length >= 2);
    if (!out) throw new DoctorError("model.unsupported", `--loss ce needs logits of rank 2 or more; the outputs are ${floatOutputs.map((o) => `${o}[${shapeOf(o).join(",")}]`).join(", ")}`);
    const rank = shapeOf(out).length;
    // A model that ends in Softmax outputs probabilities: cross-entropy belongs on its input, the
    // logits (log softmax of probabilities is not log p, and the gradient would pass softmax twice),
    // with the classes where the Softmax normalises them, not on the axis an output of that rank
    // usually holds them ([N, C, T] with a Softmax over C is a per-position classifier too). A final
    // LogSoftmax is bypassed alike: on its own axes log softmax is idempotent, on others it is not.
    const producer = model.nodes.find((n) => n.outputs[0] === out);
    const normalised = producer && (producer.opType === "Softmax" || producer.opType === "LogSoftmax") && isFloat(info.dtypes.get(producer.inputs[0]) ?? "unsupported") ? producer : undefined;
    const classes = normalised ? softmaxClasses(attrInt(normalised, "axis", e.opset >= 13 ? -1 : 1), shapeOf(out), e.opset) : undefined;
    const z = classes ? normalised!.inputs[0] : out;
    const probabilities: ProbabilityOutput | undefined = classes ? { output: out, op: normalised!.opType as "Softmax" | "LogSoftmax", classes } : undefined;
    const cls = classes ?? { axis: classAxisOf(rank), end: classAxisOf(rank) + 1 };
    const ft = ftOf(z);
    const zs = shapeOf(z);
    const C = classCount(zs, cls);
    if (C < 2) throw new DoctorError("model.unsupported", `--loss ce needs at least 2 classes, but ${z} [${zs.join(",")}] has ${C} on its class ${classAxesText(cls)}, so the cross-entropy is identically 0; use --loss mse or random`);
    const positions = zs.reduce((a, b) => a * b, 1) / C;
    const onehot = addTarget(z, "onehot", cls);
    // Before opset 13 LogSoftmax flattens everything from `axis` on: move a single class axis last
    // (flattened class axes already end the tensor, and are what the old LogSoftmax normalises).
    const ax = cls.axis;
    const moveLast = e.opset < 13 && cls.end === ax + 1 && ax !== rank - 1;
    const perm = [...Array.from({ length: rank }, (_, i) => i).filter((i) => i !== ax), ax];
    const inverse = perm.map((_, i) => perm.indexOf(i));
    const zt = moveLast ? e.transpose(read(z), perm) : read(z);
    const tt = moveLast ? e.transpose(onehot, perm) : onehot;
    const axis = moveLast ? rank - 1 : ax;
    const logp = e.op("LogSoftmax", [zt], { axis });
    parts.push(e.scale(e.reduce("ReduceSum", e.mul(tt, logp), undefined, false), -1 / positions, ft));
    const dzt = e.scale(e.sub(e.op("Exp", [logp]), tt), 1 / positions, ft);
    seed(z, moveLast ? e.transpose(dzt, inverse) : dzt);
    return finish([z], probabilities);
  }

  for (const y of floatOutputs) {
    const ft = ftOf(y);
    const n = shapeOf(y).reduce((a, b) => a * b, 1);
    if (name === "mse") {
      const diff = withTargets ? e.sub(read(y), addTarget(y, "values")) : read(y);
      parts.push(e.reduce("ReduceMean", e.mul(diff, diff), undefined, false));
      seed(y, e.scale(diff, 2 / n, ft));
    } else {
      const v = addTarget(y, "cotangent");
      parts.push(e.reduce("ReduceSum", e.mul(v, read(y)), undefined, false));
      seed(y, v);
    }
    if (name === "mse" && withTargets) break; // targets describe the first output only
  }
  return finish([...seeds.keys()]);

  function finish(outputs: string[], probabilities?: ProbabilityOutput): EmittedLoss {
    const value = parts.length === 1 ? parts[0] : e.op("Sum", parts);
    const inputs = targets.map((t) => tensorValueInfo(t.input, onnxFloat(t.ft), t.shape.map(() => null)));
    return { name, value, seeds, targets, inputs, outputs, probabilities };
  }
}

/**
 * The class axes of a final Softmax or LogSoftmax over `axis` of a tensor of `shape` (opset
 * `opset`), or undefined when it normalises over the batch axis (or, before opset 13, the whole
 * tensor), which no classifier does: ce then reads the output as any other.
 */
function softmaxClasses(axis: number, shape: readonly number[], opset: number): ClassAxes | undefined {
  const rank = shape.length;
  const a = axis < 0 ? axis + rank : axis;
  if (a < 1 || a >= rank) return undefined;
  // Before opset 13 the axes after `axis` share its distribution, unless they are all 1.
  const flat = opset < 13 && shape.slice(a + 1).some((d) => d !== 1);
  return { axis: a, end: flat ? rank : a + 1 };
}

/** "the logits z" (an output named "logits" is not called "the logits logits"). */
const logitsOf = (out: string): string => (/logit/i.test(out) ? out : `the logits ${out}`);

/** ", classes on axis 1," for the definition; classes flattened over several axes say why. */
function classesOf(p?: ProbabilityOutput): string {
  const c = p?.classes;
  if (!c) return "";
  if (c.end === c.axis + 1) return `, classes on axis ${c.axis},`;
  const rows = c.axis === 1 ? "axis 0" : `axes 0..${c.axis - 1}`;
  return `, classes on ${classAxesText(c)}, one label per index of ${rows} (before opset 13 ${p.op} normalises every axis from its axis ${c.axis} on together: one distribution over all of them, not one per position),`;
}

/** Human-readable definition of the loss, for the report. */
export function lossDefinition(name: LossName, outputs: readonly string[], labels?: string, probabilities?: ProbabilityOutput): string {
  const out = outputs.join(", ");
  switch (name) {
    case "ce":
      if (probabilities?.op === "Sigmoid") {
        return `mean binary cross-entropy of ${logitsOf(out)} (the input of the Sigmoid that makes the model output ${probabilities.output}) against ${labels ? `the 0/1 targets in ${labels}` : "random 0/1 targets (seeded)"}: L = mean over elements of softplus(z) - t*z, which is -mean(t log p + (1-t) log(1-p)) with p = sigmoid(z)`;
      }
      return `mean cross-entropy of ${logitsOf(out)}${probabilities ? ` (the input of the ${probabilities.op} that makes the model output ${probabilities.output})` : ""}${classesOf(probabilities)} against ${labels ? `the labels in ${labels}` : "random labels (seeded)"}: L = -mean over positions of log softmax(z)[label]`;
    case "mse":
      return `mean squared ${labels ? `error of ${out} against the targets in ${labels}` : `output: L = mean(y^2) over every element of ${out}`}`;
    case "random":
      return `random projection L = sum(v * y) of ${out}, with a fixed cotangent v ~ N(0,1) scaled to unit RMS, so dL/dy = v: measures how the network amplifies or damps gradients`;
  }
}

/**
 * Feeds for the loss targets of batch `b`: one-hot labels (from `labels`, rows
 * [b*batchSize, ...), or seeded random classes), regression targets, or the fixed random
 * cotangent (the same for every batch of one shape).
 */
export class TargetFeeder {
  private readonly cotangents = new Map<string, Float32Array | Float64Array>();

  constructor(private readonly targets: readonly LossTarget[], private readonly seed: number, private readonly labels?: HostTensor, private readonly batchSize = 0) {
    // Every row, not only those of the batches that run (gradcheck uses the first batch only).
    const classes = targets.find((t) => t.kind === "onehot");
    if (labels && classes) {
      const C = classCount(classes.shape, classes.classes!);
      const bad = Array.from(labels.data as ArrayLike<number>).find((v) => !Number.isInteger(v) || v < 0 || v >= C);
      // With several outputs, say which one the classes were counted on: the loss reads the first.
      const of = `${C} classes of output "${classes.output}" [${classes.shape.join(",")}], ${classAxesText(classes.classes!)}`;
      if (bad !== undefined) throw new DoctorError("probe.input", `labels: ${bad} is not a class index in [0, ${C}) (${of}; the loss reads the model's first output)${Number.isInteger(bad) ? "" : "; for real-valued targets use --loss mse"}`);
    }
    if (labels && targets.some((t) => t.kind === "binary")) {
      const bad = Array.from(labels.data as ArrayLike<number>).find((v) => !(v >= 0 && v <= 1));
      if (bad !== undefined) throw new DoctorError("probe.input", `labels: ${bad} is not a binary target in [0, 1] (the model ends in a Sigmoid, so --loss ce is binary cross-entropy)`);
    }
  }

  feeds(b: number): Record<string, HostTensor> {
    const out: Record<string, HostTensor> = {};
    this.targets.forEach((t, k) => {
      const n = t.shape.reduce((x, y) => x * y, 1);
      const data = t.ft === "float64" ? new Float64Array(n) : new Float32Array(n);
      if (t.kind === "cotangent") {
        let v = this.cotangents.get(t.input);
        if (!v) {
          const r = new Random(this.seed * 1000003 + 7919 * (k + 1));
          v = t.ft === "float64" ? new Float64Array(n) : new Float32Array(n);
          let ss = 0;
          for (let i = 0; i < n; i++) {
            v[i] = r.normal();
            ss += v[i] * v[i];
          }
          const s = ss > 0 ? Math.sqrt(n / ss) : 1;
          for (let i = 0; i < n; i++) v[i] *= s;
          // One element scaled to unit RMS is ±1, and two outputs that alias one value (an
          // Identity copy, an RNN's Y and Y_h at one step) would cancel half the time: use +1.
          if (n === 1) v[0] = 1;
          this.cotangents.set(t.input, v);
        }
        out[t.input] = { dtype: t.ft, dims: t.shape, data: v };
        return;
      }
      const rows = this.labelRows(b, t);
      if (t.kind === "binary") {
        if (rows && rows.length !== n) throw new DoctorError("probe.input", `labels: batch ${b + 1} has ${rows.length} targets, the logits "${t.output}" [${t.shape.join(",")}] need ${n} (one 0/1 target per element)`);
        const random = new Random(this.seed * 7919 + b + 104729);
        for (let i = 0; i < n; i++) data[i] = rows ? rows[i] : random.uniform() < 0.5 ? 1 : 0;
      } else if (t.kind === "values") {
        if (!rows) throw new DoctorError("probe.input", "--loss mse with targets needs --labels");
        if (rows.length !== n) throw new DoctorError("probe.input", `labels: batch ${b + 1} has ${rows.length} target values, the model output "${t.output}" has ${n} ([${t.shape.join(",")}])`);
        for (let i = 0; i < n; i++) data[i] = rows[i];
      } else {
        const cls = t.classes!;
        const C = classCount(t.shape, cls);
        const inner = t.shape.slice(cls.end).reduce((x, y) => x * y, 1);
        const positions = n / C;
        const random = new Random(this.seed * 7919 + b + 104729);
        if (rows && rows.length !== positions) {
          throw new DoctorError("probe.input", `labels: batch ${b + 1} has ${rows.length} labels, the logits "${t.output}" [${t.shape.join(",")}] need ${positions} (one per position, classes on ${classAxesText(cls)})`);
        }
        for (let p = 0; p < positions; p++) {
          const label = rows ? rows[p] : random.int(C);
          if (!Number.isInteger(label) || label < 0 || label >= C) throw new DoctorError("probe.input", `labels: ${label} is not a class index in [0, ${C})${Number.isInteger(label) ? "" : "; for real-valued targets use --loss mse"}`);
          // Position p = (outer o, inner i); the class axes sit between them.
          const o = Math.floor(p / inner);
          const i = p % inner;
          data[(o * C + label) * inner + i] = 1;
        }
      }
      out[t.input] = { dtype: t.ft, dims: t.shape, data };
    });
    return out;
  }

  /** Zero tensors for every target (a batch that only runs forward still has to feed them). */
  placeholders(): Record<string, HostTensor> {
    const out: Record<string, HostTensor> = {};
    for (const t of this.targets) {
      const n = t.shape.reduce((x, y) => x * y, 1);
      out[t.input] = { dtype: t.ft, dims: t.shape, data: t.ft === "float64" ? new Float64Array(n) : new Float32Array(n) };
    }
    return out;
  }

  /** The label values for batch b (rows b*batchSize .. + the target's batch dimension), flattened. */
  private labelRows(b: number, t: LossTarget): ArrayLike<number> | undefined {
    if (!this.labels) return undefined;
    const rows = t.shape[0];
    const rowSize = this.labels.dims.slice(1).reduce((x, y) => x * y, 1);
    const start = b * (this.batchSize || rows);
    const total = this.labels.dims[0] ?? 1;
    if (start + rows > total) throw new DoctorError("probe.input", `labels: batch ${b + 1} needs rows ${start}..${start + rows - 1}, the labels have ${total}`);
    const d = this.labels.data.subarray(start * rowSize, (start + rows) * rowSize);
    return d instanceof BigInt64Array ? Array.from(d, Number) : (d as ArrayLike<number>);
  }
}
