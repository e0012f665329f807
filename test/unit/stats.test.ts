import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, it } from "node:test";
import { parseNpy } from "../../src/probe/npy";
import { histogram } from "../../src/stats/histogram";
import { moments, RunningMoments, SHAPE_SAMPLE } from "../../src/stats/moments";
import { Random } from "../../src/stats/random";
import { instrumentStatistics, tapOutputNames } from "../../src/instrument/stats-graph";
import { loadModel } from "../../src/onnx/load";
import { RuntimeSession } from "../../src/runtime/session";
import { floatTensor, graph, modelBytes, node, valueInfo } from "./build-model";
import { FIXTURES } from "./helpers";

describe("statistics", () => {
  it("merging batch summaries gives the variance of all data (hand-computed)", () => {
    const a = [1, 2, 3, 4];
    const b = [10, 20];
    const run = new RunningMoments();
    for (const part of [a, b]) {
      const m = part.reduce((x, y) => x + y, 0) / part.length;
      run.add(part.length, m, part.reduce((x, y) => x + (y - m) ** 2, 0));
    }
    // all: mean 40/6, population variance = (1+4+9+16+100+400)/6 - (40/6)^2
    assert.ok(Math.abs(run.mean - 40 / 6) < 1e-12);
    assert.ok(Math.abs(run.variance - (530 / 6 - (40 / 6) ** 2)) < 1e-12);
  });

  it("moments agree with a plain two-pass computation for every length (the unrolled loop's tail)", () => {
    const r = new Random(11);
    for (const n of [1, 2, 3, 4, 5, 7, 10, 101]) {
      const drawn = Array.from({ length: n }, (_, i) => (i % 3 === 0 ? 0 : r.normal() * 3 + 1));
      for (const typed of [Float32Array.from(drawn), Float64Array.from(drawn)]) {
        const v = Array.from(typed);
        const mean = v.reduce((a, x) => a + x, 0) / n;
        const std = Math.sqrt(v.reduce((a, x) => a + (x - mean) ** 2, 0) / n);
        const m = moments(typed);
        assert.ok(Math.abs(m.mean - mean) <= 1e-12 * Math.max(1, Math.abs(mean)), `${n} mean`);
        assert.ok(Math.abs(m.std - std) <= 1e-9 * Math.max(1, std), `${n} std ${m.std} vs ${std}`);
        assert.deepEqual([m.min, m.max, m.zeroFraction], [Math.min(...v), Math.max(...v), v.filter((x) => x === 0).length / n], `${n}`);
      }
    }
  });

  it("moments: kurtosis of a uniform sample is near -1.2 and NaN is counted, not averaged", () => {
    const r = new Random(1);
    const u = Float64Array.from({ length: 200_000 }, () => r.uniform());
    assert.ok(Math.abs(moments(u).kurtosis + 1.2) < 0.02);
    // Past SHAPE_SAMPLE the shape comes from blocks spread over the whole tensor: a matrix whose
    // second half is Laplace (kurtosis 3) and first half uniform (-1.2) mixes to the value of the
    // whole, 5.89 by hand (fourth moment (1/5 + 24)/2 over variance ((1/3 + 2)/2)^2, minus 3),
    // which a sample from the first half alone would miss.
    const n = 3 * SHAPE_SAMPLE;
    const mixed = Float32Array.from({ length: n }, (_, i) => (i < n / 2 ? 2 * r.uniform() - 1 : Math.log(r.uniform()) * (r.uniform() < 0.5 ? -1 : 1)));
    assert.ok(Math.abs(moments(mixed).kurtosis - 5.89) < 0.3, `${moments(mixed).kurtosis}`);
    const m = moments([1, NaN, 3, Infinity]);
    assert.deepEqual([m.mean, m.nonFinite, m.min, m.max], [2, 2, 1, 3]);
  });

  it("histogram bins values between lo and hi", () => {
    // width 0.25: 0 and 0.1 in bin 0, 0.5 in bin 2, 0.99 and the upper edge 1 in bin 3.
    assert.deepEqual(histogram([0, 0.1, 0.5, 0.99, 1], 0, 1, 4).counts, [2, 0, 1, 2]);
  });

  it("parses a NumPy .npy file written by numpy", () => {
    const t = parseNpy(readFileSync(join(FIXTURES, "tanh_tiny_init.probe.npy")), "probe");
    assert.deepEqual([t.dtype, t.dims], ["float32", [16, 128]]);
    assert.ok(Math.abs(moments(t.data as Float32Array).std - 1) < 0.05, "N(0,1) probe");
  });
});

describe("in-graph statistics", () => {
  it("the sum of squared deviations is exact to float32 both ways: one pass for a centred tensor, the second pass when the mean dwarfs the spread", async () => {
    // y = x + 1000 with std 0.01: one-pass Σy² − n·mean² would be 4e9 − 4e9 in float32 (ulp 512)
    // against a true m2 of about 0.4, so only the If's second pass can get it right.
    const n = 4096;
    const r = new Random(3);
    const x = Float32Array.from({ length: n }, () => r.normal() * 0.01);
    // z = x * 1e20: Σz² overflows float32, so m2 is Inf either way (never Inf - Inf = NaN).
    const g = graph([node("Add", ["x", "c"], ["y"]), node("Mul", ["x", "big"], ["z"])], [floatTensor("c", [], [1000]), floatTensor("big", [], [1e20])],
      [valueInfo("x", ["batch", 4])], [valueInfo("y", ["batch", 4]), valueInfo("z", ["batch", 4])]);
    const model = loadModel("mem.onnx", { bytes: modelBytes(g) });
    const { bytes, outputs } = instrumentStatistics(model, [{ tensor: "x" }, { tensor: "y" }, { tensor: "z" }]);
    const session = await RuntimeSession.open(bytes, new Map());
    const out = await session.run({ x: { dtype: "float32", dims: [n / 4, 4], data: x } }, outputs.flatMap(tapOutputNames));
    await session.release();
    const y = x.map((v) => Math.fround(v + 1000));
    for (const [values, o] of [[x, outputs[0]], [y, outputs[1]]] as const) {
      const mean = values.reduce((a, v) => a + v, 0) / n;
      const m2 = values.reduce((a, v) => a + (v - mean) ** 2, 0);
      const got = Number(out[o.m2].data[0]);
      assert.ok(Math.abs(got - m2) / m2 < 1e-3, `m2 ${got} vs ${m2} (mean ${mean})`);
    }
    assert.equal(Number(out[outputs[2].m2].data[0]), Infinity);
  });
});
