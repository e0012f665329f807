// Real ONNX models made by other people (../shared/models/real, see its MANIFEST.md).
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { describe, it } from "node:test";
import { analyze } from "../../src/index";
import type { ProbeOptions } from "../../src/probe/inputs";
import { REAL } from "./helpers";

const CLI = join(__dirname, "..", "..", "dist", "cli.js");

/** Probe settings a user would pass for each model (documented inputs in the MANIFEST). */
const runnable: Record<string, ProbeOptions & { minLayersWithStats: number }> = {
  "mnist_cntk.onnx": { minLayersWithStats: 2 },
  "ch_ppocr_mobile_v2.0_cls_infer.onnx": { dims: { "p2o.DynamicDimension.1": 48, "p2o.DynamicDimension.2": 192 }, minLayersWithStats: 80 },
  "silero_vad_micro_transformer_2021.onnx": { dims: { samples: 4000 }, minLayersWithStats: 25 },
  // Its LSTMs and convs sit inside (nested) If branches: the probe inlines the 16 kHz branches.
  "silero_vad_v4_lstm.onnx": { dims: { sequence: 512 }, fill: { sr: 16000, h: 0, c: 0 }, minLayersWithStats: 20 },
  "light_resnet50.onnx": { minLayersWithStats: 100 },
};

describe("real models", () => {
  if (!existsSync(REAL)) {
    it(`real models (not found at ${REAL}; set ONNX_DOCTOR_REAL_MODELS)`, { skip: true }, () => {});
    return;
  }
  for (const [file, options] of Object.entries(runnable)) {
    it(`${file}: probes without errors and gives per-layer activation statistics`, async () => {
      const r = await analyze(join(REAL, file), { ...options, batchSize: 2, batches: 1 });
      assert.equal(r.probe.ran, true, r.probe.error);
      const withStats = r.layers.filter((l) => l.activation && Number.isFinite(l.activation.std));
      assert.ok(withStats.length >= options.minLayersWithStats, `${withStats.length} layers with statistics`);
      assert.ok(r.layers.length > 0);
      // Every layer gets gradient statistics (a backward graph onnxruntime refuses would give none).
      const coverage = r.probe.gradientCoverage;
      assert.ok(coverage && coverage.error === undefined && coverage.supported === coverage.layers, JSON.stringify(coverage));
      // Trained models: the initialisation rules must stay quiet (they would be false alarms).
      if (file !== "light_resnet50.onnx") {
        assert.equal(r.model.weightsLookTrained, true);
        assert.deepEqual(r.findings.filter((f) => f.severity !== "info").map((f) => `${f.category} ${f.layer}`), []);
      } else {
        // It explodes, and it already has 53 BatchNorms: the fix must not say "add normalization".
        const exploding = r.findings.filter((f) => f.category === "activation.exploding" || f.category === "gradient.exploding");
        assert.ok(exploding.length > 0 && exploding.every((f) => /already has 53 normalization layers/.test(f.fix) && !/add normalization/.test(f.fix)), JSON.stringify(exploding.map((f) => f.fix)));
      }
    });
  }

  it("light_resnet50.onnx (every weight is ConstantOfShape(0.02)) is reported init.symmetric on its convs", async () => {
    const r = await analyze(join(REAL, "light_resnet50.onnx"), { staticOnly: true });
    const sym = r.findings.filter((f) => f.category === "init.symmetric" && f.severity === "error");
    assert.equal(sym.filter((f) => / \(Conv /.test(f.message)).length, 53, "one per Conv (53 convs)");
    assert.equal(sym.length, 54, "and the final Gemm");
    assert.match(sym[0].message, /every weight equals 0\.02 \(ConstantOfShape\)/);
  });

  it("silero_vad_v4_lstm.onnx without its flags: the failure's fix names the defaulted dims and the inputs that need --fill", async () => {
    const r = await analyze(join(REAL, "silero_vad_v4_lstm.onnx"), { batchSize: 2, batches: 1, loss: "none" });
    const f = r.findings.find((x) => x.ruleId === "model.unsupported/probe");
    assert.match(f?.fix ?? "", /dynamic dimensions were defaulted to .*sequence=64; set them with --dim name=value; inputs sr, h, c got synthetic values; give constants the model expects \(a sample rate, a recurrent state\) with --fill name=value\.$/);
  });

  it("silero_vad_v4_lstm.onnx: LSTM weights inside If branches are found", async () => {
    const r = await analyze(join(REAL, "silero_vad_v4_lstm.onnx"), { staticOnly: true });
    assert.ok(r.layers.filter((l) => l.op === "LSTM").length >= 2);
  });

  it("silero_vad_v4_lstm.onnx: the probe follows the If branches sr=16000 takes and measures the LSTMs inside", async () => {
    const r = await analyze(join(REAL, "silero_vad_v4_lstm.onnx"), { dims: { sequence: 512 }, fill: { sr: 16000, h: 0, c: 0 }, batchSize: 2, batches: 1 });
    assert.ok(r.probe.branches?.includes("If_25 -> then_branch"), String(r.probe.branches));
    const lstms = r.layers.filter((l) => l.op === "LSTM" && l.activation);
    assert.equal(lstms.length, 2, "the two LSTMs of the 16 kHz model");
    assert.ok(lstms.every((l) => l.activation!.std > 0.05 && l.activation!.std < 1), lstms.map((l) => l.activation!.std).join(", "));
  });

  it("silero_vad_v4_lstm.onnx: gradients reach the two LSTMs (and every layer before them) inside the taken branches", async () => {
    const r = await analyze(join(REAL, "silero_vad_v4_lstm.onnx"), { dims: { sequence: 512 }, fill: { sr: 16000, h: 0, c: 0 }, batchSize: 2, batches: 1 });
    const cov = r.probe.gradientCoverage!;
    assert.deepEqual(cov.unsupportedOps, []);
    const probed = r.layers.filter((l) => l.activation);
    assert.equal(cov.supported, probed.length, `${cov.supported} of ${probed.length} probed layers have gradients`);
    const lstms = probed.filter((l) => l.op === "LSTM");
    assert.equal(lstms.length, 2);
    for (const l of probed) assert.ok(l.gradient && l.gradient.l2 > 0 && l.weight?.gradient && l.weight.gradient.l2 > 0, `${l.name}: ${JSON.stringify(l.gradient)}`);
  });

  const negative: Record<string, RegExp> = {
    "image_classifier16.onnx": /model\.invalid: external data file "2efa3527-1996-11ef-8eaf-0068ebc1adf8\.data" for tensor \S+ is missing/,
    "test_gradient_of_add.onnx": /Gradient\(-1\) is not a registered function\/op/,
    "superres_prepost_op18.onnx": /DecodeImage\(-1\) is not a registered function\/op/,
    "test_model_0_no_opt.onnx": /Non concat axis dimensions must match/,
  };
  for (const [file, pattern] of Object.entries(negative)) {
    it(`negative/${file}: one clear line and a non-zero exit`, () => {
      const p = spawnSync(process.execPath, [CLI, "analyze", join(REAL, "negative", file)], { encoding: "utf8", timeout: 60_000 });
      assert.notEqual(p.status, 0);
      const text = p.stdout + p.stderr;
      assert.match(text, pattern);
      assert.doesNotMatch(text, /\n\s+at .+:\d+:\d+\)?\n/, "no stack trace");
      const errorLines = text.split("\n").filter((l) => pattern.test(l));
      assert.ok(errorLines.length >= 1, "the reason fits on one line");
    });
  }
});
