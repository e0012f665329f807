import { createHash } from "node:crypto";
import { Worker } from "node:worker_threads";
import { closeSync, openSync, readFileSync, readSync, realpathSync, statSync } from "node:fs";
import { dirname, isAbsolute, relative, resolve, sep } from "node:path";
import { fromBinary } from "@bufbuild/protobuf";
import {
  AttributeProto_AttributeType as AttrType,
  ModelProtoSchema,
  TensorProto_DataLocation,
  type GraphProto,
  type ModelProto,
  type TensorProto,
  type TypeProto,
} from "./gen/onnx_pb";
import { decodeRaw, dtypeFromOnnx, float8Values, halfBitsToFloat, int4Values, onnxName, rawByteLength, type DType } from "./dtype";
import { DoctorError, oneLine } from "./errors";
import type { ConstTensor, Dim, GraphNode, Model, ValueSpec } from "./model";
import { capturedInputs, topologicalOrder } from "./order";

/** Options for {@link loadModel}. */
export interface LoadOptions {
  /** Model bytes already in memory (the path is then only used for external data and naming). */
  bytes?: Uint8Array;
}

/**
 * Reads and decodes an ONNX file, resolves constant tensors (initializers, Constant nodes in any
 * subgraph, ConstantOfShape, Identity/Cast chains, DequantizeLinear) and checks external data.
 * Throws {@link DoctorError} `model.invalid` with a one-line reason for anything unreadable.
 */
export function loadModel(path: string, options: LoadOptions = {}): Model {
  let bytes: Uint8Array;
  try {
    bytes = options.bytes ?? readShared(path);
  } catch (e) {
    throw new DoctorError("model.invalid", `cannot read ${path}: ${oneLine(e)}`);
  }
  if (bytes.byteLength === 0) throw new DoctorError("model.invalid", `${path} is empty`);
  let proto: ModelProto;
  try {
    proto = fromBinary(ModelProtoSchema, bytes, { readUnknownFields: false });
  } catch (e) {
    throw new DoctorError("model.invalid", `${path} is not a valid ONNX protobuf (truncated or corrupt?): ${oneLine(e)}`);
  }
  const graph = proto.graph;
  if (!graph || (graph.node.length === 0 && graph.output.length === 0)) {
    throw new DoctorError("model.invalid", `${path} has no graph or an empty graph; is it an ONNX model?`);
  }
  if (graph.node.length === 0) {
    throw new DoctorError("model.unsupported", `${path} has no nodes: its graph returns ${graph.output.map((o) => o.name).join(", ")} as given, so there is no computation to analyse`);
  }
  const irVersion = Number(proto.irVersion);
  if (!(irVersion >= 3 && irVersion <= 13)) {
    throw new DoctorError("model.invalid", `${path} declares IR version ${irVersion}; onnxruntime-node 1.30 loads IR versions 3 to 13`);
  }
  const opsets: Record<string, number> = {};
  for (const o of proto.opsetImport) opsets[o.domain === "ai.onnx" ? "" : o.domain] = Number(o.version);
  const defaultVersion = opsets[""];
  if (defaultVersion !== undefined && defaultVersion > 26) {
    throw new DoctorError("model.invalid", `${path} uses opset ${defaultVersion}; onnxruntime-node 1.30 supports up to 26`);
  }

  const modelDir = dirname(resolve(path));
  const externalFiles = new Map<string, string>();
  const constants = new Map<string, ConstTensor>();
  const nodes: GraphNode[] = [];
  const subgraphNodes: GraphNode[] = [];
  const reader = new TensorReader(modelDir, externalFiles);

  const visitGraph = (g: GraphProto, scope: string, into: GraphNode[]): void => {
    for (const t of g.initializer) constants.set(t.name, reader.tensor(t, "initializer"));
    g.node.forEach((n, i) => {
      const attrs = new Map(n.attribute.map((a) => [a.name, a]));
      const node: GraphNode = {
        index: into.length, name: n.name || `${n.opType}_${i}`, opType: n.opType, domain: n.domain,
        inputs: n.input, outputs: n.output, attrs, scope, proto: n,
      };
      into.push(node);
      for (const a of n.attribute) {
        if (a.type === AttrType.GRAPH && a.g) visitGraph(a.g, `${scope}${node.name}/${a.name}/`, subgraphNodes);
        for (const sub of a.graphs) visitGraph(sub, `${scope}${node.name}/${a.name}/`, subgraphNodes);
      }
    });
  };
  visitGraph(graph, "", nodes);
  // onnxruntime runs files whose nodes are out of order; every walk here assumes topological order.
  const ordered = topologicalOrder(nodes, (n) => [...n.inputs, ...capturedInputs(n)]);
  for (const n of [...ordered, ...subgraphNodes]) {
    try {
      resolveDerivedConstant(n, constants, reader);
    } catch {
      // A constant we cannot derive (odd types, impossible shapes) stays unknown; onnxruntime
      // reports a genuinely broken node when the probe runs.
    }
  }

  sourceBytes.set(proto, bytes);
  const initNames = new Set(graph.initializer.map((t) => t.name));
  const toSpec = (v: { name: string; type?: TypeProto }): ValueSpec => valueSpec(v.name, v.type);
  return {
    path,
    sha256: sha256Hex(bytes),
    byteLength: bytes.byteLength,
    irVersion,
    opsets,
    producer: [proto.producerName, proto.producerVersion].filter(Boolean).join(" "),
    inputs: graph.input.filter((v) => !initNames.has(v.name)).map(toSpec),
    outputs: graph.output.map(toSpec),
    nodes: ordered,
    subgraphNodes,
    constants,
    proto,
    externalFiles,
  };
}

