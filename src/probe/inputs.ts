import { basename, extname } from "node:path";
import { floatToHalfBits, halfBitsToFloat, type DType } from "../onnx/dtype";
import { DoctorError } from "../onnx/errors";
import type { Model, ValueSpec } from "../onnx/model";
import { GraphIndex } from "../graph/index";
import type { HostTensor } from "../runtime/session";
import { Random } from "../stats/random";
import { asInputType, FLOAT32_MAX, readNpyFile, readNpzFile } from "./npy";

/** What the user asked the probe to feed. */
export interface ProbeOptions {
  batchSize?: number;
  batches?: number;
  seed?: number;
  /** Values for symbolic dimensions, e.g. `{ seq: 128 }`. */
  dims?: Record<string, number>;
  /** A .npy (for the first input) or .npz (keys = input names) file. */
  inputFile?: string;
  /** Constant values for inputs, e.g. `{ sr: 16000 }` for a sample-rate scalar. */
  fill?: Record<string, number>;
}

/** One model input as it will be fed, for the report. */
export interface InputPlan {
  readonly name: string;
  readonly dtype: DType;
  readonly shape: readonly number[];
  readonly source: "synthetic-normal" | "synthetic-ids" | "synthetic-ones" | "fill" | "file";
  /** For file data: the axis cut into batches, -1 for an array fed whole to every batch (see {@link fileBatchAxes}). */
  readonly batchAxis?: number;
}

export interface ProbePlan {
  readonly inputs: readonly InputPlan[];
  /** Every symbolic dimension with the value used, and whether the user chose it. */
  readonly dims: Readonly<Record<string, { value: number; given: boolean }>>;
  readonly batchSize: number;
  readonly batches: number;
  readonly seed: number;
  /** Rows in the user's probe data file (`--input`); undefined for synthetic data. */
  readonly fileRows?: number;
  /** What differs from what was asked: a --batch-size the model's fixed batch overrides, a short last batch. */
  readonly notes: readonly string[];
  /** Makes the feeds of batch `b` (0-based). */
  feeds(b: number): Record<string, HostTensor>;
}

export const DEFAULT_BATCH_SIZE = 8;
export const DEFAULT_BATCHES = 2;
/** Size for dynamic non-batch dims: big enough for most convs, small enough to be quick. */
export const DEFAULT_DYNAMIC_DIM = 64;

/**
 * ": dynamic dimensions were defaulted to samples=64; set them with --dim name=value", and for a
 * model with several inputs the ones past the first that got synthetic values (a sample rate, a
 * recurrent state: constants the model expects), or "".
 */
export function defaultedDimsHint(plan: ProbePlan | undefined): string {
  const defaulted = Object.entries(plan?.dims ?? {}).filter(([, v]) => !v.given).map(([k, v]) => `${k}=${v.value}`);
  const synthetic = (plan?.inputs ?? []).slice(1).filter((i) => i.source.startsWith("synthetic")).map((i) => i.name);
  return [
    defaulted.length ? `: dynamic dimensions were defaulted to ${defaulted.join(", ")}; set them with --dim name=value` : "",
    synthetic.length ? `${defaulted.length ? ";" : ":"} input${synthetic.length === 1 ? "" : "s"} ${synthetic.join(", ")} got synthetic values; give constants the model expects (a sample rate, a recurrent state) with --fill name=value` : "",
  ].join("");
}

/**
 * Decides shapes and data for each model input: the first dynamic dimension is the batch,
 * other dynamic dimensions come from `--dim name=value` or a default; integer inputs that index
 * an embedding get valid ids.
 */
