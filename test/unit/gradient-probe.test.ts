// The gradient probe end to end: report fields, losses and labels, the gradient rules on the
// fixtures, ops without a rule, batches of another shape, and the fallback when the backward
// graph cannot run.
import assert from "node:assert/strict";
import { toBinary } from "@bufbuild/protobuf";
import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, it } from "node:test";
import { zipSync } from "fflate";
import { buildBackward } from "../../src/autodiff/backward";
import { GradEmitter } from "../../src/autodiff/emit";
import { checkGradients, gradcheck, grade, trainingDropout } from "../../src/autodiff/gradcheck";
import { lossDefinition } from "../../src/autodiff/loss";
import { probeTensorInfo } from "../../src/autodiff/shapes";
import { findLayers } from "../../src/graph/layers";
import { analyze } from "../../src/index";
import { ModelProtoSchema } from "../../src/onnx/gen/onnx_pb";
import { floatToHalfBits } from "../../src/onnx/dtype";
import { loadModel } from "../../src/onnx/load";
import { planProbe } from "../../src/probe/inputs";
import { runProbe } from "../../src/probe/run";
import { gradientBatchesNote } from "../../src/report/text";
import { Random } from "../../src/stats/random";
import { attr, DT, floatTensor, graph, modelBytes, node, rawTensor, valueInfo } from "./build-model";
import { fattr } from "./autodiff-cases";
import { FIXTURES, npyBytes } from "./helpers";
import { GRADIENTS, gradientFixture, gradientStems } from "./gradient-fixtures";

const tmp = mkdtempSync(join(tmpdir(), "gradients-"));
const int64Tensor = (name: string, dims: number[], values: number[]): ReturnType<typeof rawTensor> => rawTensor(name, DT.INT64, dims, new Uint8Array(BigInt64Array.from(values.map(BigInt)).buffer));
const r = new Random(5);
const weights = (name: string, dims: number[], std: number): ReturnType<typeof floatTensor> => floatTensor(name, dims, Array.from({ length: dims.reduce((a, b) => a * b, 1) }, () => std * r.normal()));

/** x[batch,8] -> Gemm -> Relu -> (op) -> Gemm -> Relu -> Gemm -> y[batch,4], written to a file. */
function mlpWith(middle: string | undefined, file: string, extra: { act?: string; bias?: number } = {}): string {
  const nodes = [
    node("Gemm", ["x", "W0", "b0"], ["h0"], [attr("transB", 1)], "/layers/layers.0/Gemm"),
    node(extra.act ?? "Relu", ["h0"], ["a0"], extra.act === "LeakyRelu" ? [fattr("alpha", 0.1)] : [], "/layers/layers.1/Act"),
  ];
  let x = "a0";
  if (middle) {
    nodes.push(node(middle, ["a0"], ["m"], middle === "CumSum" ? [] : [], "/mid/Op"));
    if (middle === "CumSum") nodes[nodes.length - 1].input.push("axis");
    x = "m";
  }
  nodes.push(
    node("Gemm", [x, "W1", "b1"], ["h1"], [attr("transB", 1)], "/layers/layers.2/Gemm"), node("Relu", ["h1"], ["a1"], [], "/layers/layers.3/Relu"),
    node("Gemm", ["a1", "W2", "b2"], ["y"], [attr("transB", 1)], "/layers/layers.4/Gemm"),
  );
  const inits = [
    weights("W0", [16, 8], Math.sqrt(2 / 8)), floatTensor("b0", [16], new Array<number>(16).fill(extra.bias ?? 0)),
    weights("W1", [16, 16], Math.sqrt(2 / 16)), floatTensor("b1", [16], new Array<number>(16).fill(0)),
    weights("W2", [4, 16], Math.sqrt(1 / 16)), floatTensor("b2", [4], new Array<number>(4).fill(0)),
    rawTensor("axis", DT.INT64, [], new Uint8Array(BigInt64Array.from([1n]).buffer)),
  ];
  const path = join(tmp, file);
  writeFileSync(path, modelBytes(graph(nodes, inits, [valueInfo("x", ["batch", 8])], [valueInfo("y", ["batch", 4])]), 17));
  return path;
}

