import { appendFileSync, copyFileSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import * as ort from "onnxruntime-node";

// Errors reach the user through our messages; onnxruntime's own console logging would duplicate them.
ort.env.logLevel = "fatal";
import type { DType } from "../onnx/dtype";
import { DoctorError, oneLine } from "../onnx/errors";
import { registerTempFile, removeTempFile, sweepStaleTempFiles, tempFileName } from "./temp-files";

/** Bigger models are handed to onnxruntime as a file rather than as bytes. */
export const IN_MEMORY_LIMIT = 256 << 20;

/**
 * Model bytes in parts: the original file (when `path` is set and `parts[0]` is its content) and
 * an appended ModelProto with additions, or one complete encoding.
 */
export interface ModelImage {
  readonly path: string | undefined;
  readonly parts: readonly Uint8Array[];
}

/**
 * Writes the model next to the original (external data resolves relative to the model file) or,
 * without external data, into the temp folder when the model's folder is read-only. The original
 * is copied by the kernel, not through this process's memory.
 */
function writeNextTo(path: string, parts: readonly Uint8Array[], needsModelFolder: boolean): string | undefined {
  const name = tempFileName();
  const folders = needsModelFolder ? [dirname(resolve(path))] : [dirname(resolve(path)), tmpdir()];
  for (const folder of folders) {
    // Copies of processes that were killed meanwhile (no chance to clean up) go first.
    sweepStaleTempFiles(folder);
    const temp = join(folder, name);
    // Registered before a byte is written: a watchdog or signal stop removes it from then on.
    registerTempFile(temp);
    try {
      const [first, ...rest] = parts;
      if (statSync(path).size === first.byteLength) copyFileSync(path, temp);
      else writeFileSync(temp, first);
      for (const p of rest) appendFileSync(temp, p);
      return temp;
    } catch {
      removeTempFile(temp);
    }
  }
  return undefined;
}

/** A tensor handed to or returned by the runtime. */
export interface HostTensor {
  readonly dtype: DType;
  readonly dims: readonly number[];
  readonly data: Float32Array | Float64Array | Int32Array | BigInt64Array | Uint8Array | Int8Array | Uint16Array;
}

export interface SessionOptions {
  /** Threads for one operator; 0 lets onnxruntime choose. */
  intraOpThreads?: number;
  /**
   * Graph optimizations. Default: "all", and "basic" if onnxruntime cannot load the optimized graph
   * (its fusions may emit contrib ops without a kernel for the model's type: QuickGelu in double).
   * "basic" folds constants but fuses nothing (onnxruntime's float64 RMSNorm fusion drops the
   * model's epsilon for its own 1e-5); "disabled" keeps Shape nodes from being folded from inferred shapes.
   */
  optimization?: "all" | "basic" | "disabled";
}

/**
 * An onnxruntime session over model bytes. This module is the only importer of
 * onnxruntime-node, so the runtime can be swapped or moved into a worker in one place.
 */
export class RuntimeSession {
  private constructor(private readonly session: ort.InferenceSession) {}

  /**
   * Creates a session. Small models go to onnxruntime as bytes (external data in memory: a model
   * given as bytes has no folder for onnxruntime to resolve it against). Models with external
   * data or of more than {@link IN_MEMORY_LIMIT} bytes are written, with their additions, to a
   * hidden temporary file next to the original, so onnxruntime reads the weights itself; the file
   * is removed as soon as the session exists.
   */
  static async open(image: ModelImage | Uint8Array, externalFiles: ReadonlyMap<string, string>, options: SessionOptions = {}): Promise<RuntimeSession> {
    const sessionOptions: ort.InferenceSession.SessionOptions = {
      intraOpNumThreads: options.intraOpThreads ?? 0,
      graphOptimizationLevel: options.optimization ?? "all",
      logSeverityLevel: 4,
    };
    const createWith = (source: string | Uint8Array, o: ort.InferenceSession.SessionOptions): Promise<ort.InferenceSession> =>
      typeof source === "string" ? ort.InferenceSession.create(source, o) : ort.InferenceSession.create(source, o);
    const create = async (source: string | Uint8Array): Promise<ort.InferenceSession> => {
      try {
        return await createWith(source, sessionOptions);
      } catch (e) {
        if (options.optimization !== undefined) throw e;
        // onnxruntime's own fusions, not the model, may be what fails: try without them.
        return await createWith(source, { ...sessionOptions, graphOptimizationLevel: "basic" });
      }
    };
    const parts = image instanceof Uint8Array ? [image] : image.parts;
    const path = image instanceof Uint8Array ? undefined : image.path;
    const size = parts.reduce((a, p) => a + p.byteLength, 0);
    try {
      if (path && (externalFiles.size > 0 || size > IN_MEMORY_LIMIT)) {
        const temp = writeNextTo(path, parts, externalFiles.size > 0);
        if (temp) {
          try {
            return new RuntimeSession(await create(temp));
          } finally {
            removeTempFile(temp);
          }
        }
      }
      const bytes = parts.length === 1 ? parts[0] : Buffer.concat(parts);
      sessionOptions.externalData = [...externalFiles].map(([location, file]) => {
        try {
          return { path: location, data: readFileSync(file) };
        } catch (e) {
          throw new DoctorError("model.unsupported", `cannot load external data file "${location}" into memory (${oneLine(e)}); make the model's folder writable so onnxruntime can read it directly`);
        }
      });
      return new RuntimeSession(await create(bytes));
    } catch (e) {
      if (e instanceof DoctorError) throw e;
      throw new DoctorError("model.unsupported", `onnxruntime cannot load the model: ${shortRuntimeMessage(e)}`);
    }
  }

  get inputNames(): readonly string[] {
    return this.session.inputNames;
  }

  /** Element type of every tensor output, as onnxruntime inferred it (outputs added untyped included). */
  outputTypes(): Map<string, DType> {
    const types = new Map<string, DType>();
    for (const m of this.session.outputMetadata) if (m.isTensor) types.set(m.name, fromOrtType(m.type));
    return types;
  }

  async run(feeds: Record<string, HostTensor>, fetch: readonly string[]): Promise<Record<string, HostTensor>> {
    const ortFeeds: Record<string, ort.Tensor> = {};
    for (const [name, t] of Object.entries(feeds)) ortFeeds[name] = new ort.Tensor(ortType(t.dtype), t.data as ort.Tensor.DataType, t.dims as number[]);
    let result: ort.InferenceSession.OnnxValueMapType;
    try {
      result = await this.session.run(ortFeeds, fetch as string[]);
    } catch (e) {
      throw new DoctorError("model.unsupported", `onnxruntime failed to run the model: ${shortRuntimeMessage(e)}`);
    }
    const out: Record<string, HostTensor> = {};
    for (const [name, v] of Object.entries(result)) {
      out[name] = { dtype: fromOrtType(v.type), dims: v.dims, data: v.data as HostTensor["data"] };
    }
    return out;
  }

  async release(): Promise<void> {
    await this.session.release();
  }
}

function ortType(dtype: DType): ort.Tensor.Type {
  switch (dtype) {
    case "float32": return "float32";
    case "float64": return "float64";
    case "float16": return "float16";
    case "int8": return "int8";
    case "uint8": return "uint8";
    case "int16": return "int16";
    case "uint16": return "uint16";
    case "int32": return "int32";
    case "uint32": return "uint32";
    case "int64": return "int64";
    case "uint64": return "uint64";
    case "bool": return "bool";
    default: throw new DoctorError("model.unsupported", `inputs of type ${dtype} are not supported`);
  }
}

function fromOrtType(t: string): DType {
  return (t === "float32" || t === "float64" || t === "float16" || t === "int8" || t === "uint8" || t === "int16" ||
    t === "uint16" || t === "int32" || t === "uint32" || t === "int64" || t === "uint64" || t === "bool") ? t : "unsupported";
}

/** onnxruntime messages carry file/line prefixes and stack dumps; keep the sentence a user needs. */
export function shortRuntimeMessage(e: unknown): string {
  let text = oneLine(e);
  text = text.replace(/^\[ONNXRuntimeError\]\s*:\s*\d+\s*:\s*\w+\s*:\s*/, "");
  text = text.replace(/\/onnxruntime_src\/[^\s]*:\d+\s+[^\]]*\]\s*/g, "");
  // "graph.cc:1409 onnxruntime::Graph::Graph(const onnxruntime::Model&, ...) This is ..." -> "This is ..."
  text = text.replace(/\/onnxruntime_src\/\S*:\d+\s+/g, "").replace(/^[\w:<>~]+::[\w<>~]+\((?:[^()]|\([^()]*\))*\)\s*(?:const\s*)?/, "");
  return text.length > 400 ? `${text.slice(0, 400)}…` : text;
}
