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