// The bytes each decoded proto came from, so a rewrite can append to them instead of re-encoding.
const sourceBytes = new WeakMap<ModelProto, Uint8Array>();

/** The file bytes a proto was decoded from, if it is still the proto `loadModel` made. */
export function originalBytes(proto: ModelProto): Uint8Array | undefined {
  return sourceBytes.get(proto);
}

/** Files at least this big are hashed on a worker thread, in parallel with the analysis. */
const PARALLEL_HASH_BYTES = 32 << 20;

/** Reads a file into shared memory, so a hashing thread can read it without a copy. */
function readShared(path: string): Uint8Array {
  const stat = statSync(path);
  // Devices, FIFOs and sockets never end or block forever; an ONNX model is a regular file.
  if (!stat.isFile()) throw new Error("not a regular file");
  const size = stat.size;
  if (size < PARALLEL_HASH_BYTES) return readFileSync(path);
  const bytes = new Uint8Array(new SharedArrayBuffer(size));
  const fd = openSync(path, "r");
  try {
    for (let at = 0; at < size;) {
      const n = readSync(fd, bytes, at, Math.min(size - at, 1 << 30), at);
      if (n === 0) throw new Error(`file shrank while reading (${at} of ${size} bytes)`);
      at += n;
    }
  } finally {
    closeSync(fd);
  }
  return bytes;
}

const hashWorkerSource = `
  const { parentPort, workerData } = require("node:worker_threads");
  const { createHash } = require("node:crypto");
  parentPort.postMessage(createHash("sha256").update(new Uint8Array(workerData)).digest("hex"));
`;

function sha256Hex(bytes: Uint8Array): Promise<string> {
  if (!(bytes.buffer instanceof SharedArrayBuffer) || bytes.byteOffset !== 0 || bytes.byteLength !== bytes.buffer.byteLength) {
    return Promise.resolve(createHash("sha256").update(bytes).digest("hex"));
  }
  return new Promise((resolve, reject) => {
    const worker = new Worker(hashWorkerSource, { eval: true, workerData: bytes.buffer });
    worker.once("message", (hex: string) => { resolve(hex); void worker.terminate(); });
    worker.once("error", reject);
  });
}

function valueSpec(name: string, type: TypeProto | undefined): ValueSpec {
  if (type?.value.case !== "tensorType") return { name, dtype: "unsupported", shape: null };
  const t = type.value.value;
  const shape: Dim[] | null = t.shape
    ? t.shape.dim.map((d) => (d.value.case === "dimValue" ? Number(d.value.value) : d.value.case === "dimParam" ? d.value.value : null))
    : null;
  return { name, dtype: dtypeFromOnnx(t.elemType), shape };
}

