// Gradients through If branches (the Silero transformer's all-zero gradients), exactly zero
// gradients that are true (a Round before the output), what gradient checking counts as a
// parameter, float32 rounding noise in the backward graph, and the CLI's progress lines. Oracles:
// closed-form derivatives in float64, central differences through onnxruntime, and torch autograd
// in float64 on the real Silero model (test/fixtures/gradients/silero_micro.torch.json).
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, it } from "node:test";
import { create } from "@bufbuild/protobuf";
import { buildBackward } from "../../src/autodiff/backward";
import { GradEmitter } from "../../src/autodiff/emit";
import { checkGradients, gradcheck } from "../../src/autodiff/gradcheck";
import { gradcheckText } from "../../src/cli/gradcheck";
import { VJP_RULES, type VjpRule } from "../../src/autodiff/rules";
import { probeTensorInfo } from "../../src/autodiff/shapes";
import { analyze } from "../../src/index";
import { ValueInfoProtoSchema } from "../../src/onnx/gen/onnx_pb";
import { loadModel } from "../../src/onnx/load";
import type { HostTensor } from "../../src/runtime/session";
import { Random } from "../../src/stats/random";
import { attr, DT, floatTensor, graph, modelBytes, node, rawTensor, valueInfo } from "./build-model";
import { FIXTURES, npyBytes, REAL } from "./helpers";

const tmp = mkdtempSync(join(tmpdir(), "gradient-branches-"));
const CLI = join(__dirname, "..", "..", "dist", "cli.js");
const GRADIENTS = join(__dirname, "..", "fixtures", "gradients");
const r = new Random(11);
const randn = (n: number, std = 1): number[] => Array.from({ length: n }, () => std * r.normal());
const int64 = (name: string, values: number[]): ReturnType<typeof rawTensor> => rawTensor(name, DT.INT64, values.length === 1 ? [] : [values.length], new Uint8Array(BigInt64Array.from(values.map(BigInt)).buffer));
const l2 = (xs: ArrayLike<number>): number => Math.sqrt(Array.from(xs).reduce((a, b) => a + b * b, 0));

const npyFloat32 = (values: ArrayLike<number>, shape: number[]): Uint8Array => npyBytes("<f4", shape, Float32Array.from(values));

// The Silero pattern: torch.jit.script's `if x.shape[-1] == 1: x = x.squeeze(-1)` exports as an If
// whose branches read the tensor from the outer graph; the If's one declared input is the bool.
// x[N,4] -> MatMul W1 -> Tanh -> Unsqueeze -> If(shape[2] == 1: Squeeze | Identity) -> MatMul W2 -> Sigmoid -> y[N,3]
const N = 4, D = 4, K = 3;
const W1 = randn(D * D, 0.7), W2 = randn(D * K, 0.7);
function branchModel(): string {
  const untyped = (name: string) => create(ValueInfoProtoSchema, { name });
  const thenBranch = graph([node("Squeeze", ["a3"], ["sq"], [attr("axes", [2])], "Squeeze_then")], [], [], [untyped("sq")]);
  const elseBranch = graph([node("Identity", ["a3"], ["id"], [], "Identity_else")], [], [], [untyped("id")]);
  const nodes = [
    node("MatMul", ["x", "W1"], ["h"], [], "/l1/MatMul"),
    node("Tanh", ["h"], ["a"], [], "/l1/Tanh"),
    node("Unsqueeze", ["a"], ["a3"], [attr("axes", [2])], "Unsqueeze_0"),
    node("Shape", ["a3"], ["s"], [], "Shape_0"),
    node("Gather", ["s", "two"], ["d"], [attr("axis", 0)], "Gather_0"),
    node("Equal", ["d", "one"], ["c"], [], "Equal_0"),
    node("If", ["c"], ["b"], [attr("then_branch", thenBranch), attr("else_branch", elseBranch)], "If_0"),
    node("MatMul", ["b", "W2"], ["z"], [], "/l2/MatMul"),
    node("Sigmoid", ["z"], ["y"], [], "/l2/Sigmoid"),
  ];
  const path = join(tmp, "branch.onnx");
  writeFileSync(path, modelBytes(graph(nodes, [floatTensor("W1", [D, D], W1), floatTensor("W2", [D, K], W2), int64("two", [2]), int64("one", [1])], [valueInfo("x", ["N", D])], [valueInfo("y", ["N", K])]), 11, 7));
  return path;
}

/** l2 of dL/dt for L = mean(y^2) of the branch model, in float64 by hand. */
function branchOracle(x: number[]): Record<string, number> {
  const mm = (a: number[], b: number[], n: number, k: number, m: number): number[] => Array.from({ length: n * m }, (_, i) => {
    let s = 0;
    for (let j = 0; j < k; j++) s += a[Math.floor(i / m) * k + j] * b[j * m + (i % m)];
    return s;
  });
  const h = mm(x, W1, N, D, D), a = h.map(Math.tanh), z = mm(a, W2, N, D, K), y = z.map((v) => 1 / (1 + Math.exp(-v)));
  const dy = y.map((v) => (2 * v) / y.length), dz = dy.map((g, i) => g * y[i] * (1 - y[i]));
  const transpose = (m: number[], rows: number, cols: number): number[] => Array.from({ length: rows * cols }, (_, i) => m[(i % rows) * cols + Math.floor(i / rows)]);
  const dW2 = mm(transpose(a, N, D), dz, D, N, K), da = mm(dz, transpose(W2, D, K), N, K, D);
  const dh = da.map((g, i) => g * (1 - a[i] * a[i])), dW1 = mm(transpose(x, N, D), dh, D, N, D), dx = mm(dh, transpose(W1, D, D), N, D, D);
  return { y: l2(dy), z: l2(dz), b: l2(da), a: l2(da), h: l2(dh), W1: l2(dW1), W2: l2(dW2), x: l2(dx), loss: y.reduce((s, v) => s + v * v, 0) / y.length };
}

