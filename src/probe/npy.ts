import { unzipSync } from "fflate";
import type { DType } from "../onnx/dtype";
import { DoctorError } from "../onnx/errors";
import type { HostTensor } from "../runtime/session";

/** Largest probe-data archive we unpack. */
const MAX_NPZ_BYTES = 4 * 2 ** 30;

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
