// Rule cases that testers found misreported, each on a small generated model.
import assert from "node:assert/strict";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, it } from "node:test";
import { findLayers } from "../../src/graph/layers";
import { analyze } from "../../src/index";
import { loadModel } from "../../src/onnx/load";
import { ModelProtoSchema } from "../../src/onnx/gen/onnx_pb";
import { toBinary } from "@bufbuild/protobuf";
import { evalModeBatchNormNote, normalizationAdvice } from "../../src/rules/rule";
import { analyzeArchitecture } from "../../src/graph/architecture";
import { GraphIndex } from "../../src/graph/index";
import { toMarkdown } from "../../src/report/markdown";
import { toText } from "../../src/report/text";
import { Random } from "../../src/stats/random";
import { fattr } from "./autodiff-cases";
import { attr, floatTensor, graph, modelBytes, node, valueInfo } from "./build-model";
import { npyBytes } from "./helpers";

const tmp = mkdtempSync(join(tmpdir(), "rules-"));
const randn = (r: Random, n: number, std: number): number[] => Array.from({ length: n }, () => std * r.normal());

/** Dense layers in a row: each entry is [weight std, activation op or "", bias or undefined]; width 32, input 32, 4 outputs. */
function mlp(name: string, specs: readonly (readonly [number, string, number[]?, boolean?])[], seed: number): string {
  const r = new Random(seed);
  const width = 32;
  const nodes: ReturnType<typeof node>[] = [];
  const inits: ReturnType<typeof floatTensor>[] = [];
  let x = "x";
  specs.forEach(([std, act, bias, layerNorm], i) => {
    const out = i === specs.length - 1 ? 4 : width;
    inits.push(floatTensor(`l${i}.weight`, [out, width], randn(r, out * width, std)));
    const ins = [x, `l${i}.weight`];
    if (bias) {
      inits.push(floatTensor(`l${i}.bias`, [out], bias));
      ins.push(`l${i}.bias`);
    }
    nodes.push(node("Gemm", ins, [`h${i}`], [attr("transB", 1)], `/l${i}/Gemm`));
    x = `h${i}`;
    if (layerNorm) {
      inits.push(floatTensor(`n${i}.weight`, [out], new Array<number>(out).fill(1)), floatTensor(`n${i}.bias`, [out], new Array<number>(out).fill(0)));
      nodes.push(node("LayerNormalization", [x, `n${i}.weight`, `n${i}.bias`], [`n${i}`], [attr("axis", -1)], `/n${i}/LayerNormalization`));
      x = `n${i}`;
    }
    if (act) {
      // "LeakyRelu(0.001)" sets the op's alpha.
      const [op, alpha] = act.split(/[()]/);
      nodes.push(node(op, [x], [`a${i}`], alpha ? [fattr("alpha", Number(alpha))] : [], `/a${i}/${op}`));
      x = `a${i}`;
    }
  });
  const path = join(tmp, `${name}.onnx`);
  writeFileSync(path, modelBytes(graph(nodes, inits, [valueInfo("x", ["N", width])], [valueInfo(x, ["N", 4])]), 17));
  return path;
}