describe("gradients through If branches", () => {
  const path = branchModel();
  const x = randn(N * D);
  const input = join(tmp, "branch-x.npy");
  writeFileSync(input, npyFloat32(x, [N, D]));
  const oracle = branchOracle(Array.from(Float32Array.from(x)));

  it("the builder follows tensors a subgraph reads from the outer graph: no silent zero, the If is reported", async () => {
    const model = loadModel(path);
    const feeds = { x: { dtype: "float32" as const, dims: [N, D], data: Float32Array.from(x) } };
    const info = await probeTensorInfo(model, feeds);
    const back = buildBackward(model, info, new GradEmitter("t", 11), new Map([["y", "seed"]]), ["W1", "W2", "x", "a"]);
    for (const t of ["W1", "x", "a"]) assert.equal(back.grad(t), null, `${t}: unknown (an If between it and the loss), never 0`);
    assert.equal(typeof back.grad("W2"), "string");
    assert.deepEqual(back.unsupported.map((u) => u.op), ["If"]);
    assert.match(back.unsupported[0].reason, /subgraph reads a3/);
  });

  it("analyze inlines the taken branch and its gradients match the closed form", async () => {
    const rep = await analyze(path, { inputFile: input, batchSize: N, batches: 1, loss: "mse" });
    assert.deepEqual(rep.probe.branches, ["If_0 -> then_branch"]);
    assert.deepEqual(rep.probe.gradientCoverage, { layers: 2, supported: 2, unsupportedOps: [], batches: 1 });
    assert.equal(rep.findings.filter((f) => /gradient/.test(f.ruleId) && f.category !== "gradient.vanishing").length, 0, JSON.stringify(rep.findings));
    assert.ok(Math.abs(rep.probe.loss!.value! - oracle.loss) < 1e-6 * oracle.loss);
    for (const l of rep.layers) {
      const w = l.weight!;
      const wantW = oracle[w.tensor], wantOut = oracle[l.activation!.tensor];
      assert.ok(wantW > 0 && wantOut > 0, `${l.name}: ${w.tensor} ${l.activation!.tensor}`);
      assert.ok(Math.abs(w.gradient!.l2 - wantW) < 1e-5 * wantW, `${l.name} dL/dW: ${w.gradient!.l2} vs ${wantW}`);
      assert.ok(Math.abs(l.gradient!.l2 - wantOut) < 1e-5 * wantOut, `${l.name} dL/dy: ${l.gradient!.l2} vs ${wantOut}`);
    }
  });

  it("gradcheck takes the branch too and grades every tensor good against float64 finite differences", async () => {
    const res = await checkGradients(path, { inputFile: input, batchSize: N, samples: Infinity });
    assert.equal(res.precision, "float64");
    assert.match(res.warnings.join("\n"), /If_0 -> then_branch/);
    assert.deepEqual(res.checks.map((c) => c.tensor).sort(), ["W1", "W2", "x"]);
    for (const c of res.checks) {
      assert.equal(c.grade, "good", `${c.tensor}: ${c.difference}`);
      assert.ok(c.difference < 1e-8 && c.analyticNorm > 1e-3, `${c.tensor}: ${c.difference} ${c.analyticNorm}`);
    }
  });
});

