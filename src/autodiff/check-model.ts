import { create, toBinary } from "@bufbuild/protobuf";
import {
  AttributeProto_AttributeType as AT, AttributeProtoSchema, GraphProtoSchema, ModelProtoSchema, NodeProtoSchema,
  TensorProto_DataType as DT, TensorProtoSchema, TypeProtoSchema, ValueInfoProtoSchema,
  type AttributeProto, type NodeProto, type TensorProto, type ValueInfoProto,
} from "../onnx/gen/onnx_pb";
import type { Model } from "../onnx/model";
import type { HostTensor } from "../runtime/session";
import type { FloatType } from "./emit";
import { tensorValueInfo } from "../onnx/value-info";
import { decodeRaw } from "../onnx/dtype";

/**
 * A copy of the model for gradient checking: every float initializer becomes a plain graph
 * input (with its value returned for feeding), so a perturbed copy can be fed in its place
 * (onnxruntime-node ignores feeds for initializers, even ones listed as inputs);
 * with `float64`, every float32 tensor, Cast target and declared type becomes double (the seed's
 * gradient check assumes double precision). External data is inlined. The Constant nodes named in
 * `constantParams` (layer weights and biases that an exporter stored as Constant nodes, as Paddle
 * does for every weight) become inputs too.
 */
export function checkableModel(model: Model, precision: FloatType, constantParams: ReadonlySet<string> = new Set()): { bytes: Uint8Array; params: Map<string, HostTensor> } {
  const graph = model.proto.graph!;
  const toDouble = precision === "float64";
  const params = new Map<string, HostTensor>();
  const initializers: TensorProto[] = [];
  const inputs: ValueInfoProto[] = [];
  const declared = new Set(graph.input.map((i) => i.name));

  const addParam = (name: string, dims: readonly number[], values: ArrayLike<number>, dataType: DT): void => {
    const double = dataType === DT.DOUBLE || (toDouble && dataType === DT.FLOAT);
    const data = double ? Float64Array.from(values) : Float32Array.from(values);
    if (!declared.has(name)) inputs.push(tensorValueInfo(name, double ? DT.DOUBLE : DT.FLOAT, dims));
    params.set(name, { dtype: double ? "float64" : "float32", dims, data });
  };

  for (const t of graph.initializer) {
    const c = model.constants.get(t.name);
    if ((t.dataType === DT.FLOAT || t.dataType === DT.DOUBLE) && c) addParam(t.name, c.dims, c.values(), t.dataType);
    else initializers.push(t);
  }
  // Other Constant nodes stay nodes (turned to double with the rest): a LayerNorm epsilon or a
  // 1/sqrt(d) scale is part of the function, not a parameter to check.
  const promoted = graph.node.filter((n) => n.opType === "Constant" && n.output.length === 1 && constantParams.has(n.output[0]));
  for (const n of promoted) {
    const c = model.constants.get(n.output[0])!;
    addParam(n.output[0], c.dims, c.values(), c.dtype === "float64" ? DT.DOUBLE : DT.FLOAT);
  }
  const kept = promoted.length ? graph.node.filter((n) => !promoted.includes(n)) : graph.node;
  const nodes = toDouble ? kept.map(doubleNode) : kept;
  const io = (v: ValueInfoProto): ValueInfoProto => (toDouble ? doubleValueInfo(v) : v);
  const copy = create(ModelProtoSchema, {
    ...model.proto,
    graph: create(GraphProtoSchema, {
      ...graph,
      node: nodes,
      initializer: initializers,
      input: [...graph.input.map(io), ...inputs],
      output: graph.output.map(io),
      valueInfo: toDouble ? [] : graph.valueInfo,
    }),
  });
  return { bytes: toBinary(ModelProtoSchema, copy), params };
}

function doubleValueInfo(v: ValueInfoProto): ValueInfoProto {
  if (v.type?.value.case !== "tensorType" || v.type.value.value.elemType !== DT.FLOAT) return v;
  return create(ValueInfoProtoSchema, {
    ...v,
    type: create(TypeProtoSchema, { ...v.type, value: { case: "tensorType", value: { ...v.type.value.value, elemType: DT.DOUBLE } } }),
  });
}

/** Node attributes that fix a float32 type (Cast targets, Constant values) turned to double. */
function doubleNode(n: NodeProto): NodeProto {
  const attrs = n.attribute.map((a): AttributeProto => {
    if (n.opType === "Cast" && a.name === "to" && Number(a.i) === DT.FLOAT) return create(AttributeProtoSchema, { ...a, i: BigInt(DT.DOUBLE) });
    if (a.type === AT.TENSOR && a.t && a.t.dataType === DT.FLOAT) return create(AttributeProtoSchema, { ...a, t: doubleTensor(a.t) });
    if (n.opType === "Constant" && a.name === "value_float") {
      return create(AttributeProtoSchema, { name: "value", type: AT.TENSOR, t: create(TensorProtoSchema, { dataType: DT.DOUBLE, dims: [], doubleData: [a.f] }) });
    }
    if (n.opType === "Constant" && a.name === "value_floats") {
      return create(AttributeProtoSchema, { name: "value", type: AT.TENSOR, t: create(TensorProtoSchema, { dataType: DT.DOUBLE, dims: [BigInt(a.floats.length)], doubleData: a.floats }) });
    }
    return a;
  });
  return create(NodeProtoSchema, { ...n, attribute: attrs });
}

function doubleTensor(t: TensorProto): TensorProto {
  const n = t.dims.reduce((a, b) => a * Number(b), 1);
  let values: number[];
  if (t.rawData.byteLength) {
    // Not rawData.slice(): on a Node Buffer that is a view, and its .buffer is the whole file.
    values = Array.from(decodeRaw(t.rawData, "float32", n));
  } else {
    values = [...t.floatData];
  }
  return create(TensorProtoSchema, { name: t.name, dataType: DT.DOUBLE, dims: t.dims, doubleData: values });
}
