// Gradient checking of every vector-Jacobian rule: small random graphs (broadcasting included)
// whose backward graph is compared with central finite differences through onnxruntime.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { TOLERANCES, gradcheck } from "../../src/autodiff/gradcheck";
import { VJP_RULES } from "../../src/autodiff/rules";
import { loadModel } from "../../src/onnx/load";
import { buildCase, CASES, FIXED } from "./autodiff-cases";

describe("vector-Jacobian rules against finite differences", () => {
  it("every rule in the table has a gradient-check case", () => {
    const covered = new Set(CASES.flatMap((c) => c.ops));
    assert.deepEqual(Object.keys(VJP_RULES).filter((op) => !covered.has(op)), []);
  });

  for (const c of CASES) {
    it(`${c.name} [${c.ops.join(", ")}]`, async () => {
      const { bytes, feeds } = buildCase(c);
      const model = loadModel(`${c.name}.onnx`, { bytes });
      const fixed = FIXED[c.name] ?? {};
      const tensors = Object.entries(c.floats).filter(([t, spec]) => !(t in fixed) && spec.check !== false).map(([t]) => t);
      // The inputs keep clear of kinks, so float32 can take a larger step (less rounding error).
      const r = await gradcheck(model, { feeds, samples: Infinity, tensors, seed: 1, epsilon: { float32: 1e-2 } });
      assert.deepEqual(r.unsupported, [], `unsupported: ${JSON.stringify(r.unsupported)}`);
      const bound = r.precision === "float64" ? 1e-6 : TOLERANCES.float32.good / 5;
      for (const check of r.checks) {
        assert.ok(!check.unavailable, `${check.tensor}: ${check.unavailable}`);
        assert.ok(check.difference <= bound, `${check.tensor} (${r.precision}): difference ${check.difference.toExponential(2)} > ${bound}; |analytic| ${check.analyticNorm}, |numeric| ${check.numericNorm}`);
        assert.ok(check.analyticNorm > 0 || c.ops.includes("Floor"), `${check.tensor}: zero gradient`);
      }
      assert.equal(r.checks.length, tensors.length);
    });
  }
});