/** Constants computed from other constants by ops whose result we can know without running. */
function resolveDerivedConstant(n: GraphNode, constants: Map<string, ConstTensor>, reader: TensorReader): void {
  const out = n.outputs[0];
  if (!out) return;
  const input = (k: number): ConstTensor | undefined => (n.inputs[k] ? constants.get(n.inputs[k]) : undefined);
  switch (n.opType) {
    case "Constant": {
      const a = n.proto.attribute[0];
      if (!a) return;
      if (a.t) constants.set(out, reader.tensor(a.t, "Constant", out));
      else if (a.name === "value_float") constants.set(out, arrayTensor(out, [], [a.f], "float32"));
      else if (a.name === "value_floats") constants.set(out, arrayTensor(out, [a.floats.length], a.floats, "float32"));
      else if (a.name === "value_int") constants.set(out, arrayTensor(out, [], [Number(a.i)], "int64"));
      else if (a.name === "value_ints") constants.set(out, arrayTensor(out, [a.ints.length], a.ints.map(Number), "int64"));
      return;
    }
    case "ConstantOfShape": {
      const shape = input(0);
      if (!shape) return;
      const dims = checkedDims(Array.from(shape.values()), out);
      const valueAttr = n.attrs.get("value")?.t;
      const value = valueAttr ? reader.tensor(valueAttr, "ConstantOfShape") : undefined;
      const fill = value ? value.values()[0] ?? 0 : 0;
      constants.set(out, fillTensor(out, dims, fill, value?.dtype ?? "float32"));
      return;
    }
    case "Identity": {
      const src = input(0);
      if (src) constants.set(out, { ...src, name: out, source: "Identity", values: () => src.values() });
      return;
    }
    case "Cast": {
      const src = input(0);
      const to = dtypeFromOnnx(Number(n.attrs.get("to")?.i ?? 0));
      if (src) constants.set(out, { ...src, name: out, dtype: to, source: "Cast", values: () => src.values() });
      return;
    }
    case "Reshape": {
      // CNTK and others reshape constant weights in the graph; the values are unchanged.
      const src = input(0);
      const shape = input(1);
      if (!src || !shape) return;
      const wanted = Array.from(shape.values());
      const known = wanted.reduce((a, d, i) => a * (d === 0 ? src.dims[i] ?? 1 : d === -1 ? 1 : d), 1);
      const dims = wanted.map((d, i) => (d === 0 ? src.dims[i] ?? 1 : d === -1 ? src.size / known : d));
      if (dims.reduce((a, b) => a * b, 1) === src.size) constants.set(out, { ...src, name: out, dims, source: "Reshape", values: () => src.values() });
      return;
    }
    case "Transpose": {
      // Exporters write Linear layers as MatMul(x, Transpose(W)); the weight is still a constant.
      const src = input(0);
      if (!src) return;
      const perm = n.attrs.get("perm")?.ints.map(Number) ?? src.dims.map((_, i) => src.dims.length - 1 - i);
      constants.set(out, transposed(out, src, perm));
      return;
    }
    case "DequantizeLinear": {
      const x = input(0);
      const scale = input(1);
      if (!x || !scale) return;
      const zero = input(2);
      const axisAttr = n.attrs.get("axis");
      const axis = axisAttr ? Number(axisAttr.i) : 1;
      const block = Number(n.attrs.get("block_size")?.i ?? 0);
      constants.set(out, dequantized(out, x, scale, zero, axis, block));
      return;
    }
  }
}

/** Largest element count we accept for one tensor (2^36, 256 GB of float32): beyond it, a bad file. */
const MAX_ELEMENTS = 2 ** 36;

function checkedDims(dims: number[], tensor: string): number[] {
  const size = dims.reduce((a, b) => a * b, 1);
  if (dims.some((d) => !Number.isSafeInteger(d) || d < 0) || size > MAX_ELEMENTS) {
    throw new DoctorError("model.invalid", `tensor ${tensor} declares an impossible shape [${dims.join(", ")}]`);
  }
  return dims;
}

function arrayTensor(name: string, dims: number[], values: number[], dtype: DType): ConstTensor {
  const data = Float64Array.from(values);
  return { name, dtype, dims, size: data.length, source: "Constant", values: () => data };
}

function fillTensor(name: string, dims: number[], fill: number, dtype: DType): ConstTensor {
  const size = dims.reduce((a, b) => a * b, 1);
  return { name, dtype, dims, size, fill, source: "ConstantOfShape", values: () => new Float32Array(size).fill(fill) };
}

function transposed(name: string, src: ConstTensor, perm: number[]): ConstTensor {
  const dims = perm.map((p) => src.dims[p]);
  return {
    name, dtype: src.dtype, dims, size: src.size, source: "Transpose", fill: src.fill,
    values: () => {
      const v = src.values();
      const out = v instanceof Float64Array ? new Float64Array(v.length) : new Float32Array(v.length);
      const rank = dims.length;
      const srcStrides = new Array<number>(rank).fill(1);
      for (let i = rank - 2; i >= 0; i--) srcStrides[i] = srcStrides[i + 1] * src.dims[i + 1];
      const idx = new Array<number>(rank).fill(0);
      for (let o = 0; o < out.length; o++) {
        let at = 0;
        for (let d = 0; d < rank; d++) at += idx[d] * srcStrides[perm[d]];
        out[o] = v[at];
        for (let d = rank - 1; d >= 0; d--) {
          if (++idx[d] < dims[d]) break;
          idx[d] = 0;
        }
      }
      return out;
    },
  };
}

