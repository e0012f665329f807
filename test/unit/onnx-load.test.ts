import assert from "node:assert/strict";
import { mkdirSync, mkdtempSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, it } from "node:test";
import { analyze } from "../../src/index";
import { DoctorError } from "../../src/onnx/errors";
import type { AttributeProto, TensorProto } from "../../src/onnx/gen/onnx_pb";
import { loadModel } from "../../src/onnx/load";
import { RuntimeSession } from "../../src/runtime/session";
import { attr, DT, externalTensor, floatTensor, graph, modelBytes, node, rawTensor, valueInfo } from "./build-model";

function tmp(): string {
  return mkdtempSync(join(tmpdir(), "doctor-test-"));
}

function write(dir: string, name: string, bytes: Uint8Array): string {
  const p = join(dir, name);
  writeFileSync(p, bytes);
  return p;
}

const weights = Array.from({ length: 16 }, (_, i) => (i - 7.5) / 10);
const linear = (w: string) => graph([node("MatMul", ["x", w], ["h"], [], "/fc/MatMul"), node("Relu", ["h"], ["y"], [], "/act/Relu")], []);

function invalid(fn: () => unknown, pattern: RegExp): void {
  assert.throws(fn, (e: unknown) => e instanceof DoctorError && e.code === "model.invalid" && pattern.test(e.message));
}

