import { create, toBinary } from "@bufbuild/protobuf";
import {
  AttributeProto_AttributeType as AttrType,
  AttributeProtoSchema,
  GraphProtoSchema,
  ModelProtoSchema,
  NodeProtoSchema,
  TensorProto_DataType as DT,
  TensorProtoSchema,
  ValueInfoProtoSchema,
  type AttributeProto,
  type GraphProto,
  type NodeProto,
  type TensorProto,
  type ValueInfoProto,
} from "../onnx/gen/onnx_pb";
import { originalBytes } from "../onnx/load";
import type { Model } from "../onnx/model";
import type { ModelImage } from "../runtime/session";
import { defaultOpset } from "../onnx/model";
import { tensorValueInfo } from "../onnx/value-info";
import { generatedPrefix } from "./names";

/** A tensor to summarise inside the graph, and which extra statistics it needs. */
export interface Tap {
  readonly tensor: string;
  /** Count |a| > 0.99 (tanh) or a outside [0.01, 0.99] (sigmoid). */
  readonly saturation?: "tanh" | "sigmoid";
  /**
   * Count exact zeros in the graph. Worth a pass only after ReLU-like units; elsewhere exact zeros
   * are rare and the zero fraction is read from the histogram sample.
   */
  readonly countZeros?: boolean;
  /** Output the per-position maximum over the batch, to find units that never fire. */
  readonly unitMax?: boolean;
  /** Units are channels of an NCHW-like tensor (conv outputs): pool spatial positions first. */
  readonly channelFirst?: boolean;
  /** Cast to float32 first (float16/bfloat16/double tensors). */
  readonly castToFloat?: boolean;
}

/** Names of the graph outputs that carry one tap's statistics. */
export interface TapOutputs {
  readonly mean: string;
  readonly m2: string;
  readonly max: string;
  readonly min: string;
  readonly size: string;
  /** Count of exact zeros (taps with `countZeros`). */
  readonly zeros?: string;
  readonly saturated?: string;
  readonly unitMax?: string;
  readonly sample: string;
}

/** Every graph output a tap adds, for fetching. */
export function tapOutputNames(o: TapOutputs): string[] {
  return [o.mean, o.m2, o.max, o.min, o.size, o.zeros, o.saturated, o.unitMax, o.sample].filter((n): n is string => !!n);
}

/** Values kept per batch for the histogram: a strided sample, so the cost does not grow with size. */
export const SAMPLE_SIZE = 2048;

/**
 * Appends per-tensor reductions to a copy of the model (DESIGN decision 1): only scalars and small
 * vectors leave onnxruntime, never whole activations. Emits ops in the forms the model's own opset
 * accepts (attribute axes before opset 18, attribute Slice before opset 10).
 */
/** More nodes to append along with the statistics (the backward graph and its reductions). */
export interface GraphAdditions {
  readonly nodes: readonly NodeProto[];
  readonly initializers: readonly TensorProto[];
  /** Extra graph inputs, fed at run time (loss targets). */
  readonly inputs: readonly ValueInfoProto[];
  readonly outputs: readonly string[];
}

