// Generates the benchmark models with our own protobuf code (no PyTorch needed):
// a ResNet-18 (11.7M parameters, 47 MB) and a wide MLP of at least 200 MB.
import { create, toBinary } from "@bufbuild/protobuf";
import {
  AttributeProto_AttributeType as AT, AttributeProtoSchema, GraphProtoSchema, ModelProtoSchema, NodeProtoSchema,
  OperatorSetIdProtoSchema, StringStringEntryProtoSchema, TensorProto_DataLocation, TensorProto_DataType as DT, TensorProtoSchema, TensorShapeProtoSchema, TypeProtoSchema, ValueInfoProtoSchema,
  type NodeProto, type TensorProto,
} from "../src/onnx/gen/onnx_pb";
import { closeSync, openSync, writeFileSync, writeSync } from "node:fs";
import { join } from "node:path";
import { Random } from "../src/stats/random";

const random = new Random(42);

function tensor(name: string, dims: number[], std: number, constant?: number): TensorProto {
  const n = dims.reduce((a, b) => a * b, 1);
  const data = new Float32Array(n);
  for (let i = 0; i < n; i++) data[i] = constant ?? random.normal() * std;
  return create(TensorProtoSchema, { name, dataType: DT.FLOAT, dims: dims.map(BigInt), rawData: new Uint8Array(data.buffer) });
}

function ints(name: string, value: number[]) {
  return create(AttributeProtoSchema, { name, type: AT.INTS, ints: value.map(BigInt) });
}

function io(name: string, dims: (number | string)[]) {
  return create(ValueInfoProtoSchema, {
    name,
    type: create(TypeProtoSchema, { value: { case: "tensorType", value: { $typeName: "onnx.TypeProto.Tensor", elemType: DT.FLOAT, shape: create(TensorShapeProtoSchema, { dim: dims.map((d) => ({ $typeName: "onnx.TensorShapeProto.Dimension" as const, denotation: "", value: typeof d === "number" ? { case: "dimValue" as const, value: BigInt(d) } : { case: "dimParam" as const, value: d } })) }) } } }),
  });
}

function model(nodes: NodeProto[], inits: TensorProto[], input: ReturnType<typeof io>, output: ReturnType<typeof io>): Uint8Array {
  return toBinary(ModelProtoSchema, create(ModelProtoSchema, {
    irVersion: 8n, producerName: "onnx-doctor-bench",
    opsetImport: [create(OperatorSetIdProtoSchema, { domain: "", version: 17n })],
    graph: create(GraphProtoSchema, { name: "bench", node: nodes, initializer: inits, input: [input], output: [output] }),
  }));
}

/** torchvision's resnet18 architecture (eval mode, BatchNorm kept), He-initialised. */
export function resnet18(): Uint8Array {
  const nodes: NodeProto[] = [];
  const inits: TensorProto[] = [];
  const n = (op: string, inputs: string[], name: string, attrs: ReturnType<typeof ints>[] = []): string => {
    nodes.push(create(NodeProtoSchema, { opType: op, input: inputs, output: [`${name}_out`], name: `/${name.replace(/\./g, "/")}/${op}`, attribute: attrs }));
    return `${name}_out`;
  };
  const convBn = (x: string, cin: number, cout: number, k: number, stride: number, name: string, bn: string): string => {
    inits.push(tensor(`${name}.weight`, [cout, cin, k, k], Math.sqrt(2 / (cin * k * k))));
    const c = n("Conv", [x, `${name}.weight`], name, [ints("kernel_shape", [k, k]), ints("strides", [stride, stride]), ints("pads", Array(4).fill(k >> 1))]);
    for (const [p, v] of [["weight", 1], ["bias", 0], ["running_mean", 0], ["running_var", 1]] as const) inits.push(tensor(`${bn}.${p}`, [cout], 0, v));
    return n("BatchNormalization", [c, `${bn}.weight`, `${bn}.bias`, `${bn}.running_mean`, `${bn}.running_var`], bn);
  };
  let x = n("Relu", [convBn("input", 3, 64, 7, 2, "conv1", "bn1")], "relu");
  x = n("MaxPool", [x], "maxpool", [ints("kernel_shape", [3, 3]), ints("strides", [2, 2]), ints("pads", [1, 1, 1, 1])]);
  let cin = 64;
  for (const [stage, cout] of [[1, 64], [2, 128], [3, 256], [4, 512]] as const) {
    for (const b of [0, 1]) {
      const p = `layer${stage}.${b}`;
      const stride = b === 0 && stage > 1 ? 2 : 1;
      const h = n("Relu", [convBn(x, cin, cout, 3, stride, `${p}.conv1`, `${p}.bn1`)], `${p}.relu1`);
      const y = convBn(h, cout, cout, 3, 1, `${p}.conv2`, `${p}.bn2`);
      const skip = stride !== 1 || cin !== cout ? convBn(x, cin, cout, 1, stride, `${p}.downsample.0`, `${p}.downsample.1`) : x;
      x = n("Relu", [n("Add", [y, skip], `${p}.add`)], `${p}.relu2`);
      cin = cout;
    }
  }
  x = n("Flatten", [n("GlobalAveragePool", [x], "avgpool")], "flatten");
  inits.push(tensor("fc.weight", [1000, 512], Math.sqrt(1 / 512)), tensor("fc.bias", [1000], 0, 0));
  nodes.push(create(NodeProtoSchema, { opType: "Gemm", input: [x, "fc.weight", "fc.bias"], output: ["logits"], name: "/fc/Gemm", attribute: [create(AttributeProtoSchema, { name: "transB", type: AT.INT, i: 1n })] }));
  return model(nodes, inits, io("input", ["batch", 3, 224, 224]), io("logits", ["batch", 1000]));
}

