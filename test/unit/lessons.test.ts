// The seed's remaining lessons (issue 5): every fault fixture of scripts/make_lesson_fixtures.py is
// reported and its healthy control is not; architecture verdicts, input statistics and fit numbers
// against PyTorch/numpy; the real transformer (Silero micro, decomposed LayerNorm); and no new
// warnings on the engine's own healthy fixtures.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, it } from "node:test";
import { analyze } from "../../src/index";
import type { Report, Severity } from "../../src/report/types";
import { expected as modelExpected, FIXTURES, npyBytes, REAL, relDiff } from "./helpers";
import { attr, floatTensor, graph, modelBytes, node, rawTensor, DT, valueInfo } from "./build-model";

const LESSONS = join(__dirname, "..", "fixtures", "lessons");
const LESSON_CATEGORIES = [
  "norm.post-norm", "norm.dropout-before-bn", "norm.bn-variance", "export.training-mode", "input.unnormalized",
  "input.correlated", "recurrent.spectral-radius", "numeric.fp16-range", "fit.high-bias", "fit.high-variance",
];

interface LessonExpected {
  model: string;
  description: string;
  input?: string;
  trainData?: string;
  valData?: string;
  options: { target?: "fp32" | "fp16" };
  must: { category: string; severity: Severity; ruleId?: string }[];
  mustNotWarn: string[];
  silentRules: string[];
  architecture?: { placement: string; transformerLayers: number; dModel: number; normForm: string; normKind?: string };
  spectralRadius?: number;
  inputStats?: { mean: number[]; std: number[]; explainedVarianceRatio?: number[]; maxAbsCorrelation?: number };
  fit?: { trainError: number; valError: number };
}

const rank: Record<Severity, number> = { info: 0, warning: 1, error: 2 };
const stems = readdirSync(LESSONS).filter((f) => f.endsWith(".expected.json")).map((f) => f.replace(".expected.json", ""));
const load = (stem: string): LessonExpected => JSON.parse(readFileSync(join(LESSONS, `${stem}.expected.json`), "utf8")) as LessonExpected;
const show = (r: Report): string => r.findings.map((f) => `${f.severity} ${f.ruleId}`).join(", ");

