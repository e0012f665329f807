import { closeSync, fstatSync, openSync, readSync, statSync } from "node:fs";
import { basename } from "node:path";
import { unzipSync } from "fflate";
import { halfBitsToFloat, type DType } from "../onnx/dtype";
import { DoctorError, oneLine } from "../onnx/errors";
import type { HostTensor } from "../runtime/session";

/** Largest probe-data archive we unpack. */
const MAX_NPZ_BYTES = 4 * 2 ** 30;

/** Largest data file we read (one Node buffer holds at most 2 GiB; a probe needs far less). */
export const MAX_DATA_FILE_BYTES = 2 ** 31 - 1;

/**
 * Reads a .npy/.npz data file named by a command-line option (`--input`, `--labels`, ...). Only
 * regular files: a device (/dev/zero), FIFO or socket never ends or blocks forever, and a directory
 * cannot be read; each gives one probe.input line naming the option and the file, as does a file
 * over {@link MAX_DATA_FILE_BYTES}.
 */
export function readDataFile(file: string, option: string, maxBytes = MAX_DATA_FILE_BYTES): Uint8Array {
  const refuse = (why: string): never => { throw new DoctorError("probe.input", `${option} ${file}: ${why}`); };
  let size = 0;
  try {
    const stat = statSync(file);
    if (stat.isDirectory()) refuse("is a directory, not a .npy/.npz file");
    // Checked before opening: opening a FIFO for reading blocks until a writer appears.
    if (!stat.isFile()) refuse("not a regular file (a device, FIFO or socket); save the data with numpy.save or numpy.savez");
    size = stat.size;
  } catch (e) {
    if (e instanceof DoctorError) throw e;
    refuse(`cannot read it (${oneLine(e)})`);
  }
  if (size > maxBytes) refuse(`${(size / 2 ** 30).toFixed(1)} GiB is more than the ${(maxBytes / 2 ** 30).toFixed(1)} GiB a data file may have; give a sample of the rows`);
  let fd: number | undefined;
  try {
    fd = openSync(file, "r");
    // The path may have been swapped since the stat: read the file that was opened, up to its size.
    const stat = fstatSync(fd);
    if (!stat.isFile() || stat.size > maxBytes) refuse("not a regular file of a readable size");
    const bytes = new Uint8Array(stat.size);
    let at = 0;
    while (at < bytes.length) {
      const n = readSync(fd, bytes, at, bytes.length - at, at);
      if (n === 0) break;
      at += n;
    }
    return at === bytes.length ? bytes : bytes.subarray(0, at);
  } catch (e) {
    if (e instanceof DoctorError) throw e;
    return refuse(`cannot read it (${oneLine(e)})`);
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
}

/** A .npy file named by `option`. */
export function readNpyFile(file: string, option: string): HostTensor {
  return parseNpy(readDataFile(file, option), basename(file));
}

/** An .npz file named by `option`, its arrays by name. */
export function readNpzFile(file: string, option: string): Map<string, HostTensor> {
  return parseNpz(readDataFile(file, option), basename(file));
}

/**
 * The values of a parsed array as numbers: float16 decoded from its bits, 64-bit integers converted
 * (exactly up to 2^53), bool as 0/1.
 */
export function numericValues(t: HostTensor): Float64Array {
  const d = t.data;
  if (t.dtype === "float16") return Float64Array.from(d as Uint16Array, halfBitsToFloat);
  if (d instanceof BigInt64Array || d instanceof BigUint64Array) return Float64Array.from(d as ArrayLike<bigint>, Number);
  return Float64Array.from(d as ArrayLike<number>);
}

/**
 * The labels of the gradient probe (`--labels`): class ids for ce, regression targets for mse,
 * read from a .npy file and returned as float64 whatever their dtype (float16 decoded, int64 and
 * uint64 converted), so that every consumer sees numbers. Refuses what cannot be labels with one
 * line: bool or non-numeric class ids, integer regression targets, NaN or Inf, and a row count other
 * than the probe data's `dataRows` (labels pair with data rows one to one).
 */
export function readLabelsFile(file: string, loss: "ce" | "mse" | "random", dataRows?: number): HostTensor {
  const name = basename(file);
  if (loss === "random") throw new DoctorError("probe.input", "--labels needs --loss ce or --loss mse");
  const t = readNpyFile(file, "--labels");
  const rows = t.dims[0] ?? 1;
  if (dataRows !== undefined && rows !== dataRows) {
    throw new DoctorError("probe.input", `${name} has ${rows} rows of labels but the probe data has ${dataRows} rows; they pair one to one, so save one label row per data row`);
  }
  const integer = t.dtype.startsWith("int") || t.dtype.startsWith("uint");
  if (loss === "ce" && !(integer || t.dtype.startsWith("float"))) {
    throw new DoctorError("probe.input", `${name}: class labels must be integer class ids, got ${t.dtype}${t.dtype === "bool" ? " (for two classes save them as integers: y.astype(numpy.int64))" : ""}`);
  }
  if (loss === "mse" && !t.dtype.startsWith("float")) {
    throw new DoctorError("probe.input", `${name}: regression targets must be floats, got ${t.dtype} (for class ids use --loss ce; else save them with y.astype(numpy.float32))`);
  }
  return { dtype: "float64", dims: t.dims, data: labelValues(t, name, loss === "ce" ? "label" : "target") };
}

/**
 * The values of a labels array as float64, refusing what no label or target can be: an int64 id
 * beyond 2^53 (named exactly, before float64 rounds it) and NaN/Inf, each with its row. Shared by
 * `--labels` ({@link readLabelsFile}) and the labels of `--train-data`/`--val-data`; `name` says
 * where they come from ("y.npy", or `t.npz: "labels"`).
 */
export function labelValues(t: HostTensor, name: string, what: "label" | "target"): Float64Array {
  const rowOf = (i: number, n: number): number => Math.floor(i / Math.max(1, n / Math.max(1, t.dims[0] ?? 1)));
  // Read as float64, an int64 id beyond 2^53 would be reported rounded: name it exactly here.
  if (t.data instanceof BigInt64Array || t.data instanceof BigUint64Array) {
    const ids = t.data as ArrayLike<bigint>;
    const limit = BigInt(Number.MAX_SAFE_INTEGER);
    for (let i = 0; i < ids.length; i++) {
      if (ids[i] > limit || ids[i] < -limit) {
        throw new DoctorError("probe.input", `${name}: label ${ids[i]} in row ${rowOf(i, ids.length)} is not a class index (beyond 2^53, no model has that many classes)`);
      }
    }
  }
  const values = numericValues(t);
  const bad = values.findIndex((v) => !Number.isFinite(v));
  if (bad >= 0) throw new DoctorError("probe.input", `${name}: ${what} ${values[bad]} in row ${rowOf(bad, values.length)}; labels and targets must be finite numbers`);
  return values;
}

/**
 * The first label that is not a class index in [0, classes) (an integer from 0), with its index
 * (its row, for one label per row), or undefined when all are. The class count comes from the model's output.
 */
export function badClassIndex(values: ArrayLike<number>, classes: number): { value: number; row: number } | undefined {
  for (let i = 0; i < values.length; i++) {
    const v = values[i];
    if (!Number.isInteger(v) || v < 0 || v >= classes) return { value: v, row: i };
  }
  return undefined;
}

/**
 * `t` in the model's input type when that loses nothing a probe can see: float64 data (numpy's
 * default) for a float32 input, float32 for float64, int32 ids for int64 and int64 ids within
 * int32's range for int32. Anything else is refused with the numpy call that converts it.
 */
export function asInputType(t: HostTensor, dtype: DType, label: string, name: string): HostTensor {
  if (t.dtype === dtype) return t;
  const d = t.data;
  if (dtype === "float32" && d instanceof Float64Array) {
    const data = Float32Array.from(d);
    // A finite float64 beyond float32's range becomes Inf: refuse it here, or the probe would
    // blame "NaN/Inf in the probe data" that the file does not hold.
    const at = data.findIndex((v, i) => !Number.isFinite(v) && Number.isFinite(d[i]));
    if (at >= 0) throw new DoctorError("probe.input", `${label}: "${name}" holds ${d[at]} (element ${at}), which overflows float32, the model's input type (largest finite ±${FLOAT32_MAX.toPrecision(8)}); scale the data into float32's range`);
    return { ...t, dtype, data };
  }
  if (dtype === "float64" && d instanceof Float32Array) return { ...t, dtype, data: Float64Array.from(d) };
  if (dtype === "int64" && d instanceof Int32Array) return { ...t, dtype, data: BigInt64Array.from(d, BigInt) };
  if (dtype === "int32" && d instanceof BigInt64Array && d.every((v) => v >= -(2n ** 31n) && v < 2n ** 31n)) return { ...t, dtype, data: Int32Array.from(d, Number) };
  const numpy: Partial<Record<DType, string>> = { float32: "float32", float64: "float64", float16: "float16", int64: "int64", int32: "int32", uint8: "uint8", int8: "int8", bool: "bool_" };
  throw new DoctorError("probe.input", `${label}: "${name}" is ${t.dtype} but the model expects ${dtype}${numpy[dtype] ? `; save it with x.astype(numpy.${numpy[dtype]})` : ""}`);
}

/** The largest finite float32. */
export const FLOAT32_MAX = 3.4028234663852886e38;

const descrToDType: Record<string, DType> = {
  f4: "float32", f8: "float64", f2: "float16", i1: "int8", u1: "uint8", i2: "int16", u2: "uint16",
  i4: "int32", u4: "uint32", i8: "int64", u8: "uint64", b1: "bool",
};

/**
 * Parses a NumPy .npy file (format 1.0-3.0, little-endian, C order): a short header dict
 * followed by raw data, so a dependency would add more than it saves.
 */
export function parseNpy(bytes: Uint8Array, label: string): HostTensor {
  const bad = (why: string): never => { throw new DoctorError("probe.input", `${label}: not a readable .npy file (${why})`); };
  if (bytes.length < 10 || bytes[0] !== 0x93 || String.fromCharCode(...bytes.subarray(1, 6)) !== "NUMPY") bad("missing magic");
  const major = bytes[6];
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const headerLen = major === 1 ? view.getUint16(8, true) : view.getUint32(8, true);
  const start = major === 1 ? 10 : 12;
  const header = new TextDecoder().decode(bytes.subarray(start, start + headerLen));
  const descr = /'descr':\s*'([<>|=])([a-z]\d+)'/.exec(header) ?? bad("no dtype");
  if (descr![1] === ">") bad("big-endian data");
  if (/'fortran_order':\s*True/.test(header)) bad("Fortran order; save with np.ascontiguousarray");
  const shapeText = (/'shape':\s*\(([^)]*)\)/.exec(header) ?? bad("no shape"))![1];
  const dims = shapeText.split(",").map((s) => s.trim()).filter(Boolean).map(Number);
  if (dims.some((d) => !Number.isSafeInteger(d) || d < 0)) bad(`impossible shape (${shapeText})`);
  const dtype = descrToDType[descr![2]] ?? bad(`unsupported dtype ${descr![2]}`);
  const count = dims.reduce((a, b) => a * b, 1);
  // A real copy (Buffer.slice would be a view), so typed arrays start aligned at offset 0.
  const body = new Uint8Array(bytes.subarray(start + headerLen));
  const need = count * itemSize(dtype!);
  if (body.byteLength < need) bad(`expected ${need} data bytes, found ${body.byteLength}`);
  return { dtype: dtype!, dims, data: typedView(dtype!, body.buffer, count) };
}

