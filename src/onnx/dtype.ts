import { TensorProto_DataType as DT } from "./gen/onnx_pb";

/** Element types the engine understands, named as numpy does. */
export type DType =
  | "float32" | "float16" | "bfloat16" | "float64"
  | "int8" | "uint8" | "int16" | "uint16" | "int32" | "uint32" | "int64" | "uint64"
  | "int4" | "uint4" | "float8e4m3fn" | "float8e4m3fnuz" | "float8e5m2" | "float8e5m2fnuz"
  | "bool" | "string" | "unsupported";

const byCode: Partial<Record<number, DType>> = {
  [DT.FLOAT]: "float32", [DT.FLOAT16]: "float16", [DT.BFLOAT16]: "bfloat16", [DT.DOUBLE]: "float64",
  [DT.INT8]: "int8", [DT.UINT8]: "uint8", [DT.INT16]: "int16", [DT.UINT16]: "uint16",
  [DT.INT32]: "int32", [DT.UINT32]: "uint32", [DT.INT64]: "int64", [DT.UINT64]: "uint64",
  [DT.BOOL]: "bool", [DT.STRING]: "string",
  [DT.INT4]: "int4", [DT.UINT4]: "uint4",
  [DT.FLOAT8E4M3FN]: "float8e4m3fn", [DT.FLOAT8E4M3FNUZ]: "float8e4m3fnuz", [DT.FLOAT8E5M2]: "float8e5m2", [DT.FLOAT8E5M2FNUZ]: "float8e5m2fnuz",
};

export function dtypeFromOnnx(code: number): DType {
  return byCode[code] ?? "unsupported";
}

export function onnxName(code: number): string {
  return DT[code] ?? `type ${code}`;
}

/** Bytes per element in raw_data, or 0 for types we cannot read element-wise. */
export function byteSize(dtype: DType): number {
  switch (dtype) {
    case "float64": case "int64": case "uint64": return 8;
    case "float32": case "int32": case "uint32": return 4;
    case "float16": case "bfloat16": case "int16": case "uint16": return 2;
    case "int8": case "uint8": case "bool": return 1;
    case "float8e4m3fn": case "float8e4m3fnuz": case "float8e5m2": case "float8e5m2fnuz": return 1;
    default: return 0;
  }
}

/** Bytes of raw data that `count` elements take: int4/uint4 pack two per byte (low nibble first). */
export function rawByteLength(dtype: DType, count: number): number {
  return dtype === "int4" || dtype === "uint4" ? Math.ceil(count / 2) : count * byteSize(dtype);
}

/**
 * The 256 values of an 8-bit float format (ONNX's FLOAT8 types): `fn` formats have no infinities
 * and one NaN pattern per sign (all exponent and mantissa bits set); `uz` formats have no negative
 * zero, and 0x80 is their only NaN.
 */
function float8Table(exponentBits: number, bias: number, kind: "ieee" | "fn" | "uz"): Float32Array {
  const mantissaBits = 7 - exponentBits;
  const table = new Float32Array(256);
  for (let b = 0; b < 256; b++) {
    const sign = b & 0x80 ? -1 : 1;
    const e = (b >> mantissaBits) & ((1 << exponentBits) - 1);
    const m = b & ((1 << mantissaBits) - 1);
    const allOnes = e === (1 << exponentBits) - 1;
    if (kind === "uz" && b === 0x80) table[b] = NaN;
    else if (kind === "ieee" && allOnes) table[b] = m ? NaN : sign * Infinity;
    else if (kind === "fn" && allOnes && m === (1 << mantissaBits) - 1) table[b] = NaN;
    else if (e === 0) table[b] = sign * (m / (1 << mantissaBits)) * 2 ** (1 - bias);
    else table[b] = sign * (1 + m / (1 << mantissaBits)) * 2 ** (e - bias);
  }
  return table;
}

const float8Tables: Partial<Record<DType, Float32Array>> = {};
/** Decodes float8 bit patterns (ONNX FLOAT8E4M3FN, E4M3FNUZ, E5M2, E5M2FNUZ). */
export function float8Values(dtype: DType, bits: ArrayLike<number>, count: number): Float32Array {
  const table = float8Tables[dtype] ??= dtype === "float8e4m3fn" ? float8Table(4, 7, "fn") : dtype === "float8e4m3fnuz" ? float8Table(4, 8, "uz")
    : dtype === "float8e5m2" ? float8Table(5, 15, "ieee") : float8Table(5, 16, "uz");
  const out = new Float32Array(count);
  for (let i = 0; i < count; i++) out[i] = table[bits[i] & 0xff];
  return out;
}

/** Unpacks int4/uint4 values, two per byte, low nibble first. */
export function int4Values(dtype: DType, packed: ArrayLike<number>, count: number): Float32Array {
  const out = new Float32Array(count);
  for (let i = 0; i < count; i++) {
    const v = (packed[i >> 1] >> ((i & 1) * 4)) & 0xf;
    out[i] = dtype === "int4" && v >= 8 ? v - 16 : v;
  }
  return out;
}

export function isFloat(dtype: DType): boolean {
  return dtype === "float32" || dtype === "float16" || dtype === "bfloat16" || dtype === "float64";
}

