import { create } from "@bufbuild/protobuf";
import { NodeProtoSchema, TensorProto_DataType as DT, TensorProtoSchema, type AttributeProto } from "../onnx/gen/onnx_pb";
import { NodeBuilder } from "../instrument/stats-graph";

/** The element types gradients are computed in. float16/bfloat16 graphs are reported unsupported. */
export type FloatType = "float32" | "float64";

export const onnxFloat = (t: FloatType): DT => (t === "float64" ? DT.DOUBLE : DT.FLOAT);

const product = (xs: readonly number[]): number => xs.reduce((a, b) => a * b, 1);

/**
 * The NodeBuilder of the instrumentation, extended with what vector-Jacobian rules need: typed
 * constants and the opset-dependent forms of reductions, Slice and Pad. Every helper emits the form
 * the model's own opset accepts (axes as attributes before opset 13 for ReduceSum and before 18 for
 * the other reductions; Slice attributes before 10; Pad attributes before 11), because the
 * instrumented copy keeps the model's opset import.
 *
 * Shapes are static: the backward graph is specialised to the tensor shapes of one probe batch
 * (see shapes.ts), so Reshape/Expand targets are plain constants.
 */
export class GradEmitter extends NodeBuilder {
  private readonly doubles = new Map<number, string>();

  constructor(prefix: string, readonly opset: number) {
    super(prefix);
  }

  /** A scalar constant of the given float type. */
  scalar(v: number, t: FloatType): string {
    if (t === "float32") return this.constFloat(v);
    let name = this.doubles.get(v);
    if (!name) {
      name = this.constant(create(TensorProtoSchema, { dataType: DT.DOUBLE, dims: [], doubleData: [v] }));
      this.doubles.set(v, name);
    }
    return name;
  }

  /** A float constant tensor (row-major values). */
  floatTensor(values: ArrayLike<number>, dims: readonly number[], t: FloatType): string {
    const raw = t === "float64" ? new Float64Array(values.length) : new Float32Array(values.length);
    for (let i = 0; i < values.length; i++) raw[i] = values[i];
    return this.constant(create(TensorProtoSchema, { dataType: onnxFloat(t), dims: dims.map(BigInt), rawData: new Uint8Array(raw.buffer) }));
  }

  /** An int64 constant tensor of any shape (constInts is 1-D). */
  intTensor(values: readonly number[], dims: readonly number[]): string {
    return this.constant(create(TensorProtoSchema, { dataType: DT.INT64, dims: dims.map(BigInt), int64Data: values.map(BigInt) }));
  }

  /** A node with several outputs and attributes copied verbatim (e.g. a MaxPool that also returns Indices). */
  multi(opType: string, inputs: string[], outputs: number, attributes: readonly AttributeProto[]): string[] {
    const names = Array.from({ length: outputs }, () => this.fresh(opType));
    this.nodes.push(create(NodeProtoSchema, { name: names[0], opType, input: inputs, output: names, attribute: [...attributes] }));
    return names;
  }

  add(a: string, b: string): string { return this.op("Add", [a, b]); }
  sub(a: string, b: string): string { return this.op("Sub", [a, b]); }
  mul(a: string, b: string): string { return this.op("Mul", [a, b]); }
  div(a: string, b: string): string { return this.op("Div", [a, b]); }
  neg(a: string): string { return this.op("Neg", [a]); }

  /** Multiplies by a constant, skipping the node for 1. */
  scale(a: string, k: number, t: FloatType): string {
    return k === 1 ? a : this.mul(a, this.scalar(k, t));
  }

  /** A boolean tensor as 0/1 of a float type. */
  mask(bool: string, t: FloatType): string {
    return this.op("Cast", [bool], { to: onnxFloat(t) });
  }

  /** sign(x) as float without Sign (opset 9): (x > 0) - (x < 0). */
  sign(x: string, t: FloatType): string {
    const zero = this.scalar(0, t);
    return this.sub(this.mask(this.op("Greater", [x, zero]), t), this.mask(this.op("Less", [x, zero]), t));
  }

  /** A reduction over `axes` (all axes when undefined), in the form this opset accepts. */
  reduce(op: string, x: string, axes: readonly number[] | undefined, keepdims: boolean): string {
    const keep = keepdims ? 1 : 0;
    if (!axes) return this.op(op, [x], { keepdims: keep });
    const asInput = op === "ReduceSum" ? this.opset >= 13 : this.opset >= 18;
    return asInput ? this.op(op, [x, this.constInts([...axes])], { keepdims: keep }) : this.op(op, [x], { axes: [...axes], keepdims: keep });
  }

  reshape(x: string, shape: readonly number[]): string {
    return this.op("Reshape", [x, this.constInts([...shape])]);
  }

  transpose(x: string, perm: readonly number[]): string {
    if (perm.every((p, i) => p === i)) return x;
    return this.op("Transpose", [x], { perm: [...perm] });
  }

  expand(x: string, shape: readonly number[]): string {
    return this.op("Expand", [x, this.constInts([...shape])]);
  }

  zeros(shape: readonly number[], t: FloatType): string {
    return this.expand(this.scalar(0, t), shape);
  }

  /** Slice with explicit starts/ends/axes/steps (steps other than 1 need opset 10). */
  slice(x: string, starts: readonly number[], ends: readonly number[], axes: readonly number[], steps?: readonly number[]): string {
    if (this.opset >= 10) {
      const inputs = [x, this.constInts([...starts]), this.constInts([...ends]), this.constInts([...axes])];
      if (steps && steps.some((s) => s !== 1)) inputs.push(this.constInts([...steps]));
      return this.op("Slice", inputs);
    }
    if (steps && steps.some((s) => s !== 1)) throw new Error("Slice with steps needs opset 10");
    return this.op("Slice", [x], { starts: [...starts], ends: [...ends], axes: [...axes] });
  }

  /** Zero padding; `pads` = [begin_0.., end_0..] as in ONNX, all non-negative. */
  pad(x: string, pads: readonly number[], t: FloatType): string {
    if (pads.every((p) => p === 0)) return x;
    if (this.opset >= 11) return this.op("Pad", [x, this.constInts([...pads]), this.scalar(0, t)]);
    return this.op("Pad", [x], { pads: [...pads] });
  }

  /**
   * Un-broadcasting: sums a gradient of shape `from` down to `to` (numpy broadcasting rules):
   * leading axes `from` has in excess, and axes where `to` is 1 but `from` is not.
   */
  sumTo(g: string, from: readonly number[], to: readonly number[]): string {
    if (from.length === to.length && from.every((d, i) => d === to[i])) return g;
    const lead = from.length - to.length;
    if (lead < 0) throw new Error(`cannot sum shape [${from}] to [${to}]`);
    const axes: number[] = [];
    for (let i = 0; i < from.length; i++) if (i < lead || (to[i - lead] === 1 && from[i] !== 1)) axes.push(i);
    const summed = axes.length ? this.reduce("ReduceSum", g, axes, true) : g;
    if (product(from) === product(to) && axes.length === 0) return this.reshape(g, to);
    return this.reshape(summed, to);
  }
}
