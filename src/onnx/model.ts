import type { AttributeProto, ModelProto, NodeProto } from "./gen/onnx_pb";
import type { DType } from "./dtype";

/** A dimension: a number when fixed, the symbolic name when dynamic, null when unknown. */
export type Dim = number | string | null;

/** A graph input or output as declared in the model. */
export interface ValueSpec {
  readonly name: string;
  readonly dtype: DType;
  readonly shape: readonly Dim[] | null;
}

/** Where a constant tensor came from; shown to the user as evidence. */
export type ConstantSource =
  | "initializer" | "Constant" | "ConstantOfShape" | "Identity" | "Cast" | "Reshape" | "Transpose" | "DequantizeLinear" | "external";

/**
 * A constant tensor (a weight) that the engine can read without running the model.
 * Values are decoded lazily so that static analysis streams over tensors.
 */
export interface ConstTensor {
  readonly name: string;
  readonly dtype: DType;
  readonly dims: readonly number[];
  readonly size: number;
  readonly source: ConstantSource;
  /** Set when every element has this value (ConstantOfShape); lets rules skip decoding. */
  readonly fill?: number;
  /** Decoded element values as floats (ints converted); decoded again on each call. */
  values(): Float32Array | Float64Array;
}

/** A node with its attributes indexed by name. `scope` says which (sub)graph it lives in. */
export interface GraphNode {
  readonly index: number;
  readonly name: string;
  readonly opType: string;
  readonly domain: string;
  readonly inputs: readonly string[];
  readonly outputs: readonly string[];
  readonly attrs: ReadonlyMap<string, AttributeProto>;
  readonly scope: string;
  readonly proto: NodeProto;
}

/** A decoded ONNX model: read-only, with constants resolved. */
export interface Model {
  readonly path: string;
  /** Hex SHA-256 of the file, computed on libuv's thread pool while the weights are analysed. */
  readonly sha256: Promise<string>;
  readonly byteLength: number;
  readonly irVersion: number;
  readonly opsets: Readonly<Record<string, number>>;
  readonly producer: string;
  readonly inputs: readonly ValueSpec[];
  readonly outputs: readonly ValueSpec[];
  /** Top-level nodes in topological order (file order when the file has it, as ONNX requires). */
  readonly nodes: readonly GraphNode[];
  /** Nodes of subgraphs (If/Loop/Scan bodies); their constants are in `constants` too. */
  readonly subgraphNodes: readonly GraphNode[];
  readonly constants: ReadonlyMap<string, ConstTensor>;
  /** The decoded protobuf, for rewriting (instrumentation). */
  readonly proto: ModelProto;
  /** External data files the runtime must be given, by the location written in the model. */
  readonly externalFiles: ReadonlyMap<string, string>;
}

export function attrInt(node: GraphNode, name: string, fallback: number): number {
  const a = node.attrs.get(name);
  return a ? Number(a.i) : fallback;
}

export function attrFloat(node: GraphNode, name: string, fallback: number): number {
  const a = node.attrs.get(name);
  return a ? a.f : fallback;
}

export function attrInts(node: GraphNode, name: string): number[] | undefined {
  const a = node.attrs.get(name);
  return a ? a.ints.map(Number) : undefined;
}

export function attrString(node: GraphNode, name: string): string | undefined {
  const a = node.attrs.get(name);
  return a ? new TextDecoder().decode(a.s) : undefined;
}

/** The default ONNX operator set version, which decides attribute-vs-input forms of ops. */
export function defaultOpset(model: Model): number {
  return model.opsets[""] ?? model.opsets["ai.onnx"] ?? 1;
}