/** Parses an .npz archive into arrays keyed by name (without the .npy suffix). */
export function parseNpz(bytes: Uint8Array, label: string): Map<string, HostTensor> {
  let files: Record<string, Uint8Array>;
  let declared = 0;
  try {
    // Check declared sizes before inflating anything: a 4 MB archive can claim gigabytes.
    files = unzipSync(bytes, {
      filter: (f) => {
        declared += f.originalSize;
        if (declared > MAX_NPZ_BYTES) throw new DoctorError("probe.input", `${label}: the archive unpacks to more than ${MAX_NPZ_BYTES / 2 ** 30} GiB; refusing`);
        return true;
      },
    });
  } catch (e) {
    if (e instanceof DoctorError) throw e;
    throw new DoctorError("probe.input", `${label}: not a readable .npz archive (${e instanceof Error ? e.message : e})`);
  }
  const out = new Map<string, HostTensor>();
  for (const [name, data] of Object.entries(files)) out.set(name.replace(/\.npy$/, ""), parseNpy(data, `${label}:${name}`));
  if (out.size === 0) throw new DoctorError("probe.input", `${label}: the archive holds no arrays`);
  return out;
}

function itemSize(dtype: DType): number {
  return { float64: 8, int64: 8, uint64: 8, float32: 4, int32: 4, uint32: 4, float16: 2, int16: 2, uint16: 2 }[dtype as string] ?? 1;
}

function typedView(dtype: DType, buffer: ArrayBufferLike, count: number): HostTensor["data"] {
  switch (dtype) {
    case "float32": return new Float32Array(buffer, 0, count);
    case "float64": return new Float64Array(buffer, 0, count);
    case "float16": return new Uint16Array(buffer, 0, count);
    case "int8": return new Int8Array(buffer, 0, count);
    case "int32": return new Int32Array(buffer, 0, count);
    case "int64": return new BigInt64Array(buffer, 0, count);
    case "uint64": return new BigUint64Array(buffer, 0, count) as unknown as BigInt64Array;
    case "int16": return new Int16Array(buffer, 0, count) as unknown as Uint16Array;
    case "uint16": return new Uint16Array(buffer, 0, count);
    case "uint32": return new Uint32Array(buffer, 0, count) as unknown as Int32Array;
    default: return new Uint8Array(buffer, 0, count);
  }
}
