// Per-layer gradients of the generated backward graph against PyTorch autograd
// (scripts/make_gradient_fixtures.py): the l2 of d loss / d layer output and of d loss / d weight,
// for the cross-entropy and mean-square losses, within 1e-3 relative.
import assert from "node:assert/strict";
import { join } from "node:path";
import { describe, it } from "node:test";
import { analyze } from "../../src/index";
import { GRADIENTS, gradientFixture, gradientStems } from "./gradient-fixtures";
import { relDiff } from "./helpers";

describe("gradients against PyTorch autograd", () => {
  it("has the fixtures issue 4 asks for", () => {
    for (const s of ["sigmoid_deep", "relu_he_deep", "resnet_bn", "cnn_pool_bn", "transformer_prenorm", "transformer_postnorm"]) assert.ok(gradientStems.includes(s), s);
  });

  it("has the recurrent fixtures: 2-layer LSTM, bidirectional GRU, 2-layer bidirectional LSTM", () => {
    for (const s of ["lstm_2layer", "gru_bidir", "lstm_bidir_2layer"]) assert.ok(gradientStems.includes(s), s);
  });

  for (const stem of gradientStems) {
    const fx = gradientFixture(stem);
    for (const loss of ["ce", "mse"] as const) {
      it(`${stem} (opset ${fx.opset}), loss ${loss}: every layer's output- and weight-gradient l2 within 1e-3 of torch`, async () => {
        const r = await analyze(join(GRADIENTS, fx.model), { inputFile: join(GRADIENTS, fx.input), batchSize: fx.batch, loss, labelsFile: loss === "ce" ? join(GRADIENTS, fx.labels) : undefined });
        assert.equal(r.probe.ran, true, r.probe.error);
        assert.equal(r.probe.loss?.name, loss);
        assert.ok(relDiff(r.probe.loss!.value!, fx.losses[loss].value) < 1e-4, `loss ${r.probe.loss!.value} vs torch ${fx.losses[loss].value}`);
        assert.deepEqual(r.probe.gradientCoverage?.unsupportedOps, []);
        const worst = { output: 0, weight: 0 };
        for (const e of fx.losses[loss].layers) {
          const layer = r.layers.find((l) => l.node === e.onnxNode);
          assert.ok(layer, `${e.module}: no layer for node ${e.onnxNode}`);
          assert.equal(layer.activation?.tensor, e.onnxTensor, `${e.module}: the layer reports another tensor`);
          assert.ok(layer.gradient, `${e.module}: no output gradient`);
          assert.ok(layer.weight?.gradient, `${e.module}: no weight gradient`);
          const dOut = relDiff(layer.gradient.l2, e.outputGradL2);
          const dW = relDiff(layer.weight.gradient.l2, e.weightGradL2);
          worst.output = Math.max(worst.output, dOut);
          worst.weight = Math.max(worst.weight, dW);
          assert.ok(dOut < 1e-3, `${e.module}: output-gradient l2 ${layer.gradient.l2} vs torch ${e.outputGradL2}`);
          assert.ok(dW < 1e-3, `${e.module}: weight-gradient l2 ${layer.weight.gradient.l2} vs torch ${e.weightGradL2}`);
        }
        if (process.env.GRADIENT_AGREEMENT) process.stderr.write(`${stem} ${loss}: worst relative difference output ${worst.output.toExponential(1)}, weight ${worst.weight.toExponential(1)}\n`);
      });
    }
  }
});