describe("lesson fixtures from PyTorch (issue 5)", () => {
  it("has a fault fixture and a healthy control for every lesson category", () => {
    for (const c of LESSON_CATEGORIES) {
      const faults = stems.filter((s) => load(s).must.some((m) => m.category === c && m.severity !== "info"));
      const controls = stems.filter((s) => load(s).mustNotWarn.includes(c) && load(s).must.every((m) => m.category !== c || m.severity === "info"));
      assert.ok(faults.length >= 1, `no fault fixture for ${c}`);
      assert.ok(controls.length >= 1, `no healthy control for ${c}`);
    }
  });

  for (const stem of stems) {
    const exp = load(stem);
    describe(stem, () => {
      const report = analyze(join(LESSONS, exp.model), {
        inputFile: exp.input ? join(LESSONS, exp.input) : undefined,
        trainData: exp.trainData ? join(LESSONS, exp.trainData) : undefined,
        valData: exp.valData ? join(LESSONS, exp.valData) : undefined,
        target: exp.options.target,
        batchSize: 16,
      });

      it(`reports what it must (${exp.must.map((m) => `${m.category}:${m.severity}`).join(", ") || "nothing"}) and no lesson warning it must not`, async () => {
        const r = await report;
        for (const m of exp.must) {
          assert.ok(r.findings.some((f) => f.category === m.category && (!m.ruleId || f.ruleId === m.ruleId) && rank[f.severity] >= rank[m.severity]),
            `${stem}: expected ${m.ruleId ?? m.category} at ${m.severity} or above; got ${show(r)}`);
        }
        const wrong = r.findings.filter((f) => exp.mustNotWarn.includes(f.category) && f.severity !== "info"
          && !exp.must.some((m) => m.category === f.category && m.severity !== "info"));
        assert.deepEqual(wrong.map((f) => `${f.severity} ${f.ruleId}: ${f.message}`), []);
        assert.deepEqual(r.findings.filter((f) => exp.silentRules.includes(f.ruleId)).map((f) => f.message), []);
      });

      if (exp.architecture) {
        it(`decides ${exp.architecture.placement}, ${exp.architecture.transformerLayers} layers, d_model ${exp.architecture.dModel}`, async () => {
          const a = (await report).architecture!;
          assert.equal(a.placement, exp.architecture!.placement);
          assert.equal(a.transformerLayers, exp.architecture!.transformerLayers);
          assert.equal(a.dModel, exp.architecture!.dModel);
          const blocks = a.blocks.filter((b) => b.kind === "attention" || b.kind === "feed-forward");
          assert.equal(blocks.length, 2 * exp.architecture!.transformerLayers, "one attention and one feed-forward block per layer");
          const used = a.norms.filter((n) => blocks.some((b) => b.norm && b.normModule === n.module));
          assert.ok(used.length > 0 && used.every((n) => n.form === exp.architecture!.normForm), `norm forms ${used.map((n) => n.label)}`);
          if (exp.architecture!.normKind) assert.ok(used.every((n) => n.kind === exp.architecture!.normKind));
        });
      }

      if (exp.spectralRadius !== undefined) {
        it(`measures the recurrent spectral radius ${exp.spectralRadius} (numpy)`, async () => {
          const rec = (await report).architecture!.recurrent;
          assert.equal(rec.length, 1);
          assert.ok(relDiff(rec[0].matrices[0].spectralRadius, exp.spectralRadius!) < 5e-3, `${rec[0].matrices[0].spectralRadius}`);
        });
      }

      if (exp.inputStats) {
        it("describes the input data as numpy does (mean, std, PCA)", async () => {
          const s = (await report).inputData!.inputs[0];
          const e = exp.inputStats!;
          e.mean.forEach((m, k) => assert.ok(Math.abs(s.mean[k] - m) <= 1e-4 * Math.max(1, Math.abs(m), e.std[k]), `mean ${k}: ${s.mean[k]} vs ${m}`));
          e.std.forEach((v, k) => assert.ok(relDiff(s.std[k], v) < 1e-4, `std ${k}: ${s.std[k]} vs ${v}`));
          if (e.explainedVarianceRatio) {
            e.explainedVarianceRatio.forEach((v, k) => assert.ok(Math.abs(s.covariance!.explainedVarianceRatio[k] - v) < 1e-6, `PCA ${k}`));
            assert.ok(Math.abs(s.covariance!.maxAbsCorrelation - e.maxAbsCorrelation!) < 1e-6);
          }
        });
      }

      if (exp.fit) {
        it(`computes train/val error ${exp.fit.trainError}/${exp.fit.valError} as PyTorch does`, async () => {
          const f = (await report).fit!;
          assert.ok(Math.abs(f.train.error - exp.fit!.trainError) < 1e-9 && Math.abs(f.val.error - exp.fit!.valError) < 1e-9, JSON.stringify(f));
        });
      }
    });
  }
});

describe("lesson checks on the engine's healthy fixtures", () => {
  const healthy = ["relu_he_deep", "tanh_xavier", "resnet_bn", "resnet_bn_zero_gamma", "resnet_zero_residual_conv", "lora_mlp", "single_linear_zero"];
  for (const stem of healthy) {
    it(`${stem}: no warning from the lesson rules`, async () => {
      const exp = modelExpected(stem);
      const r = await analyze(join(FIXTURES, exp.model), { inputFile: join(FIXTURES, exp.input), batchSize: 8 });
      assert.deepEqual(r.findings.filter((f) => LESSON_CATEGORIES.includes(f.category) && f.severity !== "info").map((f) => `${f.ruleId}: ${f.message}`), []);
    });
  }
});