export function planProbe(model: Model, options: ProbeOptions = {}): ProbePlan {
  let batchSize = options.batchSize ?? DEFAULT_BATCH_SIZE;
  const seed = options.seed ?? 0;
  const notes: string[] = [];
  const fileData = options.inputFile ? readInputFile(options.inputFile, model.inputs, notes) : undefined;
  const index = new GraphIndex(model);
  const symbolic = new Set(model.inputs.flatMap((s) => (s.shape ?? []).filter((d): d is string => typeof d === "string")));
  for (const name of Object.keys(options.dims ?? {})) {
    if (!symbolic.has(name)) {
      throw new DoctorError("probe.input", `--dim ${name}: the model has no dimension named "${name}"; its symbolic dimensions are: ${[...symbolic].join(", ") || "none"}`);
    }
  }
  for (const [name, value] of Object.entries(options.fill ?? {})) {
    const spec = model.inputs.find((s) => s.name === name);
    if (!spec) {
      throw new DoctorError("probe.input", `--fill ${name}: the model has no input named "${name}"; its inputs are: ${model.inputs.map((s) => s.name).join(", ")}`);
    }
    // Two values for one input: which one the probe should feed would be a guess.
    if (fileData?.has(name)) throw new DoctorError("probe.input", `--fill ${name}: input "${name}" is also given by --input ${basename(options.inputFile!)}; give it one way`);
    checkFillValue(name, value, spec.dtype);
  }
  // onnxruntime holds a dimension written as 0 to exactly 0 (it is not "unknown"), so such an
  // input can only ever be empty: say so before any run fails on it.
  for (const spec of model.inputs) {
    const axis = spec.shape?.indexOf(0) ?? -1;
    if (axis >= 0) {
      throw new DoctorError("probe.input", `input "${spec.name}" has shape [${spec.shape!.map((d) => d ?? "?").join(", ")}]: dimension ${axis} is fixed at 0, so every tensor it accepts is empty and there is nothing to probe; make that dimension symbolic in the model, or check the weights alone with --static`);
    }
  }
  const dims: Record<string, { value: number; given: boolean }> = {};

  if (fileData) {
    for (const [name, t] of fileData) checkIds(name, t, embeddingSize(name, index), basename(options.inputFile!));
    const axes = fileBatchAxes(model.inputs, fileData);
    // The first array with a batch axis sets the rows (scalars have none: all scalars make one row).
    const [primary, primaryAxis] = [...axes].find(([, axis]) => axis >= 0) ?? [[...axes.keys()][0], -1];
    const rows = fileData.get(primary)!.dims[primaryAxis] ?? 1;
    for (const [name, axis] of axes) {
      const n = fileData.get(name)!.dims[axis];
      if (axis >= 0 && n !== rows) {
        throw new DoctorError("probe.input", `${basename(options.inputFile!)}: "${name}" has ${n} rows on its batch axis ${axis} but "${primary}" has ${rows} on axis ${primaryAxis}; every array needs one entry per example`);
      }
    }
    const fileSpec = model.inputs.find((s) => s.name === primary);
    // A model with a fixed batch dimension (mnist's [1,1,28,28]) takes the file's rows that many at a time.
    const fixed = fileSpec?.shape?.[primaryAxis];
    notes.push(...fixedBatchNote(typeof fixed === "number" ? fixed : undefined, options.batchSize));
    if (typeof fixed === "number" && fixed > 0) batchSize = fixed;
    const available = Math.max(1, Math.ceil(rows / batchSize));
    const batches = Math.min(options.batches ?? available, available);
    const oneBatch = Math.min(batchSize, rows);
    const lastRows = rows - (batches - 1) * batchSize;
    if (batches > 1 && lastRows < batchSize) notes.push(`the file's ${rows} rows make ${batches - 1} batch(es) of ${batchSize} and a last one of ${lastRows}`);
    for (const axis of new Set([...axes.values()].filter((a) => a > 0))) {
      const names = [...axes].filter(([, a]) => a === axis).map(([name]) => `"${name}"`);
      notes.push(`${names.join(", ")} ${names.length > 1 ? "are" : "is"} cut into batches along axis ${axis}, where the model declares the batch dimension`);
    }
    // Inputs not in the file (--fill states, sample rates) follow the file's rows on their batch
    // axes: Silero's h and c are [2, batch, 64], and a 4-row file needs them at 4, not 8.
    const batchName = typeof fileSpec?.shape?.[primaryAxis] === "string" ? fileSpec.shape[primaryAxis] : undefined;
    const batchAxes = new Map(model.inputs.filter((s) => !fileData.has(s.name)).map((s) => [s.name, (s.shape ?? []).flatMap((d, i) =>
      typeof d === "string" && options.dims?.[d] === undefined && (d === batchName || i === 0 || /batch/i.test(d)) ? [i] : [])]));
    const inputs: InputPlan[] = model.inputs.map((spec) => {
      const t = fileData.get(spec.name);
      // The shape of one batch, as the model sees it, not of the whole file.
      const axis = axes.get(spec.name) ?? -1;
      if (t) return { name: spec.name, dtype: t.dtype, shape: t.dims.map((d, i) => (i === axis ? Math.min(batchSize, d) : d)), source: "file", batchAxis: axis };
      const shape = resolveShape(spec, oneBatch, options.dims ?? {}, dims);
      const source = syntheticSource(spec, options.fill, index);
      if (source !== "fill") notes.push(`${basename(options.inputFile!)} has no array "${spec.name}": it gets ${SYNTHETIC_WORDS[source]}`);
      return { name: spec.name, dtype: spec.dtype, shape, source };
    });
    return {
      inputs, dims, batchSize: oneBatch, batches, seed, fileRows: rows, notes,
      feeds: (b) => {
        const feeds: Record<string, HostTensor> = {};
        const rowsOfBatch = Math.max(1, Math.min(batchSize, rows - b * batchSize));
        for (const plan of inputs) {
          const t = fileData.get(plan.name);
          if (t) {
            const axis = axes.get(plan.name)!;
            feeds[plan.name] = axis < 0 ? t : sliceAlong(t, axis, b * batchSize, batchSize);
            continue;
          }
          const filled = batchAxes.get(plan.name) ?? [];
          const sized = filled.length && rowsOfBatch !== oneBatch ? { ...plan, shape: plan.shape.map((d, i) => (filled.includes(i) ? rowsOfBatch : d)) } : plan;
          feeds[plan.name] = synthetic(sized, new Random(seed + b), options.fill, index);
        }
        return feeds;
      },
    };
  }

  const inputs: InputPlan[] = model.inputs.map((spec) => {
    const shape = resolveShape(spec, batchSize, options.dims ?? {}, dims);
    return { name: spec.name, dtype: spec.dtype, shape, source: syntheticSource(spec, options.fill, index) };
  });
  const fixed = model.inputs[0]?.shape?.[0];
  return {
    // A model with a fixed batch dimension runs at that size whatever --batch-size says.
    inputs, dims, batchSize: inputs[0]?.shape[0] ?? batchSize, batches: options.batches ?? DEFAULT_BATCHES, seed,
    notes: fixedBatchNote(typeof fixed === "number" ? fixed : undefined, options.batchSize),
    feeds: (b) => {
      const random = new Random(seed * 7919 + b);
      const feeds: Record<string, HostTensor> = {};
      for (const plan of inputs) feeds[plan.name] = synthetic(plan, random, options.fill, index);
      return feeds;
    },
  };
}

