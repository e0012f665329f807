// Builds small ONNX models in memory for loader and probe tests.
import { create, toBinary } from "@bufbuild/protobuf";
import {
  AttributeProto_AttributeType as AT, AttributeProtoSchema, GraphProtoSchema, ModelProtoSchema, NodeProtoSchema,
  OperatorSetIdProtoSchema, TensorProto_DataLocation, TensorProto_DataType as DT, TensorProtoSchema, TensorShapeProtoSchema,
  TypeProtoSchema, ValueInfoProtoSchema, type AttributeProto, type GraphProto, type NodeProto, type TensorProto,
} from "../../src/onnx/gen/onnx_pb";

export { DT };

export function floatTensor(name: string, dims: number[], values: number[]): TensorProto {
  return create(TensorProtoSchema, { name, dataType: DT.FLOAT, dims: dims.map(BigInt), rawData: new Uint8Array(Float32Array.from(values).buffer) });
}

export function rawTensor(name: string, dataType: DT, dims: number[], raw: Uint8Array): TensorProto {
  return create(TensorProtoSchema, { name, dataType, dims: dims.map(BigInt), rawData: raw });
}

export function externalTensor(name: string, dims: number[], location: string, offset: number, length: number): TensorProto {
  return create(TensorProtoSchema, {
    name, dataType: DT.FLOAT, dims: dims.map(BigInt), dataLocation: TensorProto_DataLocation.EXTERNAL,
    externalData: [{ key: "location", value: location }, { key: "offset", value: String(offset) }, { key: "length", value: String(length) }].map((e) => ({ ...e, $typeName: "onnx.StringStringEntryProto" as const })),
  });
}

export function attr(name: string, v: number | number[] | TensorProto | GraphProto): AttributeProto {
  if (typeof v === "number") return create(AttributeProtoSchema, { name, type: AT.INT, i: BigInt(v) });
  if (Array.isArray(v)) return create(AttributeProtoSchema, { name, type: AT.INTS, ints: v.map(BigInt) });
  if (v.$typeName === "onnx.TensorProto") return create(AttributeProtoSchema, { name, type: AT.TENSOR, t: v });
  return create(AttributeProtoSchema, { name, type: AT.GRAPH, g: v });
}

export function node(opType: string, inputs: string[], outputs: string[], attrs: AttributeProto[] = [], name = ""): NodeProto {
  return create(NodeProtoSchema, { opType, input: inputs, output: outputs, attribute: attrs, name });
}

export function valueInfo(name: string, dims: (number | string)[], elemType = DT.FLOAT) {
  return create(ValueInfoProtoSchema, {
    name,
    type: create(TypeProtoSchema, {
      value: {
        case: "tensorType",
        value: { $typeName: "onnx.TypeProto.Tensor", elemType, shape: create(TensorShapeProtoSchema, { dim: dims.map((d) => ({ $typeName: "onnx.TensorShapeProto.Dimension" as const, denotation: "", value: typeof d === "number" ? { case: "dimValue" as const, value: BigInt(d) } : { case: "dimParam" as const, value: d } })) }) },
      },
    }),
  });
}

export function graph(nodes: NodeProto[], initializers: TensorProto[], inputs = [valueInfo("x", ["batch", 4])], outputs = [valueInfo("y", ["batch", 4])]): GraphProto {
  return create(GraphProtoSchema, { name: "g", node: nodes, initializer: initializers, input: inputs, output: outputs });
}

export function modelBytes(g: GraphProto, opset = 17, irVersion = 8): Uint8Array {
  return toBinary(ModelProtoSchema, create(ModelProtoSchema, {
    irVersion: BigInt(irVersion), producerName: "test", graph: g,
    opsetImport: [create(OperatorSetIdProtoSchema, { domain: "", version: BigInt(opset) })],
  }));
}