describe("input data layout", () => {
  it("a wide 2-D input read by a convolution is one signal (a waveform), not 512 features; a Gemm's 300 inputs stay features", async () => {
    const dir = mkdtempSync(join(tmpdir(), "signal-"));
    const T = 512;
    // waveform [N, T] -> Unsqueeze -> Conv over time; table [N, 300] -> Gemm.
    const audio = graph([node("Unsqueeze", ["x", "axes"], ["x3"]), node("Conv", ["x3", "K"], ["y"], [attr("strides", [8])])],
      [rawTensor("axes", DT.INT64, [1], new Uint8Array(BigInt64Array.from([1n]).buffer)), floatTensor("K", [4, 1, 8], Array.from({ length: 32 }, (_, i) => Math.cos(i)))],
      [valueInfo("x", ["batch", T])], [valueInfo("y", ["batch", 4, T / 8])]);
    const table = graph([node("Gemm", ["x", "W"], ["y"])], [floatTensor("W", [300, 2], Array.from({ length: 600 }, (_, i) => Math.sin(i) / 17))], [valueInfo("x", ["batch", 300])], [valueInfo("y", ["batch", 2])]);
    const write = (name: string, bytes: Uint8Array): string => { const p = join(dir, name); writeFileSync(p, bytes); return p; };
    // Quiet audio: every time step has std 0.05, outside [0.1, 10] one by one.
    const wave = Float32Array.from({ length: 8 * T }, (_, i) => 0.07 * Math.sin(0.37 * i) * Math.cos(0.011 * i * i));
    const a = await analyze(write("audio.onnx", modelBytes(audio, 17)), { inputFile: write("wave.npy", npyBytes("<f4", [8, T], wave)) });
    assert.equal(a.inputData!.inputs[0].features, 1);
    assert.deepEqual(a.findings.filter((f) => f.category === "input.unnormalized").map((f) => f.message), []);
    const rows = Float32Array.from({ length: 8 * 300 }, (_, i) => 100 + 40 * Math.sin(i * 1.3));
    const t = await analyze(write("table.onnx", modelBytes(table, 17)), { inputFile: write("rows.npy", npyBytes("<f4", [8, 300], rows)) });
    assert.equal(t.inputData!.inputs[0].features, 300);
    assert.ok(t.findings.some((f) => f.category === "input.unnormalized"), "features with mean 100 are flagged");
    // torch's x.view(N, -1) before the Linear is a Reshape: still 300 features, not a signal.
    const viewed = graph([node("Reshape", ["x", "flat"], ["xf"]), node("Gemm", ["xf", "W"], ["y"])],
      [rawTensor("flat", DT.INT64, [2], new Uint8Array(BigInt64Array.from([0n, -1n]).buffer)), floatTensor("W", [300, 2], Array.from({ length: 600 }, (_, i) => Math.sin(i) / 17))],
      [valueInfo("x", ["batch", 300])], [valueInfo("y", ["batch", 2])]);
    const v = await analyze(write("viewed.onnx", modelBytes(viewed, 17)), { inputFile: join(dir, "rows.npy") });
    assert.equal(v.inputData!.inputs[0].features, 300);
  });
});

describe("images scaled to [0, 1]", () => {
  it("are info (unit-range), not a warning; the same images standardised per channel give nothing", async () => {
    const dir = mkdtempSync(join(tmpdir(), "unit-range-"));
    const model = join(FIXTURES, "resnet_bn.onnx");
    // Smooth pseudo-images in [0, 1] ([16, 3, 16, 16], as the fixture's probe).
    const n = 16 * 3 * 16 * 16;
    const pixels = Float32Array.from({ length: n }, (_, i) => 0.5 + 0.45 * Math.sin(0.731 * i) * Math.cos(0.017 * i));
    const raw = join(dir, "unit.npy");
    writeFileSync(raw, npyBytes("<f4", [16, 3, 16, 16], pixels));
    const r = await analyze(model, { inputFile: raw, batchSize: 8, loss: "none" });
    const f = r.findings.filter((x) => x.category === "input.unnormalized");
    assert.deepEqual(f.map((x) => `${x.severity} ${x.ruleId}`), ["info input.unnormalized/unit-range"]);
    assert.match(f[0].message, /looks like images scaled to \[0, 1\] without per-channel normalization/);
    const std = join(dir, "standardised.npy");
    writeFileSync(std, npyBytes("<f4", [16, 3, 16, 16], pixels.map((v) => (v - 0.5) / 0.3)));
    const s = await analyze(model, { inputFile: std, batchSize: 8, loss: "none" });
    assert.deepEqual(s.findings.filter((x) => x.category === "input.unnormalized").map((x) => x.ruleId), []);
  });
});

