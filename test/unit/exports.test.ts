// Freshly built torchvision-style models exported the way users export them
// (scripts/make_export_fixtures.py): healthy at initialisation, so nothing above info may be
// reported, and each info says why the measured trend does not hold in training. The negative
// controls change one thing (trained-looking running statistics, a non-zero folded bias, a small
// hidden layer) and the warnings come back.
import assert from "node:assert/strict";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, it } from "node:test";
import { toBinary } from "@bufbuild/protobuf";
import { findLayers } from "../../src/graph/layers";
import { analyze } from "../../src/index";
import { ModelProtoSchema } from "../../src/onnx/gen/onnx_pb";
import { loadModel } from "../../src/onnx/load";
import type { Report } from "../../src/report/types";
import { Random } from "../../src/stats/random";
import { attr, floatTensor, graph, modelBytes, node, valueInfo } from "./build-model";

const EXPORTS = join(__dirname, "..", "fixtures", "exports");
const tmp = mkdtempSync(join(tmpdir(), "exports-"));
const aboveInfo = (r: Report): string[] => r.findings.filter((f) => f.severity !== "info").map((f) => `${f.severity} ${f.ruleId} ${f.layer}`);

/**
 * The model with every BatchNorm's running variance replaced by `value` (new tensors: a fresh
 * export shares one tensor of ones between gamma and running_var through Identity nodes).
 */
function withRunningVariance(stem: string, value: number): string {
  const model = loadModel(join(EXPORTS, `${stem}.onnx`));
  const proto = model.proto;
  const g = proto.graph!;
  g.node.filter((n) => n.opType === "BatchNormalization").forEach((n, i) => {
    const channels = model.constants.get(n.input[2])?.size ?? 0;
    assert.ok(channels > 0, `BatchNorm ${n.name} has a constant beta`);
    const name = `test.running_var.${i}`;
    g.initializer.push(floatTensor(name, [channels], new Array<number>(channels).fill(value)));
    n.input[4] = name;
  });
  const path = join(tmp, `${stem}-var-${value}.onnx`);
  writeFileSync(path, toBinary(ModelProtoSchema, proto));
  return path;
}

