import assert from "node:assert/strict";
import { join } from "node:path";
import { describe, it } from "node:test";
import { analyzeArchitecture } from "../../src/graph/architecture";
import { GraphIndex } from "../../src/graph/index";
import { findLayers } from "../../src/graph/layers";
import { modulePathFromNodeName, modulePathFromWeightName } from "../../src/graph/module-path";
import { analyze } from "../../src/index";
import { loadModel } from "../../src/onnx/load";
import { create } from "@bufbuild/protobuf";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { AttributeProto_AttributeType as AT, AttributeProtoSchema, type AttributeProto } from "../../src/onnx/gen/onnx_pb";
import { attr, floatTensor, graph, modelBytes, node, valueInfo } from "./build-model";
import { FIXTURES } from "./helpers";

const zeros = (n: number): number[] => new Array<number>(n).fill(0.1);

describe("module paths", () => {
  it("follows torch.onnx scopes", () => {
    assert.equal(modulePathFromNodeName("/layer1/layer1.0/conv1/Conv"), "layer1.0.conv1");
    assert.equal(modulePathFromNodeName("/layers/layers.0/Gemm"), "layers.0");
    assert.equal(modulePathFromNodeName("/encoder/layers.0/self_attn/MatMul_1"), "encoder.layers.0.self_attn");
    // Sequentials nested in a module (torchvision's downsample, MobileNet's conv blocks) repeat their own segment, not the whole path.
    assert.equal(modulePathFromNodeName("/layer2/layer2.0/downsample/downsample.0/Conv"), "layer2.0.downsample.0");
    assert.equal(modulePathFromNodeName("/features/features.1/conv/conv.0/conv.0.0/Conv"), "features.1.conv.0.0");
    assert.equal(modulePathFromNodeName("/conv/conv/Conv"), "conv.conv");
    assert.equal(modulePathFromNodeName("/Flatten"), undefined);
    assert.equal(modulePathFromNodeName("Conv_12"), undefined);
    assert.equal(modulePathFromWeightName("features.3.weight"), "features.3");
    assert.equal(modulePathFromWeightName("onnx::Conv_193"), undefined);
  });
});

describe("layers and fan-in/fan-out", () => {
  const layersOf = (nodes: ReturnType<typeof node>[], inits: ReturnType<typeof floatTensor>[]) =>
    findLayers(loadModel("mem.onnx", { bytes: modelBytes(graph(nodes, inits)) }));

  it("Conv: C_in/groups * kh * kw, with the activation that follows", () => {
    // Depthwise 3x3 conv over 8 channels: weight [8, 1, 3, 3], groups 8.
    const [l] = layersOf([node("Conv", ["x", "w"], ["h"], [attr("group", 8)], "/dw/Conv"), node("Relu", ["h"], ["y"])], [floatTensor("w", [8, 1, 3, 3], zeros(72))]);
    assert.deepEqual([l.name, l.fanIn, l.fanOut, l.activation, l.output, l.shapeLabel], ["dw", 9, 72, "relu", "y", "1->8, kernel 3x3"]);
  });

  it("Gemm honours transB", () => {
    const [a] = layersOf([node("Gemm", ["x", "w"], ["y"], [attr("transB", 1)])], [floatTensor("w", [10, 4], zeros(40))]);
    assert.deepEqual([a.fanIn, a.fanOut, a.units], [4, 10, { outer: 1, units: 10, inner: 4 }]);
    const [b] = layersOf([node("Gemm", ["x", "w"], ["y"])], [floatTensor("w", [4, 10], zeros(40))]);
    assert.deepEqual([b.fanIn, b.fanOut, b.units], [4, 10, { outer: 4, units: 10, inner: 1 }]);
  });

  it("MatMul orientation: constant on the right is [in, out], on the left [out, in]", () => {
    const [r] = layersOf([node("MatMul", ["x", "w"], ["y"])], [floatTensor("w", [4, 6], zeros(24))]);
    assert.deepEqual([r.fanIn, r.fanOut], [4, 6]);
    const [l] = layersOf([node("MatMul", ["w", "x"], ["y"])], [floatTensor("w", [6, 4], zeros(24))]);
    assert.deepEqual([l.fanIn, l.fanOut], [4, 6]);
    // Two computed operands (attention scores) are not a layer.
    assert.equal(layersOf([node("MatMul", ["x", "x"], ["y"])], []).length, 0);
  });

  it("absorbs a bias Add and marks layers followed by a normalization", () => {
    const layers = layersOf([
      node("MatMul", ["x", "w"], ["h"]), node("Add", ["h", "b"], ["hb"]),
      node("BatchNormalization", ["hb", "g", "beta", "mu", "var"], ["n"]), node("Tanh", ["n"], ["y"]),
    ], [floatTensor("w", [4, 4], zeros(16)), floatTensor("b", [4], zeros(4)), floatTensor("g", [4], zeros(4)),
      floatTensor("beta", [4], zeros(4)), floatTensor("mu", [4], zeros(4)), floatTensor("var", [4], zeros(4))]);
    assert.deepEqual(layers.map((l) => [l.op, l.output, l.followedByNorm, l.activation ?? null, l.bias?.name ?? null]), [
      ["MatMul", "hb", true, null, "b"],
      ["BatchNormalization", "y", false, "tanh", "beta"],
    ]);
  });
});