describe("loading ONNX", () => {
  it("reads float16 and bfloat16 raw data exactly", () => {
    // 1, -2, 0.5, 65504 (max half), Inf as IEEE half; 1, -2 as bfloat16.
    const half = new Uint16Array([0x3c00, 0xc000, 0x3800, 0x7bff, 0x7c00]);
    const bf = new Uint16Array([0x3f80, 0xc000]);
    const g = graph([node("Identity", ["x"], ["y"])], [rawTensor("h", DT.FLOAT16, [5], new Uint8Array(half.buffer)), rawTensor("b", DT.BFLOAT16, [2], new Uint8Array(bf.buffer))]);
    const m = loadModel("mem.onnx", { bytes: modelBytes(g) });
    assert.deepEqual(Array.from(m.constants.get("h")!.values()), [1, -2, 0.5, 65504, Infinity]);
    assert.deepEqual(Array.from(m.constants.get("b")!.values()), [1, -2]);
  });

  it("decodes int4/uint4 and the four float8 weights, and blocked DequantizeLinear, exactly as onnxruntime dequantizes them", async () => {
    // Every byte pattern once (int4: every nibble pair), dequantized by a graph whose output is the
    // DequantizeLinear result: onnxruntime is the oracle for our decoding of the same initializers.
    const all = Uint8Array.from({ length: 256 }, (_, i) => i);
    const cases: { type: DT; dims: number[]; raw: Uint8Array; scale: TensorProto; zero?: TensorProto; attrs?: AttributeProto[] }[] = [
      { type: DT.INT4, dims: [512], raw: all, scale: floatTensor("s", [], [0.5]) },
      { type: DT.UINT4, dims: [511], raw: all, scale: floatTensor("s", [], [0.25]) },
      ...[DT.FLOAT8E4M3FN, DT.FLOAT8E4M3FNUZ, DT.FLOAT8E5M2, DT.FLOAT8E5M2FNUZ].map((type) => ({ type, dims: [256], raw: all, scale: floatTensor("s", [], [1]) })),
      // int8 [4, 6] in blocks of 3 along axis 1: scales [4, 2].
      { type: DT.INT8, dims: [4, 6], raw: Uint8Array.from({ length: 24 }, (_, i) => (i * 37) & 0xff), scale: floatTensor("s", [4, 2], [1, 2, 3, 4, 5, 6, 7, 8].map((v) => v / 8)), attrs: [attr("axis", 1), attr("block_size", 3)] },
    ];
    for (const c of cases) {
      const g = graph([node("DequantizeLinear", ["q", "s"], ["y"], c.attrs ?? [])], [rawTensor("q", c.type, c.dims, c.raw), c.scale], [], [valueInfo("y", c.dims)]);
      const bytes = modelBytes(g, 21, 10);
      const ours = Array.from(loadModel("dq.onnx", { bytes }).constants.get("y")!.values());
      const session = await RuntimeSession.open(bytes, new Map());
      try {
        const ort = Array.from((await session.run({}, ["y"])).y.data as Float32Array);
        assert.equal(ours.length, ort.length);
        ours.forEach((v, i) => assert.ok(Object.is(v, ort[i]) || v === ort[i], `${DT[c.type]} element ${i}: ours ${v}, onnxruntime ${ort[i]}`));
      } finally {
        await session.release();
      }
    }
  });

  it("says which integer-weight ops (QOperator format) it does not analyse, instead of '0 layers, no problems'", async () => {
    const u8 = (name: string, dims: number[], v: number[]): TensorProto => rawTensor(name, DT.UINT8, dims, Uint8Array.from(v));
    const g = graph([node("QuantizeLinear", ["x", "xs", "xz"], ["xq"]), node("QLinearMatMul", ["xq", "xs", "xz", "w", "ws", "wz", "ys", "yz"], ["yq"]), node("DequantizeLinear", ["yq", "ys", "yz"], ["y"])],
      [floatTensor("xs", [], [0.05]), u8("xz", [], [128]), u8("w", [4, 4], Array.from({ length: 16 }, (_, i) => 100 + i * 3)), floatTensor("ws", [], [0.02]), u8("wz", [], [128]), floatTensor("ys", [], [0.1]), u8("yz", [], [128])]);
    const path = write(tmp(), "qlinear.onnx", modelBytes(g, 13));
    for (const staticOnly of [true, false]) {
      const rep = await analyze(path, { staticOnly });
      assert.equal(rep.layers.length, 0);
      const f = rep.findings.find((x) => x.ruleId === "model.unsupported/integer-layers");
      assert.ok(f && f.severity === "info", JSON.stringify(rep.findings));
      assert.match(f.message, /^1 node\(s\) compute with integer weights inside the op \(QLinearMatMul ×1\)/);
    }
  });

  it("resolves Constant nodes inside If branches, ConstantOfShape, Identity chains, Transpose and DequantizeLinear", () => {
    const branch = graph([node("Constant", [], ["wc"], [attr("value", floatTensor("", [2], [3, 4]))])], [], [], [valueInfo("wc", [2])]);
    const q = rawTensor("q", DT.INT8, [2, 2], new Uint8Array(new Int8Array([10, -10, 20, 4]).buffer));
    const g = graph([
      node("If", ["cond"], ["z"], [attr("then_branch", branch), attr("else_branch", branch)]),
      node("ConstantOfShape", ["shape"], ["filled"], [attr("value", floatTensor("", [1], [0.25]))]),
      node("Identity", ["w"], ["w1"]), node("Identity", ["w1"], ["w2"]),
      node("Transpose", ["w"], ["wt"]),
      node("DequantizeLinear", ["q", "scale", "zp"], ["dq"], [attr("axis", 0)]),
    ], [
      floatTensor("w", [2, 3], [1, 2, 3, 4, 5, 6]),
      create64("shape", [2, 3]),
      q, floatTensor("scale", [2], [0.5, 2]), rawTensor("zp", DT.INT8, [2], new Uint8Array(new Int8Array([0, 4]).buffer)),
    ]);
    const m = loadModel("mem.onnx", { bytes: modelBytes(g) });
    assert.deepEqual(Array.from(m.constants.get("wc")!.values()), [3, 4]);
    const filled = m.constants.get("filled")!;
    assert.deepEqual([filled.dims, filled.fill], [[2, 3], 0.25]);
    assert.deepEqual(Array.from(m.constants.get("w2")!.values()), [1, 2, 3, 4, 5, 6]);
    assert.deepEqual(Array.from(m.constants.get("wt")!.values()), [1, 4, 2, 5, 3, 6]);
    assert.deepEqual(m.constants.get("wt")!.dims, [3, 2]);
    // Per-axis (axis 0): row 0 scale 0.5 zero 0, row 1 scale 2 zero 4.
    assert.deepEqual(Array.from(m.constants.get("dq")!.values()), [5, -5, 32, 0]);
  });

  it("reads external data by offset and length, and probes the model", async () => {
    const dir = tmp();
    const data = new Float32Array([0, 0, ...weights]);
    write(dir, "weights.bin", new Uint8Array(data.buffer));
    const path = write(dir, "model.onnx", modelBytes(linear("w")));
    // Rewrite with an external initializer (8-byte offset).
    const g = linear("w");
    g.initializer.push(externalTensor("w", [4, 4], "weights.bin", 8, 64));
    write(dir, "model.onnx", modelBytes(g));
    const m = loadModel(path);
    assert.deepEqual(Array.from(m.constants.get("w")!.values()), Array.from(Float32Array.from(weights)));
    const r = await analyze(path, { batchSize: 4, batches: 1 });
    assert.equal(r.probe.ran, true, r.probe.error);
    assert.equal(r.layers[0].name, "fc");
    assert.ok(r.layers[0].activation!.std > 0);
  });

  it("refuses external data outside the model's folder: '..', absolute paths and symlinks", () => {
    const dir = tmp();
    const outside = tmp();
    write(outside, "secret.bin", new Uint8Array(64));
    mkdirSync(join(dir, "sub"));
    symlinkSync(join(outside, "secret.bin"), join(dir, "link.bin"));
    for (const location of ["../" + outside.split("/").pop() + "/secret.bin", join(outside, "secret.bin"), "link.bin"]) {
      const g = linear("w");
      g.initializer.push(externalTensor("w", [4, 4], location, 0, 64));
      const path = write(dir, "m.onnx", modelBytes(g));
      invalid(() => loadModel(path), /points outside the model's folder; refused/);
    }
  });

  it("names missing or short external data", () => {
    const dir = tmp();
    const g = linear("w");
    g.initializer.push(externalTensor("w", [4, 4], "nope.bin", 0, 64));
    invalid(() => loadModel(write(dir, "m.onnx", modelBytes(g))), /external data file "nope.bin" for tensor w is missing/);
    write(dir, "short.bin", new Uint8Array(10));
    const g2 = linear("w");
    g2.initializer.push(externalTensor("w", [4, 4], "short.bin", 0, 64));
    invalid(() => loadModel(write(dir, "m2.onnx", modelBytes(g2))), /needs bytes 0\.\.64 of "short.bin", which has 10/);
  });

  it("gives model.invalid for truncated, corrupt, empty and non-ONNX files and unsupported IR versions", () => {
    const dir = tmp();
    const good = modelBytes(graph([node("MatMul", ["x", "w"], ["y"])], [floatTensor("w", [4, 4], weights)]));
    invalid(() => loadModel(write(dir, "t.onnx", good.subarray(0, good.length - 7))), /not a valid ONNX protobuf|carries no data|raw data holds|no graph/);
    invalid(() => loadModel(write(dir, "e.onnx", new Uint8Array(0))), /is empty/);
    invalid(() => loadModel(write(dir, "txt.onnx", new TextEncoder().encode("hello, I am not a model\n"))), /not a valid ONNX protobuf|no graph/);
    invalid(() => loadModel(join(dir, "missing.onnx")), /cannot read/);
    // A graph that returns its input as is: a real ONNX file with nothing to analyse, not a corrupt one.
    assert.throws(() => loadModel(write(dir, "zero.onnx", modelBytes(graph([], [], [valueInfo("x", [2])], [valueInfo("x", [2])])))),
      (e: unknown) => e instanceof DoctorError && e.code === "model.unsupported" && /zero\.onnx has no nodes: its graph returns x as given, so there is no computation to analyse/.test(e.message));
    invalid(() => loadModel(write(dir, "ir.onnx", modelBytes(graph([node("Relu", ["x"], ["y"])], []), 17, 99))), /IR version 99/);
    invalid(() => loadModel(write(dir, "op.onnx", modelBytes(graph([node("Relu", ["x"], ["y"])], []), 99))), /opset 99/);
  });
});

function create64(name: string, values: number[]) {
  return rawTensor(name, DT.INT64, [values.length], new Uint8Array(BigInt64Array.from(values.map(BigInt)).buffer));
}
