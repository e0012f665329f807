// Gradient-check cases of the recurrent ops LSTM, GRU and RNN (src/autodiff/recurrent.ts), run by
// test/unit/autodiff-rules.test.ts with the other cases (CASES in autodiff-cases.ts takes them in).
// Each covers another code path: Y computed by the node (the forward is replayed batched from
// it) or not (replayed step by step), the three directions, peepholes, explicit activations, GRU
// linear_before_reset 0/1, a full-length sequence_lens, attribute-form Split/Slice (opsets 9 and
// 11), one time step, and gradients arriving from Y, Y_h and Y_c. onnxruntime does not run
// layout 1, so that is checked against layout 0 in autodiff-recurrent.test.ts.
import { create } from "@bufbuild/protobuf";
import { AttributeProto_AttributeType as AT, AttributeProtoSchema, type AttributeProto } from "../../src/onnx/gen/onnx_pb";
import { attr, node } from "./build-model";
import type { Case } from "./autodiff-cases";

// Types only from autodiff-cases.ts (erased at run time): that module imports this one's values.
type RecurrentCase = Case;

const s = (name: string, v: string): AttributeProto => create(AttributeProtoSchema, { name, type: AT.STRING, s: new TextEncoder().encode(v) });
const ss = (name: string, v: string[]): AttributeProto => create(AttributeProtoSchema, { name, type: AT.STRINGS, strings: v.map((x) => new TextEncoder().encode(x)) });
const i = (name: string, v: number): AttributeProto => attr(name, v);

/** Inputs of a recurrent node: X, W, R, B, sequence_lens, initial_h, initial_c, P ("" = absent), trailing absences dropped. */
const ins = (...xs: string[]): string[] => {
  const out = [...xs];
  while (out.length && out[out.length - 1] === "") out.pop();
  return out;
};

const [T, N, I, H] = [4, 2, 3, 2];