/** How an input without data is fed: its --fill value, N(0,1) floats, valid ids for an embedding, else ones. */
function syntheticSource(spec: ValueSpec, fill: Record<string, number> | undefined, index: GraphIndex): InputPlan["source"] {
  if (fill?.[spec.name] !== undefined) return "fill";
  return spec.dtype.startsWith("float") ? "synthetic-normal" : embeddingSize(spec.name, index) ? "synthetic-ids" : "synthetic-ones";
}

const SYNTHETIC_WORDS: Record<string, string> = {
  "synthetic-normal": "synthetic N(0,1) values (give it in the file, or a constant with --fill)",
  "synthetic-ids": "random ids of the embedding it indexes (give it in the file, or a constant with --fill)",
  "synthetic-ones": "ones (give it in the file, or a constant with --fill)",
};

function fixedBatchNote(fixed: number | undefined, asked: number | undefined): string[] {
  return fixed !== undefined && fixed > 0 && asked !== undefined && asked !== fixed ? [`the model fixes its batch dimension at ${fixed}, so batches have ${fixed} row(s), not --batch-size ${asked}`] : [];
}

function resolveShape(spec: ValueSpec, batchSize: number, given: Record<string, number>, used: Record<string, { value: number; given: boolean }>): number[] {
  if (!spec.shape) throw new DoctorError("probe.input", `input "${spec.name}" has no declared shape; give data with --input`);
  return spec.shape.map((d, i) => {
    if (typeof d === "number" && d > 0) return d;
    const value = typeof d === "string" && given[d] !== undefined ? given[d]
      : i === 0 || (typeof d === "string" && /batch/i.test(d)) ? batchSize : DEFAULT_DYNAMIC_DIM;
    if (typeof d === "string") used[d] = { value, given: given[d] !== undefined };
    return value;
  });
}

/** Vocabulary size when this integer input indexes a constant table through Gather. */
function embeddingSize(input: string, index: GraphIndex): number | undefined {
  for (const c of index.consumersOf(input)) {
    if (c.opType === "Gather" && c.inputs[1] === input) {
      const table = index.model.constants.get(c.inputs[0]);
      if (table) return table.dims[0];
    }
  }
  return undefined;
}

/** Token ids outside an embedding table are the data's fault, not the model's: say so before onnxruntime's Gather fails. */
function checkIds(name: string, t: HostTensor, vocab: number | undefined, label: string): void {
  if (vocab === undefined || !(t.data instanceof BigInt64Array || t.data instanceof Int32Array)) return;
  for (let i = 0; i < t.data.length; i++) {
    const id = Number(t.data[i]);
    if (id < -vocab || id >= vocab) {
      throw new DoctorError("probe.input", `${label}: "${name}" holds id ${id} (element ${i}), outside the embedding table it indexes (${vocab} rows, ids 0..${vocab - 1})`);
    }
  }
}