const strings = (name: string, v: string[]): AttributeProto => create(AttributeProtoSchema, { name, type: AT.STRINGS, strings: v.map((x) => new TextEncoder().encode(x)) });

describe("unrolled recurrences", () => {
  // Four chained Gemm+Tanh steps whose weights are Identity copies of one 4x4 initializer.
  const chain = (copyName: (k: number) => string) => {
    const nodes = [1, 2, 3].map((k) => node("Identity", ["layers.0.weight"], [copyName(k)]));
    let h = "x";
    for (let k = 0; k < 4; k++) {
      nodes.push(node("Gemm", [h, k === 0 ? "layers.0.weight" : copyName(k)], [`g${k}`]), node("Tanh", [`g${k}`], [k === 3 ? "y" : `h${k}`]));
      h = `h${k}`;
    }
    const model = loadModel("chain.onnx", { bytes: modelBytes(graph(nodes, [floatTensor("layers.0.weight", [4, 4], Array.from({ length: 16 }, (_, i) => (i % 5 === 0 ? 1.5 : 0)))]), 13) });
    const index = new GraphIndex(model);
    return analyzeArchitecture(model, index, findLayers(model)).recurrent;
  };

  it("anonymous Identity copies (a loop over one cell, as torch traces it) are one weight reused", () => {
    const [r] = chain((k) => `onnx::Gemm_${70 + k}`);
    assert.deepEqual([r?.unrolledSteps, r?.tensor], [4, "layers.0.weight"]);
    assert.ok(Math.abs(r.matrices[0].spectralRadius - 1.5) < 1e-9, "1.5 I");
  });

  it("named copies (torch merging equal constant-initialized layers) are separate layers, not a recurrence", () => {
    assert.deepEqual(chain((k) => `layers.${k}.weight`), []);
  });
});

describe("architecture summary", () => {
  it("names convolutional residual blocks (a torch ResNet with 3 skip Adds), not only transformer layers", async () => {
    const r = await analyze(join(FIXTURES, "resnet_bn.onnx"), { staticOnly: true });
    assert.equal(r.architecture?.summary, "3 convolutional residual block(s); 7 BatchNorm layer(s)");
    assert.deepEqual(r.architecture?.blocks.map((b) => [b.module, b.kind]), [["layer1.0", "conv"], ["layer2.0", "conv"], ["layer3.0", "conv"]]);
  });
});