describe("exactly zero gradients that are true", () => {
  // x[N,6] -> Gemm -> Relu -> Gemm -> Round -> y: Round is piecewise constant, so dL/dθ = 0 for every θ.
  const nodes = [
    node("Gemm", ["x", "Wa", "ba"], ["h"], [attr("transB", 1)], "/fc1/Gemm"), node("Relu", ["h"], ["a"], [], "/fc1/Relu"),
    node("Gemm", ["a", "Wb", "bb"], ["z"], [attr("transB", 1)], "/fc2/Gemm"), node("Round", ["z"], ["y"], [], "/out/Round"),
  ];
  const path = join(tmp, "round.onnx");
  writeFileSync(path, modelBytes(graph(nodes, [floatTensor("Wa", [8, 6], randn(48, 0.5)), floatTensor("ba", [8], randn(8, 0.1)), floatTensor("Wb", [3, 8], randn(24, 2)), floatTensor("bb", [3], randn(3, 0.1))], [valueInfo("x", ["N", 6])], [valueInfo("y", ["N", 3])]), 17));

  it("analyze keeps the zeros and names the op that makes them, instead of blaming the backward graph", async () => {
    const rep = await analyze(path, { batchSize: 4, batches: 1 });
    assert.ok(rep.layers.every((l) => l.gradient?.l2 === 0 && l.weight?.gradient?.l2 === 0), JSON.stringify(rep.layers.map((l) => l.gradient)));
    assert.equal(rep.findings.find((f) => f.ruleId === "model.unsupported/gradient-zero"), undefined);
    const f = rep.findings.find((x) => x.ruleId === "gradient.vanishing/zero");
    assert.ok(f && f.severity === "info", JSON.stringify(rep.findings));
    assert.match(f.message, /only through Round \(\/out\/Round\)/);
  });

  it("a step that overflows the loss grades look closer with the reason, not wrong", async () => {
    // The API takes any epsilon (the CLI refuses steps above 0.1); 1e300 sends every loss to Inf or NaN.
    const square = join(tmp, "square.onnx");
    writeFileSync(square, modelBytes(graph([node("MatMul", ["x", "W"], ["h"]), node("Mul", ["h", "h"], ["y"])], [floatTensor("W", [6, 3], randn(18, 0.5))], [valueInfo("x", ["N", 6])], [valueInfo("y", ["N", 3])]), 17));
    const res = await checkGradients(square, { samples: 2, epsilon: 1e300 });
    assert.ok(res.checks.length > 0);
    for (const c of res.checks) assert.equal(c.grade, "look closer", c.tensor);
    assert.ok(res.warnings.some((w) => /The loss became non-finite when .* moved by the finite-difference step \(epsilon 1e\+300\)/.test(w)), res.warnings.join("\n"));
    // The text report says what to do with them.
    const text = gradcheckText({ ...res, model: square, batchSize: 2 });
    assert.match(text, /\n0 good, \d+ look closer, 0 wrong\nlook closer: .*--samples 32/);
  });

  it("finite differences agree that the gradient is zero", async () => {
    const res = await checkGradients(path, { samples: 4 });
    assert.equal(res.precision, "float64");
    for (const c of res.checks) {
      assert.equal(c.analyticNorm, 0, c.tensor);
      assert.equal(c.numericNorm, 0, `${c.tensor}: the loss does not move within ±2ε`);
      assert.equal(c.grade, "good");
    }
  });

  it("the builder records where the path to the loss stops being differentiable (Round, ArgMax)", async () => {
    const g = graph([node("MatMul", ["x", "W"], ["h"]), node("ArgMax", ["h"], ["k"], [attr("axis", 1)]), node("Cast", ["k"], ["y"], [attr("to", DT.FLOAT)])],
      [floatTensor("W", [3, 3], randn(9))], [valueInfo("x", [2, 3])], [valueInfo("y", [2, 1])]);
    const model = loadModel("argmax.onnx", { bytes: modelBytes(g, 17) });
    const info = await probeTensorInfo(model, { x: { dtype: "float32", dims: [2, 3], data: Float32Array.from(randn(6)) } });
    const back = buildBackward(model, info, new GradEmitter("t", 17), new Map([["y", "seed"]]), ["W", "x"]);
    assert.equal(back.grad("W"), 0);
    assert.deepEqual(back.zeroCuts.map((c) => c.op), ["ArgMax"]);
  });
});