export const RECURRENT_CASES: RecurrentCase[] = [
  // ---- LSTM -------------------------------------------------------------------------------------
  {
    name: "LSTM forward, bias and initial states, gradients from Y, Y_h and Y_c (batched replay from Y)", ops: ["LSTM"],
    floats: { x: { shape: [T, N, I] }, W: { shape: [1, 4 * H, I], init: true }, R: { shape: [1, 4 * H, H], init: true }, B: { shape: [1, 8 * H], init: true }, h0: { shape: [1, N, H] }, c0: { shape: [1, N, H] } },
    nodes: [node("LSTM", ins("x", "W", "R", "B", "", "h0", "c0"), ["y", "yh", "yc"], [i("hidden_size", H)])],
    outputs: { y: [T, 1, N, H], yh: [1, N, H], yc: [1, N, H] },
  },
  {
    name: "LSTM reverse, no initial states, Y not computed (step-by-step replay), full-length sequence_lens", ops: ["LSTM"],
    floats: { x: { shape: [T, N, I] }, W: { shape: [1, 4 * H, I], init: true }, R: { shape: [1, 4 * H, H], init: true }, B: { shape: [1, 8 * H], init: true } },
    ints: { lens: { shape: [N], values: [T, T], dtype: "int32" } },
    nodes: [node("LSTM", ins("x", "W", "R", "B", "lens"), ["", "yh", "yc"], [i("hidden_size", H), s("direction", "reverse")])],
    outputs: { yh: [1, N, H], yc: [1, N, H] },
  },
  {
    name: "LSTM reverse, Y computed but not used (batched replay from Y, no gradient of Y), Y_h and Y_c", ops: ["LSTM"],
    floats: { x: { shape: [T, N, I] }, W: { shape: [1, 4 * H, I], init: true }, R: { shape: [1, 4 * H, H], init: true }, B: { shape: [1, 8 * H], init: true }, h0: { shape: [1, N, H] }, c0: { shape: [1, N, H] } },
    nodes: [node("LSTM", ins("x", "W", "R", "B", "", "h0", "c0"), ["y", "yh", "yc"], [i("hidden_size", H), s("direction", "reverse")])],
    outputs: { yh: [1, N, H], yc: [1, N, H] },
  },
  {
    name: "LSTM bidirectional with peepholes, gradient from Y only", ops: ["LSTM"],
    floats: { x: { shape: [T, N, I] }, W: { shape: [2, 4 * H, I], init: true }, R: { shape: [2, 4 * H, H], init: true }, B: { shape: [2, 8 * H], init: true }, h0: { shape: [2, N, H] }, c0: { shape: [2, N, H] }, P: { shape: [2, 3 * H], init: true } },
    nodes: [node("LSTM", ins("x", "W", "R", "B", "", "h0", "c0", "P"), ["y"], [i("hidden_size", H), s("direction", "bidirectional")])],
    outputs: { y: [T, 2, N, H] },
  },
  {
    name: "LSTM bidirectional, explicit activations (Tanh/Sigmoid/Sigmoid, defaults), no bias, Y and Y_c", ops: ["LSTM"],
    floats: { x: { shape: [T, N, I] }, W: { shape: [2, 4 * H, I], init: true }, R: { shape: [2, 4 * H, H], init: true }, h0: { shape: [2, N, H] }, c0: { shape: [2, N, H] } },
    nodes: [node("LSTM", ins("x", "W", "R", "", "", "h0", "c0"), ["y", "", "yc"], [i("hidden_size", H), s("direction", "bidirectional"), ss("activations", ["Tanh", "Sigmoid", "Sigmoid", "Sigmoid", "Tanh", "Tanh"])])],
    outputs: { y: [T, 2, N, H], yc: [2, N, H] },
  },
  {
    name: "LSTM at opset 9 (attribute Split and Slice), one time step, peepholes without Y", ops: ["LSTM"], opset: 9,
    floats: { x: { shape: [1, N, I] }, W: { shape: [1, 4 * H, I], init: true }, R: { shape: [1, 4 * H, H], init: true }, B: { shape: [1, 8 * H], init: true }, h0: { shape: [1, N, H] }, c0: { shape: [1, N, H] }, P: { shape: [1, 3 * H], init: true } },
    nodes: [node("LSTM", ins("x", "W", "R", "B", "", "h0", "c0", "P"), ["", "yh", "yc"], [i("hidden_size", H)])],
    outputs: { yh: [1, N, H], yc: [1, N, H] },
  },

  // ---- GRU --------------------------------------------------------------------------------------
  {
    name: "GRU forward, linear_before_reset 0, bias and initial state, Y and Y_h (batched replay)", ops: ["GRU"],
    floats: { x: { shape: [T, N, I] }, W: { shape: [1, 3 * H, I], init: true }, R: { shape: [1, 3 * H, H], init: true }, B: { shape: [1, 6 * H], init: true }, h0: { shape: [1, N, H] } },
    nodes: [node("GRU", ins("x", "W", "R", "B", "", "h0"), ["y", "yh"], [i("hidden_size", H)])],
    outputs: { y: [T, 1, N, H], yh: [1, N, H] },
  },
  {
    name: "GRU bidirectional, linear_before_reset 1, Y not computed (step-by-step replay)", ops: ["GRU"],
    floats: { x: { shape: [T, N, I] }, W: { shape: [2, 3 * H, I], init: true }, R: { shape: [2, 3 * H, H], init: true }, B: { shape: [2, 6 * H], init: true }, h0: { shape: [2, N, H] } },
    nodes: [node("GRU", ins("x", "W", "R", "B", "", "h0"), ["", "yh"], [i("hidden_size", H), s("direction", "bidirectional"), i("linear_before_reset", 1)])],
    outputs: { yh: [2, N, H] },
  },
  {
    name: "GRU reverse, linear_before_reset 1, Y only (batched replay), opset 11", ops: ["GRU"], opset: 11,
    floats: { x: { shape: [T, N, I] }, W: { shape: [1, 3 * H, I], init: true }, R: { shape: [1, 3 * H, H], init: true }, B: { shape: [1, 6 * H], init: true }, h0: { shape: [1, N, H] } },
    nodes: [node("GRU", ins("x", "W", "R", "B", "", "h0"), ["y"], [i("hidden_size", H), s("direction", "reverse"), i("linear_before_reset", 1)])],
    outputs: { y: [T, 1, N, H] },
  },
  {
    name: "GRU reverse, linear_before_reset 0, no bias or initial state, Y not computed", ops: ["GRU"],
    floats: { x: { shape: [T, N, I] }, W: { shape: [1, 3 * H, I], init: true }, R: { shape: [1, 3 * H, H], init: true } },
    nodes: [node("GRU", ins("x", "W", "R"), ["", "yh"], [i("hidden_size", H), s("direction", "reverse")])],
    outputs: { yh: [1, N, H] },
  },

  // ---- RNN --------------------------------------------------------------------------------------
  {
    name: "RNN forward tanh, bias and initial state, Y and Y_h (states read from Y)", ops: ["RNN"],
    floats: { x: { shape: [T, N, I] }, W: { shape: [1, H, I], init: true }, R: { shape: [1, H, H], init: true }, B: { shape: [1, 2 * H], init: true }, h0: { shape: [1, N, H] } },
    nodes: [node("RNN", ins("x", "W", "R", "B", "", "h0"), ["y", "yh"], [i("hidden_size", H)])],
    outputs: { y: [T, 1, N, H], yh: [1, N, H] },
  },
  {
    name: "RNN bidirectional, Tanh and Sigmoid, Y not computed, two steps", ops: ["RNN"],
    floats: { x: { shape: [2, N, I] }, W: { shape: [2, H, I], init: true }, R: { shape: [2, H, H], init: true }, B: { shape: [2, 2 * H], init: true }, h0: { shape: [2, N, H] } },
    nodes: [node("RNN", ins("x", "W", "R", "B", "", "h0"), ["", "yh"], [i("hidden_size", H), s("direction", "bidirectional"), ss("activations", ["Tanh", "Sigmoid"])])],
    outputs: { yh: [2, N, H] },
  },
  {
    name: "RNN reverse with Relu (nn.RNN nonlinearity='relu'), Y", ops: ["RNN"],
    floats: { x: { shape: [T, N, I], fill: "away" }, W: { shape: [1, H, I], init: true, fill: "away" }, R: { shape: [1, H, H], init: true }, B: { shape: [1, 2 * H], init: true } },
    nodes: [node("RNN", ins("x", "W", "R", "B"), ["y"], [i("hidden_size", H), s("direction", "reverse"), ss("activations", ["Relu"])])],
    outputs: { y: [T, 1, N, H] },
  },
];
