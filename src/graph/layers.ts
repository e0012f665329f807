import { attrFloat, attrInt, type ConstTensor, type GraphNode, type Model } from "../onnx/model";
import { GraphIndex } from "./index";
import { hasFoldedFreshBatchNorm, isFreshBatchNorm } from "./fresh-batchnorm";
import { modulePathFromNodeName, modulePathFromWeightName } from "./module-path";

/** The nonlinearity applied right after a layer; it decides the initialisation the layer needs. */
export type Activation =
  | "relu" | "leaky_relu" | "prelu" | "elu" | "selu" | "gelu" | "tanh" | "sigmoid" | "hard_sigmoid"
  | "softplus" | "silu" | "hard_swish" | "softmax";

export type LayerKind = "linear" | "conv" | "recurrent" | "embedding" | "norm";

/**
 * How a weight tensor's elements belong to output units: element
 * `(o * units + u) * inner + i` belongs to unit `u`. Lets rules compare units without reshaping.
 */
export interface UnitLayout {
  readonly outer: number;
  readonly units: number;
  readonly inner: number;
}

/** A layer as the user knows it: one parameterised op plus the bias and activation that follow. */
export interface Layer {
  readonly id: number;
  /** Module path when the exporter left one (`layer1.0.conv1`), else a node or tensor name. */
  readonly name: string;
  readonly module?: string;
  readonly op: string;
  readonly kind: LayerKind;
  readonly node: GraphNode;
  /** All nodes grouped into this layer, the parameterised op first. */
  readonly nodes: readonly GraphNode[];
  readonly weight?: ConstTensor;
  readonly bias?: ConstTensor;
  readonly fanIn?: number;
  readonly fanOut?: number;
  readonly units?: UnitLayout;
  readonly activation?: Activation;
  /** The tensor whose statistics describe this layer: after its activation if it has one. */
  readonly output: string;
  /** A normalization consumes this layer's output, which makes its weight scale irrelevant. */
  readonly followedByNorm: boolean;
  /**
   * torch.onnx seems to have folded a BatchNorm with untrained running statistics into this conv
   * (graph/fresh-batchnorm.ts). Only a sign: the names are the evidence, so the weight scale still counts.
   */
  readonly foldedFreshNorm: boolean;
  /** The normalization that consumes this layer's output is a BatchNorm with untrained running statistics. */
  readonly keptFreshNorm: boolean;
  /** Whether output units sit on axis 1 (NCHW convs) or on the last axis (dense layers). */
  readonly unitAxis: "channel" | "last";
  /** The output has spatial positions after the channel axis (NCHW), so per-channel pooling applies. */
  readonly spatial: boolean;
  /** Empty for the main graph; `If_0/then_branch/` for a layer inside a subgraph, which the probe cannot see. */
  readonly scope: string;
  /** No weight layer follows in its graph: an output layer (logits, probabilities). */
  readonly isOutputLayer: boolean;
  /** "128->64" or "3->16 3x3": the layer's shape as PyTorch users write it. */
  readonly shapeLabel?: string;
}

const normOps = new Set([
  "BatchNormalization", "LayerNormalization", "InstanceNormalization", "GroupNormalization",
  "SimplifiedLayerNormalization", "SkipLayerNormalization", "RMSNormalization",
]);

function activationOf(n: GraphNode): Activation | undefined {
  switch (n.opType) {
    case "Relu": return "relu";
    case "LeakyRelu": return "leaky_relu";
    case "PRelu": return "prelu";
    case "Elu": case "Celu": return "elu";
    case "Selu": return "selu";
    case "Gelu": case "FastGelu": case "BiasGelu": return "gelu";
    case "Tanh": return "tanh";
    case "Sigmoid": return "sigmoid";
    case "HardSigmoid": return "hard_sigmoid";
    case "Softplus": return "softplus";
    case "HardSwish": return "hard_swish";
    case "Softmax": return "softmax";
    // Clip(min=0) is ReLU6; other clips are not activations we can reason about.
    case "Clip": return clipMin(n) === 0 ? "relu" : undefined;
    default: return undefined;
  }
}

/** Ops a decomposed gate is built of: elementwise, with constants as their other operands. */
const GATE_OPS = new Set(["Div", "Mul", "Add", "Sub", "Erf", "Sigmoid", "HardSigmoid", "Clip"]);
const SCALES = ["Div", "Mul", "Add", "Sub"];

/**
 * The activation a gate chain makes, by the one nonlinearity it holds (the rest only scales and
 * shifts): Erf, GELU's 1+erf(x/√2); Sigmoid, SiLU's sigmoid(x) (or sigmoid(1.702x), the quick
 * GELU, as alike); HardSigmoid with torch's alpha 1/6, or Clip, hardswish's gate. Any other mix
 * (x·tanh(x), x·sigmoid(tanh(x))) is not named.
 */
