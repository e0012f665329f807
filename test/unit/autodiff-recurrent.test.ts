// The recurrent rules beyond the finite-difference cases (autodiff-recurrent-cases.ts): layout 1,
// which onnxruntime cannot run, checked against the same cell in layout 0 between Transposes; and
// the variants the rules refuse, which must stop the gradient with a reason, never give a
// partial or wrong one.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { create } from "@bufbuild/protobuf";
import { buildBackward } from "../../src/autodiff/backward";
import { GradEmitter } from "../../src/autodiff/emit";
import { MAX_RECURRENT_STEPS } from "../../src/autodiff/recurrent";
import { probeTensorInfo } from "../../src/autodiff/shapes";
import { serializeWith } from "../../src/instrument/stats-graph";
import { AttributeProto_AttributeType as AT, AttributeProtoSchema, type AttributeProto, type NodeProto, type TensorProto } from "../../src/onnx/gen/onnx_pb";
import { loadModel } from "../../src/onnx/load";
import { RuntimeSession, type HostTensor } from "../../src/runtime/session";
import { Random } from "../../src/stats/random";
import { fattr } from "./autodiff-cases";
import { attr, DT, floatTensor, graph, modelBytes, node, rawTensor, valueInfo } from "./build-model";

const sattr = (name: string, v: string): AttributeProto => create(AttributeProtoSchema, { name, type: AT.STRING, s: new TextEncoder().encode(v) });
const sattrs = (name: string, v: string[]): AttributeProto => create(AttributeProtoSchema, { name, type: AT.STRINGS, strings: v.map((x) => new TextEncoder().encode(x)) });
const size = (dims: readonly number[]): number => dims.reduce((a, b) => a * b, 1);

function randomTensor(r: Random, dims: number[], scale = 1): HostTensor {
  return { dtype: "float32", dims, data: Float32Array.from({ length: size(dims) }, () => scale * r.normal()) };
}

describe("recurrent rules: layout 1 against layout 0", () => {
  // One recurrent node in layout 1 (A) and the same cell in layout 0 with Transposes around it (B),
  // both with the same tensor names for inputs and outputs. onnxruntime runs B only, so A's
  // backward graph is built on B's shapes and run inside B: its forward tensors are the same.
  const variants: { op: "LSTM" | "GRU" | "RNN"; gates: number; dir: string; attrs?: AttributeProto[] }[] = [
    { op: "LSTM", gates: 4, dir: "bidirectional" },
    { op: "GRU", gates: 3, dir: "bidirectional", attrs: [attr("linear_before_reset", 1)] },
    { op: "GRU", gates: 3, dir: "reverse" },
    { op: "RNN", gates: 1, dir: "reverse" },
  ];
  for (const v of variants) {
    it(`${v.op} ${v.dir}${v.attrs?.length ? " linear_before_reset 1" : ""}: every input gradient equals layout 0's`, async () => {
      const [T, N, I, H] = [5, 3, 4, 3];
      const nd = v.dir === "bidirectional" ? 2 : 1;
      const r = new Random(11);
      const G = v.gates * H;
      const inits: TensorProto[] = [
        floatTensor("W", [nd, G, I], Array.from(randomTensor(r, [nd * G * I], 0.6).data as Float32Array)),
        floatTensor("R", [nd, G, H], Array.from(randomTensor(r, [nd * G * H], 0.6).data as Float32Array)),
        floatTensor("B", [nd, 2 * G], Array.from(randomTensor(r, [nd * 2 * G], 0.3).data as Float32Array)),
      ];
      const lstm = v.op === "LSTM";
      const stateNames = lstm ? ["h0", "c0"] : ["h0"];
      const outNames = lstm ? ["y", "yh", "yc"] : ["y", "yh"];
      const common = [attr("hidden_size", H), sattr("direction", v.dir), ...(v.attrs ?? [])];
      // B: layout 0 between Transposes.
      const b: NodeProto[] = [
        node("Transpose", ["x"], ["x0"], [attr("perm", [1, 0, 2])]),
        ...stateNames.map((s) => node("Transpose", [s], [`${s}_0`], [attr("perm", [1, 0, 2])])),
        node(v.op, ["x0", "W", "R", "B", "", ...stateNames.map((s) => `${s}_0`)], outNames.map((o) => `${o}_0`), common),
        node("Transpose", ["y_0"], ["y"], [attr("perm", [2, 0, 1, 3])]),
        ...outNames.slice(1).map((o) => node("Transpose", [`${o}_0`], [o], [attr("perm", [1, 0, 2])])),
      ];
      const a: NodeProto[] = [node(v.op, ["x", "W", "R", "B", "", ...stateNames], outNames, [...common, attr("layout", 1)])];
      const inputs = [valueInfo("x", [N, T, I]), ...stateNames.map((s) => valueInfo(s, [N, nd, H]))];
      const outShapes: Record<string, number[]> = { y: [N, T, nd, H], yh: [N, nd, H], yc: [N, nd, H] };
      const outputs = outNames.map((o) => valueInfo(o, outShapes[o]));
      const modelA = loadModel("a.onnx", { bytes: modelBytes(graph(a, inits, inputs, outputs), 17) });
      const modelB = loadModel("b.onnx", { bytes: modelBytes(graph(b, inits, inputs, outputs), 17) });
      const feeds: Record<string, HostTensor> = { x: randomTensor(r, [N, T, I]) };
      for (const s of stateNames) feeds[s] = randomTensor(r, [N, nd, H], 0.5);
      for (const o of outNames) feeds[`g_${o}`] = randomTensor(r, outShapes[o]);
      const info = await probeTensorInfo(modelB, Object.fromEntries(Object.entries(feeds).filter(([k]) => !k.startsWith("g_"))));
      const seeds = new Map(outNames.map((o) => [o, `g_${o}`]));
      const targets = ["x", "W", "R", "B", ...stateNames];
      const ea = new GradEmitter("la", 17);
      const eb = new GradEmitter("lb", 17);
      const ga = buildBackward(modelA, info, ea, seeds, targets);
      const gb = buildBackward(modelB, info, eb, seeds, targets);
      assert.deepEqual([ga.unsupported, gb.unsupported], [[], []]);
      const fetch = targets.flatMap((t) => [ga.grad(t), gb.grad(t)]).map((g) => { assert.equal(typeof g, "string"); return g as string; });
      const session = await RuntimeSession.open(serializeWith(modelB, [...ea.nodes, ...eb.nodes], [...ea.initializers, ...eb.initializers], fetch, outNames.map((o) => valueInfo(`g_${o}`, outShapes[o]))), new Map());
      try {
        const out = await session.run(feeds, fetch);
        for (const t of targets) {
          const x = out[ga.grad(t) as string].data as Float32Array;
          const y = out[gb.grad(t) as string].data as Float32Array;
          assert.equal(x.length, y.length, t);
          let dd = 0, nn = 0;
          for (let k = 0; k < x.length; k++) { dd += (x[k] - y[k]) ** 2; nn += y[k] ** 2; }
          assert.ok(nn > 0, `${t}: zero gradient`);
          assert.ok(Math.sqrt(dd / nn) < 1e-6, `${t}: layout 1 differs from layout 0 by ${Math.sqrt(dd / nn).toExponential(2)} relative`);
        }
      } finally {
        await session.release();
      }
    });
  }
});

