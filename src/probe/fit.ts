import { basename } from "node:path";
import { serializeWith } from "../instrument/stats-graph";
import { DoctorError } from "../onnx/errors";
import type { Model } from "../onnx/model";
import type { FitReport, FitSetReport } from "../report/types";
import { RuntimeSession, type HostTensor } from "../runtime/session";
import { asInputType, badClassIndex, labelValues, readNpzFile } from "./npy";
import { fileBatchAxes, sliceAlong } from "./inputs";

/** Names under which an .npz may hold the labels. */
export const LABEL_KEYS = ["labels", "label", "y", "target", "targets"];

/**
 * The seed's first lesson: train error large -> high bias (under-fitting); validation error much
 * larger than train error -> high variance (over-fitting). Margins in error-rate points.
 */
export const BIAS_MARGIN = 0.05;
export const VARIANCE_MARGIN = 0.05;

export interface FitOptions {
  trainData: string;
  valData: string;
  /** The error an ideal model would still make (human-level / Bayes error). */
  baselineError?: number;
  batchSize?: number;
  intraOpThreads?: number;
}

interface LabelledSet {
  /** "--val-data v.npz", for messages. */
  source: string;
  feeds: Map<string, HostTensor>;
  /** Each input's batch axis (-1: fed whole), see {@link fileBatchAxes}. */
  axes: Map<string, number>;
  labels: HostTensor;
  labelKey: string;
  rows: number;
}

function readSet(file: string, model: Model, option: string): LabelledSet {
  const label = basename(file);
  const arrays = readNpzFile(file, option);
  const inputNames = new Set(model.inputs.map((i) => i.name));
  const labelKey = LABEL_KEYS.find((k) => arrays.has(k) && !inputNames.has(k)) ?? [...arrays.keys()].find((k) => !inputNames.has(k));
  if (!labelKey) throw new DoctorError("probe.input", `${label}: no labels; save them as "labels" next to the inputs (${[...inputNames].join(", ")})`);
  const feeds = new Map<string, HostTensor>();
  for (const spec of model.inputs) {
    const t = arrays.get(spec.name) ?? (model.inputs.length === 1 ? [...arrays].find(([k]) => k !== labelKey)?.[1] : undefined);
    if (!t) throw new DoctorError("probe.input", `${label}: no array for model input "${spec.name}"`);
    feeds.set(spec.name, asInputType(t, spec.dtype, label, spec.name));
  }
  const raw = arrays.get(labelKey)!;
  // As numbers (float16 decoded from its bits, 64-bit integers converted), refused like --labels
  // when NaN/Inf or an id beyond 2^53; the dtype stays, since integer labels mean classes.
  const values = labelValues(raw, `${label}: "${labelKey}"`, "label");
  const labels: HostTensor = { dtype: raw.dtype === "float16" ? "float64" : raw.dtype, dims: raw.dims, data: values };
  const rows = labels.dims[0] ?? 1;
  const axes = fileBatchAxes(model.inputs, feeds);
  for (const [name, t] of feeds) {
    const axis = axes.get(name)!;
    if (axis >= 0 && (t.dims[axis] ?? 1) !== rows) throw new DoctorError("probe.input", `${label}: "${name}" has ${t.dims[axis]} rows${axis ? ` on its batch axis ${axis}` : ""} but "${labelKey}" has ${rows}`);
  }
  return { source: `${option} ${label}`, feeds, axes, labels, labelKey, rows };
}

/** Runs the model on every row of a set and returns its first output, concatenated, as float64. */
async function predict(session: RuntimeSession, model: Model, set: LabelledSet, batchSize: number): Promise<{ values: Float64Array; width: number }> {
  const output = model.outputs[0].name;
  const parts: Float64Array[] = [];
  let width = 1;
  for (let start = 0; start < set.rows; start += batchSize) {
    const feeds: Record<string, HostTensor> = {};
    for (const [name, t] of set.feeds) feeds[name] = set.axes.get(name)! < 0 ? t : sliceAlong(t, set.axes.get(name)!, start, batchSize);
    const r = (await session.run(feeds, [output]))[output];
    const n = Math.min(batchSize, set.rows - start);
    width = r.dims.length >= 2 ? r.data.length / n : 1;
    parts.push(Float64Array.from(r.data as ArrayLike<number>, Number));
  }
  const values = new Float64Array(parts.reduce((a, p) => a + p.length, 0));
  let at = 0;
  for (const p of parts) {
    values.set(p, at);
    at += p.length;
  }
  return { values, width };
}

type Task = FitReport["task"];

function taskOf(labels: HostTensor, width: number): Task {
  const integral = labels.dtype.startsWith("int") || labels.dtype.startsWith("uint") || labels.dtype === "bool"
    || Array.from(labels.data as ArrayLike<number>, Number).every((v) => Number.isInteger(v) && v >= 0 && v < Math.max(width, 2));
  if (!integral || labels.data.length !== labels.dims[0]) return "regression";
  return width === 1 ? "binary" : "classification";
}

/**
 * Refuses labels that do not fit the task (taken from the training labels) and the model's output,
 * as --labels are refused, before they turn into a NaN loss and a 100% error: class ids outside
 * [0, classes) or not integers, a binary label other than 0 or 1, and a count of labels or
 * regression targets that does not match the rows or the output. `trainSource` is given for the
 * validation set, whose labels must be of the training labels' kind.
 */