function gateKind(chain: readonly GraphNode[]): Activation | undefined {
  const nonlinear = chain.filter((n) => !SCALES.includes(n.opType));
  if (nonlinear.length !== 1) return undefined;
  const [g] = nonlinear;
  if (g.opType === "Erf") return "gelu";
  if (g.opType === "Sigmoid") return "silu";
  if (g.opType === "Clip") return "hard_swish";
  // HardSigmoid is hardswish's gate only with its alpha 1/6 (torch's export).
  if (g.opType === "HardSigmoid" && Math.abs(attrFloat(g, "alpha", 0.2) - 1 / 6) <= 1e-6) return "hard_swish";
  return undefined;
}

/**
 * An activation written as x times a gate computed from x, as exporters decompose them: SiLU
 * x·sigmoid(x) (torch's nn.SiLU), hardswish x·hardsigmoid(x) (torch before opset 14) or
 * x·clip(x+3, 0, 6)/6 (Paddle), GELU x·(1+erf(x/√2))·0.5 (torch before opset 20). The tensor
 * feeds exactly the gate's chain and the Mul of itself with the gate's end; a trailing scale by a
 * constant (GELU's 0.5, hardswish's /6) belongs to the activation too.
 */
function selfGated(index: GraphIndex, x: string): { activation: Activation; nodes: GraphNode[]; output: string } | undefined {
  const users = index.consumersOf(x);
  if (users.length !== 2 || index.graphOutputs.has(x)) return undefined;
  const constOthers = (n: GraphNode, from: string): boolean => n.inputs.every((i) => i === from || !i || index.isConstant(i));
  for (const mul of users.filter((n) => n.opType === "Mul")) {
    const gateInput = mul.inputs.find((i) => i !== x);
    let node = users.find((n) => n !== mul);
    if (!gateInput || !node || mul.inputs.filter((i) => i === x).length !== 1) continue;
    const chain: GraphNode[] = [];
    let from = x;
    while (node && chain.length < 6 && GATE_OPS.has(node.opType) && constOthers(node, from)) {
      chain.push(node);
      from = node.outputs[0];
      if (from === gateInput) break;
      const next = index.consumersOf(from);
      node = next.length === 1 ? next[0] : undefined;
    }
    if (from !== gateInput || index.consumersOf(gateInput).length !== 1 || index.graphOutputs.has(gateInput)) continue;
    const activation = gateKind(chain);
    if (!activation) continue;
    const nodes = [...chain, mul];
    let output = mul.outputs[0];
    const scale = index.soleConsumer(output);
    if (scale && (scale.opType === "Mul" || scale.opType === "Div") && constOthers(scale, output) && scale.inputs[0] === output) {
      nodes.push(scale);
      output = scale.outputs[0];
    }
    return { activation, nodes, output };
  }
  return undefined;
}

function clipMin(n: GraphNode): number | undefined {
  if (n.attrs.has("min")) return attrFloat(n, "min", -Infinity);
  return undefined; // opset >= 11 passes min as an input; resolved by the caller when constant
}

const product = (xs: readonly number[]): number => xs.reduce((a, b) => a * b, 1);

/**
 * Groups the graph into layers, in topological order: the main graph first, then each subgraph
 * (If/Loop bodies), whose weights can be checked statically.
 */
export function findLayers(model: Model, index = new GraphIndex(model)): Layer[] {
  const layers: Layer[] = [];
  groupLayers(model, index, "", layers);
  const scopes = new Map<string, GraphNode[]>();
  for (const n of model.subgraphNodes) scopes.set(n.scope, [...(scopes.get(n.scope) ?? []), n]);
  for (const [scope, nodes] of scopes) groupLayers(model, new GraphIndex(model, nodes), scope, layers, nodes);
  // Module paths can repeat (two Convs in one module); keep names unique for the user.
  const seen = new Map<string, number>();
  return layers.map((l) => {
    const k = seen.get(l.name) ?? 0;
    seen.set(l.name, k + 1);
    return k === 0 ? l : { ...l, name: `${l.name}#${k + 1}` };
  });
}