describe("lesson checks on real models", () => {
  const silero = join(REAL, "silero_vad_micro_transformer_2021.onnx");
  it("silero_vad_micro_transformer_2021.onnx: 4 Post-Norm layers with decomposed LayerNorm, d_model 16, no warning", { skip: !existsSync(silero) }, async () => {
    const r = await analyze(silero, { staticOnly: true });
    const a = r.architecture!;
    assert.equal(a.placement, "post-norm");
    assert.equal(a.transformerLayers, 4);
    assert.equal(a.dModel, 16);
    const blocks = a.blocks.filter((b) => b.kind === "attention" || b.kind === "feed-forward");
    assert.deepEqual(blocks.map((b) => `${b.kind} ${b.placement} ${b.normModule}`), [
      "attention post-norm encoder.1.norm1", "feed-forward post-norm encoder.1.norm2",
      "attention post-norm encoder.6.norm1", "feed-forward post-norm encoder.6.norm2",
      "attention post-norm encoder.11.norm1", "feed-forward post-norm encoder.11.norm2",
      "attention post-norm decoder.0.norm1", "feed-forward post-norm decoder.0.norm2",
    ]);
    assert.ok(a.norms.filter((n) => n.kind === "layer").every((n) => n.form === "decomposed" && n.label === "decomposed LayerNorm"));
    assert.equal(a.norms.filter((n) => n.kind === "layer").length, 8);
    const info = r.findings.find((f) => f.ruleId === "norm.placement")!;
    assert.equal(info.severity, "info");
    assert.match(info.message, /4 Post-Norm transformer layers \(4 attention \+ 4 feed-forward residual blocks, decomposed LayerNorm\), d_model 16/);
    assert.deepEqual(r.findings.filter((f) => f.severity !== "info").map((f) => f.ruleId), []);
  });

  const lstm = join(REAL, "silero_vad_v4_lstm.onnx");
  it("silero_vad_v4_lstm.onnx: gated LSTM radii are reported as info, never warned", { skip: !existsSync(lstm) }, async () => {
    const r = await analyze(lstm, { staticOnly: true });
    assert.equal(r.architecture!.recurrent.length, 8);
    assert.ok(r.architecture!.recurrent.every((x) => x.op === "LSTM" && x.matrices.length === 4 && x.matrices.every((m) => m.spectralRadius > 0)));
    assert.deepEqual(r.findings.filter((f) => f.category === "recurrent.spectral-radius" && f.severity !== "info"), []);
  });
});