function dequantized(name: string, x: ConstTensor, scale: ConstTensor, zero: ConstTensor | undefined, axis: number, block: number): ConstTensor {
  return {
    name, dtype: "float32", dims: x.dims, size: x.size, source: "DequantizeLinear",
    values: () => {
      const q = x.values();
      const s = scale.values();
      const z = zero?.values();
      const out = new Float32Array(q.length);
      if (s.length === 1) {
        const zp = z ? z[0] : 0;
        for (let i = 0; i < q.length; i++) out[i] = (q[i] - zp) * s[0];
        return out;
      }
      const ax = axis < 0 ? axis + x.dims.length : axis;
      if (block > 0) {
        // Blocked (opset 21): scale has x's shape with ceil(d / block) along `axis`; element i uses the
        // scale at its coordinates with the axis coordinate divided by the block size.
        const blocks = Math.ceil((x.dims[ax] ?? 0) / block);
        if (!(ax >= 0 && ax < x.dims.length) || scale.dims.length !== x.dims.length || scale.dims.some((d, k) => d !== (k === ax ? blocks : x.dims[k])) || (z && z.length !== s.length)) {
          throw new DoctorError("model.invalid", `DequantizeLinear ${name}: scales of shape [${scale.dims.join(", ")}] do not fit blocks of ${block} along axis ${axis} of shape [${x.dims.join(", ")}]`);
        }
        const inner = x.dims.slice(ax + 1).reduce((a, b) => a * b, 1);
        const axisLen = x.dims[ax];
        for (let i = 0; i < q.length; i++) {
          const outer = Math.floor(i / (inner * axisLen));
          const c = Math.floor(i / inner) % axisLen;
          const k = (outer * blocks + Math.floor(c / block)) * inner + (i % inner);
          out[i] = (q[i] - (z ? z[k] : 0)) * s[k];
        }
        return out;
      }
      // Per-axis: the scale index is the coordinate along `axis`.
      if (!(ax >= 0 && ax < x.dims.length) || s.length !== x.dims[ax] || (z && z.length !== s.length)) {
        throw new DoctorError("model.invalid", `DequantizeLinear ${name}: axis ${axis} does not match scales of length ${s.length} for shape [${x.dims.join(", ")}]`);
      }
      const inner = x.dims.slice(ax + 1).reduce((a, b) => a * b, 1);
      const axisLen = x.dims[ax];
      for (let i = 0; i < q.length; i++) {
        const c = Math.floor(i / inner) % axisLen;
        out[i] = (q[i] - (z ? z[c] : 0)) * s[c];
      }
      return out;
    },
  };
}

/** Decodes TensorProto payloads, including external data confined to the model's folder. */
class TensorReader {
  constructor(private readonly modelDir: string, private readonly externalFiles: Map<string, string>) {}

  tensor(t: TensorProto, source: "initializer" | "Constant" | "ConstantOfShape", name = t.name): ConstTensor {
    const dims = checkedDims(t.dims.map(Number), name);
    const size = dims.reduce((a, b) => a * b, 1);
    const dtype = dtypeFromOnnx(t.dataType);
    if (dtype === "unsupported" || dtype === "string") {
      return { name, dtype, dims, size, source, values: () => { throw new DoctorError("model.unsupported", `tensor ${name} has element type ${onnxName(t.dataType)}, which the engine cannot read`); } };
    }
    if (t.dataLocation === TensorProto_DataLocation.EXTERNAL) return this.external(t, name, dtype, dims, size);
    const values = (): Float32Array | Float64Array => this.inline(t, name, dtype, size);
    return { name, dtype, dims, size, source, values };
  }