describe("gradient probe", () => {
  it("reports the JSON fields of issue 4", async () => {
    const rep = await analyze(join(FIXTURES, "relu_he_deep.onnx"), { inputFile: join(FIXTURES, "relu_he_deep.probe.npy"), batchSize: 8 });
    assert.equal(rep.probe.loss?.name, "random");
    assert.match(rep.probe.loss!.definition, /cotangent/);
    assert.ok(Number.isFinite(rep.probe.loss!.value));
    assert.deepEqual(rep.probe.gradientCoverage, { layers: 10, supported: 10, unsupportedOps: [], batches: 2 });
    for (const l of rep.layers) {
      assert.ok(l.gradient && l.gradient.l2 > 0 && l.gradient.rms > 0 && l.gradient.absMax > 0, `${l.name}: gradient ${JSON.stringify(l.gradient)}`);
      const wg = l.weight?.gradient;
      assert.ok(wg && wg.l2 > 0 && wg.rms > 0 && wg.ratioToWeight > 0, `${l.name}: weight gradient`);
      const w = l.weight!;
      const norm = Math.sqrt(w.shape.reduce((a, b) => a * b, 1) * (w.std ** 2 + w.mean ** 2));
      assert.ok(Math.abs(wg.ratioToWeight - wg.l2 / norm) < 1e-9 * wg.ratioToWeight);
    }
    // l2 = sqrt(mean over the 2 batches of ||g_b||^2) and rms = sqrt(sum ||g||^2 / elements): for the output layer
    // (gradient = the unit-RMS cotangent) rms is 1 and l2 is sqrt(8 rows * 10 outputs).
    const out = rep.layers[rep.layers.length - 1].gradient!;
    assert.ok(Math.abs(out.rms - 1) < 1e-5 && Math.abs(out.l2 - Math.sqrt(80)) < 1e-4, JSON.stringify(out));
  });

  it("--loss none runs the forward probe only", async () => {
    const rep = await analyze(join(FIXTURES, "relu_he_deep.onnx"), { inputFile: join(FIXTURES, "relu_he_deep.probe.npy"), loss: "none" });
    assert.equal(rep.probe.loss, null);
    assert.equal(rep.probe.gradientCoverage, undefined);
    assert.ok(rep.layers.every((l) => !l.gradient && l.activation));
  });

  it("flags the deep sigmoid MLP gradient.vanishing and keeps the healthy controls quiet, for every loss", async () => {
    for (const stem of gradientStems) {
      const fx = gradientFixture(stem);
      for (const loss of ["random", "ce", "mse"] as const) {
        const rep = await analyze(join(GRADIENTS, fx.model), { inputFile: join(GRADIENTS, fx.input), batchSize: 8, loss, labelsFile: loss === "ce" ? join(GRADIENTS, fx.labels) : undefined });
        for (const c of fx.findings.must) assert.ok(rep.findings.some((f) => f.category === c), `${stem} ${loss}: expected ${c}`);
        const wrong = rep.findings.filter((f) => fx.findings.mustNot.includes(f.category));
        assert.deepEqual(wrong.map((f) => `${stem} ${loss}: ${f.message}`), []);
      }
    }
    const sig = await analyze(join(FIXTURES, "sigmoid_deep.onnx"), { inputFile: join(FIXTURES, "sigmoid_deep.probe.npy") });
    const f = sig.findings.find((x) => x.category === "gradient.vanishing")!;
    assert.equal(f.layer, "layers.0");
    assert.match(f.message, /shrinks about x[67]\.\d+ per layer .* first\/last = 1\.\de-7/);
    assert.ok((f.evidence.ratio as number) < 1e-3 && (f.evidence.fittedRatio as number) < 1e-2);
  });

  it("flags exploding gradients in the 3x He ReLU MLP", async () => {
    const rep = await analyze(join(FIXTURES, "relu_3x_he.onnx"), { inputFile: join(FIXTURES, "relu_3x_he.probe.npy") });
    const f = rep.findings.find((x) => x.category === "gradient.exploding");
    assert.ok(f, rep.findings.map((x) => x.category).join(", "));
    assert.ok((f.evidence.ratio as number) > 70);
  });

  it("catches the tiny-init tanh MLP that AutoTrainer's weight-gradient ratio misses, and names the init as the cause", async () => {
    const rep = await analyze(join(FIXTURES, "tanh_tiny_init.onnx"), { inputFile: join(FIXTURES, "tanh_tiny_init.probe.npy") });
    const f = rep.findings.find((x) => x.category === "gradient.vanishing");
    assert.ok(f, rep.findings.map((x) => x.category).join(", "));
    assert.ok((f.evidence.ratio as number) < 1e-6, String(f.evidence.ratio));
    // dW = x^T g: activations shrink forward as fast as g shrinks backward, so ||dW_first|| / ||dW_last||
    // stays near 1, inside AutoTrainer's [1e-3, 70] band: it would report nothing.
    const w = f.evidence.weightGradientRatio as number;
    assert.ok(w > 1e-3 && w < 70, String(w));
    assert.match(f.fix, /initialised too small \(median weight std 0\.11\dx the Xavier std\)/);
  });

  it("puts --loss ce on the logits of a model that ends in Softmax, with the same gradients as the logits model", async () => {
    const logits = mlpWith(undefined, "logits.onnx");
    const probs = join(tmp, "probs.onnx");
    // The same weights with a Softmax appended (mlpWith draws new weights on every call).
    const m = loadModel(logits).proto;
    m.graph!.node.push(node("Softmax", ["y"], ["p"], [attr("axis", 1)], "/softmax/Softmax"));
    m.graph!.output = [valueInfo("p", ["batch", 4])];
    writeFileSync(probs, toBinary(ModelProtoSchema, m));
    const input = join(tmp, "ce_x.npy");
    const labels = join(tmp, "ce_y.npy");
    writeFileSync(input, npyFloat32(Array.from({ length: 16 * 8 }, () => r.normal()), [16, 8]));
    writeFileSync(labels, npyInt64(Array.from({ length: 16 }, (_, i) => i % 4)));
    const a = await analyze(logits, { inputFile: input, labelsFile: labels, loss: "ce" });
    const b = await analyze(probs, { inputFile: input, labelsFile: labels, loss: "ce" });
    assert.match(b.probe.loss!.definition, /logits y \(the input of the Softmax that makes the model output p\)/);
    assert.ok(Math.abs(a.probe.loss!.value! - b.probe.loss!.value!) < 1e-6, `${a.probe.loss!.value} vs ${b.probe.loss!.value}`);
    for (const name of ["layers.0", "layers.2", "layers.4"]) {
      const ga = a.layers.find((l) => l.name === name)!.weight!.gradient!.l2;
      const gb = b.layers.find((l) => l.name === name)!.weight!.gradient!.l2;
      assert.ok(Math.abs(ga - gb) <= 1e-6 * ga, `${name}: ${ga} vs ${gb}`);
    }
  });

  it("puts --loss ce under a final Softmax(axis=1) of [N, C, T] on its logits with the classes on axis 1, matching the closed form by hand", async () => {
    // x [4,2,6] -> Conv (W [4,2,1], b) -> z [4,4,6] -> Softmax over C = 4, at each of the T = 6 positions.
    const [N, K, C, T] = [4, 2, 4, 6];
    const rnd = new Random(11);
    const W = Array.from({ length: C * K }, () => Math.fround(rnd.normal()));
    const bias = Array.from({ length: C }, () => Math.fround(0.5 * rnd.normal()));
    const X = Array.from({ length: N * K * T }, () => Math.fround(rnd.normal()));
    const labels = Array.from({ length: N * T }, () => rnd.int(C));
    const z = (n: number, c: number, t: number): number => bias[c] + W[c * K] * X[(n * K) * T + t] + W[c * K + 1] * X[(n * K + 1) * T + t];
    const model = (op: string, opset: number, axis?: number): string => {
      const g = graph([node("Conv", ["x", "W", "b"], ["z"]), node(op, ["z"], ["y"], axis === undefined ? [] : [attr("axis", axis)])],
        [floatTensor("W", [C, K, 1], W), floatTensor("b", [C], bias)], [valueInfo("x", ["batch", K, T])], [valueInfo("y", ["batch", C, T])]);
      const path = join(tmp, `seg-${op}-${opset}.onnx`);
      writeFileSync(path, modelBytes(g, opset));
      return path;
    };
    writeFileSync(join(tmp, "seg-x.npy"), npyFloat32(X, [N, K, T]));
    writeFileSync(join(tmp, "seg-y.npy"), npyBytes("<i8", [N, T], BigInt64Array.from(labels.map(BigInt))));
    /** The probe's ce and Conv weight gradient l2 against a closed form over `groups` of (n, c, t) logits with one label each. */
    const check = async (path: string, labelsFile: string, groups: { n: number; c: number; t: number }[][], label: (g: number) => number, definition: RegExp): Promise<void> => {
      let loss = 0;
      const dW = new Array<number>(C * K).fill(0);
      groups.forEach((cells, g) => {
        const zs = cells.map(({ n, c, t }) => z(n, c, t));
        const m = Math.max(...zs);
        const lse = m + Math.log(zs.reduce((a, v) => a + Math.exp(v - m), 0));
        loss -= (zs[label(g)] - lse) / groups.length;
        cells.forEach(({ n, c, t }, j) => {
          const d = (Math.exp(zs[j] - lse) - (j === label(g) ? 1 : 0)) / groups.length;
          for (let k = 0; k < K; k++) dW[c * K + k] += d * X[(n * K + k) * T + t];
        });
      });
      const rep = await analyze(path, { inputFile: join(tmp, "seg-x.npy"), labelsFile, batchSize: N, loss: "ce" });
      assert.match(rep.probe.loss!.definition, definition);
      assert.ok(Math.abs(rep.probe.loss!.value! - loss) < 1e-6 * loss, `${path}: ${rep.probe.loss!.value} vs ${loss}`);
      const l2 = Math.hypot(...dW);
      assert.ok(Math.abs(rep.layers[0].weight!.gradient!.l2 - l2) < 1e-5 * l2, `${path}: ${rep.layers[0].weight!.gradient!.l2} vs ${l2}`);
    };
    const range = (k: number): number[] => Array.from({ length: k }, (_, i) => i);
    // One distribution over the C classes at each of the N*T positions, labels [N, T] in order.
    const perPosition = range(N * T).map((p) => range(C).map((c) => ({ n: Math.floor(p / T), c, t: p % T })));
    for (const op of ["Softmax", "LogSoftmax"]) {
      const logits = new RegExp(`^mean cross-entropy of the logits z \\(the input of the ${op} that makes the model output y\\), classes on axis 1, against the labels in seg-y\\.npy`);
      await check(model(op, 17, 1), join(tmp, "seg-y.npy"), perPosition, (p) => labels[p], logits);
    }
    // Before opset 13 Softmax(axis=1) (its default) normalises axes 1..2 together: one distribution
    // over the C*T logits of each sample, and one label in [0, C*T) per sample.
    const joint = labels.slice(0, N).map((l, n) => (l * 5 + n) % (C * T));
    writeFileSync(join(tmp, "seg-joint.npy"), npyInt64(joint));
    const perSample = range(N).map((n) => range(C * T).map((j) => ({ n, c: Math.floor(j / T), t: j % T })));
    await check(model("Softmax", 11), join(tmp, "seg-joint.npy"), perSample, (n) => joint[n], /the input of the Softmax that makes the model output y\), classes on axes 1\.\.2 flattened, one label per index of axis 0 \(before opset 13/);
  });

  it("puts --loss ce on the logits under a final Sigmoid as binary cross-entropy, matching the closed form by hand", async () => {
    // x [4,3] -> Gemm (W [3,2], b) -> z -> Sigmoid: L = mean(softplus(z) - t z), dL/dW = x^T (sigmoid(z) - t) / 8.
    const W = [0.5, -1, 0.25, 2, -0.75, 0.1];
    const bias = [0.2, -0.3];
    const X = [1, 2, -1, 0.5, -0.5, 3, -2, 1, 0.25, 0, -1.5, 2];
    const T = [1, 0, 0, 1, 1, 1, 0, 0];
    const g = graph([node("Gemm", ["x", "W", "b"], ["z"]), node("Sigmoid", ["z"], ["y"])], [floatTensor("W", [3, 2], W), floatTensor("b", [2], bias)],
      [valueInfo("x", ["batch", 3])], [valueInfo("y", ["batch", 2])]);
    const path = join(tmp, "binary.onnx");
    writeFileSync(path, modelBytes(g, 13));
    writeFileSync(join(tmp, "binary-x.npy"), npyFloat32(X, [4, 3]));
    writeFileSync(join(tmp, "binary-t.npy"), npyFloat32(T, [4, 2]));
    let loss = 0;
    const dW = new Array<number>(6).fill(0);
    for (let r = 0; r < 4; r++) {
      for (let c = 0; c < 2; c++) {
        const z = bias[c] + [0, 1, 2].reduce((a, k) => a + X[r * 3 + k] * W[k * 2 + c], 0);
        const t = T[r * 2 + c];
        loss += (Math.log1p(Math.exp(-Math.abs(z))) + Math.max(z, 0) - t * z) / 8;
        for (let k = 0; k < 3; k++) dW[k * 2 + c] += (X[r * 3 + k] * (1 / (1 + Math.exp(-z)) - t)) / 8;
      }
    }
    const rep = await analyze(path, { inputFile: join(tmp, "binary-x.npy"), labelsFile: join(tmp, "binary-t.npy"), batchSize: 4 });
    assert.equal(rep.probe.loss?.name, "ce");
    assert.match(rep.probe.loss!.definition, /^mean binary cross-entropy of the logits z \(the input of the Sigmoid that makes the model output y\) against the 0\/1 targets in binary-t\.npy/);
    // An output named "logits" is not called "the logits logits".
    assert.match(lossDefinition("ce", ["logits"]), /^mean cross-entropy of logits against random labels/);
    assert.ok(Math.abs(rep.probe.loss!.value! - loss) < 1e-6 * loss, `${rep.probe.loss!.value} vs ${loss}`);
    const l2 = Math.hypot(...dW);
    assert.ok(Math.abs(rep.layers[0].weight!.gradient!.l2 - l2) < 1e-5 * l2, `${rep.layers[0].weight!.gradient!.l2} vs ${l2}`);
    const check = await checkGradients(path, { inputFile: join(tmp, "binary-x.npy"), labelsFile: join(tmp, "binary-t.npy"), loss: "ce" });
    for (const c of check.checks) assert.equal(c.grade, "good", `${c.tensor}: ${c.difference}`);
    writeFileSync(join(tmp, "binary-bad.npy"), npyFloat32([1, 0, 2, 1, 1, 1, 0, 0], [4, 2]));
    await assert.rejects(analyze(path, { inputFile: join(tmp, "binary-x.npy"), labelsFile: join(tmp, "binary-bad.npy"), batchSize: 4 }), /labels: 2 is not a binary target in \[0, 1\]/);
  });

  it("gives a file with its nodes out of order (onnxruntime runs it) the same gradients as the sorted file", async () => {
    const sorted = mlpWith(undefined, "sorted.onnx");
    const m = loadModel(sorted).proto;
    m.graph!.node.reverse();
    const shuffled = join(tmp, "reversed.onnx");
    writeFileSync(shuffled, toBinary(ModelProtoSchema, m));
    assert.deepEqual(loadModel(shuffled).nodes.map((n) => n.name), loadModel(sorted).nodes.map((n) => n.name));
    const a = await analyze(sorted, { batchSize: 4, seed: 3 });
    const b = await analyze(shuffled, { batchSize: 4, seed: 3 });
    assert.deepEqual(b.layers.map((l) => l.name), a.layers.map((l) => l.name));
    for (const [k, l] of a.layers.entries()) {
      assert.ok(l.weight!.gradient!.l2 > 0);
      assert.equal(b.layers[k].weight!.gradient!.l2, l.weight!.gradient!.l2, l.name);
    }
  });

  it("counts an output listed twice once, and never puts the loss on an output that is a graph input", async () => {
    const base = mlpWith(undefined, "once.onnx");
    const m = loadModel(base).proto;
    m.graph!.output.push(valueInfo("y", ["batch", 4]), valueInfo("x", ["batch", 8]));
    const twice = join(tmp, "twice.onnx");
    writeFileSync(twice, toBinary(ModelProtoSchema, m));
    for (const loss of ["mse", "ce"] as const) {
      const a = await analyze(base, { batchSize: 4, loss });
      const b = await analyze(twice, { batchSize: 4, loss });
      assert.equal(b.probe.loss!.value, a.probe.loss!.value, loss);
      assert.deepEqual(b.layers.map((l) => l.weight!.gradient!.l2), a.layers.map((l) => l.weight!.gradient!.l2), loss);
    }
  });

  it("a model whose only float output is its input passed through is refused for that reason, not as an unsupported float type", async () => {
    const g = graph([node("ArgMax", ["x"], ["k"], [attr("axis", 1)], "am")], [], [valueInfo("x", ["batch", 4])], [valueInfo("x", ["batch", 4]), valueInfo("k", ["batch", 1], DT.INT64)]);
    const path = join(tmp, "input_out.onnx");
    writeFileSync(path, modelBytes(g, 17));
    await assert.rejects(checkGradients(path, {}), /the model's only float output "x" is a graph input passed through, which no weight affects/);
  });

  it("takes an LSTM layer's used output (Y_h) when Y is left unused, so its gradient is not a trivial 0", async () => {
    const nodes = [node("LSTM", ["x", "W", "R", "B"], ["ys", "yh", "yc"], [attr("hidden_size", 5)], "/lstm/LSTM")];
    const inits = [weights("W", [1, 20, 4], 0.4), weights("R", [1, 20, 5], 0.4), floatTensor("B", [1, 40], new Array<number>(40).fill(0))];
    const path = join(tmp, "lstm_yh.onnx");
    writeFileSync(path, modelBytes(graph(nodes, inits, [valueInfo("x", [3, "batch", 4])], [valueInfo("yh", [1, "batch", 5])]), 17));
    assert.equal(findLayers(loadModel(path))[0].output, "yh");
    const rep = await analyze(path, { batchSize: 4 });
    assert.ok(rep.layers[0].gradient!.l2 > 0, JSON.stringify(rep.layers[0].gradient));
  });

  it("keeps the first batches' gradients when a later batch has other intermediate shapes, and says so", async () => {
    // Rows with a positive sum pass a NonZero/Gather filter: how many differs from batch to batch.
    const nodes = [
      node("ReduceSum", ["x", "axes1"], ["s"], [attr("keepdims", 0)], "rowsum"), node("Greater", ["s", "zero"], ["pos"], [], "gt"),
      node("NonZero", ["pos"], ["nz"], [], "nz"), node("Squeeze", ["nz", "axes0"], ["idx"], [], "sq"),
      node("Gather", ["x", "idx"], ["xs"], [attr("axis", 0)], "gather"), node("MatMul", ["xs", "W"], ["y"], [], "mm"),
    ];
    const inits = [weights("W", [8, 4], 0.3), floatTensor("zero", [], [0]), int64Tensor("axes0", [1], [0]), int64Tensor("axes1", [1], [1])];
    const path = join(tmp, "data_dependent.onnx");
    writeFileSync(path, modelBytes(graph(nodes, inits, [valueInfo("x", ["batch", 8])], [valueInfo("y", ["M", 4])]), 13));
    let rep;
    for (let seed = 0; seed < 20; seed++) {
      rep = await analyze(path, { batchSize: 8, batches: 3, seed });
      if (rep.probe.gradientCoverage?.stoppedEarly) break;
    }
    const cov = rep!.probe.gradientCoverage!;
    assert.ok(cov.stoppedEarly, "some seed gives batches with different row counts");
    assert.ok(cov.batches! >= 1 && cov.batches! < 3, String(cov.batches));
    assert.ok(rep!.layers[0].weight!.gradient!.l2 > 0);
    assert.ok(rep!.findings.some((f) => f.ruleId === "model.unsupported/gradient-batches" && /intermediate shapes other than batch 1's/.test(f.message)));
  });

  it("stops gradients at QuantizeLinear in a QDQ model and says why, instead of reporting zeros", async () => {
    const nodes = [
      node("Gemm", ["x", "W0", "b0"], ["h0"], [attr("transB", 1)], "/layers/layers.0/Gemm"),
      node("QuantizeLinear", ["h0", "s", "zp"], ["q"], [], "/q/QuantizeLinear"),
      node("DequantizeLinear", ["q", "s", "zp"], ["d"], [], "/q/DequantizeLinear"),
      node("Gemm", ["d", "W1", "b1"], ["y"], [attr("transB", 1)], "/layers/layers.1/Gemm"),
    ];
    const inits = [
      weights("W0", [16, 8], 0.3), floatTensor("b0", [16], new Array<number>(16).fill(0)),
      weights("W1", [4, 16], 0.3), floatTensor("b1", [4], new Array<number>(4).fill(0)),
      floatTensor("s", [], [0.05]), rawTensor("zp", DT.INT8, [], new Uint8Array([0])),
    ];
    const path = join(tmp, "qdq.onnx");
    writeFileSync(path, modelBytes(graph(nodes, inits, [valueInfo("x", ["batch", 8])], [valueInfo("y", ["batch", 4])]), 17));
    const rep = await analyze(path, { batchSize: 4 });
    const [first, second] = rep.layers;
    assert.equal(first.gradient, undefined, "no gradient (not zero) before the quantizer");
    assert.ok(second.gradient && second.gradient.l2 > 0);
    assert.deepEqual(rep.probe.gradientCoverage?.unsupportedOps.map((u) => u.op), ["QuantizeLinear"]);
    assert.ok(!rep.findings.some((f) => f.category === "activation.dead"), JSON.stringify(rep.findings.map((f) => f.category)));
  });

  it("stops gradients at an op without a rule and says so, never reporting a partial gradient", async () => {
    const path = mlpWith("CumSum", "cumsum.onnx");
    const rep = await analyze(path, { batchSize: 4 });
    assert.equal(rep.probe.ran, true);
    const [first, second, third] = rep.layers;
    assert.equal(first.gradient, undefined, "layers before CumSum have no gradient");
    assert.equal(first.weight?.gradient, undefined);
    assert.ok(second.gradient && third.gradient, "layers after it do");
    assert.deepEqual(rep.probe.gradientCoverage?.unsupportedOps.map((u) => u.op), ["CumSum"]);
    assert.equal(rep.probe.gradientCoverage?.supported, 2);
    const f = rep.findings.find((x) => x.ruleId === "model.unsupported/gradient");
    assert.ok(f && f.severity === "info" && /CumSum/.test(f.message), JSON.stringify(rep.findings));
  });

  it("marks a tensor with one unsupported consumer unavailable even when another consumer has a rule", async () => {
    // x -> Relu -> a; y = Add(CumSum(a), a): a's gradient through Add alone would be partial.
    const g = graph([node("Relu", ["x"], ["a"]), node("CumSum", ["a", "axis"], ["c"]), node("Add", ["c", "a"], ["y"])],
      [rawTensor("axis", DT.INT64, [], new Uint8Array(BigInt64Array.from([1n]).buffer))], [valueInfo("x", [2, 3])], [valueInfo("y", [2, 3])]);
    const model = loadModel("fan.onnx", { bytes: modelBytes(g, 17) });
    const info = await probeTensorInfo(model, { x: { dtype: "float32", dims: [2, 3], data: new Float32Array(6).fill(1) } });
    const e = new GradEmitter("t", 17);
    const back = buildBackward(model, info, e, new Map([["y", "seed"]]), ["a", "x", "c"]);
    assert.equal(back.grad("a"), null);
    assert.equal(back.grad("x"), null);
    assert.equal(typeof back.grad("c"), "string");
    assert.deepEqual(back.unsupported.map((u) => u.op), ["CumSum"]);
    // gradcheck compares nothing there: "no gradient", naming the op, not "wrong".
    const res = await gradcheck(model, { feeds: { x: { dtype: "float32", dims: [2, 3], data: Float32Array.from([1, -2, 3, 0.5, -1, 2]) } }, samples: 2 });
    assert.deepEqual(res.checks.map((c) => `${c.tensor} ${c.grade} ${c.unavailable}`), ["x no gradient CumSum (CumSum_1)"]);
  });

  it("uses gradients for activation.dead: dead LeakyReLU units still learn, dead ReLU units do not", async () => {
    const relu = await analyze(mlpWith(undefined, "dead-relu.onnx", { bias: -20 }), { batchSize: 8 });
    const dead = relu.findings.find((f) => f.category === "activation.dead" && f.layer === "layers.0");
    assert.ok(dead, relu.findings.map((f) => f.message).join("\n"));
    assert.equal(dead.evidence.zeroGradientUnits, 16);
    assert.match(dead.message, /weight gradients are exactly zero/);
    const leaky = await analyze(mlpWith(undefined, "dead-leaky.onnx", { bias: -20, act: "LeakyRelu" }), { batchSize: 8 });
    assert.equal(leaky.layers[0].activation?.deadUnits, 16, "no unit ever outputs a positive value");
    assert.equal(leaky.layers[0].weight?.gradient?.zeroUnits, 0, "but every unit gets a gradient through the slope");
    assert.deepEqual(leaky.findings.filter((f) => f.category === "activation.dead").map((f) => f.message), []);
  });

  it("takes labels for ce and checks them", async () => {
    const fx = gradientFixture("relu_he_deep");
    const rep = await analyze(join(GRADIENTS, fx.model), { inputFile: join(GRADIENTS, fx.input), batchSize: 16, labelsFile: join(GRADIENTS, fx.labels) });
    assert.equal(rep.probe.loss?.name, "ce", "labels make ce the default");
    assert.match(rep.probe.loss!.definition, /relu_he_deep\.labels\.npy/);
    assert.ok(Math.abs(rep.probe.loss!.value! - fx.losses.ce.value) < 1e-4 * fx.losses.ce.value);
    const bad = join(tmp, "bad-labels.npy");
    writeFileSync(bad, npyInt64([0, 1, 2]));
    await assert.rejects(analyze(join(GRADIENTS, fx.model), { inputFile: join(GRADIENTS, fx.input), batchSize: 16, labelsFile: bad }), /bad-labels\.npy has 3 rows of labels but the probe data has 16 rows/);
    const outOfRange = join(tmp, "range-labels.npy");
    writeFileSync(outOfRange, npyInt64(new Array<number>(16).fill(12)));
    await assert.rejects(analyze(join(GRADIENTS, fx.model), { inputFile: join(GRADIENTS, fx.input), batchSize: 16, labelsFile: outOfRange }), /labels: 12 is not a class index in \[0, 10\) \(10 classes of output "output" \[16,10\], axis 1; the loss reads the model.s first output\)/);
    // Beyond 2^53 a float64 would round the id it names: the message quotes it exactly.
    const huge = join(tmp, "huge-labels.npy");
    const ids = new BigInt64Array(16);
    ids[5] = 9007199254740993n;
    writeFileSync(huge, npyBytes("<i8", [16], ids));
    await assert.rejects(analyze(join(GRADIENTS, fx.model), { inputFile: join(GRADIENTS, fx.input), batchSize: 16, labelsFile: huge }), /huge-labels\.npy: label 9007199254740993 in row 5 is not a class index/);
  });

  it("uses the batches of the planned shape for gradients and the short last batch for activations only", async () => {
    const data = join(tmp, "rows20.npy");
    writeFileSync(data, npyFloat32(Array.from({ length: 20 * 64 }, () => r.normal()), [20, 64]));
    const rep = await analyze(join(FIXTURES, "relu_he_deep.onnx"), { inputFile: data, batchSize: 8 });
    assert.equal(rep.probe.batches, 3);
    assert.equal(rep.probe.gradientCoverage?.error, undefined);
    assert.equal(rep.probe.gradientCoverage?.batches, 2, "rows 16..19 run forward only");
    assert.ok(rep.layers.every((l) => l.gradient && l.gradient.l2 > 0 && l.activation));
    assert.deepEqual(rep.probe.notes, ["the file's 20 rows make 2 batch(es) of 8 and a last one of 4"]);
  });

  it("feeds probe data to a model with a fixed batch dimension that many rows at a time", async () => {
    const g = graph([node("Gemm", ["x", "W"], ["y"])], [floatTensor("W", [4, 3], Array.from({ length: 12 }, (_, i) => (i % 5) - 2))], [valueInfo("x", [1, 4])], [valueInfo("y", [1, 3])]);
    const path = join(tmp, "fixed-batch.onnx");
    writeFileSync(path, modelBytes(g, 17));
    const data = join(tmp, "rows5.npy");
    writeFileSync(data, npyFloat32(Array.from({ length: 20 }, (_, i) => Math.sin(i)), [5, 4]));
    const rep = await analyze(path, { inputFile: data });
    assert.deepEqual([rep.probe.batchSize, rep.probe.batches, rep.probe.error, rep.probe.notes], [1, 5, undefined, undefined]);
    assert.ok(rep.layers[0].gradient && rep.layers[0].gradient.l2 > 0);
    // A --batch-size the fixed dimension overrides is said, with data and without.
    const asked = await analyze(path, { inputFile: data, batchSize: 4 });
    assert.deepEqual(asked.probe.notes, ["the model fixes its batch dimension at 1, so batches have 1 row(s), not --batch-size 4"]);
    const synthetic = await analyze(path, { batchSize: 4, batches: 1 });
    assert.deepEqual([synthetic.probe.batchSize, synthetic.probe.notes], [1, ["the model fixes its batch dimension at 1, so batches have 1 row(s), not --batch-size 4"]]);
  });

  it("sizes filled inputs' batch axes to each batch of the file's rows, the short last one included", async () => {
    // y = x W + h, h: [2, batch, 3] as Silero's LSTM state: its batch axis must follow the file's rows.
    const g = graph([node("MatMul", ["x", "W"], ["xw"]), node("Add", ["xw", "h"], ["y"])], [floatTensor("W", [4, 3], Array.from({ length: 12 }, (_, i) => i / 10))],
      [valueInfo("x", ["batch", 4]), valueInfo("h", [2, "batch", 3])], [valueInfo("y", [2, "batch", 3])]);
    const path = join(tmp, "state.onnx");
    writeFileSync(path, modelBytes(g, 17));
    const data = join(tmp, "rows3.npy");
    writeFileSync(data, npyFloat32(Array.from({ length: 12 }, (_, i) => Math.cos(i)), [3, 4]));
    const plan = planProbe(loadModel(path), { inputFile: data, batchSize: 2, fill: { h: 0 } });
    assert.deepEqual([0, 1].map((b) => plan.feeds(b).h.dims), [[2, 2, 3], [2, 1, 3]]);
    const few = await analyze(path, { inputFile: data, fill: { h: 0 } });
    assert.deepEqual([few.probe.batchSize, few.probe.batches, few.probe.error], [3, 1, undefined]);
  });

  it("cuts each --input array along the axis its declared shape names the batch, and feeds fixed-shape arrays whole", async () => {
    // x: time-major [3, batch, 4]; h: a state [2, batch, 4]; t: a fixed [2, 4] table; k: a scalar. y = ((x + mean_0(h)) W + mean(t)) k.
    const g = graph([node("ReduceMean", ["h"], ["hm"], [attr("axes", [0])]), node("Add", ["x", "hm"], ["s"]), node("MatMul", ["s", "W"], ["sw"], [], "/fc/MatMul"),
      node("ReduceMean", ["t"], ["tm"], [attr("keepdims", 0)]), node("Add", ["sw", "tm"], ["y0"]), node("Mul", ["y0", "k"], ["y"])],
    [floatTensor("W", [4, 4], Array.from({ length: 16 }, (_, i) => Math.cos(i)))],
    [valueInfo("x", ["seq", "batch", 4]), valueInfo("h", [2, "batch", 4]), valueInfo("t", [2, 4]), valueInfo("k", [])], [valueInfo("y", ["seq", "batch", 4])]);
    const path = join(tmp, "time-major.onnx");
    writeFileSync(path, modelBytes(g, 17));
    const value = (i: number): number => Math.sin(i * 0.37);
    const x = Float32Array.from({ length: 3 * 10 * 4 }, (_, i) => value(i));
    const h = Float32Array.from({ length: 2 * 10 * 4 }, (_, i) => value(i + 500));
    const data = join(tmp, "time-major.npz");
    writeFileSync(data, zipSync({ "x.npy": npyBytes("<f4", [3, 10, 4], x), "h.npy": npyBytes("<f4", [2, 10, 4], h), "t.npy": npyBytes("<f4", [2, 4], Float32Array.from([1, 2, 3, 4, 5, 6, 7, 8])), "k.npy": npyBytes("<f4", [], Float32Array.from([0.5])) }));
    const plan = planProbe(loadModel(path), { inputFile: data, batchSize: 4 });
    assert.deepEqual([plan.fileRows, plan.batches, plan.inputs.map((i) => i.shape)], [10, 3, [[3, 4, 4], [2, 4, 4], [2, 4], []]]);
    // Batch 1 holds examples 4..7: x[:, 4:8, :] by hand.
    const second = plan.feeds(1);
    const expected = [0, 1, 2].flatMap((t) => Array.from(x.subarray((t * 10 + 4) * 4, (t * 10 + 8) * 4)));
    assert.deepEqual([second.x.dims, Array.from(second.x.data as Float32Array)], [[3, 4, 4], expected]);
    assert.deepEqual([plan.feeds(2).h.dims, second.t.dims, second.k.dims], [[2, 2, 4], [2, 4], []]);
    assert.deepEqual(plan.notes, ["the file's 10 rows make 2 batch(es) of 4 and a last one of 2", '"x", "h" are cut into batches along axis 1, where the model declares the batch dimension']);
    const rep = await analyze(path, { inputFile: data, batchSize: 4 });
    assert.deepEqual([rep.probe.error, rep.probe.batches], [undefined, 3]);
    // The short last batch (2 rows) gets activations only, and the text report says so.
    assert.equal(gradientBatchesNote(rep.probe.gradientCoverage, rep.probe.batches), "; loss and gradients from 2 of 3 batches (the short last batch of the file gets activations only: the backward graph is built for the first batch's shapes)");
    // Rows that disagree on the batch axis are refused by name.
    writeFileSync(data, zipSync({ "x.npy": npyBytes("<f4", [3, 10, 4], x), "h.npy": npyBytes("<f4", [2, 8, 4], h.subarray(0, 64)), "t.npy": npyBytes("<f4", [2, 4], Float32Array.from([1, 2, 3, 4, 5, 6, 7, 8])) }));
    assert.throws(() => planProbe(loadModel(path), { inputFile: data }), /time-major\.npz: "h" has 8 rows on its batch axis 1 but "x" has 10 on axis 1/);
  });

  it("takes the batch from the dimension every array shares (N), with a scalar listed first, and says which inputs the file lacks", async () => {
    // Inputs in model order: s (a scalar), x [T, N, 4], h [2, N, 4], z [N, 4] (not in the file). y = (x + mean_0(h)) s + z.
    const g = graph([node("ReduceMean", ["h"], ["hm"], [attr("axes", [0])]), node("Add", ["x", "hm"], ["a"]), node("Mul", ["a", "s"], ["b"]), node("Add", ["b", "z"], ["y"])], [],
      [valueInfo("s", []), valueInfo("x", ["T", "N", 4]), valueInfo("h", [2, "N", 4]), valueInfo("z", ["N", 4])], [valueInfo("y", ["T", "N", 4])]);
    const path = join(tmp, "shared-n.onnx");
    writeFileSync(path, modelBytes(g, 17));
    const data = join(tmp, "shared-n.npz");
    writeFileSync(data, zipSync({ "s.npy": npyBytes("<f4", [], Float32Array.from([2])), "x.npy": npyBytes("<f4", [3, 6, 4], Float32Array.from({ length: 72 }, (_, i) => Math.sin(i))), "h.npy": npyBytes("<f4", [2, 6, 4], Float32Array.from({ length: 48 }, (_, i) => Math.cos(i))) }));
    const plan = planProbe(loadModel(path), { inputFile: data, batchSize: 4 });
    assert.deepEqual([plan.fileRows, plan.batches, plan.inputs.map((i) => `${i.name}[${i.shape.join(",")}] ${i.source}`)], [6, 2, ["s[] file", "x[3,4,4] file", "h[2,4,4] file", "z[4,4] synthetic-normal"]]);
    assert.deepEqual(plan.notes, [
      "the file's 6 rows make 1 batch(es) of 4 and a last one of 2",
      '"x", "h" are cut into batches along axis 1, where the model declares the batch dimension',
      'shared-n.npz has no array "z": it gets synthetic N(0,1) values (give it in the file, or a constant with --fill)',
    ]);
    assert.deepEqual(plan.feeds(1).z.dims, [2, 4]);
    const rep = await analyze(path, { inputFile: data, batchSize: 4 });
    assert.equal(rep.probe.error, undefined);
    assert.deepEqual(rep.inputData?.inputs.map((d) => `${d.name} ${d.samples}`), ["s 1", "x 6", "h 6"]);
  });

  it("feeds float16 inputs: synthetic N(0,1) as half bits, and file statistics from the decoded values", async () => {
    assert.deepEqual([1, -2.5, 65504, 70000, 2 ** -24, 0.1, 0].map(floatToHalfBits), [0x3c00, 0xc100, 0x7bff, 0x7c00, 0x0001, 0x2e66, 0]);
    const g = graph([node("Cast", ["x"], ["xf"], [attr("to", DT.FLOAT)]), node("MatMul", ["xf", "W"], ["y"], [], "/fc/MatMul")], [floatTensor("W", [2, 2], [1, 0.5, -0.5, 1])],
      [valueInfo("x", ["N", 2], DT.FLOAT16)], [valueInfo("y", ["N", 2])]);
    const path = join(tmp, "half.onnx");
    writeFileSync(path, modelBytes(g, 17));
    const synthetic = await analyze(path, { batchSize: 8, batches: 2 });
    assert.equal(synthetic.probe.error, undefined);
    assert.ok(Math.abs(synthetic.layers[0].activation!.std - 1.1) < 0.6, `std of x W for x ~ N(0,1): ${synthetic.layers[0].activation!.std}`);
    // Feature 0 holds 1, 3, 5, 7 (mean 4, std sqrt(5)); feature 1 holds -0.5 (std 0).
    const file = join(tmp, "half.npy");
    writeFileSync(file, npyBytes("<f2", [4, 2], Uint16Array.from([1, -0.5, 3, -0.5, 5, -0.5, 7, -0.5].map(floatToHalfBits))));
    const rep = await analyze(path, { inputFile: file });
    const stats = rep.inputData!.inputs[0];
    assert.deepEqual([stats.mean, stats.std.map((v) => Number(v.toFixed(6)))], [[4, -0.5], [Number(Math.sqrt(5).toFixed(6)), 0]]);
  });

  it("keeps the forward probe when an optional extension's graph cannot be built", async () => {
    const model = loadModel(join(FIXTURES, "relu_he_deep.onnx"));
    const layers = findLayers(model);
    const plan = planProbe(model, { batchSize: 4, batches: 1 });
    let failure = "";
    const broken = {
      additions: { nodes: [node("NoSuchOp", ["output"], ["__broken"])], initializers: [], inputs: [], outputs: ["__broken"] },
      add: () => assert.fail("a failed extension gets no results"),
      failed: (e: unknown) => { failure = String(e); },
    };
    const res = await runProbe(model, layers, plan, { extensions: [broken] });
    assert.match(failure, /NoSuchOp/);
    assert.equal(res.activations.size, layers.length);
  });
});

describe("gradient checking", () => {
  it("grades with the seed's thresholds and the finite differences' own resolution", () => {
    const tol = { good: 1e-7, wrong: 1e-3 };
    assert.equal(grade(5e-8, 1e-9, tol), "good");
    assert.equal(grade(1e-5, 1e-9, tol), "look closer");
    assert.equal(grade(2e-3, 1e-9, tol), "wrong");
    assert.equal(grade(2e-4, 1e-4, tol), "good", "within 3x of what the differences resolve, and that is fine");
    assert.equal(grade(2e-2, 1e-2, tol), "look closer", "too coarse to tell");
    assert.equal(grade(NaN, 0, tol), "wrong");
  });

  it("checks an MLP in float64 and grades every tensor good", async () => {
    const res = await checkGradients(join(FIXTURES, "tanh_xavier.onnx"), { samples: 6 });
    assert.equal(res.precision, "float64");
    assert.ok(res.checks.length === 17, `${res.checks.length} tensors`);
    for (const c of res.checks) assert.equal(c.grade, "good", `${c.tensor}: ${c.difference}`);
    assert.equal(res.checks.find((c) => c.tensor === "layers.0.weight")?.layer, "layers.0");
  });

  it("turns Constant nodes read from a file to double by value: a torch opset-14 transformer grades all good in float64", async () => {
    // Its LayerNorms are decomposed, with Pow exponent and epsilon in Constant nodes. Read from a
    // file, their raw data are views into the file's Buffer, whose slice() does not copy: the
    // float64 copy once read the file's first bytes instead (exponent 6.6e-44, "loss is NaN").
    const res = await checkGradients(join(FIXTURES, "..", "lessons", "transformer_prenorm_6_op14.onnx"), { samples: 4 });
    assert.equal(res.precision, "float64");
    assert.ok(res.checks.length >= 10, `${res.checks.length} tensors`);
    for (const c of res.checks) assert.equal(c.grade, "good", `${c.tensor}: ${c.difference}`);
  });

  it("runs the model as written, without onnxruntime's fusions: an RMSNorm with epsilon 1e-2 grades good in float64", async () => {
    // h = x + b; y = h * (1 / sqrt(mean(h^2) + 0.01)) * w, as torch exports h * rsqrt(...) * w.
    // onnxruntime fuses it into SimplifiedLayerNormalization, and in double then uses epsilon 1e-5:
    // the finite differences checked another function.
    // The exponent, epsilon and 1 are Constant nodes, as torch writes them (gradient checking
    // turns initializers into inputs, which onnxruntime would not fuse).
    const constant = (name: string, v: number) => node("Constant", [], [name], [attr("value", floatTensor(name, [], [v]))]);
    const g = graph([
      constant("two", 2), constant("eps", 1e-2), constant("one", 1),
      node("Add", ["b", "x"], ["h"]), node("Pow", ["h", "two"], ["sq"]), node("ReduceMean", ["sq"], ["ms"], [attr("axes", [-1]), attr("keepdims", 1)]),
      node("Add", ["ms", "eps"], ["mse"]), node("Sqrt", ["mse"], ["rms"]), node("Div", ["one", "rms"], ["inv"]), node("Mul", ["h", "inv"], ["n"]), node("Mul", ["n", "w"], ["y"]),
    ], [floatTensor("b", [4], [0.1, -0.1, 0.2, 0]), floatTensor("w", [4], [0.5, 1, 1.5, 2])]);
    const x = Float32Array.from({ length: 8 }, (_, i) => 0.1 * Math.sin(i + 1));
    const res = await gradcheck(loadModel("rms.onnx", { bytes: modelBytes(g, 13) }), { feeds: { x: { dtype: "float32", dims: [2, 4], data: x } }, samples: Infinity, seed: 1 });
    assert.equal(res.precision, "float64");
    for (const c of res.checks) assert.equal(c.grade, "good", `${c.tensor}: ${c.difference}`);
  });

  it("probes a float64 model whose SiLU onnxruntime would fuse into a kernel it has only for float32", async () => {
    const W = rawTensor("W", DT.DOUBLE, [4, 4], new Uint8Array(Float64Array.from({ length: 16 }, (_, i) => Math.cos(i)).buffer));
    const g = graph([node("MatMul", ["x", "W"], ["h"]), node("Sigmoid", ["h"], ["s"]), node("Mul", ["h", "s"], ["y"])], [W],
      [valueInfo("x", ["batch", 4], DT.DOUBLE)], [valueInfo("y", ["batch", 4], DT.DOUBLE)]);
    const path = join(tmp, "silu64.onnx");
    writeFileSync(path, modelBytes(g, 13));
    const rep = await analyze(path, { batches: 1, loss: "none" });
    assert.equal(rep.probe.error, undefined);
    assert.ok(rep.layers[0].activation && rep.layers[0].activation.std > 0);
  });

  it("checks only the finite elements of a float initializer holding -inf (an attention mask)", async () => {
    const g = graph([node("Add", ["x", "mask"], ["s"]), node("Softmax", ["s"], ["y"], [attr("axis", -1)])], [floatTensor("mask", [4], [0, -Infinity, 0.5, -Infinity])]);
    const x = Float32Array.from({ length: 8 }, (_, i) => Math.sin(i + 1));
    const res = await gradcheck(loadModel("mask.onnx", { bytes: modelBytes(g, 13) }), { feeds: { x: { dtype: "float32", dims: [2, 4], data: x } }, samples: Infinity, seed: 1 });
    const mask = res.checks.find((c) => c.tensor === "mask")!;
    assert.deepEqual([mask.checked, mask.grade], [2, "good"]);
    assert.ok(res.warnings.some((w) => /^Only the finite elements of mask were checked/.test(w)), res.warnings.join("\n"));
  });

  it("leaves out layer weights that ConstantOfShape fills with one value (a model published without weights) and says so", async () => {
    // x W1 -> Tanh -> W2, W1 filled by ConstantOfShape(0.02) as in light_resnet50, W2 a real initializer.
    const shape = rawTensor("shape", DT.INT64, [2], new Uint8Array(BigInt64Array.from([4n, 3n]).buffer));
    const g = graph([node("ConstantOfShape", ["shape"], ["W1"], [attr("value", floatTensor("", [1], [0.02]))]), node("MatMul", ["x", "W1"], ["h"]), node("Tanh", ["h"], ["t"]), node("MatMul", ["t", "W2"], ["y"])],
      [shape, floatTensor("W2", [3, 2], [0.5, -0.3, 0.2, 0.8, -0.6, 0.1])], [valueInfo("x", ["batch", 4])], [valueInfo("y", ["batch", 2])]);
    const res = await gradcheck(loadModel("filled.onnx", { bytes: modelBytes(g, 13) }), { feeds: { x: { dtype: "float32", dims: [2, 4], data: Float32Array.from({ length: 8 }, (_, i) => Math.cos(i)) } }, samples: Infinity, seed: 1 });
    assert.deepEqual(res.checks.map((c) => `${c.tensor} ${c.grade}`), ["W2 good", "x good"]);
    assert.ok(res.warnings.some((w) => /^Not checked: 1 layer weight or bias tensor\(s\) that ConstantOfShape fills with a single value \(W1\)/.test(w)), res.warnings.join("\n"));
  });

  it("falls back to float32 for ops without double kernels and skips running statistics", async () => {
    const res = await checkGradients(join(GRADIENTS, "cnn_pool_bn.onnx"), { samples: 4 });
    assert.equal(res.precision, "float32");
    assert.match(res.precisionNote, /Conv/);
    assert.deepEqual([...res.constants].sort(), ["bn1.running_mean", "bn1.running_var", "bn2.running_mean", "bn2.running_var", "bn3.running_mean", "bn3.running_var"]);
    assert.ok(res.checks.every((c) => c.grade !== "wrong"), res.checks.map((c) => `${c.tensor} ${c.difference} ${c.resolution}`).join("\n"));
  });

  it("checks the cross-entropy and mean-square seeds too", async () => {
    const fx = gradientFixture("transformer_postnorm");
    for (const loss of ["ce", "mse"] as const) {
      const res = await checkGradients(join(GRADIENTS, fx.model), { inputFile: join(GRADIENTS, fx.input), batchSize: 4, loss, samples: 3 });
      assert.equal(res.loss.name, loss);
      assert.ok(res.checks.every((c) => c.grade !== "wrong"), `${loss}: ${res.checks.filter((c) => c.grade === "wrong").map((c) => `${c.tensor} ${c.difference}`).join(", ")}`);
      assert.ok(res.checks.some((c) => c.tensor === "emb.weight" && c.checked === 3));
    }
  });

  it("does not call a ReLU exactly at its kink wrong: the one-sided differences disagree there", async () => {
    // y = Relu(x W) with W = 0: every ReLU input is exactly 0, where torch (and we) take slope 0
    // while the central difference sees half the slope.
    const nodes = [node("MatMul", ["x", "W"], ["h"], [], "mm"), node("Relu", ["h"], ["y"], [], "relu")];
    const path = join(tmp, "relu_at_zero.onnx");
    writeFileSync(path, modelBytes(graph(nodes, [floatTensor("W", [8, 4], new Array<number>(32).fill(0))], [valueInfo("x", ["batch", 8])], [valueInfo("y", ["batch", 4])]), 17));
    const r = await checkGradients(path, { samples: 4 });
    const w = r.checks.find((c) => c.tensor === "W")!;
    assert.ok(w.difference > 0.5, `the mismatch is real: ${w.difference}`);
    assert.equal(w.grade, "look closer");
  });

  it("refuses a non-finite loss and models that draw random numbers", async () => {
    await assert.rejects(checkGradients(join(FIXTURES, "nan_weight.onnx")), /the loss is NaN on the probe batch/);
    const nodes = [
      node("RandomUniformLike", ["x"], ["r"], [], "rnd"), node("Add", ["x", "r"], ["h"]),
      node("Gemm", ["h", "W0", "b0"], ["y"], [attr("transB", 1)], "/layers/layers.0/Gemm"),
    ];
    const path = join(tmp, "random.onnx");
    writeFileSync(path, modelBytes(graph(nodes, [weights("W0", [4, 8], 0.3), floatTensor("b0", [4], [0, 0, 0, 0])], [valueInfo("x", ["batch", 8])], [valueInfo("y", ["batch", 4])]), 17));
    await assert.rejects(checkGradients(path), /draws random numbers \(RandomUniformLike rnd\)/);
  });

  it("refuses training-mode Dropout unless told to go on", async () => {
    const g = graph([node("Dropout", ["x", "ratio", "training"], ["y"])], [floatTensor("ratio", [], [0.5]), rawTensor("training", DT.BOOL, [], Uint8Array.from([1]))], [valueInfo("x", [2, 3])], [valueInfo("y", [2, 3])]);
    const model = loadModel("dropout.onnx", { bytes: modelBytes(g, 13) });
    assert.deepEqual(trainingDropout(model), ["Dropout_0"]);
    const feeds = { x: { dtype: "float32" as const, dims: [2, 3], data: new Float32Array(6).fill(1) } };
    await assert.rejects(gradcheck(model, { feeds }), /Gradient checking cannot be combined with dropout/);
    const res = await gradcheck(model, { feeds, allowTrainingDropout: true });
    assert.match(res.warnings[0], /training mode/);
    assert.ok(res.checks.every((c) => c.unavailable), "and the Dropout rule refuses a training-mode node");
  });

  it("onnx-doctor gradcheck prints the table and exits 0 when nothing is wrong", () => {
    const cli = join(__dirname, "..", "..", "dist", "cli.js");
    const p = spawnSync(process.execPath, [cli, "gradcheck", join(FIXTURES, "relu_he_deep.onnx"), "--samples", "3"], { encoding: "utf8", timeout: 120_000 });
    assert.equal(p.status, 0, p.stderr + p.stdout);
    assert.match(p.stdout, /precision: float64/);
    assert.match(p.stdout, /layers\.0\.weight\s+layers\.0\s+parameter\s+3\/8192\s+\S+\s+\S+\s+good/);
    const out = join(tmp, "gc.json");
    const q = spawnSync(process.execPath, [cli, "gradcheck", join(FIXTURES, "relu_he_deep.onnx"), "--samples", "2", "-f", "json", "-o", out], { encoding: "utf8", timeout: 120_000 });
    assert.equal(q.status, 0, q.stderr);
    const json = JSON.parse(readFileSync(out, "utf8"));
    assert.equal(json.precision, "float64");
    assert.equal(json.tolerance.good, 1e-7);
  });
});

function npyInt64(values: number[]): Uint8Array {
  return npyBytes("<i8", [values.length], BigInt64Array.from(values.map(BigInt)));
}

function npyFloat32(values: number[], shape: number[]): Uint8Array {
  return npyBytes("<f4", shape, Float32Array.from(values));
}
