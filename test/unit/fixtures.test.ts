// Data-driven tests over the PyTorch fixtures (scripts/make_fixtures.py): every fixture's
// findings against what must and must not be reported, and its per-layer activation std against
// PyTorch's on the same saved probe batch.
import assert from "node:assert/strict";
import { readdirSync } from "node:fs";
import { join } from "node:path";
import { describe, it } from "node:test";
import { analyze } from "../../src/index";
import { expected, FIXTURES, relDiff } from "./helpers";

const stems = readdirSync(FIXTURES).filter((f) => f.endsWith(".expected.json")).map((f) => f.replace(".expected.json", ""));

describe("fixtures from PyTorch", () => {
  it("has the fixtures the engine issue asks for", () => {
    for (const s of ["tanh_tiny_init", "tanh_saturating", "relu_3x_he", "zero_mlp", "constant_mlp", "dead_relu", "nan_weight",
      "relu_he_deep", "tanh_xavier", "resnet_bn", "resnet_bn_zero_gamma", "resnet_zero_residual_conv", "lora_mlp", "single_linear_zero"]) {
      assert.ok(stems.includes(s), `missing fixture ${s}`);
    }
  });

  for (const stem of stems) {
    describe(stem, () => {
      const exp = expected(stem);
      // Batch 8 over the 16-row probe: two batches, so the streamed merge is exercised too.
      const report = analyze(join(FIXTURES, exp.model), { inputFile: join(FIXTURES, exp.input), batchSize: 8 });

      it("reports what must be reported, at warning or above", async () => {
        const r = await report;
        for (const c of exp.expectedFindings.must) {
          assert.ok(r.findings.some((f) => f.category === c && f.severity !== "info"), `${stem}: expected ${c}; got ${r.findings.map((f) => `${f.severity} ${f.category}`).join(", ")}`);
        }
      });

      it("does not warn about what it must not", async () => {
        const r = await report;
        const quiet = [...exp.expectedFindings.mustNot, ...exp.expectedFindings.infoOnly];
        const wrong = r.findings.filter((f) => quiet.includes(f.category) && f.severity !== "info");
        assert.deepEqual(wrong.map((f) => `${f.category} ${f.layer}: ${f.message}`), []);
      });

      it("matches PyTorch's per-layer activation std within 1e-3 relative", async () => {
        const r = await report;
        assert.equal(r.probe.ran, true, r.probe.error);
        for (const e of exp.layers) {
          const layer = r.layers.find((l) => l.activation?.tensor === e.onnxTensor);
          assert.ok(layer, `${stem}: no layer reports tensor ${e.onnxTensor} (${e.module})`);
          assert.equal(layer.module ?? layer.name, e.module.replace(/#\d+$/, ""), `module path of ${e.onnxTensor}`);
          const a = layer.activation!;
          if (a.nonFinite > 0) {
            // A tensor holding NaN has NaN moments (as torch.std gives); the fixture lists finite-only ones.
            assert.ok(Number.isNaN(a.std), `${e.module}: NaN expected in std when the tensor holds NaN`);
            continue;
          }
          if (e.std === null) {
            assert.ok(!Number.isFinite(a.std), `${e.module}: std should be NaN`);
            continue;
          }
          if (e.std === 0) assert.equal(a.std, 0, `${e.module} std`);
          else assert.ok(relDiff(a.std, e.std) < 1e-3, `${e.module}: std ${a.std} vs torch ${e.std}`);
          assert.ok(Math.abs(a.mean - e.mean!) <= 1e-3 * Math.max(e.std, 1e-6) + 1e-7, `${e.module}: mean ${a.mean} vs torch ${e.mean}`);
          assert.ok(Math.abs(a.zeroFraction - e.zeroFraction) < 1e-9, `${e.module}: zero fraction ${a.zeroFraction} vs ${e.zeroFraction}`);
        }
      });
    });
  }
});
