import { readFileSync } from "node:fs";
import * as ort from "onnxruntime-node";

// Errors reach the user through our messages; onnxruntime's own console logging would duplicate them.
ort.env.logLevel = "fatal";
import type { DType } from "../onnx/dtype";
import { DoctorError, oneLine } from "../onnx/errors";

/** A tensor handed to or returned by the runtime. */
export interface HostTensor {
  readonly dtype: DType;
  readonly dims: readonly number[];
  readonly data: Float32Array | Float64Array | Int32Array | BigInt64Array | Uint8Array | Int8Array | Uint16Array;
}

export interface SessionOptions {
  /** Threads for one operator; 0 lets onnxruntime choose. */
  intraOpThreads?: number;
}

/**
 * An onnxruntime session over model bytes. This module is the only importer of
 * onnxruntime-node, so the runtime can be swapped or moved into a worker in one place.
 */
export class RuntimeSession {
  private constructor(private readonly session: ort.InferenceSession) {}

  /**
   * Creates a session from model bytes. External data files are handed over in memory:
   * onnxruntime refuses external paths outside the model's folder, and a model given as bytes
   * has no folder (it also rejects symlinks that leave a temporary one).
   */
  static async open(bytes: Uint8Array, externalFiles: ReadonlyMap<string, string>, options: SessionOptions = {}): Promise<RuntimeSession> {
    const sessionOptions: ort.InferenceSession.SessionOptions = {
      intraOpNumThreads: options.intraOpThreads ?? 0,
      graphOptimizationLevel: "all",
      logSeverityLevel: 4,
      externalData: [...externalFiles].map(([path, file]) => ({ path, data: readFileSync(file) })),
    };
    try {
      return new RuntimeSession(await ort.InferenceSession.create(bytes, sessionOptions));
    } catch (e) {
      throw new DoctorError("model.unsupported", `onnxruntime cannot load the model: ${shortRuntimeMessage(e)}`);
    }
  }

  get inputNames(): readonly string[] {
    return this.session.inputNames;
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
  return text.length > 400 ? `${text.slice(0, 400)}…` : text;
}