function checkLabels(task: Task, set: LabelledSet, pred: { values: Float64Array; width: number }, output: string, trainSource?: string): void {
  const where = `${set.source}: "${set.labelKey}"`;
  const values = set.labels.data as Float64Array;
  if (task === "regression") {
    if (values.length !== pred.values.length) {
      throw new DoctorError("probe.input", `${where} holds ${values.length} targets, but the model's first output "${output}" gives ${pred.values.length} values for the ${set.rows} rows (${pred.width} per row); regression targets pair with output values one to one`);
    }
    return;
  }
  if (values.length !== set.rows) {
    throw new DoctorError("probe.input", `${where} has shape [${set.labels.dims.join(",")}]: class labels are one integer per row, ${set.rows} here`);
  }
  const classes = task === "binary" ? 2 : pred.width;
  const bad = badClassIndex(values, classes);
  if (bad) {
    const kind = task === "binary" ? `the model's first output "${output}" has one value per row, so the labels are binary: 0 or 1` : `the model's first output "${output}" has ${classes} classes`;
    const why = trainSource && !Number.isInteger(bad.value) ? `; the labels of ${trainSource} are class ids, so these must be too` : "";
    throw new DoctorError("probe.input", `${where} holds ${bad.value} in row ${bad.row}, which is not a class index in [0, ${classes}): ${kind}${why}`);
  }
}

/** Mean cross-entropy (or MSE) and error rate (or 1 - R^2) of predictions against labels. */
function score(task: Task, pred: { values: Float64Array; width: number }, labels: HostTensor): FitSetReport {
  const n = labels.dims[0] ?? 1;
  const y = Array.from(labels.data as ArrayLike<number | bigint>, Number);
  const p = pred.values;
  if (task === "regression") {
    let se = 0;
    let mean = 0;
    for (const v of y) mean += v / y.length;
    let variance = 0;
    for (let i = 0; i < y.length; i++) {
      se += (p[i] - y[i]) ** 2;
      variance += (y[i] - mean) ** 2;
    }
    const mse = se / y.length;
    return { samples: n, loss: mse, error: variance > 0 ? se / variance : NaN };
  }
  let loss = 0;
  let wrong = 0;
  if (task === "binary") {
    const probabilities = p.every((v) => v >= 0 && v <= 1);
    for (let i = 0; i < n; i++) {
      const prob = probabilities ? p[i] : 1 / (1 + Math.exp(-p[i]));
      const q = Math.min(Math.max(y[i] ? prob : 1 - prob, 1e-12), 1);
      loss -= Math.log(q);
      if ((prob >= 0.5 ? 1 : 0) !== (y[i] ? 1 : 0)) wrong++;
    }
    return { samples: n, loss: loss / n, error: wrong / n };
  }
  const c = pred.width;
  for (let i = 0; i < n; i++) {
    const row = p.subarray(i * c, (i + 1) * c);
    let best = 0;
    for (let k = 1; k < c; k++) if (row[k] > row[best]) best = k;
    if (best !== y[i]) wrong++;
    const isProb = row.every((v) => v >= 0) && Math.abs(row.reduce((a, v) => a + v, 0) - 1) < 1e-3;
    if (isProb) loss -= Math.log(Math.max(row[y[i]], 1e-12));
    else {
      const m = Math.max(...row);
      const lse = m + Math.log(row.reduce((a, v) => a + Math.exp(v - m), 0));
      loss += lse - row[y[i]];
    }
  }
  return { samples: n, loss: loss / n, error: wrong / n };
}

/** Runs the model on labelled training and validation sets and classifies bias and variance. */
export async function evaluateFit(model: Model, options: FitOptions): Promise<FitReport> {
  const train = readSet(options.trainData, model, "--train-data");
  const val = readSet(options.valData, model, "--val-data");
  const session = await RuntimeSession.open(serializeWith(model, [], [], []), model.externalFiles, { intraOpThreads: options.intraOpThreads });
  const batchSize = options.batchSize ?? 256;
  let trainPred, valPred;
  try {
    trainPred = await predict(session, model, train, batchSize);
    valPred = await predict(session, model, val, batchSize);
  } finally {
    await session.release();
  }
  const task = taskOf(train.labels, trainPred.width);
  checkLabels(task, train, trainPred, model.outputs[0].name);
  checkLabels(task, val, valPred, model.outputs[0].name, train.source);
  const t = score(task, trainPred, train.labels);
  const v = score(task, valPred, val.labels);
  const baselineError = options.baselineError ?? 0;
  return { task, output: model.outputs[0].name, labels: train.labelKey, train: t, val: v, baselineError, verdict: verdict(t, v, baselineError, task) };
}

/** Standard error of the difference of two error rates (binomial), 0 for regression. */
export function gapStandardError(train: FitSetReport, val: FitSetReport, task: Task): number {
  if (task === "regression") return 0;
  const se = (e: number, n: number): number => (n > 0 ? (Math.min(Math.max(e, 0), 1) * (1 - Math.min(Math.max(e, 0), 1))) / n : 0);
  return Math.sqrt(se(train.error, train.samples) + se(val.error, val.samples));
}

export function verdict(train: FitSetReport, val: FitSetReport, baseline: number, task: Task): FitReport["verdict"] {
  const bias = train.error - baseline > BIAS_MARGIN;
  const variance = val.error - train.error > Math.max(VARIANCE_MARGIN, 2 * gapStandardError(train, val, task));
  return bias && variance ? "high-bias+high-variance" : bias ? "high-bias" : variance ? "high-variance" : "just-right";
}