describe("recurrent layers' activation", () => {
  // x [T=6, batch, 3] -> RNN/LSTM (hidden 5) -> Y, with weights large enough to saturate tanh.
  const rnnModel = (op: "RNN" | "LSTM", attrs: AttributeProto[] = []): Uint8Array => {
    const gates = op === "LSTM" ? 4 : 1;
    const W = floatTensor("W", [1, 5 * gates, 3], Array.from({ length: 15 * gates }, (_, i) => 3 * Math.sin(i + 1)));
    const R = floatTensor("R", [1, 5 * gates, 5], Array.from({ length: 25 * gates }, (_, i) => 3 * Math.cos(i)));
    return modelBytes(graph([node(op, ["x", "W", "R"], ["Y"], [attr("hidden_size", 5), ...attrs])], [W, R], [valueInfo("x", [6, "batch", 3])], [valueInfo("Y", [6, 1, "batch", 5])]), 14);
  };
  const layerOf = (bytes: Uint8Array) => findLayers(loadModel("rnn.onnx", { bytes }))[0];

  it("a vanilla RNN's outputs carry its activation (tanh by default, else its activations attribute); an LSTM's do not", () => {
    assert.equal(layerOf(rnnModel("RNN")).activation, "tanh");
    assert.equal(layerOf(rnnModel("RNN", [strings("activations", ["Relu"])])).activation, "relu");
    assert.equal(layerOf(rnnModel("LSTM")).activation, undefined);
  });

  it("so a saturating tanh RNN is flagged activation.saturated", async () => {
    const path = join(mkdtempSync(join(tmpdir(), "doctor-rnn-")), "rnn.onnx");
    writeFileSync(path, rnnModel("RNN"));
    const r = await analyze(path, { batches: 1, loss: "none" });
    assert.ok((r.layers[0].activation?.saturatedFraction ?? 0) > 0.3, JSON.stringify(r.layers[0].activation));
    assert.ok(r.findings.some((f) => f.category === "activation.saturated" && f.layer === r.layers[0].name), r.findings.map((f) => f.category).join(", "));
  });
});

describe("NaN/Inf in stored parameters", () => {
  it("names the bias, not the weight, when only the bias holds an Inf (the weight stays counted finite)", async () => {
    const dir = mkdtempSync(join(tmpdir(), "nonfinite-"));
    const bias = new Array<number>(8).fill(0);
    bias[5] = Infinity;
    const nodes = [node("Gemm", ["x", "fc.weight", "fc.bias"], ["h"], [attr("transB", 1)], "/fc/Gemm"), node("Relu", ["h"], ["y"], [], "/relu/Relu")];
    const inits = [floatTensor("fc.weight", [8, 4], Array.from({ length: 32 }, (_, i) => Math.sin(i))), floatTensor("fc.bias", [8], bias)];
    const path = join(dir, "inf_bias.onnx");
    writeFileSync(path, modelBytes(graph(nodes, inits, [valueInfo("x", ["N", 4])], [valueInfo("y", ["N", 8])]), 17));
    const r = await analyze(path, { staticOnly: true });
    const f = r.findings.find((x) => x.category === "weights.nonfinite");
    assert.equal(f?.tensor, "fc.bias");
    assert.match(f!.message, /bias fc\.bias holds 1 NaN\/Inf value\(s\); every activation/);
    assert.doesNotMatch(f!.message, /weight fc\.weight/);
    assert.equal(r.layers[0].weight?.nonFinite, 0);
    assert.deepEqual(r.layers[0].weight?.bias, { tensor: "fc.bias", nonFinite: 1 });
  });
});

describe("activations exported as x times a gate", () => {
  it("torch's decomposed GELU (Div, Erf, Add, Mul, Mul) is the layer's activation, and its output the layer's", () => {
    const layers = findLayers(loadModel(join(__dirname, "..", "fixtures", "gradients", "transformer_prenorm.onnx")));
    const fc1 = layers.find((l) => l.name === "blocks.0.fc1");
    assert.equal(fc1?.activation, "gelu");
    assert.equal(fc1?.output, "/blocks/blocks.0/act/Mul_1_output_0");
  });

  it("Paddle's hardswish x·clip(x+3, 0, 6)/6 is hard_swish; a Mul of x with an unrelated tensor is not an activation", () => {
    const dir = mkdtempSync(join(tmpdir(), "gated-"));
    const c = (name: string, v: number) => floatTensor(name, [], [v]);
    const nodes = [
      node("Conv", ["x", "w"], ["h"], [attr("kernel_shape", [1, 1])], "/conv/Conv"),
      node("Add", ["h", "three"], ["h3"]), node("Clip", ["h3", "zero", "six"], ["g"]), node("Mul", ["h", "g"], ["hg"]), node("Div", ["hg", "six"], ["y"]),
      node("Conv", ["y", "w2"], ["h2"], [attr("kernel_shape", [1, 1])], "/conv2/Conv"), node("Mul", ["h2", "x"], ["z"]),
    ];
    const inits = [floatTensor("w", [4, 4, 1, 1], zeros(16).map((_, i) => Math.sin(i))), floatTensor("w2", [4, 4, 1, 1], zeros(16).map((_, i) => Math.cos(i))), c("three", 3), c("zero", 0), c("six", 6)];
    const path = join(dir, "paddle_hardswish.onnx");
    writeFileSync(path, modelBytes(graph(nodes, inits, [valueInfo("x", ["N", 4, 2, 2])], [valueInfo("z", ["N", 4, 2, 2])]), 17));
    const [conv, conv2] = findLayers(loadModel(path));
    assert.equal(conv.activation, "hard_swish");
    assert.equal(conv.output, "y");
    assert.equal(conv2.activation, undefined);
    assert.equal(conv2.output, "h2");
  });
});