describe("lesson options on the CLI", () => {
  const CLI = join(__dirname, "..", "..", "dist", "cli.js");
  const run = (...args: string[]) => spawnSync(process.execPath, [CLI, ...args], { encoding: "utf8", timeout: 60_000 });
  const f = (name: string): string => join(LESSONS, name);

  it("--train-data/--val-data print the fit verdict; one without the other is a usage error", () => {
    const p = run("analyze", f("fit_high_variance.onnx"), "--train-data", f("fit_high_variance.train.npz"), "--val-data", f("fit_high_variance.val.npz"));
    assert.equal(p.status, 0, p.stderr);
    assert.match(p.stdout, /warning\s+fit\.high-variance/);
    assert.match(p.stdout, /fit \(classification\): train error 0% .* validation error 8\.2% .*: high-variance/);
    const half = run("analyze", f("fit_high_variance.onnx"), "--train-data", f("fit_high_variance.train.npz"));
    assert.equal(half.status, 2);
    assert.match(half.stderr, /--train-data and --val-data go together/);
  });

  it("--target fp16 turns on the float16 checks; markdown shows the architecture and data section", () => {
    const p = run("analyze", f("fp16_risky.onnx"), "--input", f("fp16_risky.probe.npy"), "--target", "fp16", "-f", "json");
    const r = JSON.parse(p.stdout) as Report;
    assert.deepEqual([...new Set(r.findings.filter((x) => x.category === "numeric.fp16-range").map((x) => x.ruleId))].sort(),
      ["numeric.fp16-range/activation", "numeric.fp16-range/constant", "numeric.fp16-range/epsilon"]);
    const plain = JSON.parse(run("analyze", f("fp16_risky.onnx"), "--input", f("fp16_risky.probe.npy"), "-f", "json").stdout) as Report;
    assert.equal(plain.findings.filter((x) => x.category === "numeric.fp16-range").length, 0, "float32 model without --target: no float16 checks");
    const md = run("analyze", f("transformer_postnorm_6.onnx"), "--static", "-f", "markdown").stdout;
    assert.match(md, /## Architecture and data\n\n- architecture: 6 Post-Norm transformer layers/);
  });
});

describe("0/1 planes", () => {
  it("are categories (a board, a mask), not images in [0, 1]: no unit-range info", async () => {
    const dir = mkdtempSync(join(tmpdir(), "planes-"));
    const n = 16 * 3 * 16 * 16;
    const planes = Float32Array.from({ length: n }, (_, i) => (Math.sin(0.731 * i) * Math.cos(0.017 * i) > 0 ? 1 : 0));
    const file = join(dir, "planes.npy");
    writeFileSync(file, npyBytes("<f4", [16, 3, 16, 16], planes));
    const r = await analyze(join(FIXTURES, "resnet_bn.onnx"), { inputFile: file, batchSize: 8, loss: "none" });
    assert.deepEqual(r.findings.filter((x) => x.category === "input.unnormalized").map((x) => x.ruleId), []);
  });
});

describe("BatchNorms behind an input that is off its scale", () => {
  it("raw 0-255 pixels into a ResNet whose BatchNorms were calibrated on standardised data: one finding that points at the preprocessing", async () => {
    const dir = mkdtempSync(join(tmpdir(), "bn-input-"));
    const pixels = Float32Array.from({ length: 16 * 3 * 16 * 16 }, (_, i) => 127.5 + 127.5 * Math.sin(0.731 * i) * Math.cos(0.017 * i));
    const file = join(dir, "raw.npy");
    writeFileSync(file, npyBytes("<f4", [16, 3, 16, 16], pixels));
    const r = await analyze(join(FIXTURES, "resnet_bn.onnx"), { inputFile: file, batchSize: 8, loss: "none" });
    const bn = r.findings.filter((f) => f.category === "norm.bn-variance");
    assert.deepEqual(bn.map((f) => `${f.severity} ${f.ruleId}`), ["warning norm.bn-variance/input-scale"]);
    assert.match(bn[0].message, /^\d+ of \d+ BatchNorm layers receive statistics far from their running statistics .* and input "input" is not normalized/);
    assert.match(bn[0].fix, /^Preprocess "input" as in training/);
  });

  it("one channel off by 3 std: a milder mismatch keeps its per-BatchNorm findings, each naming the input to rule out first", async () => {
    const dir = mkdtempSync(join(tmpdir(), "bn-input-"));
    const images = Float32Array.from({ length: 16 * 3 * 16 * 16 }, (_, i) => Math.sin(0.731 * i) * Math.cos(0.017 * i) * 1.4 + (Math.floor(i / 256) % 3 === 0 ? 3 : 0));
    const file = join(dir, "shifted.npy");
    writeFileSync(file, npyBytes("<f4", [16, 3, 16, 16], images));
    const r = await analyze(join(FIXTURES, "resnet_bn.onnx"), { inputFile: file, batchSize: 8, loss: "none" });
    assert.ok(r.findings.some((f) => f.category === "input.unnormalized"));
    const bn = r.findings.filter((f) => f.category === "norm.bn-variance");
    assert.ok(bn.length > 1, JSON.stringify(bn.map((f) => f.ruleId)));
    for (const f of bn) {
      assert.notEqual(f.ruleId, "norm.bn-variance/input-scale");
      assert.match(f.message, /Input "input" is not normalized \(see input\.unnormalized\); rule out preprocessing that differs from training first\.$/);
    }
  });
});