export function instrumentStatistics(model: Model, taps: readonly Tap[], extra?: GraphAdditions): { bytes: ModelImage; outputs: TapOutputs[] } {
  const opset = defaultOpset(model);
  const b = new NodeBuilder(generatedPrefix(model, "__doctor"));
  const outputs: TapOutputs[] = [];
  for (const tap of taps) {
    const x = tap.castToFloat ? b.op("Cast", [tap.tensor], { to: DT.FLOAT }) : tap.tensor;
    const mean = b.op("ReduceMean", [x], { keepdims: 0 });
    const min = b.op("ReduceMin", [x], { keepdims: 0 });
    const size = b.op("Size", [x]);
    const m2 = sumOfSquaredDeviations(b, x, mean, size);
    // Equal/Cast/ReduceSum runs vectorised; onnxruntime's Sign does not (sum(sign(x)^2) took 18 ms
    // on a ResNet-18 stem activation, this 10 ms). Equal on floats needs opset 11.
    const zeros = !tap.countZeros ? undefined
      : b.countTrue(opset >= 11 ? b.op("Equal", [x, b.constFloat(0)]) : b.op("Not", [b.op("Greater", [b.op("Abs", [x]), b.constFloat(0)])]));
    let saturated: string | undefined;
    if (tap.saturation === "tanh") saturated = b.countTrue(b.op("Greater", [b.op("Abs", [x]), b.constFloat(0.99)]));
    if (tap.saturation === "sigmoid") {
      saturated = b.countTrue(b.op("Greater", [b.op("Abs", [b.op("Sub", [x, b.constFloat(0.5)])]), b.constFloat(0.49)]));
    }
    let unitMax: string | undefined;
    if (tap.unitMax) {
      // GlobalMaxPool walks each channel's contiguous plane; reducing a flattened [N, C*H*W] over
      // axis 0 strides through memory and costs about three times as much.
      const perSample = b.op("Flatten", [tap.channelFirst ? b.op("GlobalMaxPool", [x]) : x], { axis: 1 });
      unitMax = opset >= 18 ? b.op("ReduceMax", [perSample, b.constInts([0])], { keepdims: 0 }) : b.op("ReduceMax", [perSample], { axes: [0], keepdims: 0 });
    }
    // The largest unit maximum is the tensor's maximum: a reduction over C values instead of a pass over x.
    const max = b.op("ReduceMax", [unitMax ?? x], { keepdims: 0 });
    const flat = b.op("Reshape", [x, b.constInts([-1])]);
    let sample: string;
    if (opset >= 10) {
      // step = ceil(size / SAMPLE_SIZE) >= 1, computed in the graph because shapes may be dynamic.
      const k = b.constInts([SAMPLE_SIZE]);
      const step = b.op("Div", [b.op("Add", [b.op("Reshape", [size, b.constInts([1])]), b.constInts([SAMPLE_SIZE - 1])]), k]);
      sample = b.op("Slice", [flat, b.constInts([0]), b.constInts([Number.MAX_SAFE_INTEGER]), b.constInts([0]), step]);
    } else {
      sample = b.op("Slice", [flat], { starts: [0], ends: [SAMPLE_SIZE], axes: [0] });
    }
    outputs.push({ mean, m2, max, min, size, zeros, saturated, unitMax, sample });
  }
  const names = outputs.flatMap(tapOutputNames);
  if (extra) {
    const bytes = serializeWith(model, [...b.nodes, ...extra.nodes], [...b.initializers, ...extra.initializers], [...names, ...extra.outputs], extra.inputs);
    return { bytes, outputs };
  }
  return { bytes: serializeWith(model, b.nodes, b.initializers, names), outputs };
}

/**
 * Σ(x − mean)² of a float tensor. One pass, Σx² − n·mean², skips writing x − mean (the largest
 * statistic cost: 17 of 60 ms on ResNet-18) but loses digits to cancellation when the mean is
 * large next to the spread; where n·mean² exceeds half of Σx² (sigmoid outputs near 0.5 with a
 * small std, say) an If takes the second pass over x − mean instead, so at most one binary digit is lost.
 * The one-pass value can come out slightly negative from rounding; readers clamp it at 0.
 */
function sumOfSquaredDeviations(b: NodeBuilder, x: string, mean: string, size: string): string {
  const sumSq = b.op("ReduceSumSquare", [x], { keepdims: 0 });
  const meanSq = b.op("Mul", [b.op("Mul", [mean, mean]), b.op("Cast", [size], { to: DT.FLOAT })]);
  // Asked this way round so that NaN, and both sums overflowing to Inf, take the second pass as before.
  const onePass = b.op("Less", [meanSq, b.op("Mul", [sumSq, b.constFloat(0.5)])]);
  return b.ifElse(onePass,
    (t) => t.op("Sub", [sumSq, meanSq]),
    (f) => f.op("ReduceSumSquare", [f.op("Sub", [x, mean])], { keepdims: 0 }));
}

/**
 * The model with extra nodes, constants, inputs and outputs, for onnxruntime. For a model as
 * loaded from its file this is the file's bytes plus a small appended ModelProto holding only the
 * additions: protobuf merges a repeated `graph` field, so nothing of a multi-gigabyte model is
 * re-encoded or copied (the runtime can even read it from a file). Other models are re-encoded.
 */
export function serializeWith(model: Model, nodes: NodeProto[], initializers: TensorProto[], outputNames: readonly string[], inputs: readonly ValueInfoProto[] = []): ModelImage {
  const graph = model.proto.graph!;
  const existing = new Set(graph.output.map((o) => o.name));
  const newOutputs = outputNames.filter((n) => !existing.has(n)).map((name) => create(ValueInfoProtoSchema, { name }));
  const original = originalBytes(model.proto);
  if (original) {
    const addition = toBinary(ModelProtoSchema, create(ModelProtoSchema, {
      graph: create(GraphProtoSchema, { node: nodes, initializer: initializers, input: [...inputs], output: newOutputs }),
    }));
    return { path: model.path, parts: [original, addition] };
  }
  const copy = create(ModelProtoSchema, {
    ...model.proto,
    graph: create(GraphProtoSchema, {
      ...graph,
      node: [...graph.node, ...nodes],
      initializer: [...graph.initializer, ...initializers],
      input: [...graph.input, ...inputs],
      output: [...graph.output, ...newOutputs],
    }),
  });
  return { path: undefined, parts: [toBinary(ModelProtoSchema, copy)] };
}