describe("fresh torchvision-style exports", () => {
  it("MobileNetV2 with its BatchNorms folded by the export: nothing above info, each info naming the fresh BatchNorms", async () => {
    const path = join(EXPORTS, "mobilenet_v2_folded.onnx");
    const layers = findLayers(loadModel(path));
    assert.ok(layers.filter((l) => l.foldedFreshNorm).length >= 50, "every conv carries a folded fresh BatchNorm");
    // Nested Sequential scopes read as the module path PyTorch prints.
    assert.ok(layers.some((l) => l.name === "features.1.conv.0.0"), layers.slice(0, 4).map((l) => l.name).join(", "));
    const r = await analyze(path, { batches: 2 });
    assert.deepEqual(aboveInfo(r), []);
    const vanishing = r.findings.find((f) => f.category === "gradient.vanishing");
    assert.equal(vanishing?.ruleId, "gradient.vanishing/fresh-batchnorm");
    assert.match(vanishing!.message, /100% of this change happens across the 52 of these 52 layers that look like convolutions into which the export folded a BatchNorm with untrained running statistics \(mean 0, variance 1; a folded one leaves a zero bias named onnx::Conv_<n>/);
    for (const f of r.findings.filter((x) => x.category === "activation.dead")) assert.equal(f.ruleId, "activation.dead/fresh-batchnorm");
    // torchvision's kaiming fan_out on the linear bottlenecks is 2.5x Xavier: harmless before a
    // BatchNorm, so info that says the fold is read off names.
    const projection = r.findings.find((f) => f.layer === "features.2.conv.2");
    assert.equal(projection?.ruleId, "init.scale-large/folded-batchnorm");
    assert.match(projection!.message, /looks like one into which the export folded a BatchNorm/);
  });

  it("the same MobileNetV2 with its BatchNorms kept (TrainingMode.PRESERVE): nothing above info either", async () => {
    const r = await analyze(join(EXPORTS, "mobilenet_v2_bn.onnx"), { batches: 2 });
    assert.deepEqual(aboveInfo(r), []);
    assert.equal(r.findings.find((f) => f.category === "gradient.vanishing")?.ruleId, "gradient.vanishing/fresh-batchnorm");
  });

  it("…but with running statistics that are not fresh the BatchNorms count as trained, and the warnings come back", async () => {
    const r = await analyze(withRunningVariance("mobilenet_v2_bn", 1.5), { batches: 2 });
    const warned = aboveInfo(r);
    assert.ok(warned.some((w) => /^warning (gradient\.vanishing|activation\.dead) /.test(w)), warned.join("; "));
    assert.equal(r.findings.filter((f) => f.ruleId.endsWith("/fresh-batchnorm")).length, 0);
  });

  it("SiLU convs with a squeeze-and-excitation block and torchvision's fan_out init: SiLU recognised, the deliberately small head is info", async () => {
    const path = join(EXPORTS, "silu_se_folded.onnx");
    const layers = findLayers(loadModel(path));
    assert.deepEqual(layers.filter((l) => l.op === "Conv").map((l) => l.activation), ["silu", "silu", "silu", "silu", "silu", "sigmoid"]);
    const r = await analyze(path, { batches: 2 });
    assert.deepEqual(aboveInfo(r), []);
    const head = r.findings.find((f) => f.layer === "head");
    assert.equal(head?.ruleId, "init.scale-small/output-layer");
    assert.match(head!.message, /it is the output layer, so this only scales the outputs/);
  });

  it("a folded conv bias that is not zero is not a fresh BatchNorm", () => {
    const proto = loadModel(join(EXPORTS, "silu_se_folded.onnx")).proto;
    const firstConv = proto.graph!.node.find((n) => n.opType === "Conv")!;
    const bias = proto.graph!.initializer.find((t) => t.name === firstConv.input[2])!;
    bias.rawData = new Uint8Array(new Float32Array(Number(bias.dims[0])).fill(0.1).buffer);
    const path = join(tmp, "silu_se_bias.onnx");
    writeFileSync(path, toBinary(ModelProtoSchema, proto));
    const layerOf = (p: string) => findLayers(loadModel(p)).find((l) => l.node.outputs[0] === firstConv.output[0]);
    assert.equal(layerOf(join(EXPORTS, "silu_se_folded.onnx"))?.foldedFreshNorm, true);
    assert.equal(layerOf(path)?.foldedFreshNorm, false);
  });
});

describe("He's range runs from fan_out to fan_in", () => {
  // Conv 16 -> 64, 3x3, ReLU, no norm: He fan_in std sqrt(2/144) = 0.118, fan_out sqrt(2/576) = 0.059.
  const r = new Random(5);
  const conv = (std: number, name: string): string => {
    const nodes = [node("Conv", ["x", "W"], ["h"], [attr("kernel_shape", [3, 3]), attr("pads", [1, 1, 1, 1])], "/conv/Conv"), node("Relu", ["h"], ["y"], [], "/relu/Relu"),
      node("Conv", ["y", "W2"], ["z"], [attr("kernel_shape", [1, 1])], "/head/Conv")];
    const inits = [floatTensor("W", [64, 16, 3, 3], Array.from({ length: 64 * 16 * 9 }, () => std * r.normal())), floatTensor("W2", [4, 64, 1, 1], Array.from({ length: 256 }, () => 0.1 * r.normal()))];
    const path = join(tmp, name);
    writeFileSync(path, modelBytes(graph(nodes, inits, [valueInfo("x", ["N", 16, 8, 8])], [valueInfo("z", ["N", 4, 8, 8])]), 17));
    return path;
  };

  it("torchvision's kaiming fan_out init passes; a quarter of it does not", async () => {
    const fanOut = await analyze(conv(Math.sqrt(2 / 576), "fan_out.onnx"), { staticOnly: true });
    assert.equal(fanOut.findings.filter((f) => f.layer === "conv" && f.category.startsWith("init.scale")).length, 0, JSON.stringify(fanOut.findings));
    const small = await analyze(conv(0.2 * Math.sqrt(2 / 576), "small.onnx"), { staticOnly: true });
    const f = small.findings.find((x) => x.layer === "conv" && x.category === "init.scale-small");
    assert.ok(f && f.severity === "warning", JSON.stringify(small.findings));
    assert.match(f.message, /0\.\d+x the bottom of the healthy range \(He fan_out 0\.0589 to He fan_in 0\.118/);
  });
});

describe("fresh BatchNorms count only where they normalise the layers a trend runs along", () => {
  // 8 Linear+ReLU layers at 3x He (exploding), with two fresh BatchNorms on the input only (the
  // breaker's case): no weight layer is normalised, so the trends stay warnings.
  const r = new Random(11);
  const width = 32;
  const nodes = [];
  const inits = [];
  let x = "x";
  for (const i of [0, 1]) {
    inits.push(floatTensor(`bn${i}.weight`, [width], new Array<number>(width).fill(1)), floatTensor(`bn${i}.bias`, [width], new Array<number>(width).fill(0)),
      floatTensor(`bn${i}.running_mean`, [width], new Array<number>(width).fill(0)), floatTensor(`bn${i}.running_var`, [width], new Array<number>(width).fill(1)));
    nodes.push(node("BatchNormalization", [x, `bn${i}.weight`, `bn${i}.bias`, `bn${i}.running_mean`, `bn${i}.running_var`], [`bn${i}`], [], `/bn${i}/BatchNormalization`));
    x = `bn${i}`;
  }
  for (let i = 0; i < 8; i++) {
    inits.push(floatTensor(`layers.${i}.weight`, [width, width], Array.from({ length: width * width }, () => 3 * Math.sqrt(2 / width) * r.normal())));
    nodes.push(node("Gemm", [x, `layers.${i}.weight`], [`h${i}`], [attr("transB", 1)], `/layers.${i}/Gemm`), node("Relu", [`h${i}`], [`a${i}`], [], `/act.${i}/Relu`));
    x = `a${i}`;
  }
  inits.push(floatTensor("head.weight", [4, width], Array.from({ length: 4 * width }, () => Math.sqrt(1 / width) * r.normal())));
  nodes.push(node("Gemm", [x, "head.weight"], ["y"], [attr("transB", 1)], "/head/Gemm"));
  const path = join(tmp, "input_bn_only.onnx");
  writeFileSync(path, modelBytes(graph(nodes, inits, [valueInfo("x", ["N", width])], [valueInfo("y", ["N", 4])]), 17));

  it("two fresh BatchNorms on the input leave exploding activations and gradients a warning", async () => {
    const report = await analyze(path, { batches: 2 });
    const warned = aboveInfo(report);
    assert.ok(warned.some((w) => w.startsWith("warning activation.exploding ")), warned.join("; "));
    assert.ok(warned.some((w) => w.startsWith("warning gradient.exploding ")), warned.join("; "));
    assert.equal(report.findings.filter((f) => f.ruleId.endsWith("/fresh-batchnorm")).length, 0);
  });
});

describe("units after a pooled vector", () => {
  it("stay a warning when their bias (-20, far below init's ±1/sqrt(fan_in)) switches them off", async () => {
    const r = new Random(12);
    const units = 64;
    const nodes = [
      node("GlobalAveragePool", ["x"], ["p"], [], "/pool/GlobalAveragePool"), node("Flatten", ["p"], ["f"], [], "/Flatten"),
      node("Gemm", ["f", "fc1.weight", "fc1.bias"], ["h"], [attr("transB", 1)], "/fc1/Gemm"), node("Relu", ["h"], ["a"], [], "/relu/Relu"),
      node("Gemm", ["a", "fc2.weight"], ["y"], [attr("transB", 1)], "/fc2/Gemm"),
    ];
    const inits = [
      floatTensor("fc1.weight", [units, 16], Array.from({ length: units * 16 }, () => Math.sqrt(2 / 16) * r.normal())),
      floatTensor("fc1.bias", [units], Array.from({ length: units }, (_, i) => (i % 5 === 4 ? 0 : -20))),
      floatTensor("fc2.weight", [4, units], Array.from({ length: 4 * units }, () => Math.sqrt(1 / units) * r.normal())),
    ];
    const path = join(tmp, "pooled_negative_bias.onnx");
    writeFileSync(path, modelBytes(graph(nodes, inits, [valueInfo("x", ["N", 16, 8, 8])], [valueInfo("y", ["N", 4])]), 17));
    const report = await analyze(path, { batches: 2 });
    const dead = report.findings.find((f) => f.category === "activation.dead" && f.layer === "fc1");
    assert.equal(dead?.ruleId, "activation.dead", JSON.stringify(report.findings.map((f) => f.ruleId)));
    assert.equal(dead?.severity, "warning");
  });
});

describe("fresh BatchNorms in a trunk say nothing about an unnormalised head", () => {
  it("a sigmoid MLP head after four folded-BN convs keeps its vanishing gradient a warning", async () => {
    // The breaker's case: in train mode too the gradient falls ~1e-5 across the sigmoid head.
    const r = new Random(13);
    const nodes: ReturnType<typeof node>[] = [];
    const inits: ReturnType<typeof floatTensor>[] = [];
    let x = "x";
    let c = 3;
    let id = 1;
    for (let i = 0; i < 4; i++) {
      const w = `onnx::Conv_${id++}`;
      const b = `onnx::Conv_${id++}`;
      inits.push(floatTensor(w, [16, c, 3, 3], Array.from({ length: 16 * c * 9 }, () => Math.sqrt(2 / (c * 9)) * r.normal())), floatTensor(b, [16], new Array<number>(16).fill(0)));
      nodes.push(node("Conv", [x, w, b], [`c${i}`], [attr("kernel_shape", [3, 3]), attr("pads", [1, 1, 1, 1])], `/trunk/trunk.${3 * i}/Conv`), node("Relu", [`c${i}`], [`r${i}`], [], `/trunk/trunk.${3 * i + 2}/Relu`));
      x = `r${i}`;
      c = 16;
    }
    nodes.push(node("GlobalAveragePool", [x], ["p"]), node("Flatten", ["p"], ["f"]));
    x = "f";
    let fanIn = 16;
    for (let i = 0; i < 6; i++) {
      const bound = 1 / Math.sqrt(fanIn);
      inits.push(floatTensor(`head.${2 * i}.weight`, [64, fanIn], Array.from({ length: 64 * fanIn }, () => bound * (2 * r.uniform() - 1))));
      nodes.push(node("Gemm", [x, `head.${2 * i}.weight`], [`g${i}`], [attr("transB", 1)], `/head/head.${2 * i}/Gemm`), node("Sigmoid", [`g${i}`], [`s${i}`], [], `/head/head.${2 * i + 1}/Sigmoid`));
      x = `s${i}`;
      fanIn = 64;
    }
    inits.push(floatTensor("out.weight", [10, 64], Array.from({ length: 640 }, () => (1 / 8) * (2 * r.uniform() - 1))));
    nodes.push(node("Gemm", [x, "out.weight"], ["y"], [attr("transB", 1)], "/out/Gemm"));
    const path = join(tmp, "bn_trunk_sigmoid_head.onnx");
    writeFileSync(path, modelBytes(graph(nodes, inits, [valueInfo("x", ["N", 3, 16, 16])], [valueInfo("y", ["N", 10])]), 17));
    assert.equal(findLayers(loadModel(path)).filter((l) => l.foldedFreshNorm).length, 4);
    const report = await analyze(path, { batches: 2 });
    const vanishing = report.findings.find((f) => f.category === "gradient.vanishing");
    assert.equal(vanishing?.ruleId, "gradient.vanishing", JSON.stringify(report.findings.map((f) => f.ruleId)));
    assert.equal(vanishing?.severity, "warning");
  });
});
