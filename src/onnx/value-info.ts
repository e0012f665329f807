import { create } from "@bufbuild/protobuf";
import { TensorShapeProtoSchema, TypeProtoSchema, ValueInfoProtoSchema, type TensorProto_DataType, type ValueInfoProto } from "./gen/onnx_pb";

/** A graph input/output declaration for a tensor; `null` dimensions are left unknown. */
export function tensorValueInfo(name: string, elemType: TensorProto_DataType, dims: readonly (number | null)[]): ValueInfoProto {
  return create(ValueInfoProtoSchema, {
    name,
    type: create(TypeProtoSchema, {
      value: {
        case: "tensorType",
        value: {
          $typeName: "onnx.TypeProto.Tensor", elemType,
          shape: create(TensorShapeProtoSchema, {
            dim: dims.map((d) => ({ $typeName: "onnx.TensorShapeProto.Dimension" as const, denotation: "", value: d === null ? { case: undefined } : { case: "dimValue" as const, value: BigInt(d) } })),
          }),
        },
      },
    }),
  });
}