type AttrValue = number | number[] | string;

/** Emits ONNX nodes with unique names under a prefix that cannot clash with the model's own. */
export class NodeBuilder {
  readonly nodes: NodeProto[] = [];
  readonly initializers: TensorProto[] = [];
  private counter = 0;
  private readonly floatConsts = new Map<number, string>();
  private readonly intConsts = new Map<string, string>();

  constructor(private readonly prefix: string) {}

  fresh(hint: string): string {
    return `${this.prefix}/${hint}_${this.counter++}`;
  }

  op(opType: string, inputs: string[], attrs: Record<string, AttrValue> = {}): string {
    const out = this.fresh(opType);
    this.nodes.push(create(NodeProtoSchema, {
      name: out, opType, input: inputs, output: [out],
      attribute: Object.entries(attrs).map(([name, v]) => attribute(name, v)),
    }));
    return out;
  }

  /**
   * An If node whose branches each compute one float scalar; the branches read outer tensors by
   * name and get builders of their own under this one's prefix, so names stay unique.
   */
  ifElse(cond: string, thenBranch: (b: NodeBuilder) => string, elseBranch: (b: NodeBuilder) => string): string {
    const out = this.fresh("If");
    const branch = (label: string, build: (b: NodeBuilder) => string): GraphProto => {
      const inner = new NodeBuilder(`${out}/${label}`);
      const result = build(inner);
      // A branch output must be produced inside the branch (an outer name is not allowed).
      const output = inner.op("Identity", [result]);
      return create(GraphProtoSchema, {
        name: `${out}/${label}`, node: inner.nodes, initializer: inner.initializers,
        output: [tensorValueInfo(output, DT.FLOAT, [])],
      });
    };
    this.nodes.push(create(NodeProtoSchema, {
      name: out, opType: "If", input: [cond], output: [out],
      attribute: [
        create(AttributeProtoSchema, { name: "then_branch", type: AttrType.GRAPH, g: branch("then", thenBranch) }),
        create(AttributeProtoSchema, { name: "else_branch", type: AttrType.GRAPH, g: branch("else", elseBranch) }),
      ],
    }));
    return out;
  }

  /** Number of true elements, as a float scalar. */
  countTrue(bool: string): string {
    return this.op("ReduceSum", [this.op("Cast", [bool], { to: DT.FLOAT })], { keepdims: 0 });
  }

  // Constants are Constant nodes, not initializers: IR < 4 requires every initializer to be
  // listed as a graph input too, and a node works the same in every IR version.
  constFloat(v: number): string {
    let name = this.floatConsts.get(v);
    if (!name) {
      name = this.constant(create(TensorProtoSchema, { dataType: DT.FLOAT, dims: [], floatData: [v] }));
      this.floatConsts.set(v, name);
    }
    return name;
  }

  constInts(v: number[]): string {
    const key = v.join(",");
    let name = this.intConsts.get(key);
    if (!name) {
      name = this.constant(create(TensorProtoSchema, { dataType: DT.INT64, dims: [BigInt(v.length)], int64Data: v.map(BigInt) }));
      this.intConsts.set(key, name);
    }
    return name;
  }

  /** A Constant node holding `value`; subclasses (the autodiff emitter) add typed constants. */
  protected constant(value: TensorProto): string {
    const out = this.fresh("const");
    this.nodes.push(create(NodeProtoSchema, {
      name: out, opType: "Constant", input: [], output: [out],
      attribute: [create(AttributeProtoSchema, { name: "value", type: AttrType.TENSOR, t: value })],
    }));
    return out;
  }
}

function attribute(name: string, v: AttrValue): AttributeProto {
  if (typeof v === "string") return create(AttributeProtoSchema, { name, type: AttrType.STRING, s: new TextEncoder().encode(v) });
  if (Array.isArray(v)) return create(AttributeProtoSchema, { name, type: AttrType.INTS, ints: v.map(BigInt) });
  return create(AttributeProtoSchema, { name, type: AttrType.INT, i: BigInt(v) });
}
