import { generatedPrefix } from "../instrument/names";
import { serializeWith } from "../instrument/stats-graph";
import type { DType } from "../onnx/dtype";
import { defaultOpset, type Model } from "../onnx/model";
import { RuntimeSession, type HostTensor } from "../runtime/session";
import { GradEmitter } from "./emit";

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
 * knows them all. We append, for every tensor, a `Shape` node and a "head" (its first 1,025
 * elements, flattened) and run the model once on the first probe batch: only those small tensors
 * leave the runtime, never the tensors themselves, so the cost is about one plain forward run and
 * memory stays that of one. The head gives the element type (and the values of small integer
 * tensors: Slice bounds, Reshape targets, pads computed at run time).
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
  const opset = defaultOpset(model);
  const b = new GradEmitter(generatedPrefix(model, "__doctor_shape"), opset);
  const probes = new Map(tensors.map((t) => [t, { shape: b.op("Shape", [t]), head: b.slice(b.reshape(t, [-1]), [0], [SMALL_INT + 1], [0]) }]));
  const bytes = serializeWith(model, b.nodes, b.initializers, [...probes.values()].flatMap((p) => [p.shape, p.head]));
  // Unoptimised: onnxruntime would otherwise fold Shape nodes from its static shape inference,
  // which can disagree with what the kernels produce (AveragePool with ceil_mode, for one).
  const session = await RuntimeSession.open(bytes, model.externalFiles, { intraOpThreads, optimization: "disabled" });
  try {
    const r = await session.run(feeds, [...probes.values()].flatMap((p) => [p.shape, p.head]));
    for (const [t, p] of probes) {
      const shape = r[p.shape]?.data;
      const head = r[p.head];
      if (!shape || !head) continue;
      const dims = Array.from(shape as BigInt64Array, Number);
      shapes.set(t, dims);
      dtypes.set(t, head.dtype);
      if (isInt(head.dtype) && dims.reduce((x, y) => x * y, 1) <= SMALL_INT) values.set(t, Array.from(head.data as ArrayLike<number | bigint>, Number));
    }
  } finally {
    await session.release();
  }
  return { shapes, dtypes, values };
}

const isInt = (t: DType | undefined): boolean => t === "int64" || t === "int32" || t === "bool" || t === "int8" || t === "uint8";
