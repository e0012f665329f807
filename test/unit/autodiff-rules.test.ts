// Gradient checking of every vector-Jacobian rule: small random graphs (broadcasting included)
// whose backward graph is compared with central finite differences through onnxruntime.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { TOLERANCES, gradcheck } from "../../src/autodiff/gradcheck";
import { VJP_RULES } from "../../src/autodiff/rules";
import { loadModel } from "../../src/onnx/load";
import { buildCase, CASES, FIXED, iattr } from "./autodiff-cases";
import { DT, floatTensor, graph, modelBytes, node, valueInfo } from "./build-model";

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

  it("Cast keeps a model's mixed float32/float64 types in the backward graph (checked in float32, which leaves the model's own types)", async () => {
    // x -> MatMul(W) -> Cast(double) -> Tanh -> Cast(float) -> y: the gradient reaching the MatMul
    // must be float32 again, or onnxruntime refuses the backward graph (Mul bound to two types).
    const g = graph([
      node("MatMul", ["x", "W"], ["h"]), node("Cast", ["h"], ["hd"], [iattr("to", DT.DOUBLE)]), node("Tanh", ["hd"], ["t"]), node("Cast", ["t"], ["y"], [iattr("to", DT.FLOAT)]),
    ], [floatTensor("W", [4, 3], Array.from({ length: 12 }, (_, i) => Math.sin(i + 1)))], [valueInfo("x", [2, 4])], [valueInfo("y", [2, 3])]);
    const feeds = { x: { dtype: "float32" as const, dims: [2, 4], data: Float32Array.from({ length: 8 }, (_, i) => Math.cos(i)) } };
    const r = await gradcheck(loadModel("cast.onnx", { bytes: modelBytes(g, 13) }), { feeds, samples: Infinity, seed: 1, precision: "float32", epsilon: { float32: 1e-2 } });
    assert.deepEqual(r.unsupported, []);
    assert.equal(r.precision, "float32");
    assert.deepEqual(r.checks.map((c) => c.tensor).sort(), ["W", "x"]);
    for (const c of r.checks) assert.ok(c.analyticNorm > 0 && c.difference <= TOLERANCES.float32.good / 5, JSON.stringify(c));
  });
});