/** The values a --fill constant may take for an integer input (int64: those a double holds exactly). */
const INTEGER_RANGES: Partial<Record<DType, readonly [number, number]>> = {
  int64: [-Number.MAX_SAFE_INTEGER, Number.MAX_SAFE_INTEGER], int32: [-(2 ** 31), 2 ** 31 - 1], int8: [-128, 127], uint8: [0, 255], bool: [0, 1],
};

/** Largest finite float16. */
const FLOAT16_MAX = 65504;

/**
 * Refuses a --fill value the input's type cannot hold: beyond float32's (or float16's) range it
 * would become Inf and the probe would report "NaN/Inf in the probe data" the user never gave.
 */
function checkFillValue(name: string, value: number, dtype: DType): void {
  // Integer inputs (a sample rate, a token id): a fraction would be rounded, and a value outside the
  // type would wrap around, both silently.
  const range = INTEGER_RANGES[dtype];
  if (range) {
    if (!Number.isInteger(value)) throw new DoctorError("probe.input", `--fill ${name}=${value}: input "${name}" is ${dtype}, so the value must be a whole number`);
    if (value < range[0] || value > range[1]) throw new DoctorError("probe.input", `--fill ${name}=${value}: ${value} is outside ${dtype}, the type of input "${name}" (${range[0]} to ${range[1]})`);
    return;
  }
  const max = dtype === "float32" ? FLOAT32_MAX : dtype === "float16" ? FLOAT16_MAX : undefined;
  if (max === undefined) return;
  const stored = dtype === "float32" ? Math.fround(value) : halfBitsToFloat(floatToHalfBits(value));
  if (!Number.isFinite(stored)) {
    throw new DoctorError("probe.input", `--fill ${name}=${value}: ${value} overflows ${dtype}, the type of input "${name}" (largest finite ±${max === FLOAT32_MAX ? max.toPrecision(8) : max})`);
  }
}

/** Elements one synthetic input may have (1 GiB of float32): more is a typo, not a probe. */
const MAX_INPUT_ELEMENTS = 2 ** 28;

function synthetic(plan: InputPlan, random: Random, fill: Record<string, number> | undefined, index: GraphIndex): HostTensor {
  const count = plan.shape.reduce((a, b) => a * b, 1);
  if (!(count <= MAX_INPUT_ELEMENTS)) {
    throw new DoctorError("probe.input", `input "${plan.name}" would have shape [${plan.shape.join(", ")}] (${count.toExponential(2)} elements); lower --batch-size or the --dim values`);
  }
  const constant = fill?.[plan.name];
  const vocab = embeddingSize(plan.name, index);
  const value = (): number => constant ?? (plan.dtype.startsWith("float") ? random.normal() : vocab ? random.int(vocab) : 1);
  switch (plan.dtype) {
    case "float32": return { dtype: "float32", dims: plan.shape, data: Float32Array.from({ length: count }, value) };
    case "float64": return { dtype: "float64", dims: plan.shape, data: Float64Array.from({ length: count }, value) };
    case "float16": return { dtype: "float16", dims: plan.shape, data: Uint16Array.from({ length: count }, () => floatToHalfBits(value())) };
    case "int64": return { dtype: "int64", dims: plan.shape, data: BigInt64Array.from({ length: count }, () => BigInt(Math.round(value()))) };
    case "int32": return { dtype: "int32", dims: plan.shape, data: Int32Array.from({ length: count }, () => Math.round(value())) };
    case "bool": return { dtype: "bool", dims: plan.shape, data: Uint8Array.from({ length: count }, () => (value() ? 1 : 0)) };
    case "uint8": return { dtype: "uint8", dims: plan.shape, data: Uint8Array.from({ length: count }, () => Math.round(value())) };
    case "int8": return { dtype: "int8", dims: plan.shape, data: Int8Array.from({ length: count }, () => Math.round(value())) };
    default: throw new DoctorError("probe.input", `input "${plan.name}" has type ${plan.dtype}; give it with --input`);
  }
}