function groupLayers(model: Model, index: GraphIndex, scope: string, layers: Layer[], nodes: readonly GraphNode[] = model.nodes): void {
  const c = model.constants;
  const floatConst = (name: string | undefined): ConstTensor | undefined => {
    const t = name ? c.get(name) : undefined;
    return t && (t.dtype === "float32" || t.dtype === "float16" || t.dtype === "bfloat16" || t.dtype === "float64") ? t : undefined;
  };

  for (const node of nodes) {
    const spec = describe(node, floatConst, (n) => index.isConstant(n));
    if (!spec) continue;
    const nodes = [node];
    // The first output the graph uses: an LSTM/GRU/RNN often leaves Y unused and returns Y_h.
    const used = (o: string): boolean => !!o && (index.consumersOf(o).length > 0 || index.graphOutputs.has(o));
    let output = node.outputs.find(used) ?? node.outputs[0];
    let bias = spec.bias;
    let activation: Activation | undefined;
    let followedByNorm = false;

    // A separate bias Add (MatMul+Add, CNTK Conv+Add) belongs to the layer, and so does the Add
    // of a LoRA adapter's low-rank update: the activation after it is this layer's activation.
    const next = index.soleConsumer(output);
    if (next?.opType === "Add" && spec.kind !== "norm") {
      const other = next.inputs.find((i) => i !== output);
      const b = floatConst(other);
      if (b && b.size <= Math.max(1, spec.fanOut ?? 1)) {
        bias = b;
        nodes.push(next);
        output = next.outputs[0];
      } else if (other && isLowRankUpdate(index.producer.get(other), floatConst)) {
        nodes.push(next);
        output = next.outputs[0];
      }
    }
    const gate = selfGated(index, output);
    if (gate) {
      activation = gate.activation;
      nodes.push(...gate.nodes);
      output = gate.output;
    }
    const act = gate ? undefined : index.soleConsumer(output);
    if (act) {
      let kind = activationOf(act);
      if (act.opType === "Clip" && kind === undefined && act.inputs[1]) {
        const min = c.get(act.inputs[1]);
        if (min && min.size === 1 && min.values()[0] === 0) kind = "relu";
      }
      if (kind) {
        activation = kind;
        nodes.push(act);
        output = act.outputs[0];
      }
    }
    // A vanilla RNN's outputs are its activation's values (h_t = f(W x_t + R h_t-1 + b), tanh by
    // default): their saturation is the layer's. LSTM/GRU outputs mix gates, so they get none.
    if (!activation && node.opType === "RNN" && output !== node.outputs[2]) {
      const f = node.attrs.get("activations")?.strings.map((b) => new TextDecoder().decode(b))[0] ?? "Tanh";
      activation = ({ Tanh: "tanh", Sigmoid: "sigmoid", Relu: "relu" } as const)[f];
    }
    let keptFreshNorm = false;
    for (const consumer of index.consumersOf(output)) {
      if (normOps.has(consumer.opType) || consumer.opType === "ReduceMean") followedByNorm = true;
      if (isFreshBatchNorm(model, consumer)) keptFreshNorm = true;
    }

    const foldedFreshNorm = hasFoldedFreshBatchNorm(node, spec.weight, bias);
    const weightName = spec.weight?.name;
    const module = modulePathFromNodeName(node.name) ?? (weightName ? modulePathFromWeightName(weightName) : undefined);
    layers.push({
      id: layers.length,
      name: module ?? (node.proto.name || weightName || node.outputs[0]),
      module,
      op: node.opType,
      kind: spec.kind,
      node,
      nodes,
      weight: spec.weight,
      bias,
      fanIn: spec.fanIn,
      fanOut: spec.fanOut,
      units: spec.units,
      activation,
      output,
      followedByNorm,
      foldedFreshNorm,
      keptFreshNorm,
      unitAxis: spec.kind === "conv" || (spec.kind === "norm" && node.opType !== "LayerNormalization") ? "channel" : "last",
      scope,
      spatial: spec.kind === "conv" || (spec.kind === "norm" && node.opType !== "LayerNormalization" && fedBySpatialOp(node, index)),
      shapeLabel: shapeLabel(node.opType, spec),
      isOutputLayer: ![...index.nodesDownstream([output])].some((n) => WEIGHT_OPS.has(n.opType) && n.inputs.some((i) => index.isConstant(i))),
    });
  }
}

/** Ops that apply weights; a constant operand makes one a layer. */
export const WEIGHT_OPS: ReadonlySet<string> = new Set(["Conv", "ConvTranspose", "Gemm", "MatMul", "LSTM", "GRU", "RNN"]);

const spatialOps = new Set(["Conv", "ConvTranspose", "MaxPool", "AveragePool", "Upsample", "Resize"]);

/** Walks a few elementwise steps up from a normalization's input looking for a conv or pool. */
function fedBySpatialOp(node: GraphNode, index: GraphIndex): boolean {
  let producer = index.producer.get(node.inputs[0]);
  for (let step = 0; producer && step < 4; step++) {
    if (spatialOps.has(producer.opType)) return true;
    producer = index.producer.get(producer.inputs[0]);
  }
  return false;
}

