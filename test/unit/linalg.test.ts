// src/stats/linalg.ts against numpy (test/fixtures/lessons/linalg_oracle.json, written by
// scripts/make_lesson_fixtures.py) and against values computed by hand.
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, it } from "node:test";
import { parseNpy } from "../../src/probe/npy";
import { conditionNumber, correlation, CovarianceAccumulator, explainedVarianceRatios, spectralRadius, symmetricEigenvalues } from "../../src/stats/linalg";
import { relDiff } from "./helpers";

const LESSONS = join(__dirname, "..", "fixtures", "lessons");
interface Case { file: string; kind: "general" | "data"; spectralRadius?: number; mean?: number[]; covariance?: number[][]; eigenvalues?: number[]; explainedVarianceRatio?: number[]; conditionNumber?: number }
const oracle = JSON.parse(readFileSync(join(LESSONS, "linalg_oracle.json"), "utf8")) as { cases: Case[] };
const matrix = (file: string): { data: Float64Array; dims: readonly number[] } => {
  const t = parseNpy(readFileSync(join(LESSONS, file)), file);
  return { data: Float64Array.from(t.data as Float64Array), dims: t.dims };
};

describe("linear algebra (src/stats/linalg.ts)", () => {
  for (const c of oracle.cases.filter((x) => x.kind === "general")) {
    it(`spectral radius of ${c.file} matches numpy.linalg.eigvals (${c.spectralRadius!.toFixed(4)})`, () => {
      const { data, dims } = matrix(c.file);
      assert.ok(relDiff(spectralRadius(data, dims[0]), c.spectralRadius!) < 2e-3, `${spectralRadius(data, dims[0])}`);
    });
  }

  it("spectral radius by hand: diag(1.5, 0.5) is 1.5, a rotation by 90 degrees scaled 0.9 is 0.9, a nilpotent matrix is 0", () => {
    assert.ok(Math.abs(spectralRadius([1.5, 0, 0, 0.5], 2) - 1.5) < 1e-9);
    assert.ok(Math.abs(spectralRadius([0, -0.9, 0.9, 0], 2) - 0.9) < 1e-9, "complex pair +-0.9i");
    assert.equal(spectralRadius([0, 1, 0, 0], 2), 0);
    assert.ok(Number.isNaN(spectralRadius([NaN, 0, 0, 1], 2)));
  });

  const data = oracle.cases.find((x) => x.kind === "data")!;
  it("streaming covariance, Jacobi eigenvalues, PCA ratios and condition number match numpy", () => {
    const { data: x, dims } = matrix(data.file);
    const [n, d] = dims;
    const acc = new CovarianceAccumulator(d);
    for (let i = 0; i < n; i++) acc.add(x, i * d);
    assert.equal(acc.count, n);
    acc.mean().forEach((m, i) => assert.ok(Math.abs(m - data.mean![i]) < 1e-10));
    const cov = acc.covariance();
    for (let i = 0; i < d; i++) for (let j = 0; j < d; j++) assert.ok(Math.abs(cov[i * d + j] - data.covariance![i][j]) < 1e-9 * Math.max(1, Math.abs(data.covariance![i][j])));
    const eig = symmetricEigenvalues(cov, d);
    eig.forEach((e, i) => assert.ok(relDiff(e, data.eigenvalues![i]) < 1e-9, `eigenvalue ${i}: ${e} vs ${data.eigenvalues![i]}`));
    explainedVarianceRatios(eig).forEach((r, i) => assert.ok(Math.abs(r - data.explainedVarianceRatio![i]) < 1e-10));
    assert.ok(relDiff(conditionNumber(eig), data.conditionNumber!) < 1e-8);
  });

  it("by hand: the covariance of (1,2),(3,6),(5,10) is [[8/3,16/3],[16/3,32/3]], rank 1, correlation 1", () => {
    const acc = new CovarianceAccumulator(2);
    for (const row of [[1, 2], [3, 6], [5, 10]]) acc.add(row);
    const c = acc.covariance();
    [8 / 3, 16 / 3, 16 / 3, 32 / 3].forEach((v, i) => assert.ok(Math.abs(c[i] - v) < 1e-12));
    const eig = symmetricEigenvalues(c, 2);
    assert.ok(Math.abs(eig[0] - 40 / 3) < 1e-12 && Math.abs(eig[1]) < 1e-12);
    assert.equal(conditionNumber(eig), Infinity);
    assert.ok(Math.abs(correlation(c, 2)[1] - 1) < 1e-12);
    assert.equal(acc.add([NaN, 1]), false, "rows with NaN are skipped");
  });
});