describe("statistics of layers that NaN/Inf reached, and of empty weights", () => {
  it("a layer whose outputs hold NaN/Inf has no dead-unit count (NaN never compares > 0)", async () => {
    const dir = mkdtempSync(join(tmpdir(), "nan-dead-"));
    const w = (n: number) => Array.from({ length: n }, (_, i) => Math.sin(i + 1));
    const nodes = [node("Gemm", ["x", "a.weight", "a.bias"], ["h"], [attr("transB", 1)], "/a/Gemm"), node("Relu", ["h"], ["r"], [], "/a/Relu"),
      node("Gemm", ["r", "b.weight"], ["h2"], [attr("transB", 1)], "/b/Gemm"), node("Relu", ["h2"], ["y"], [], "/b/Relu")];
    const bias = new Array<number>(8).fill(0);
    bias[0] = NaN;
    const path = join(dir, "nan_bias.onnx");
    writeFileSync(path, modelBytes(graph(nodes, [floatTensor("a.weight", [8, 4], w(32)), floatTensor("a.bias", [8], bias), floatTensor("b.weight", [8, 8], w(64))], [valueInfo("x", ["N", 4])], [valueInfo("y", ["N", 8])]), 17));
    const r = await analyze(path, { batches: 1 });
    assert.ok(r.layers[1].activation!.nonFinite > 0);
    assert.equal(r.layers[1].activation!.deadUnits, null);
    assert.equal(r.findings.filter((f) => f.category === "activation.dead").length, 0);
  });

  it("a weight with a zero-size dimension gets no init findings and no expected std", async () => {
    const dir = mkdtempSync(join(tmpdir(), "empty-w-"));
    const nodes = [node("Gemm", ["x", "a.weight"], ["h"], [attr("transB", 1)], "/a/Gemm"), node("Relu", ["h"], ["y"], [], "/a/Relu")];
    const path = join(dir, "empty_weight.onnx");
    writeFileSync(path, modelBytes(graph(nodes, [floatTensor("a.weight", [8, 0], [])], [valueInfo("x", ["N", 0])], [valueInfo("y", ["N", 8])]), 17));
    const r = await analyze(path, { staticOnly: true });
    assert.deepEqual(r.findings.filter((f) => f.category.startsWith("init.")).map((f) => f.ruleId), []);
    assert.equal(r.layers[0].weight?.expectedStd, null);
  });
});

describe("gates that are no named activation", () => {
  it("x·tanh(x) and x·sigmoid(tanh(x)) are left unnamed (only Erf, Sigmoid, Clip or hardswish's HardSigmoid make one)", () => {
    const dir = mkdtempSync(join(tmpdir(), "gates-"));
    for (const chain of [["Tanh"], ["Tanh", "Sigmoid"]]) {
      const nodes = [node("Gemm", ["x", "w"], ["h"], [attr("transB", 1)], "/fc/Gemm")];
      let g = "h";
      chain.forEach((op, i) => { nodes.push(node(op, [g], [`g${i}`])); g = `g${i}`; });
      nodes.push(node("Mul", ["h", g], ["y"]));
      const path = join(dir, `${chain.join("_")}.onnx`);
      writeFileSync(path, modelBytes(graph(nodes, [floatTensor("w", [4, 4], zeros(16).map((_, i) => Math.sin(i)))], [valueInfo("x", ["N", 4])], [valueInfo("y", ["N", 4])]), 17));
      const [fc] = findLayers(loadModel(path));
      assert.equal(fc.activation, undefined, chain.join(","));
      assert.equal(fc.output, "h");
    }
  });
});