describe("what gradient checking counts as a parameter", () => {
  it("trainable float initializers: not Constant-node tensors, not initializers from which no float path leads to the output", async () => {
    const g = graph([
      node("Constant", [], ["scale"], [attr("value", floatTensor("scale", [4], [1, 2, 3, 4]))], "Constant_0"),
      node("Mul", ["x", "scale"], ["xs"], [], "Mul_0"),
      node("Gemm", ["xs", "W", "bias"], ["y"], [attr("transB", 1)], "/fc/Gemm"),
      node("Shape", ["shape_only"], ["unused_shape"], [], "Shape_0"),
    ], [floatTensor("W", [2, 4], randn(8)), floatTensor("bias", [2], randn(2)), floatTensor("unused", [3], [1, 2, 3]), floatTensor("shape_only", [5], randn(5))],
    [valueInfo("x", [3, 4])], [valueInfo("y", [3, 2])]);
    const model = loadModel("params.onnx", { bytes: modelBytes(g, 17) });
    const feeds: Record<string, HostTensor> = { x: { dtype: "float32", dims: [3, 4], data: Float32Array.from(randn(12)) } };
    const res = await gradcheck(model, { feeds, samples: Infinity });
    assert.deepEqual(res.checks.map((c) => `${c.kind} ${c.tensor}`).sort(), ["input x", "parameter W", "parameter bias"]);
    assert.deepEqual([...res.constants].sort(), ["shape_only", "unused"]);
    assert.ok(res.checks.every((c) => c.grade === "good"), res.checks.map((c) => `${c.tensor} ${c.difference}`).join(", "));
  });

  it("a BatchNorm weight the exporter merged with its running variance keeps its gradient (as in torch), and gradcheck leaves it out with the reason", async () => {
    const gamma = randn(3).map((v) => 1 + 0.3 * Math.abs(v));
    const beta = randn(3);
    const weights = randn(12);
    const bnModel = (merged: boolean): string => {
      const stats = merged ? [node("Identity", ["gamma"], ["var"]), node("Identity", ["beta"], ["mean"])] : [];
      const g = graph([...stats, node("Gemm", ["x", "W"], ["h"], [], "/fc/Gemm"), node("BatchNormalization", ["h", "gamma", "beta", "mean", "var"], ["y"], [], "/bn/BatchNormalization")],
        [floatTensor("W", [4, 3], weights), floatTensor("gamma", [3], gamma), floatTensor("beta", [3], beta), ...(merged ? [] : [floatTensor("var", [3], gamma), floatTensor("mean", [3], beta)])],
        [valueInfo("x", ["batch", 4])], [valueInfo("y", ["batch", 3])]);
      const path = join(mkdtempSync(join(tmpdir(), "bn-merged-")), `${merged}.onnx`);
      writeFileSync(path, modelBytes(g, 17));
      return path;
    };
    const [merged, separate] = [bnModel(true), bnModel(false)];
    const bnGrad = async (path: string) => (await analyze(path, { batchSize: 4, batches: 1, seed: 3 })).layers.find((l) => l.op === "BatchNormalization")?.weight?.gradient?.l2;
    const mergedGrad = await bnGrad(merged);
    assert.ok(mergedGrad !== undefined && mergedGrad > 0, "the merged model has a BatchNorm weight gradient");
    assert.ok(Math.abs(mergedGrad - (await bnGrad(separate))!) <= 1e-6 * mergedGrad, "the same as with separate running statistics");
    const feeds: Record<string, HostTensor> = { x: { dtype: "float32", dims: [4, 4], data: Float32Array.from(randn(16)) } };
    const checkMerged = await gradcheck(loadModel(merged), { feeds, samples: Infinity });
    assert.deepEqual(checkMerged.checks.map((c) => c.tensor), ["W", "x"]);
    assert.match(checkMerged.warnings.join("\n"), /Not checked: gamma, beta also feed BatchNorm running statistics, directly or through Identity copies/);
    const checkSeparate = await gradcheck(loadModel(separate), { feeds, samples: Infinity });
    assert.deepEqual(checkSeparate.checks.map((c) => `${c.tensor} ${c.grade}`), ["W good", "gamma good", "beta good", "x good"]);
  });

  it("two fresh BatchNorms whose weights the exporter merged into one initializer each get their own gradient, as in torch", async () => {
    const gamma = randn(3).map((v) => 1 + 0.2 * Math.abs(v));
    const beta = randn(3);
    const w1 = randn(12);
    const w2 = randn(9);
    const twoBn = (merged: boolean): string => {
      // Merged (torch 1.13's export of fresh BatchNorms): bn2's weight, bias and every running statistic are Identity copies of bn1's weight and bias.
      const copies = merged ? [["gamma", "var1"], ["beta", "mean1"], ["gamma", "gamma2"], ["beta", "beta2"], ["gamma", "var2"], ["beta", "mean2"]].map(([from, to]) => node("Identity", [from], [to])) : [];
      const inits = merged ? [] : [["var1", gamma], ["mean1", beta], ["gamma2", gamma], ["beta2", beta], ["var2", gamma], ["mean2", beta]].map(([name, v]) => floatTensor(name as string, [3], v as number[]));
      const g = graph([...copies, node("Gemm", ["x", "W1"], ["h1"], [], "/fc1/Gemm"), node("BatchNormalization", ["h1", "gamma", "beta", "mean1", "var1"], ["a1"], [], "/bn1/BatchNormalization"), node("Tanh", ["a1"], ["t1"]),
        node("Gemm", ["t1", "W2"], ["h2"], [], "/fc2/Gemm"), node("BatchNormalization", ["h2", "gamma2", "beta2", "mean2", "var2"], ["y"], [], "/bn2/BatchNormalization")],
      [floatTensor("W1", [4, 3], w1), floatTensor("W2", [3, 3], w2), floatTensor("gamma", [3], gamma), floatTensor("beta", [3], beta), ...inits],
      [valueInfo("x", ["batch", 4])], [valueInfo("y", ["batch", 3])]);
      const path = join(mkdtempSync(join(tmpdir(), "bn-two-")), `${merged}.onnx`);
      writeFileSync(path, modelBytes(g, 17));
      return path;
    };
    const grads = async (path: string) => (await analyze(path, { batchSize: 4, batches: 1, seed: 5, loss: "mse" })).layers.filter((l) => l.op === "BatchNormalization").map((l) => l.weight?.gradient?.l2 ?? NaN);
    const [merged, separate] = [await grads(twoBn(true)), await grads(twoBn(false))];
    assert.equal(merged.length, 2);
    merged.forEach((g, i) => assert.ok(g > 0 && Math.abs(g - separate[i]) <= 1e-6 * separate[i], `bn${i + 1}: merged ${g}, separate ${separate[i]}`));
  });

  it("a module called three times reports its parameter's gradient summed over the calls (as torch), equal weights of distinct modules stay separate", async () => {
    const w = randn(16, 0.6);
    // torch 1.13 reads a parameter that several calls share through anonymous Identity copies, and
    // names the k-th call's nodes /shared_k/; it reads equal parameters of distinct modules the same way.
    const chain = (scopes: string[], reads: "copies" | "root" | "separate"): string => {
      const weightOf = (i: number): string => (i === 0 || reads === "root" ? "onnx::MatMul_1" : reads === "copies" ? `onnx::MatMul_${i + 1}` : `w${i}`);
      const copies = reads === "copies" ? [1, 2].map((i) => node("Identity", ["onnx::MatMul_1"], [weightOf(i)], [], `Identity_${i}`)) : [];
      const inits = reads === "separate" ? [1, 2].map((i) => floatTensor(weightOf(i), [4, 4], w)) : [];
      const layers = scopes.flatMap((scope, i) => [node("MatMul", [i ? `t${i - 1}` : "x", weightOf(i)], [`h${i}`], [], `/${scope}/MatMul`), node("Tanh", [`h${i}`], [i === 2 ? "y" : `t${i}`], [], `/Tanh_${i}`)]);
      const g = graph([...copies, ...layers], [floatTensor("onnx::MatMul_1", [4, 4], w), ...inits], [valueInfo("x", ["batch", 4])], [valueInfo("y", ["batch", 4])]);
      const path = join(mkdtempSync(join(tmpdir(), "shared-")), `${scopes[1]}-${reads}.onnx`);
      writeFileSync(path, modelBytes(g, 17));
      return path;
    };
    const grads = async (path: string): Promise<number[]> => (await analyze(path, { batchSize: 4, batches: 1, seed: 5, loss: "mse" })).layers.map((l) => l.weight?.gradient?.l2 ?? NaN);
    const shared = ["shared", "shared_1", "shared_2"];
    const [sharedCopies, sharedDirect] = [await grads(chain(shared, "copies")), await grads(chain(shared, "root"))];
    assert.equal(sharedCopies.length, 3);
    sharedCopies.forEach((g, i) => assert.ok(g > 0 && Math.abs(g - sharedDirect[0]) <= 1e-6 * g, `call ${i + 1}: ${g}, the shared parameter's ${sharedDirect[0]}`));
    const distinct = ["l1", "fc_1", "fc_2"];
    const [distinctCopies, separate] = [await grads(chain(distinct, "copies")), await grads(chain(distinct, "separate"))];
    distinctCopies.forEach((g, i) => assert.ok(g > 0 && Math.abs(g - separate[i]) <= 1e-6 * g, `layer ${i + 1}: merged ${g}, separate ${separate[i]}`));
    assert.ok(Math.abs(separate[0] - sharedDirect[0]) > 1e-3 * separate[0], "one call's gradient differs from the sum");
  });

  it("steps relative to the value for elements above 1, so a float32 scale of 2^20 still moves the loss", async () => {
    // y = log(1 + s * x^2) with s = 2^20, as Silero scales its spectrogram magnitude: 2^20 + 1e-3 rounds to 2^20 in float32.
    const g = graph([node("Mul", ["x", "x"], ["x2"]), node("Mul", ["x2", "s"], ["sx"]), node("Add", ["sx", "one"], ["a"]), node("Log", ["a"], ["y"])],
      [floatTensor("s", [], [2 ** 20]), floatTensor("one", [], [1])]);
    const model = loadModel("scale.onnx", { bytes: modelBytes(g, 17) });
    const res = await gradcheck(model, { feeds: { x: { dtype: "float32", dims: [2, 4], data: Float32Array.from(randn(8), (v) => v * 1e-3) } }, samples: Infinity, precision: "float32" });
    const s = res.checks.find((c) => c.tensor === "s")!;
    assert.ok(Number.isFinite(s.difference) && s.numericNorm > 0, JSON.stringify(s));
    assert.equal(s.grade, "good", JSON.stringify(s));
    // ... but a 1e4 offset inside tanh((w - o) x) varies on a scale of 1, not 1e4: the relative step
    // misses it, and the least step that moves o (4 ulps) says so; "look closer", never "wrong".
    const offset = graph([node("Sub", ["w", "o"], ["d"]), node("Mul", ["d", "x"], ["dx"]), node("Tanh", ["dx"], ["y"])],
      [floatTensor("w", [], [10000.5]), floatTensor("o", [], [10000])]);
    const r2 = await gradcheck(loadModel("offset.onnx", { bytes: modelBytes(offset, 17) }), { feeds: { x: { dtype: "float32", dims: [2, 4], data: Float32Array.from(randn(8)) } }, samples: Infinity, precision: "float32" });
    assert.ok(r2.checks.every((c) => c.grade !== "wrong"), JSON.stringify(r2.checks));
  });

  it("checks layer weights stored as Constant nodes (as Paddle exports every weight), not other Constant nodes", async () => {
    const g = graph([
      node("Constant", [], ["W"], [attr("value", floatTensor("W", [2, 4], randn(8)))], "Constant_W"),
      node("Constant", [], ["half"], [attr("value", floatTensor("half", [], [0.5]))], "Constant_half"),
      node("Gemm", ["x", "W"], ["h"], [attr("transB", 1)], "/fc/Gemm"),
      node("Mul", ["h", "half"], ["y"], [], "Mul_0"),
    ], [], [valueInfo("x", [3, 4])], [valueInfo("y", [3, 2])]);
    for (const precision of ["float64", "float32"] as const) {
      const res = await gradcheck(loadModel("constant-weights.onnx", { bytes: modelBytes(g, 17) }), { feeds: { x: { dtype: "float32", dims: [3, 4], data: Float32Array.from(randn(12)) } }, samples: Infinity, precision });
      assert.deepEqual(res.checks.map((c) => `${c.kind} ${c.tensor} ${c.grade}`), ["parameter W good", "input x good"], precision);
    }
  });

  it("follows Identity/Reshape/Transpose/Cast from a Constant node to the layer it feeds, and names float16 weights it leaves out", async () => {
    const chain = graph([
      node("Constant", [], ["w"], [attr("value", floatTensor("w", [8], randn(8)))], "Constant_w"),
      node("Identity", ["w"], ["w1"]), node("Reshape", ["w1", "shape"], ["w2"]), node("Transpose", ["w2"], ["w3"], [attr("perm", [1, 0])]),
      node("MatMul", ["x", "w3"], ["y"], [], "/fc/MatMul"),
    ], [rawTensor("shape", DT.INT64, [2], new Uint8Array(BigInt64Array.from([2n, 4n]).buffer))], [valueInfo("x", [3, 4])], [valueInfo("y", [3, 2])]);
    const feeds = { x: { dtype: "float32" as const, dims: [3, 4], data: Float32Array.from(randn(12)) } };
    const res = await gradcheck(loadModel("chain.onnx", { bytes: modelBytes(chain, 17) }), { feeds, samples: Infinity });
    assert.deepEqual(res.checks.map((c) => `${c.kind} ${c.tensor} ${c.grade}`), ["parameter w good", "input x good"]);
    const half = graph([node("Cast", ["w16"], ["w"], [attr("to", DT.FLOAT)]), node("MatMul", ["x", "w"], ["y"], [], "/fc/MatMul")],
      [rawTensor("w16", DT.FLOAT16, [4, 2], new Uint8Array(new Uint16Array(8).fill(0x3c00).buffer))], [valueInfo("x", [3, 4])], [valueInfo("y", [3, 2])]);
    const r16 = await gradcheck(loadModel("half.onnx", { bytes: modelBytes(half, 17) }), { feeds, samples: Infinity });
    assert.deepEqual(r16.checks.map((c) => c.tensor), ["x"]);
    assert.ok(r16.warnings.some((w) => /^Not checked: w16 \(stored in float16\/bfloat16/.test(w)), r16.warnings.join("\n"));
  });

  it("lists tensors in the order the graph uses them, not the file's (alphabetical) order", async () => {
    // layer10 runs first, layer2 second; the file lists them as a text sort would.
    const g = graph([node("MatMul", ["x", "layer10.weight"], ["h"], [], "first"), node("Add", ["h", "layer10.bias"], ["hb"]), node("MatMul", ["hb", "layer2.weight"], ["y"], [], "second")],
      [floatTensor("layer10.bias", [4], randn(4)), floatTensor("layer10.weight", [4, 4], randn(16)), floatTensor("layer2.weight", [4, 4], randn(16))]);
    const model = loadModel("order.onnx", { bytes: modelBytes(g, 17) });
    const res = await gradcheck(model, { feeds: { x: { dtype: "float32", dims: [2, 4], data: Float32Array.from(randn(8)) } }, samples: 2 });
    assert.deepEqual(res.checks.map((c) => c.tensor), ["layer10.weight", "layer10.bias", "layer2.weight", "x"]);
  });

  it("a model that fails with a guessed dimension says which dimensions were guessed", async () => {
    // Reshape to rows of 100 needs batch x n to be a multiple of 100: n defaults to 64, so 2 x 64 fails.
    const g = graph([node("Reshape", ["x", "rows"], ["r"]), node("MatMul", ["r", "W"], ["y"])],
      [rawTensor("rows", DT.INT64, [2], new Uint8Array(BigInt64Array.from([-1n, 100n]).buffer)), floatTensor("W", [100, 3], randn(300))],
      [valueInfo("x", ["batch", "n"])], [valueInfo("y", [1, 3])]);
    const path = join(mkdtempSync(join(tmpdir(), "dims-")), "reshape100.onnx");
    writeFileSync(path, modelBytes(g, 17));
    await assert.rejects(checkGradients(path, { samples: 2 }), /onnxruntime failed to run the model: .*: dynamic dimensions were defaulted to .*n=64; set them with --dim name=value$/);
    const res = await checkGradients(path, { samples: 2, dims: { n: 50 } });
    assert.ok(res.checks.every((c) => c.grade === "good"), res.checks.map((c) => `${c.tensor} ${c.grade}`).join(", "));
  });
});

describe("float32 rounding noise in the backward graph", () => {
  it("a true zero gradient that the backward graph computes as rounding noise grades look closer, not wrong", async () => {
    // Every row of W2 is the same, so all logits move together and the softmax output cannot
    // change: the true gradient upstream of W2 is exactly zero, and the finite differences (the
    // outputs come out bit-identical) say so. The backward graph sums y·(v - Σvy) over the
    // classes in float32, which leaves rounding noise instead of 0.
    const g = graph([
      node("Gemm", ["x", "W1", "b1"], ["h"], [attr("transB", 1)], "/fc1/Gemm"), node("Tanh", ["h"], ["a"], [], "/fc1/Tanh"),
      node("Gemm", ["a", "W2", "b2"], ["z"], [attr("transB", 1)], "/fc2/Gemm"), node("Softmax", ["z"], ["y"], [attr("axis", 1)], "/fc2/Softmax"),
    ], [floatTensor("W1", [16, 6], randn(96, 0.8)), floatTensor("b1", [16], randn(16, 0.1)), floatTensor("W2", [40, 16], new Array<number>(640).fill(0.3)), floatTensor("b2", [40], new Array<number>(40).fill(0.1))],
    [valueInfo("x", [2, 6])], [valueInfo("y", [2, 40])]);
    const model = loadModel("softmax-tied.onnx", { bytes: modelBytes(g, 17) });
    const feeds: Record<string, HostTensor> = { x: { dtype: "float32", dims: [2, 6], data: Float32Array.from(randn(12, 3)) } };
    const res = await gradcheck(model, { feeds, samples: 6, precision: "float32", tensors: ["W1", "b1", "x"] });
    assert.equal(res.precision, "float32");
    for (const c of res.checks) {
      assert.equal(c.numericNorm, 0, `${c.tensor}: the softmax output does not move`);
      assert.notEqual(c.grade, "wrong", `${c.tensor}: |analytic| ${c.analyticNorm}, resolution ${c.resolution}`);
      if (c.analyticNorm > 0) assert.ok(c.resolution >= 1 / 3, `${c.tensor}: the noise is as large as the analytic gradient (${c.resolution})`);
    }
    const noisy = res.checks.filter((c) => c.analyticNorm > 0).length;
    assert.ok(noisy > 0, "float32 leaves noise somewhere (else the case tests nothing)");
    assert.match(res.warnings.join("\n"), new RegExp(`${noisy} of 3 tensors have a backward-graph gradient made of float32 rounding noise`));
  });
});

describe("gradient checking still catches a wrong derivative", () => {
  // x[2,1,10,10] -> Conv -> Relu -> MaxPool -> Tanh -> Flatten -> Gemm -> y: float32 (no double Conv), kinks
  // everywhere. With the right rules nothing grades wrong; with a Tanh rule that forgets a factor
  // (1 - y instead of 1 - y^2) every tensor upstream of it must grade wrong, the rounding-noise,
  // output-rounding and smaller-step allowances notwithstanding.
  const g = graph([
    node("Conv", ["x", "Wc", "bc"], ["c"], [attr("kernel_shape", [3, 3]), attr("pads", [1, 1, 1, 1])], "/conv/Conv"), node("Relu", ["c"], ["r"], [], "/conv/Relu"),
    node("MaxPool", ["r"], ["p"], [attr("kernel_shape", [2, 2]), attr("strides", [2, 2])], "/pool/MaxPool"), node("Tanh", ["p"], ["t"], [], "/act/Tanh"),
    node("Flatten", ["t"], ["f"], [attr("axis", 1)], "/flat/Flatten"), node("Gemm", ["f", "Wf", "bf"], ["y"], [attr("transB", 1)], "/fc/Gemm"),
  ], [floatTensor("Wc", [4, 1, 3, 3], randn(36, 0.4)), floatTensor("bc", [4], randn(4, 0.1)), floatTensor("Wf", [3, 100], randn(300, 0.1)), floatTensor("bf", [3], randn(3, 0.1))],
  [valueInfo("x", [2, 1, 10, 10])], [valueInfo("y", [2, 3])]);
  const model = loadModel("conv-tanh.onnx", { bytes: modelBytes(g, 17) });
  const feeds: Record<string, HostTensor> = { x: { dtype: "float32", dims: [2, 1, 10, 10], data: Float32Array.from(randn(200)) } };

  it("the right rules: nothing wrong", async () => {
    const res = await gradcheck(model, { feeds, samples: 6 });
    assert.equal(res.precision, "float32");
    assert.deepEqual(res.checks.filter((c) => c.grade === "wrong").map((c) => `${c.tensor} ${c.difference} ${c.resolution}`), []);
  });

  it("a wrong Tanh rule: every tensor before the Tanh grades wrong, the ones after it good", async () => {
    const rules = VJP_RULES as Record<string, VjpRule>;
    const right = rules.Tanh;
    rules.Tanh = { vjp: (a) => [a.e.mul(a.gy[0]!, a.e.sub(a.k(1), a.node.outputs[0]))] };
    try {
      const res = await gradcheck(model, { feeds, samples: 6 });
      const byGrade = (grade: string): string[] => res.checks.filter((c) => c.grade === grade).map((c) => c.tensor).sort();
      assert.deepEqual(byGrade("wrong"), ["Wc", "bc", "x"], res.checks.map((c) => `${c.tensor} ${c.grade} ${c.difference} ${c.resolution}`).join("\n"));
      assert.deepEqual(byGrade("good"), ["Wf", "bf"]);
    } finally {
      rules.Tanh = right;
    }
  });
});

describe("onnx-doctor gradcheck progress", () => {
  it("reports progress on stderr, one line per step, and leaves stdout to the JSON result", () => {
    const p = spawnSync(process.execPath, [CLI, "gradcheck", join(FIXTURES, "relu_he_deep.onnx"), "--samples", "1", "-f", "json"], { encoding: "utf8", timeout: 120_000 });
    assert.equal(p.status, 0, p.stderr);
    const lines = p.stderr.trim().split("\n");
    assert.ok(lines.every((l) => /^gradcheck \d{1,3}% \S/.test(l)), p.stderr);
    assert.equal(lines[0], "gradcheck 0% reading the model");
    assert.equal(lines[lines.length - 1], "gradcheck 100% done");
    const tensors = lines.filter((l) => / tensor \d+\/\d+: /.test(l));
    const json = JSON.parse(p.stdout) as Record<string, unknown> & { checks: unknown[] };
    assert.equal(tensors.length, json.checks.length);
    assert.deepEqual(Object.keys(json), ["precision", "precisionNote", "epsilon", "tolerance", "loss", "checks", "unsupported", "constants", "warnings", "seconds", "model", "batchSize"]);
    const quiet = spawnSync(process.execPath, [CLI, "gradcheck", join(FIXTURES, "relu_he_deep.onnx"), "--samples", "1", "--no-progress"], { encoding: "utf8", timeout: 120_000 });
    assert.equal(quiet.status, 0, quiet.stderr);
    assert.equal(quiet.stderr, "");
  });
});

describe("real models: gradients", () => {
  const silero = join(REAL, "silero_vad_micro_transformer_2021.onnx");
  const resnet = join(REAL, "light_resnet50.onnx");
  if (!existsSync(silero) || !existsSync(resnet) || !existsSync(join(REAL, "mnist_cntk.onnx"))) {
    it(`real models (not found at ${REAL}; set ONNX_DOCTOR_REAL_MODELS)`, { skip: true }, () => {});
    return;
  }

  it("silero_vad_micro: every layer's gradient matches torch autograd (float64) through both If nodes", async () => {
    const oracle = JSON.parse(readFileSync(join(GRADIENTS, "silero_micro.torch.json"), "utf8")) as { loss: { value: number }; parameters: Record<string, number>; tensors: Record<string, number> };
    const rep = await analyze(silero, { inputFile: join(GRADIENTS, "silero_micro.probe.npy"), batchSize: 2, batches: 1, loss: "mse" });
    assert.deepEqual(rep.probe.branches, ["If_30 -> then_branch", "If_456 -> then_branch"]);
    assert.equal(rep.probe.gradientCoverage?.supported, 30);
    assert.equal(rep.findings.find((f) => /gradient-zero|gradient\.vanishing\/zero/.test(f.ruleId)), undefined);
    assert.ok(Math.abs(rep.probe.loss!.value! - oracle.loss.value) < 1e-6 * oracle.loss.value);
    let compared = 0;
    for (const l of rep.layers) {
      const out = oracle.tensors[l.activation!.tensor];
      assert.ok(out > 0 && Math.abs(l.gradient!.l2 - out) < 1e-4 * out, `${l.name} dL/dy: ${l.gradient!.l2} vs torch ${out}`);
      const w = oracle.parameters[l.weight!.tensor];
      if (w === undefined) continue; // Conv_34's STFT basis is a Constant node: not a parameter
      assert.ok(w > 0 && Math.abs(l.weight!.gradient!.l2 - w) < 1e-4 * w, `${l.name} dL/dW: ${l.weight!.gradient!.l2} vs torch ${w}`);
      compared++;
    }
    assert.equal(compared, 29);
  });

  it("mnist_cntk: gradients match torch autograd, and the first conv's kinked finite differences are not called wrong", async () => {
    const mnist = join(REAL, "mnist_cntk.onnx");
    const oracle = JSON.parse(readFileSync(join(GRADIENTS, "mnist_cntk.torch.json"), "utf8")) as { parameters: Record<string, number>; tensors: Record<string, number> };
    const rep = await analyze(mnist, { inputFile: join(GRADIENTS, "mnist_cntk.probe.npy"), batchSize: 1, batches: 1, loss: "mse" });
    assert.equal(rep.layers.length, 3);
    for (const l of rep.layers) {
      const out = oracle.tensors[l.activation!.tensor], w = oracle.parameters[l.weight!.tensor] ?? oracle.tensors[l.weight!.tensor];
      assert.ok(Math.abs(l.gradient!.l2 - out) < 1e-4 * out, `${l.name} dL/dy: ${l.gradient!.l2} vs torch ${out}`);
      assert.ok(Math.abs(l.weight!.gradient!.l2 - w) < 1e-4 * w, `${l.name} dL/dW: ${l.weight!.gradient!.l2} vs torch ${w}`);
    }
    // Central differences at ε = 1e-3 cross ReLU/max-pool kinks on the 5x5 filters (2% off, beyond
    // the spread of D(ε) and D(2ε)); the ten times smaller step disagrees with them, so it is the
    // differences that are unreliable there, not the gradient torch confirms.
    const res = await checkGradients(mnist, {});
    assert.deepEqual(res.checks.filter((c) => c.grade === "wrong").map((c) => `${c.tensor} ${c.difference} ${c.resolution}`), []);
    assert.ok(res.checks.filter((c) => c.grade === "good").length >= 5);
  });

  it("silero_vad_micro: gradcheck grades nothing wrong and checks Constant nodes only where they are a layer's weight (the STFT basis)", async () => {
    const res = await checkGradients(silero, { dims: { samples: 4000 }, samples: 3 });
    assert.equal(res.precision, "float32");
    assert.equal(res.checks.length, 75);
    assert.ok(res.checks.some((c) => c.tensor === "133" && c.layer === "Conv_34"), "the STFT basis, Conv_34's weight");
    assert.ok(!res.checks.some((c) => ["153", "155", "240"].includes(c.tensor)), "scalars of the function");
    assert.deepEqual(res.checks.filter((c) => c.grade === "wrong").map((c) => `${c.tensor} ${c.difference} ${c.resolution}`), []);
    assert.ok(res.checks.filter((c) => c.grade === "good").length >= 60);
  });

  it("light_resnet50: the gradient is truly zero (uniform softmax) and the float32 noise is not graded wrong", async () => {
    // Three of the 15 tensors (the first BN's scale, a late BN's shift, the image) keep the suite fast.
    const tensors = ["gpu_0/res_conv1_bn_s_0", "gpu_0/res2_2_branch2b_bn_b_0", "gpu_0/data_0"];
    const res = await checkGradients(resnet, { samples: 2, tensors });
    assert.deepEqual(res.checks.map((c) => c.tensor).sort(), [...tensors].sort());
    for (const c of res.checks) {
      assert.equal(c.numericNorm, 0, c.tensor);
      assert.ok(c.analyticNorm > 1e3, `${c.tensor}: amplified noise ${c.analyticNorm}`);
      assert.equal(c.grade, "look closer", `${c.tensor}: ${c.difference} ${c.resolution}`);
    }
    assert.match(res.warnings.join("\n"), /3 of 3 tensors have a backward-graph gradient made of float32 rounding noise/);
  });
});