/** A MatMul by a constant [r, n] matrix with r much smaller than n: a LoRA B projection. */
export function isLowRankUpdate(node: GraphNode | undefined, floatConst: (name: string | undefined) => ConstTensor | undefined): boolean {
  if (!node || node.opType !== "MatMul") return false;
  const w = floatConst(node.inputs[1]);
  if (!w || w.dims.length !== 2) return false;
  const [r, n] = w.dims;
  return r <= 64 && 4 * r <= n;
}

function shapeLabel(op: string, spec: LayerSpec): string | undefined {
  const w = spec.weight;
  if (!w) return undefined;
  if (spec.kind === "conv") {
    const k = w.dims.slice(2).join("x");
    const [a, b] = op === "ConvTranspose" ? [w.dims[0], w.dims[1]] : [w.dims[1], w.dims[0]];
    return `${a}->${b}, kernel ${k}`;
  }
  if (spec.kind === "linear" || spec.kind === "embedding" || spec.kind === "recurrent") return `${spec.fanIn}->${spec.fanOut}`;
  return `${w.size}`;
}

interface LayerSpec {
  kind: LayerKind;
  weight?: ConstTensor;
  bias?: ConstTensor;
  fanIn?: number;
  fanOut?: number;
  units?: UnitLayout;
}

/**
 * Recognises a parameterised op and computes its fan-in/fan-out with PyTorch's convention
 * (torch.nn.init._calculate_fan_in_and_fan_out), since that is what users initialise with.
 */
function describe(
  node: GraphNode,
  floatConst: (name: string | undefined) => ConstTensor | undefined,
  isConstant: (name: string) => boolean,
): LayerSpec | undefined {
  const [in0, in1, in2] = node.inputs;
  switch (node.opType) {
    case "Conv": {
      const w = floatConst(in1);
      if (!w || w.dims.length < 3) return undefined;
      const receptive = product(w.dims.slice(2));
      return {
        kind: "conv", weight: w, bias: floatConst(in2),
        fanIn: w.dims[1] * receptive, fanOut: w.dims[0] * receptive,
        units: { outer: 1, units: w.dims[0], inner: w.dims[1] * receptive },
      };
    }
    case "ConvTranspose": {
      const w = floatConst(in1);
      if (!w || w.dims.length < 3) return undefined;
      const receptive = product(w.dims.slice(2));
      return {
        kind: "conv", weight: w, bias: floatConst(in2),
        fanIn: w.dims[1] * receptive, fanOut: w.dims[0] * receptive,
        units: { outer: w.dims[0], units: w.dims[1], inner: receptive },
      };
    }
    case "Gemm": {
      const w = floatConst(in1);
      if (!w || w.dims.length !== 2 || isConstant(in0)) return undefined;
      const transB = attrInt(node, "transB", 0) === 1;
      const [k, n] = transB ? [w.dims[1], w.dims[0]] : [w.dims[0], w.dims[1]];
      return {
        kind: "linear", weight: w, bias: floatConst(in2), fanIn: k, fanOut: n,
        units: transB ? { outer: 1, units: n, inner: k } : { outer: k, units: n, inner: 1 },
      };
    }
    case "MatMul": {
      const b = floatConst(in1);
      const a = floatConst(in0);
      if (b && !a && b.dims.length >= 2) {
        const [k, n] = b.dims.slice(-2);
        return { kind: "linear", weight: b, fanIn: k, fanOut: n, units: { outer: product(b.dims.slice(0, -1)), units: n, inner: 1 } };
      }
      if (a && !b && a.dims.length >= 2) {
        const [m, k] = a.dims.slice(-2);
        return { kind: "linear", weight: a, fanIn: k, fanOut: m, units: { outer: product(a.dims.slice(0, -2)), units: m, inner: k } };
      }
      return undefined;
    }
    case "LSTM": case "GRU": case "RNN": {
      const w = floatConst(in1);
      if (!w || w.dims.length !== 3) return undefined;
      return { kind: "recurrent", weight: w, bias: floatConst(in2), fanIn: w.dims[2], fanOut: w.dims[1] };
    }
    case "Gather": {
      const table = floatConst(in0);
      if (!table || table.dims.length !== 2 || isConstant(in1)) return undefined;
      return { kind: "embedding", weight: table, fanIn: table.dims[0], fanOut: table.dims[1] };
    }
    default:
      if (normOps.has(node.opType)) {
        const scale = floatConst(in1);
        if (!scale) return undefined;
        return { kind: "norm", weight: scale, bias: floatConst(in2), fanOut: scale.size };
      }
      return undefined;
  }
}
