// The PyTorch gradient oracles written by scripts/make_gradient_fixtures.py.
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";

export const GRADIENTS = join(__dirname, "..", "fixtures", "gradients");

export interface GradientFixture {
  model: string;
  input: string;
  labels: string;
  opset: number;
  description: string;
  batch: number;
  losses: Record<"ce" | "mse", { value: number; layers: { module: string; onnxNode: string; onnxTensor: string; outputGradL2: number; weightGradL2: number }[] }>;
  findings: { must: string[]; mustNot: string[] };
}

export const gradientStems = readdirSync(GRADIENTS).filter((f) => f.endsWith(".gradients.json")).map((f) => f.replace(".gradients.json", ""));
export const gradientFixture = (stem: string): GradientFixture => JSON.parse(readFileSync(join(GRADIENTS, `${stem}.gradients.json`), "utf8")) as GradientFixture;