describe("recurrent rules: refused variants stop the gradient with a reason", () => {
  /** Builds one recurrent node over x [T, N, 2] (hidden 2), runs the shape probe and the builder; returns its refusals. */
  async function refusals(op: "LSTM" | "GRU" | "RNN", T: number, attrs: AttributeProto[], lens?: number[]) {
    const gates = { LSTM: 4, GRU: 3, RNN: 1 }[op];
    const [N, I, H] = [lens?.length ?? 1, 2, 2];
    const nd = attrs.some((a) => a.name === "direction" && new TextDecoder().decode(a.s) === "bidirectional") ? 2 : 1;
    const r = new Random(3);
    const inits: TensorProto[] = [
      floatTensor("W", [nd, gates * H, I], Array.from(randomTensor(r, [nd * gates * H * I], 0.5).data as Float32Array)),
      floatTensor("R", [nd, gates * H, H], Array.from(randomTensor(r, [nd * gates * H * H], 0.5).data as Float32Array)),
    ];
    if (lens) inits.push(rawTensor("lens", DT.INT32, [N], new Uint8Array(Int32Array.from(lens).buffer)));
    const nodes = [node(op, ["x", "W", "R", "", lens ? "lens" : ""], ["y"], [attr("hidden_size", H), ...attrs]), node("Relu", ["y"], ["out"])];
    const model = loadModel("refused.onnx", { bytes: modelBytes(graph(nodes, inits, [valueInfo("x", [T, N, I])], [valueInfo("out", [T, nd, N, H])]), 17) });
    const info = await probeTensorInfo(model, { x: randomTensor(r, [T, N, I]) });
    const back = buildBackward(model, info, new GradEmitter("g", 17), new Map([["out", "seed"]]), ["x", "W", "y"]);
    assert.equal(back.grad("x"), null, "upstream of a refused node there is no gradient");
    assert.equal(back.grad("W"), null);
    assert.equal(typeof back.grad("y"), "string", "downstream of it there is");
    return back.unsupported.map((u) => `${u.op}: ${u.reason}`);
  }

  it("LSTM with clip", async () => {
    assert.deepEqual(await refusals("LSTM", 3, [fattr("clip", 1)]), ["LSTM: LSTM with clip (cell clipping at ±1) has no gradient rule"]);
  });
  it("LSTM with input_forget", async () => {
    assert.deepEqual(await refusals("LSTM", 3, [attr("input_forget", 1)]), ["LSTM: LSTM with input_forget (coupled input and forget gates) has no gradient rule"]);
  });
  it("activations other than Sigmoid, Tanh and Relu", async () => {
    assert.deepEqual(await refusals("GRU", 3, [sattrs("activations", ["HardSigmoid", "Tanh"])]), ["GRU: GRU with activation HardSigmoid (the rules support Sigmoid, Tanh and Relu)"]);
    assert.deepEqual(await refusals("RNN", 3, [sattrs("activations", ["Softsign"])]), ["RNN: RNN with activation Softsign (the rules support Sigmoid, Tanh and Relu)"]);
  });
  it("sequence_lens shorter than the sequence", async () => {
    assert.deepEqual(await refusals("RNN", 4, [], [4, 2]), ["RNN: RNN with sequence_lens shorter than the sequence (4 steps; padded batches) has no gradient rule"]);
  });
  it(`sequences longer than ${MAX_RECURRENT_STEPS} steps, both directions counted`, async () => {
    const limit = `the backward pass is unrolled step by step and limited to ${MAX_RECURRENT_STEPS} steps (directions counted separately)`;
    assert.deepEqual(await refusals("RNN", MAX_RECURRENT_STEPS + 1, []), [`RNN: RNN over ${MAX_RECURRENT_STEPS + 1} time steps: ${limit}`]);
    const half = MAX_RECURRENT_STEPS / 2 + 1;
    assert.deepEqual(await refusals("GRU", half, [sattr("direction", "bidirectional")]), [`GRU: GRU over ${half} time steps in both directions: ${limit}`]);
  });
});
