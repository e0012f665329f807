import { NodeBuilder, serializeWith } from "../instrument/stats-graph";
import type { DType } from "../onnx/dtype";
import type { Model } from "../onnx/model";
import { RuntimeSession, type HostTensor } from "../runtime/session";

/** Static shape and element type of every top-level tensor, for one set of input shapes. */
export interface TensorInfo {
  readonly shapes: ReadonlyMap<string, readonly number[]>;
  readonly dtypes: ReadonlyMap<string, DType>;
  /** Values of small integer tensors computed at run time (Slice bounds, Reshape targets, pads). */
  readonly values?: ReadonlyMap<string, number[]>;
}

/** Integer tensors up to this size have their values recorded. */
const SMALL_INT = 1024;

/**
 * Asks onnxruntime for the shape and type of every tensor of the main graph.
 *
 * Why not our own shape inference: the backward graph needs exact static shapes (un-broadcasting
 * sums over the axes where an operand was broadcast; Conv/Pool gradients need output paddings;
 * Slice/Pad gradients need the extents), and the models we meet contain every op of every opset
 * plus contrib ops, Reshape(Shape(...)) chains and data-dependent shapes. onnxruntime already
 * knows them all. We append a `Shape` node for every tensor and run the model once on the first
 * probe batch: only those small int64 vectors leave the runtime (never the tensors themselves), so
 * the cost is about one plain forward run. Element types come from the session's output
 * metadata (every tensor is declared as an output without a type and onnxruntime fills it in).
 *
 * The backward graph is therefore specialised to these shapes; a batch of another shape (a short
 * last batch of user data) gets forward statistics only.
 */
export async function probeTensorInfo(model: Model, feeds: Record<string, HostTensor>, intraOpThreads?: number): Promise<TensorInfo> {
  const shapes = new Map<string, readonly number[]>();
  const dtypes = new Map<string, DType>();
  for (const [name, c] of model.constants) {
    shapes.set(name, c.dims);
    dtypes.set(name, c.dtype);
  }
  for (const [name, t] of Object.entries(feeds)) {
    shapes.set(name, t.dims);
    dtypes.set(name, t.dtype);
  }
  const values = new Map<string, number[]>();
  const tensors = [...new Set(model.nodes.flatMap((n) => n.outputs.filter((o) => o && !shapes.has(o))))];
  const b = new NodeBuilder("__doctor_shape");
  const shapeOf = new Map(tensors.map((t) => [t, b.op("Shape", [t])]));
  const bytes = serializeWith(model, b.nodes, b.initializers, [...tensors, ...shapeOf.values()]);
  // Unoptimised: onnxruntime would otherwise fold Shape nodes from its static shape inference,
  // which can disagree with what the kernels produce (AveragePool with ceil_mode, for one).
  const session = await RuntimeSession.open(bytes, model.externalFiles, { intraOpThreads, optimization: "disabled" });
  try {
    for (const [name, type] of session.outputTypes()) if (!dtypes.has(name)) dtypes.set(name, type);
    // Integer tensors are fetched whole (they are index and shape arithmetic, small), float ones only by shape.
    const intTensors = tensors.filter((t) => isInt(dtypes.get(t)));
    const r = await session.run(feeds, [...shapeOf.values(), ...intTensors]);
    for (const [t, s] of shapeOf) {
      const v = r[s]?.data;
      if (v) shapes.set(t, Array.from(v as BigInt64Array, Number));
    }
    for (const t of intTensors) {
      const v = r[t];
      if (v && v.data.length <= SMALL_INT) values.set(t, Array.from(v.data as ArrayLike<number | bigint>, Number));
    }
  } finally {
    await session.release();
  }
  return { shapes, dtypes, values };
}

const isInt = (t: DType | undefined): boolean => t === "int64" || t === "int32" || t === "bool" || t === "int8" || t === "uint8";