/**
 * The same wide MLP with every weight in one external data file, written layer by layer so the
 * generator never holds more than one layer (for the 2 GB+ scale test).
 */
export function wideMlpExternal(megabytes: number, dir: string, width = 4096): string {
  const perLayer = width * width * 4;
  const layers = Math.ceil((megabytes * 1e6) / perLayer);
  const dataFile = join(dir, "wide-mlp.weights.bin");
  const fd = openSync(dataFile, "w");
  const nodes: NodeProto[] = [];
  const inits: TensorProto[] = [];
  let x = "input";
  const layer = new Float32Array(width * width);
  let state = 12345;
  const scale = Math.sqrt(2 / width) * Math.sqrt(3);
  for (let i = 0; i < layers; i++) {
    // Uniform with He std: cheap to generate, and the statistics are what matter here.
    for (let k = 0; k < layer.length; k++) {
      state = (Math.imul(state, 1664525) + 1013904223) >>> 0;
      layer[k] = scale * (state / 2147483648 - 1);
    }
    writeSync(fd, new Uint8Array(layer.buffer), 0, perLayer, i * perLayer);
    inits.push(create(TensorProtoSchema, {
      name: `layers.${i}.weight`, dataType: DT.FLOAT, dims: [BigInt(width), BigInt(width)], dataLocation: TensorProto_DataLocation.EXTERNAL,
      externalData: [["location", "wide-mlp.weights.bin"], ["offset", String(i * perLayer)], ["length", String(perLayer)]].map(([key, value]) => create(StringStringEntryProtoSchema, { key, value })),
    }));
    nodes.push(create(NodeProtoSchema, { opType: "MatMul", input: [x, `layers.${i}.weight`], output: [`h${i}`], name: `/layers/layers.${i}/MatMul` }));
    nodes.push(create(NodeProtoSchema, { opType: "Relu", input: [`h${i}`], output: [`a${i}`], name: `/act${i}/Relu` }));
    x = `a${i}`;
  }
  closeSync(fd);
  nodes.push(create(NodeProtoSchema, { opType: "Identity", input: [x], output: ["output"] }));
  const path = join(dir, "wide-mlp-external.onnx");
  writeFileSync(path, model(nodes, inits, io("input", ["batch", width]), io("output", ["batch", width])));
  return path;
}

/** A deep wide ReLU MLP whose weights total `megabytes` MB. */
export function wideMlp(megabytes: number, width = 4096): Uint8Array {
  const perLayer = width * width * 4;
  const layers = Math.ceil((megabytes * 1e6) / perLayer);
  const nodes: NodeProto[] = [];
  const inits: TensorProto[] = [];
  let x = "input";
  for (let i = 0; i < layers; i++) {
    inits.push(tensor(`layers.${i}.weight`, [width, width], Math.sqrt(2 / width)));
    nodes.push(create(NodeProtoSchema, { opType: "MatMul", input: [x, `layers.${i}.weight`], output: [`h${i}`], name: `/layers/layers.${i}/MatMul` }));
    nodes.push(create(NodeProtoSchema, { opType: "Relu", input: [`h${i}`], output: [`a${i}`], name: `/act${i}/Relu` }));
    x = `a${i}`;
  }
  nodes.push(create(NodeProtoSchema, { opType: "Identity", input: [x], output: ["output"] }));
  return model(nodes, inits, io("input", ["batch", width]), io("output", ["batch", width]));
}