// IEEE half -> float via a shared lookup of the exponent/mantissa, exact for all 65536 values.
const halfTable = (() => {
  const t = new Float32Array(65536);
  for (let h = 0; h < 65536; h++) {
    const sign = h & 0x8000 ? -1 : 1;
    const exp = (h >> 10) & 0x1f;
    const frac = h & 0x3ff;
    if (exp === 0) t[h] = sign * frac * 2 ** -24;
    else if (exp === 31) t[h] = frac ? NaN : sign * Infinity;
    else t[h] = sign * (1 + frac / 1024) * 2 ** (exp - 15);
  }
  return t;
})();

/**
 * The first `length` bytes copied to memory of their own (not a slice of the shared pool, whose
 * `.buffer` holds other data) that is not zeroed first: the copy
 * overwrites all of it, and zeroing a 268 MB weight first costs a third of the copy's time.
 */
function alignedCopy(bytes: Uint8Array, length: number): Buffer {
  const copy = Buffer.allocUnsafeSlow(length);
  copy.set(bytes.subarray(0, length));
  return copy;
}

/**
 * Decodes little-endian raw tensor bytes into float32 (or float64 for doubles). float32/float64
 * data that happens to be aligned in the file is returned as a view (treat it as read-only);
 * misaligned data, which protobuf often hands out, is copied.
 */
export function decodeRaw(bytes: Uint8Array, dtype: DType, count: number): Float32Array | Float64Array {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const need = rawByteLength(dtype, count);
  if (bytes.byteLength < need) throw new RangeError(`raw data has ${bytes.byteLength} bytes, ${need} expected`);
  switch (dtype) {
    case "int4": case "uint4": return int4Values(dtype, bytes, count);
    case "float8e4m3fn": case "float8e4m3fnuz": case "float8e5m2": case "float8e5m2fnuz": return float8Values(dtype, bytes, count);
    case "float32": {
      if (bytes.byteOffset % 4 === 0) return new Float32Array(bytes.buffer, bytes.byteOffset, count);
      const copy = alignedCopy(bytes, need);
      return new Float32Array(copy.buffer, copy.byteOffset, count);
    }
    case "float64": {
      if (bytes.byteOffset % 8 === 0) return new Float64Array(bytes.buffer, bytes.byteOffset, count);
      const copy = alignedCopy(bytes, need);
      return new Float64Array(copy.buffer, copy.byteOffset, count);
    }
    case "float16": {
      const out = new Float32Array(count);
      for (let i = 0; i < count; i++) out[i] = halfTable[view.getUint16(2 * i, true)];
      return out;
    }
    case "bfloat16": {
      const out = new Float32Array(count);
      const bits = new Uint32Array(out.buffer);
      for (let i = 0; i < count; i++) bits[i] = view.getUint16(2 * i, true) << 16;
      return out;
    }
    case "int8": { const out = new Float32Array(count); for (let i = 0; i < count; i++) out[i] = view.getInt8(i); return out; }
    case "uint8": case "bool": { const out = new Float32Array(count); out.set(bytes.subarray(0, count)); return out; }
    case "int16": { const out = new Float32Array(count); for (let i = 0; i < count; i++) out[i] = view.getInt16(2 * i, true); return out; }
    case "uint16": { const out = new Float32Array(count); for (let i = 0; i < count; i++) out[i] = view.getUint16(2 * i, true); return out; }
    case "int32": { const out = new Float64Array(count); for (let i = 0; i < count; i++) out[i] = view.getInt32(4 * i, true); return out; }
    case "uint32": { const out = new Float64Array(count); for (let i = 0; i < count; i++) out[i] = view.getUint32(4 * i, true); return out; }
    case "int64": { const out = new Float64Array(count); for (let i = 0; i < count; i++) out[i] = Number(view.getBigInt64(8 * i, true)); return out; }
    case "uint64": { const out = new Float64Array(count); for (let i = 0; i < count; i++) out[i] = Number(view.getBigUint64(8 * i, true)); return out; }
    default: throw new RangeError(`cannot decode ${dtype}`);
  }
}

/** The float16 bits nearest to `v` (round half to even; overflow to ±Inf, NaN kept). */
export function floatToHalfBits(v: number): number {
  const f = new Float32Array([v]);
  const x = new Uint32Array(f.buffer)[0];
  const sign = (x >>> 16) & 0x8000;
  const exp = (x >>> 23) & 0xff;
  const mant = x & 0x7fffff;
  if (exp === 0xff) return sign | 0x7c00 | (mant ? 0x200 : 0);
  const e = exp - 127 + 15;
  if (e >= 0x1f) return sign | 0x7c00;
  if (e <= 0) {
    if (e < -10) return sign;
    // Subnormal: shift the mantissa with its implicit 1 into place, rounding half to even.
    const m = mant | 0x800000;
    const shift = 14 - e;
    const half = m >>> shift;
    const rest = m & ((1 << shift) - 1);
    const mid = 1 << (shift - 1);
    return sign | (half + (rest > mid || (rest === mid && half & 1) ? 1 : 0));
  }
  const half = (e << 10) | (mant >>> 13);
  const rest = mant & 0x1fff;
  // A carry out of the mantissa correctly bumps the exponent (up to Inf).
  return sign | (half + (rest > 0x1000 || (rest === 0x1000 && half & 1) ? 1 : 0));
}

/** float16 bits stored in int32_data (the ONNX convention for non-raw half tensors). */
export function halfBitsToFloat(bits: number): number {
  return halfTable[bits & 0xffff];
}