describe("rule cases", () => {
  it("a small output layer next to hidden layers initialised too large stays a warning (part of the same mistake)", async () => {
    const path = mlp("small_head_large_hidden", [[1, "Tanh"], [1, "Tanh"], [1, "Tanh"], [1e-5, ""]], 1);
    const r = await analyze(path, { staticOnly: true });
    const head = r.findings.find((f) => f.layer === "l3" && f.category === "init.scale-small");
    assert.equal(head?.ruleId, "init.scale-small");
    assert.equal(head?.severity, "warning");
    assert.equal(r.findings.filter((f) => f.category === "init.scale-large").length, 3);
  });

  it("…and is info next to healthy hidden layers", async () => {
    const path = mlp("small_head_healthy_hidden", [[Math.sqrt(1 / 32), "Tanh"], [Math.sqrt(1 / 32), "Tanh"], [1e-5, ""]], 2);
    const r = await analyze(path, { staticOnly: true });
    assert.equal(r.findings.find((f) => f.layer === "l2")?.ruleId, "init.scale-small/output-layer");
  });

  it("a large output layer next to healthy hidden layers is info too (EfficientNet's U(±1/sqrt(classes)) head); one with a sigmoid stays a warning", async () => {
    const lecun = Math.sqrt(1 / 32);
    const r = await analyze(mlp("large_head", [[lecun, "Tanh"], [lecun, "Tanh"], [1, ""]], 7), { staticOnly: true });
    const head = r.findings.find((f) => f.layer === "l2");
    assert.equal(`${head?.severity} ${head?.ruleId}`, "info init.scale-large/output-layer");
    assert.match(head!.message, /it is the output layer, so this only scales the outputs \(large initial logits/);
    const s = await analyze(mlp("large_sigmoid_head", [[lecun, "Tanh"], [lecun, "Tanh"], [1, "Sigmoid"]], 7), { staticOnly: true });
    assert.equal(s.findings.find((f) => f.layer === "l2")?.ruleId, "init.scale-large");
  });

  it("a layer whose units are all dead names the layers before it that get exactly zero gradient", async () => {
    const he = Math.sqrt(2 / 32);
    const r = await analyze(mlp("frozen", [[he, "Relu"], [he, "Relu"], [he, "Relu", new Array<number>(32).fill(-10)], [he, "Relu"], [Math.sqrt(1 / 32), ""]], 8), { batches: 2 });
    const dead = r.findings.find((f) => f.category === "activation.dead" && f.layer === "l2");
    assert.equal(dead?.severity, "error");
    assert.match(dead!.message, /No gradient passes back through it, so the 2 layers before it \(l0, l1\) get exactly zero gradient/);
    assert.equal(r.layers[0].gradient?.l2, 0);
  });

  it("one layer that drops the signal and a next one that brings it back tenfold is no vanishing trend", async () => {
    // He-scaled LeakyReLU layers; the middle one's bias of -20 puts everything on its 0.001 slope,
    // and the output layer's biases (±0.02) bring the spread back up about 16x (still below the first layer's).
    const he = Math.sqrt(2 / 32);
    const path = mlp("drop_and_recover", [[he, "LeakyRelu(0.001)"], [he, "LeakyRelu(0.001)", new Array<number>(32).fill(-20)], [he, "", [-0.02, 0.02, -0.02, 0.02]]], 3);
    const r = await analyze(path, { batches: 2 });
    const stds = r.layers.map((l) => l.activation!.std);
    assert.ok(stds[1] / stds[0] < 0.02 && stds[2] / stds[1] > 10, `stds ${stds.join(", ")}`);
    assert.equal(r.findings.filter((f) => f.category === "activation.vanishing").length, 0, JSON.stringify(r.findings.map((f) => f.ruleId)));
  });

  it("dead units after a LayerNorm point at the layer before it, not at the norm's scale of ones", async () => {
    // The first Linear's weights are 1e-3 next to a bias of ±1 (20 units below the bias mean): every
    // sample reaches the LayerNorm nearly the same, so the same 20 units are negative for all of them.
    const bias = Array.from({ length: 32 }, (_, i) => (i < 20 ? -1 : 20 / 12));
    const path = mlp("layernorm_tiny_init", [[1e-3, "Relu", bias, true], [Math.sqrt(2 / 32), "Relu", undefined, true], [Math.sqrt(1 / 32), ""]], 4);
    const r = await analyze(path, { batches: 2 });
    const dead = r.findings.find((f) => f.category === "activation.dead" && f.layer === "n0");
    assert.ok(dead, JSON.stringify(r.findings.map((f) => `${f.ruleId} ${f.layer}`)));
    assert.match(dead.fix, /Check the layer before it: weights initialised too small next to its bias/);
    assert.doesNotMatch(dead.fix, /All weights of this layer are equal/);
  });
});

describe("names from the model in text and markdown reports", () => {
  it("control characters and bidi overrides are shown as escapes, so a name cannot rewrite the terminal", async () => {
    const evil = "\r\x1b[2K\x1b[1AOK\u202e\nNo problems found.";
    const nodes = [node("MatMul", ["x", "w"], ["h"], [], `/${evil}/MatMul`), node("Relu", ["h"], ["y"], [], "/act/Relu")];
    const path = join(tmp, "control_names.onnx");
    writeFileSync(path, modelBytes(graph(nodes, [floatTensor("w", [8, 8], new Array<number>(64).fill(0))], [valueInfo("x", ["N", 8])], [valueInfo("y", ["N", 8])]), 17));
    const report = await analyze(path, { staticOnly: true });
    assert.ok(report.layers[0].name.includes("\x1b"), "the JSON report keeps the name as it is");
    for (const out of [toText(report), toMarkdown(report)]) {
      assert.doesNotMatch(out, /[\x00-\x09\x0b-\x1f\u202e]/);
      assert.match(out, /\\x0d\\x1b\[2K\\x1b\[1AOK\\u202e\\x0aNo problems found\./);
      assert.doesNotMatch(out, /^No problems found\./m);
    }
  });
});

describe("dead units on a probe whose samples are all the same", () => {
  // He-init ReLU layer with bias -0.3 (within init's reach): on one input about 60% of the units are negative.
  const path = (): string => mlp("one_sample", [[Math.sqrt(2 / 32), "Relu", new Array<number>(32).fill(-0.3)], [Math.sqrt(1 / 32), ""]], 6);

  for (const [label, options] of [["a --fill constant", { fill: { x: 1 }, batches: 2 }], ["a single sample", { batchSize: 1, batches: 1 }]] as const) {
    it(`are info with ${label}: each unit's sign was decided once`, async () => {
      const r = await analyze(path(), options);
      const dead = r.findings.find((f) => f.category === "activation.dead");
      assert.equal(dead?.ruleId, "activation.dead/identical-samples", JSON.stringify(r.findings.map((f) => f.ruleId)));
      assert.equal(dead?.severity, "info");
      assert.match(dead!.fix, /Probe with varied data/);
    });
  }

  it("but a bias of -10 (far below init's ±1/sqrt(fan_in)) switches units off on any input: an error with one sample or many", async () => {
    const path = mlp("dead_bias", [[Math.sqrt(2 / 32), "Relu", new Array<number>(32).fill(-10)], [Math.sqrt(1 / 32), ""]], 6);
    for (const options of [{ batches: 2 }, { fill: { x: 1 }, batches: 2 }, { batchSize: 1, batches: 1 }]) {
      const r = await analyze(path, options);
      const dead = r.findings.find((f) => f.category === "activation.dead");
      assert.equal(`${dead?.severity} ${dead?.ruleId}`, "error activation.dead", JSON.stringify(options));
    }
  });
});

describe("normalization advice", () => {
  it("on a graph whose convs carry torch's folded names, says the BatchNorms may have been folded away instead of only 'add normalization'", () => {
    const layers = findLayers(loadModel(join(__dirname, "..", "fixtures", "exports", "mobilenet_v2_folded.onnx")));
    assert.match(normalizationAdvice(undefined, layers), /^add normalization between layers; but 52 convolutions carry weights renamed onnx::Conv_<n>/);
    const plain = findLayers(loadModel(join(__dirname, "..", "fixtures", "models", "relu_he_deep.onnx")));
    assert.equal(normalizationAdvice(undefined, plain), "add normalization (BatchNorm/LayerNorm) between layers");
  });

  it("gradient findings on a model with BatchNorms (folded or kept) say they describe the eval-mode graph", () => {
    const folded = findLayers(loadModel(join(__dirname, "..", "fixtures", "exports", "mobilenet_v2_folded.onnx")));
    assert.match(evalModeBatchNormNote(undefined, folded), /^ Measured in the exported eval-mode graph, where each BatchNorm \(folded into the convolutions/);
    const keptModel = loadModel(join(__dirname, "..", "fixtures", "models", "resnet_bn.onnx"));
    const index = new GraphIndex(keptModel);
    const kept = findLayers(keptModel);
    assert.match(evalModeBatchNormNote(analyzeArchitecture(keptModel, index, kept), kept), /^ Measured in the exported eval-mode graph, where each BatchNorm scales by its running statistics/);
    assert.equal(evalModeBatchNormNote(undefined, findLayers(loadModel(join(__dirname, "..", "fixtures", "models", "relu_he_deep.onnx")))), "");
  });
});

describe("dead units behind an unnormalized input", () => {
  it("point at the input (a feature with mean 5000 fixes every unit's sign) instead of the init", async () => {
    const path = mlp("offset_input", [[Math.sqrt(2 / 32), "Relu"], [Math.sqrt(2 / 32), "Relu"], [Math.sqrt(1 / 32), ""]], 9);
    const r0 = new Random(10);
    const rows = Float32Array.from({ length: 64 * 32 }, (_, i) => (i % 32 === 0 ? 5000 + 900 * r0.normal() : r0.normal()));
    const file = join(tmp, "offset.npy");
    writeFileSync(file, npyBytes("<f4", [64, 32], rows));
    const r = await analyze(path, { inputFile: file, batchSize: 16 });
    const dead = r.findings.filter((f) => f.category === "activation.dead");
    assert.ok(dead.length > 0, JSON.stringify(r.findings.map((f) => `${f.ruleId} ${f.layer}`)));
    for (const f of dead) {
      assert.match(f.message, /Input "x" is not normalized \(see input\.unnormalized\)/);
      assert.match(f.fix, /^Normalize "x" first/);
    }
  });
});

describe("breaker round 6", () => {
  const width = 32;
  /** Ten Gemm+Sigmoid layers; `after(i, s)` adds nodes after each sigmoid output `s` and returns the next layer's input. */
  function sigmoidStack(name: string, seed: number, bias: number, after: (i: number, s: string, h: string, nodes: ReturnType<typeof node>[], inits: ReturnType<typeof floatTensor>[]) => string): string {
    const r = new Random(seed);
    const nodes: ReturnType<typeof node>[] = [];
    const inits: ReturnType<typeof floatTensor>[] = [];
    let h = "x";
    for (let i = 0; i < 10; i++) {
      inits.push(floatTensor(`b.${i}.weight`, [width, width], randn(r, width * width, Math.sqrt(1 / width))), floatTensor(`b.${i}.bias`, [width], new Array<number>(width).fill(bias)));
      nodes.push(node("Gemm", [h, `b.${i}.weight`, `b.${i}.bias`], [`z${i}`], [attr("transB", 1)], `/b.${i}/Gemm`), node("Sigmoid", [`z${i}`], [`s${i}`], [], `/b.${i}/Sigmoid`));
      h = after(i, `s${i}`, h, nodes, inits);
    }
    inits.push(floatTensor("head.weight", [4, width], randn(r, 4 * width, Math.sqrt(1 / width))));
    nodes.push(node("Gemm", [h, "head.weight"], ["y"], [attr("transB", 1)], "/head/Gemm"));
    const path = join(tmp, `${name}.onnx`);
    writeFileSync(path, modelBytes(graph(nodes, inits, [valueInfo("x", ["N", width])], [valueInfo("y", ["N", 4])]), 17));
    return path;
  }

  it("2·sigmoid(z) - 1 is an activation whose scale counts, not a gate left out of the trend", async () => {
    const path = sigmoidStack("tanh_like", 21, 0, (i, s, _h, nodes, inits) => {
      inits.push(floatTensor(`two${i}`, [], [2]), floatTensor(`one${i}`, [], [1]));
      nodes.push(node("Mul", [s, `two${i}`], [`m${i}`]), node("Sub", [`m${i}`, `one${i}`], [`t${i}`]));
      return `t${i}`;
    });
    const r = await analyze(path, { batches: 2, loss: "none" });
    assert.ok(r.findings.some((f) => f.ruleId === "activation.vanishing"), JSON.stringify(r.findings.map((f) => f.ruleId)));
  });

  it("a sigmoid that gates the main stream itself (h·sigmoid(Wh - 3)) stays in the trend", async () => {
    const path = sigmoidStack("gated_stream", 22, -3, (i, s, h, nodes) => {
      nodes.push(node("Mul", [h, s], [`g${i}`]));
      return `g${i}`;
    });
    const r = await analyze(path, { batches: 2, loss: "none" });
    assert.ok(r.findings.some((f) => f.ruleId === "activation.vanishing"), JSON.stringify(r.findings.map((f) => f.ruleId)));
  });

  it("an output layer far more than 10x too large stays a warning; a small one before a ReLU is still a choice", async () => {
    const lecun = Math.sqrt(1 / 32);
    const huge = await analyze(mlp("huge_head", [[lecun, "Tanh"], [lecun, "Tanh"], [30 * lecun, ""]], 23), { staticOnly: true });
    assert.equal(huge.findings.find((f) => f.layer === "l2")?.ruleId, "init.scale-large");
    const he = Math.sqrt(2 / 32);
    const relu = await analyze(mlp("small_relu_head", [[he, "Relu"], [he, "Relu"], [0.01, "Relu"]], 24), { staticOnly: true });
    assert.equal(relu.findings.find((f) => f.layer === "l2")?.ruleId, "init.scale-small/output-layer");
  });

  it("all units silent on one sample is beyond what one sample explains (about half): it keeps its severity", async () => {
    // Every weight negative and the input all ones: every pre-activation is negative whatever the bias (0).
    const r0 = new Random(25);
    const nodes = [node("Gemm", ["x", "l0.weight"], ["h"], [attr("transB", 1)], "/l0/Gemm"), node("Relu", ["h"], ["a"], [], "/a0/Relu"), node("Gemm", ["a", "l1.weight"], ["y"], [attr("transB", 1)], "/l1/Gemm")];
    const inits = [floatTensor("l0.weight", [32, 32], Array.from({ length: 1024 }, () => -Math.abs(0.25 * r0.normal()))), floatTensor("l1.weight", [4, 32], randn(r0, 128, 0.2))];
    const path = join(tmp, "negative_weights.onnx");
    writeFileSync(path, modelBytes(graph(nodes, inits, [valueInfo("x", ["N", 32])], [valueInfo("y", ["N", 4])]), 17));
    const r = await analyze(path, { fill: { x: 1 }, batches: 1 });
    const dead = r.findings.find((f) => f.category === "activation.dead");
    assert.equal(`${dead?.severity} ${dead?.ruleId}`, "error activation.dead");
  });

  it("a bias below -3/sqrt(fan_in) is named as the cause even when the input is also unnormalized", async () => {
    const he = Math.sqrt(2 / 32);
    const path = mlp("bias_and_offset", [[he, "Relu"], [he, "Relu", new Array<number>(32).fill(-10)], [Math.sqrt(1 / 32), ""]], 26);
    const r0 = new Random(27);
    const file = join(tmp, "offset2.npy");
    writeFileSync(file, npyBytes("<f4", [64, 32], Float32Array.from({ length: 64 * 32 }, (_, i) => (i % 32 === 0 ? 3 + 0.5 * r0.normal() : r0.normal()))));
    const r = await analyze(path, { inputFile: file, batchSize: 16 });
    const dead = r.findings.find((f) => f.category === "activation.dead" && f.layer === "l1");
    assert.match(dead?.fix ?? "", /^The bias switches these units off: l1\.bias holds values below -3\/sqrt\(fan_in\) = -0\.53/);
    assert.doesNotMatch(dead!.message, /is not normalized/);
  });
});

describe("small last layers of residual branches", () => {
  it("are info (the block starts near the identity, GPT-2 / Fixup); the same layer outside a residual branch stays a warning", async () => {
    const r0 = new Random(30);
    const build = (name: string, residual: boolean, fcStd = Math.sqrt(2 / 32)): string => {
      const nodes = [
        node("Gemm", ["x", "fc.weight"], ["h"], [attr("transB", 1)], "/block/fc/Gemm"), node("Relu", ["h"], ["a"], [], "/block/act/Relu"),
        node("Gemm", ["a", "proj.weight"], ["p"], [attr("transB", 1)], "/block/proj/Gemm"),
        ...(residual ? [node("Add", ["x", "p"], ["s"], [], "/block/Add")] : [node("Relu", ["p"], ["s"], [], "/block/act2/Relu")]),
        node("Gemm", ["s", "head.weight"], ["y"], [attr("transB", 1)], "/head/Gemm"),
      ];
      const inits = [floatTensor("fc.weight", [32, 32], randn(r0, 1024, fcStd)), floatTensor("proj.weight", [32, 32], randn(r0, 1024, 0.01)), floatTensor("head.weight", [4, 32], randn(r0, 128, Math.sqrt(1 / 32)))];
      const path = join(tmp, `${name}.onnx`);
      writeFileSync(path, modelBytes(graph(nodes, inits, [valueInfo("x", ["N", 32])], [valueInfo("y", ["N", 4])]), 17));
      return path;
    };
    const res = await analyze(build("residual_small", true), { staticOnly: true });
    // The branch's first layer is He-scaled here; drawn small too (GPT-2's N(0, 0.02) everywhere) it is info as well.
    assert.equal(res.findings.filter((x) => x.layer === "block.fc" && x.category.startsWith("init.")).length, 0);
    const f = res.findings.find((x) => x.layer === "block.proj");
    assert.equal(`${f?.severity} ${f?.ruleId}`, "info init.scale-small/residual-branch");
    const inner = await analyze(build("residual_all_small", true, 0.01), { staticOnly: true });
    assert.deepEqual(inner.findings.filter((x) => x.layer?.startsWith("block.") && x.category.startsWith("init.")).map((x) => `${x.layer} ${x.severity} ${x.ruleId}`),
      ["block.fc info init.scale-small/residual-branch", "block.proj info init.scale-small/residual-branch"]);
    const plain = await analyze(build("plain_small", false), { staticOnly: true });
    assert.equal(plain.findings.find((x) => x.layer === "block.proj")?.ruleId, "init.scale-small");
  });
});

describe("Adds that are no skip connection", () => {
  it("a time embedding added after every layer (h = relu(W h) + temb(t)) does not exempt small layers as residual branches", async () => {
    const r0 = new Random(31);
    const nodes = [node("Gemm", ["t", "temb.weight"], ["e"], [attr("transB", 1)], "/temb/Gemm")];
    const inits = [floatTensor("temb.weight", [32, 4], randn(r0, 128, 0.5))];
    let h = "x";
    for (let i = 0; i < 5; i++) {
      inits.push(floatTensor(`l.${i}.weight`, [32, 32], randn(r0, 1024, 0.1 * Math.sqrt(2 / 32))));
      nodes.push(node("Gemm", [h, `l.${i}.weight`], [`z${i}`], [attr("transB", 1)], `/l.${i}/Gemm`), node("Relu", [`z${i}`], [`r${i}`], [], `/a.${i}/Relu`), node("Add", [`r${i}`, "e"], [`h${i}`], [], `/add.${i}/Add`));
      h = `h${i}`;
    }
    inits.push(floatTensor("head.weight", [4, 32], randn(r0, 128, Math.sqrt(1 / 32))));
    nodes.push(node("Gemm", [h, "head.weight"], ["y"], [attr("transB", 1)], "/head/Gemm"));
    const path = join(tmp, "time_embedding.onnx");
    writeFileSync(path, modelBytes(graph(nodes, inits, [valueInfo("x", ["N", 32]), valueInfo("t", ["N", 4])], [valueInfo("y", ["N", 4])]), 17));
    const r = await analyze(path, { staticOnly: true });
    const small = r.findings.filter((f) => f.category === "init.scale-small" && f.layer?.startsWith("l."));
    assert.ok(small.length >= 4, JSON.stringify(r.findings.map((f) => `${f.ruleId} ${f.layer}`)));
    for (const f of small) assert.equal(`${f.severity} ${f.ruleId}`, "warning init.scale-small", f.layer);
    // With the probe, the gradient trend starts on the signal's path, not at the embedding whose
    // gradient sums every Add it feeds.
    const probed = await analyze(path, { batches: 2 });
    const vanishing = probed.findings.find((f) => f.category === "gradient.vanishing");
    assert.equal(`${vanishing?.severity} ${vanishing?.ruleId}`, "warning gradient.vanishing", JSON.stringify(probed.findings.map((f) => f.ruleId)));
    assert.notEqual(vanishing?.layer, "temb");
    // All-zero weights there are no zero-init residual branch either: init.zero stays an error.
    const zeroed = join(tmp, "time_embedding_zero.onnx");
    const model = loadModel(path).proto;
    const w = model.graph!.initializer.find((x) => x.name === "l.2.weight")!;
    w.rawData = new Uint8Array(4 * 1024);
    w.floatData = [];
    writeFileSync(zeroed, toBinary(ModelProtoSchema, model));
    const z = await analyze(zeroed, { staticOnly: true });
    assert.equal(z.findings.filter((f) => f.category === "init.zero" && f.layer === "l.2").map((f) => `${f.severity} ${f.ruleId}`).join(), "error init.zero");
  });

  it("two parallel branches summed (relu(Wa h + Wb h)) are no residual block: their small layers stay warnings", async () => {
    const r0 = new Random(32);
    const nodes: ReturnType<typeof node>[] = [];
    const inits: ReturnType<typeof floatTensor>[] = [];
    let h = "x";
    for (let i = 0; i < 3; i++) {
      for (const side of ["a", "b"]) {
        inits.push(floatTensor(`${side}.${i}.weight`, [32, 32], randn(r0, 1024, 0.05 * Math.sqrt(2 / 32))));
        nodes.push(node("Gemm", [h, `${side}.${i}.weight`], [`${side}${i}`], [attr("transB", 1)], `/${side}.${i}/Gemm`));
      }
      nodes.push(node("Add", [`a${i}`, `b${i}`], [`s${i}`], [], `/sum.${i}/Add`), node("Relu", [`s${i}`], [`h${i}`], [], `/act.${i}/Relu`));
      h = `h${i}`;
    }
    inits.push(floatTensor("head.weight", [4, 32], randn(r0, 128, Math.sqrt(1 / 32))));
    nodes.push(node("Gemm", [h, "head.weight"], ["y"], [attr("transB", 1)], "/head/Gemm"));
    const path = join(tmp, "two_branch.onnx");
    writeFileSync(path, modelBytes(graph(nodes, inits, [valueInfo("x", ["N", 32])], [valueInfo("y", ["N", 4])]), 17));
    const r = await analyze(path, { staticOnly: true });
    const small = r.findings.filter((f) => f.category === "init.scale-small");
    assert.equal(small.length, 6, JSON.stringify(r.findings.map((f) => `${f.ruleId} ${f.layer}`)));
    for (const f of small) assert.equal(f.ruleId, "init.scale-small", f.layer);
  });
});