function readInputFile(file: string, specs: readonly ValueSpec[], notes: string[]): Map<string, HostTensor> {
  const label = basename(file);
  const data = extname(file).toLowerCase() === ".npz" ? readNpzFile(file, "--input") : new Map([[specs[0]?.name ?? "input", readNpyFile(file, "--input")]]);
  for (const [name, t] of data) {
    const spec = specs.find((s) => s.name === name);
    if (!spec) throw new DoctorError("probe.input", `${label}: array "${name}" matches no model input (inputs: ${specs.map((s) => s.name).join(", ")})`);
    if (spec.shape && spec.shape.length !== t.dims.length) {
      throw new DoctorError("probe.input", `${label}: "${name}" has shape [${t.dims.join(",")}] but the model expects rank ${spec.shape.length} [${spec.shape.map((d) => d ?? "?").join(",")}]`);
    }
    spec.shape?.forEach((d, i) => {
      if (i > 0 && typeof d === "number" && d > 0 && d !== t.dims[i]) {
        throw new DoctorError("probe.input", `${label}: "${name}" has shape [${t.dims.join(",")}] but dimension ${i} must be ${d}`);
      }
    });
    const typed = asInputType(t, spec.dtype, label, name);
    if (typed !== t) {
      data.set(name, typed);
      notes.push(`${label}: "${name}" converted from ${t.dtype} to ${spec.dtype}, the model's type`);
    }
    if (t.dims.includes(0)) throw new DoctorError("probe.input", `${label}: "${name}" has shape [${t.dims.join(",")}]: no values to probe with`);
  }
  return data;
}

/**
 * The axis of each `--input` array that holds the examples, or -1 for an array fed whole to every
 * batch. The batch is the symbolic dimension named like "batch" in a file input's declared shape,
 * else the one symbolic dimension every array with axes shares (x [T, N, F] and h0 [2, N, H]: N),
 * else the first file input's axis 0; an array is cut where its declared shape has that dimension,
 * so time-major sequences [T, batch, F] and recurrent states [layers, batch, H] are cut on axis 1.
 * A 0-d array (a sample rate) is fed whole, and so is an array after the first one with axes whose
 * declared shape is all fixed and equal to its own (a [2, 1, 64] state); anything else is cut on axis 0.
 */
export function fileBatchAxes(specs: readonly ValueSpec[], arrays: ReadonlyMap<string, HostTensor>): Map<string, number> {
  const inFile = specs.filter((s) => arrays.has(s.name));
  const names = inFile.map((s) => (s.shape ?? []).filter((d): d is string => typeof d === "string"));
  const ranked = names.filter((_, k) => arrays.get(inFile[k].name)!.dims.length > 0);
  // Shared by every array with axes (x [T, N, F], h0 [2, N, H]: N), when there are several.
  const shared = ranked.length > 1 ? ranked[0].filter((d) => ranked.every((n) => n.includes(d))) : [];
  const batchName = names.flat().find((d) => /batch/i.test(d))
    ?? (shared.length === 1 ? shared[0] : undefined)
    ?? inFile.map((s) => s.shape?.[0]).find((d): d is string => typeof d === "string");
  const firstRanked = inFile.findIndex((s) => arrays.get(s.name)!.dims.length > 0);
  return new Map(inFile.map((spec, k) => {
    const shape = spec.shape ?? [];
    const dims = arrays.get(spec.name)!.dims;
    const named = batchName === undefined ? -1 : shape.indexOf(batchName);
    if (named >= 0) return [spec.name, named];
    const fedWhole = dims.length === 0 || (k > firstRanked && shape.length === dims.length && shape.every((d, i) => d === dims[i]));
    return [spec.name, fedWhole ? -1 : 0];
  }));
}

/** Entries [start, start+count) of a tensor along `axis` (clamped to what exists); a view on axis 0, a copy otherwise. */
export function sliceAlong(t: HostTensor, axis: number, start: number, count: number): HostTensor {
  const n = t.dims[axis] ?? 1;
  const end = Math.min(n, start + count);
  const inner = t.dims.slice(axis + 1).reduce((a, b) => a * b, 1);
  const outer = t.dims.slice(0, axis).reduce((a, b) => a * b, 1);
  const dims = t.dims.map((d, i) => (i === axis ? end - start : d));
  type Data = HostTensor["data"];
  if (outer === 1) return { dtype: t.dtype, dims, data: t.data.subarray(start * inner, end * inner) as Data };
  const data = new (t.data.constructor as new (length: number) => Data)(outer * (end - start) * inner);
  for (let o = 0; o < outer; o++) (data as Float32Array).set((t.data as Float32Array).subarray((o * n + start) * inner, (o * n + end) * inner), o * (end - start) * inner);
  return { dtype: t.dtype, dims, data };
}