  private inline(t: TensorProto, name: string, dtype: DType, size: number): Float32Array | Float64Array {
    if (t.rawData.byteLength > 0) {
      if (t.rawData.byteLength < rawByteLength(dtype, size)) {
        throw new DoctorError("model.invalid", `tensor ${name}: raw data holds ${t.rawData.byteLength} bytes but shape needs ${rawByteLength(dtype, size)}`);
      }
      return decodeRaw(t.rawData, dtype, size);
    }
    // Typed fields: the ONNX spec stores float16/bfloat16/int8/... bit patterns in int32_data.
    const typed = t.floatData.length || t.doubleData.length || t.int64Data.length || t.uint64Data.length || t.int32Data.length;
    // int4/uint4 in int32_data are packed two per entry, like their raw bytes.
    const packed = dtype === "int4" || dtype === "uint4";
    if (typed && typed !== (packed ? Math.ceil(size / 2) : size)) {
      throw new DoctorError("model.invalid", `tensor ${name} declares ${size} elements but holds ${typed}`);
    }
    if (t.floatData.length) return Float32Array.from(t.floatData);
    if (t.doubleData.length) return Float64Array.from(t.doubleData);
    if (t.int64Data.length) return Float64Array.from(t.int64Data, Number);
    if (t.uint64Data.length) return Float64Array.from(t.uint64Data, Number);
    if (t.int32Data.length) {
      if (dtype === "float16") return Float32Array.from(t.int32Data, halfBitsToFloat);
      if (packed) return int4Values(dtype, t.int32Data, size);
      if (dtype.startsWith("float8")) return float8Values(dtype, t.int32Data, size);
      if (dtype === "bfloat16") return Float32Array.from(t.int32Data, (b) => new Float32Array(new Uint32Array([b << 16]).buffer)[0]);
      return Float64Array.from(t.int32Data);
    }
    if (size === 0) return new Float32Array(0);
    throw new DoctorError("model.invalid", `tensor ${name} declares ${size} elements but carries no data`);
  }

  private external(t: TensorProto, name: string, dtype: DType, dims: number[], size: number): ConstTensor {
    const info = new Map(t.externalData.map((e) => [e.key, e.value]));
    const location = info.get("location");
    if (!location) throw new DoctorError("model.invalid", `tensor ${name} is stored externally but names no location`);
    const file = this.confine(location, name);
    const offset = Number(info.get("offset") ?? 0);
    const need = rawByteLength(dtype, size);
    const length = info.has("length") ? Number(info.get("length")) : need;
    if (!Number.isSafeInteger(offset) || offset < 0 || !Number.isSafeInteger(length) || length < 0) {
      throw new DoctorError("model.invalid", `tensor ${name} has an invalid external data offset "${info.get("offset")}" or length "${info.get("length")}"`);
    }
    let stat: ReturnType<typeof statSync>;
    try {
      stat = statSync(file);
    } catch {
      throw new DoctorError("model.invalid", `external data file "${location}" for tensor ${name} is missing next to the model`);
    }
    // Opening a FIFO blocks until someone writes to it, and a directory or device is no data file.
    if (!stat.isFile()) {
      const kind = stat.isDirectory() ? "a directory" : stat.isFIFO() ? "a FIFO" : stat.isSocket() ? "a socket" : "a device";
      throw new DoctorError("model.invalid", `external data location "${location}" of tensor ${name} is ${kind}, not a regular file; refused`);
    }
    const fileSize = stat.size;
    if (offset + length > fileSize || length < need) {
      throw new DoctorError("model.invalid", `external data for tensor ${name} needs bytes ${offset}..${offset + need} of "${location}", which has ${fileSize}`);
    }
    this.externalFiles.set(location, file);
    return {
      name, dtype, dims, size, source: "external",
      values: () => {
        const buf = Buffer.allocUnsafe(need);
        const fd = openSync(file, "r");
        try {
          readSync(fd, buf, 0, need, offset);
        } finally {
          closeSync(fd);
        }
        return decodeRaw(buf, dtype, size);
      },
    };
  }

  /** External data is attacker-controlled: refuse anything that leaves the model's folder. */
  private confine(location: string, tensor: string): string {
    const refuse = (): never => {
      throw new DoctorError("model.invalid", `external data location "${location}" of tensor ${tensor} points outside the model's folder; refused`);
    };
    if (isAbsolute(location) || location.includes("\0")) refuse();
    const file = resolve(this.modelDir, location);
    const inside = (p: string, dir: string): boolean => {
      const rel = relative(dir, p);
      return rel !== "" && !rel.startsWith(`..${sep}`) && rel !== ".." && !isAbsolute(rel);
    };
    if (!inside(file, this.modelDir)) refuse();
    try {
      const real = realpathSync(file);
      if (!inside(real, realpathSync(this.modelDir))) refuse();
    } catch (e) {
      if (e instanceof DoctorError) throw e;
      // Missing files are reported by the caller with the tensor name.
    }
    return file;
  }
}
