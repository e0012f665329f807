import type { NodeProto, TensorProto, ValueInfoProto } from "../onnx/gen/onnx_pb";
import { TensorProto_DataType as DT } from "../onnx/gen/onnx_pb";
import { defaultOpset, type Model } from "../onnx/model";
import { generatedPrefix } from "./names";
import { NodeBuilder, type GraphAdditions } from "./stats-graph";

/** A tensor whose statistics are wanted per channel (axis 1), e.g. the input of a BatchNormalization. */
export interface ChannelTap {
  readonly tensor: string;
  readonly channels: number;
  /** A constant of `channels` values subtracted first (the running mean), for precision. */
  readonly center?: string;
  /** Cast to float32 first (float16/double tensors). */
  readonly castToFloat?: boolean;
}

export interface ChannelTapOutputs {
  /** Per-channel mean of (x - center), shape [C]. */
  readonly mean: string;
  /** Per-channel mean of (x - center)^2, shape [C]. */
  readonly meanSquare: string;
  /** Elements per channel in this batch (a scalar: Size(x) / C). */
  readonly count: string;
}

/**
 * Per-channel first and second moments, reduced inside the graph (DESIGN decision 1): the tensor
 * is viewed as [N, C, rest] with Reshape(0, C, -1), so any rank >= 2 works without knowing it.
 */
export function channelStatistics(model: Model, taps: readonly ChannelTap[]): { additions: GraphAdditions; outputs: ChannelTapOutputs[] } {
  const opset = defaultOpset(model);
  const b = new NodeBuilder(generatedPrefix(model, "__doctor_channels"));
  const outputs: ChannelTapOutputs[] = [];
  for (const tap of taps) {
    let x = tap.castToFloat ? b.op("Cast", [tap.tensor], { to: DT.FLOAT }) : tap.tensor;
    x = b.op("Reshape", [x, b.constInts([0, tap.channels, -1])]);
    if (tap.center) {
      const c = tap.castToFloat ? b.op("Cast", [tap.center], { to: DT.FLOAT }) : tap.center;
      x = b.op("Sub", [x, b.op("Reshape", [c, b.constInts([tap.channels, 1])])]);
    }
    const reduce = (t: string): string => (opset >= 18 ? b.op("ReduceMean", [t, b.constInts([0, 2])], { keepdims: 0 }) : b.op("ReduceMean", [t], { axes: [0, 2], keepdims: 0 }));
    const mean = reduce(x);
    const meanSquare = reduce(b.op("Mul", [x, x]));
    const count = b.op("Div", [b.op("Size", [x]), b.constInts([tap.channels])]);
    outputs.push({ mean, meanSquare, count });
  }
  return {
    additions: { nodes: b.nodes, initializers: b.initializers, inputs: [], outputs: outputs.flatMap((o) => [o.mean, o.meanSquare, o.count]) },
    outputs,
  };
}

/** Several sets of additions as one (the probe takes one). */
export function mergeAdditions(list: readonly GraphAdditions[]): GraphAdditions | undefined {
  if (!list.length) return undefined;
  const nodes: NodeProto[] = [];
  const initializers: TensorProto[] = [];
  const inputs: ValueInfoProto[] = [];
  const outputs: string[] = [];
  for (const a of list) {
    nodes.push(...a.nodes);
    initializers.push(...a.initializers);
    inputs.push(...a.inputs);
    outputs.push(...a.outputs);
  }
  return { nodes, initializers, inputs, outputs };
}
