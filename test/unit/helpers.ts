import { readFileSync } from "node:fs";
import { join } from "node:path";

export const FIXTURES = join(__dirname, "..", "fixtures", "models");
/** The shared real models: next to the checkout, or wherever ONNX_DOCTOR_REAL_MODELS points. */
export const REAL = process.env.ONNX_DOCTOR_REAL_MODELS ?? join(__dirname, "..", "..", "..", "shared", "models", "real");

export interface ExpectedLayer {
  module: string;
  op: string;
  activation: string | null;
  onnxTensor: string;
  mean: number | null;
  std: number | null;
  zeroFraction: number;
}

export interface Expected {
  model: string;
  input: string;
  layers: ExpectedLayer[];
  expectedFindings: { must: string[]; mustNot: string[]; infoOnly: string[]; unasserted: string[] };
}

export function expected(stem: string): Expected {
  return JSON.parse(readFileSync(join(FIXTURES, `${stem}.expected.json`), "utf8")) as Expected;
}

/** |a - b| / |b|, with an absolute floor for values at zero. */
export function relDiff(a: number, b: number): number {
  return Math.abs(a - b) / Math.max(Math.abs(b), 1e-12);
}

/** A NumPy .npy file (format 1.0, little-endian, C order) holding `data` with the given dtype descr. */
export function npyBytes(descr: string, shape: number[], data: ArrayBufferView): Uint8Array {
  let header = `{'descr': '${descr}', 'fortran_order': False, 'shape': (${shape.join(", ")}${shape.length === 1 ? "," : ""}), }`;
  while ((10 + header.length + 1) % 64) header += " ";
  header += "\n";
  const head = new Uint8Array(10 + header.length);
  head.set([0x93, ...Buffer.from("NUMPY"), 1, 0, header.length & 0xff, header.length >> 8], 0);
  head.set(Buffer.from(header, "latin1"), 10);
  return Buffer.concat([head, new Uint8Array(data.buffer, data.byteOffset, data.byteLength)]);
}
