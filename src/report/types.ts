/**
 * The report, JSON schema version 1. Other tools and the tests rely on these field names;
 * add fields freely, never rename or remove one without bumping `schemaVersion`.
 */
export const SCHEMA_VERSION = 1;

export type Severity = "error" | "warning" | "info";

/** The fixed vocabulary of finding categories (DESIGN.md). */
export const CATEGORIES = [
  "init.zero", "init.symmetric", "init.scale-small", "init.scale-large", "weights.nonfinite",
  "activation.vanishing", "activation.exploding", "activation.dead", "activation.saturated",
  "numeric.nonfinite", "numeric.fp16-range", "gradient.vanishing", "gradient.exploding",
  "norm.post-norm", "norm.dropout-before-bn", "norm.bn-variance", "export.training-mode",
  "input.unnormalized", "input.correlated", "recurrent.spectral-radius", "fit.high-bias",
  "fit.high-variance", "model.unsupported", "model.invalid",
] as const;

export type Category = (typeof CATEGORIES)[number];

export type EvidenceValue = number | string | boolean | null | readonly number[];

export interface Finding {
  /** Finer than the category when a rule has variants, e.g. `init.zero/residual`. */
  ruleId: string;
  category: Category;
  severity: Severity;
  /** The layer's name as the user knows it (module path). */
  layer?: string;
  node?: string;
  tensor?: string;
  message: string;
  evidence: Record<string, EvidenceValue>;
  fix: string;
}

export interface HistogramReport {
  lo: number;
  hi: number;
  counts: number[];
}

export interface WeightReport {
  tensor: string;
  shape: number[];
  dtype: string;
  source: string;
  fanIn: number | null;
  fanOut: number | null;
  mean: number;
  std: number;
  min: number;
  max: number;
  zeroFraction: number;
  nonFinite: number;
  kurtosis: number;
  /** Heavy tails or a non-Gaussian shape: the weights look trained, not freshly initialised. */
  looksTrained: boolean;
  /** Every output unit has the same weight vector (includes constant tensors). */
  identicalUnits: boolean | null;
  expectedStd: { he: number; xavier: number; lecun: number } | null;
}

export interface ActivationReport {
  tensor: string;
  mean: number;
  std: number;
  min: number;
  max: number;
  zeroFraction: number;
  saturatedFraction: number | null;
  nonFinite: number;
  deadUnits: number | null;
  units: number | null;
  histogram: HistogramReport;
}

export interface LayerReport {
  id: number;
  name: string;
  module: string | null;
  op: string;
  kind: string;
  depth: number;
  activationFunction: string | null;
  followedByNorm: boolean;
  node: string;
  /** Inside an If/Loop body: checked statically, invisible to the probe. */
  inSubgraph: boolean;
  weight?: WeightReport;
  activation?: ActivationReport;
}

export interface ProbeInputReport {
  name: string;
  shape: number[];
  dtype: string;
  source: string;
}

export interface Report {
  schemaVersion: number;
  tool: { name: string; version: string };
  model: {
    path: string;
    sha256: string;
    irVersion: number;
    opsets: Record<string, number>;
    producer: string;
    parameterCount: number;
    nodeCount: number;
    sizeBytes: number;
    /** Enough layers show trained weight statistics that initialisation rules are skipped. */
    weightsLookTrained: boolean;
  };
  probe: {
    ran: boolean;
    inputs: ProbeInputReport[];
    /** Values used for the model's symbolic dimensions. */
    dims: Record<string, number>;
    batchSize: number;
    batches: number;
    /** Gradient losses arrive with the gradient engine; a forward probe has none. */
    loss: { name: string; definition: string } | null;
    seed: number;
    seconds?: number;
    error?: string;
  };
  layers: LayerReport[];
  findings: Finding[];
  summary: { errors: number; warnings: number; infos: number };
}

/** JSON with NaN and ±Infinity written as null (JSON has no such numbers). */
export function toJson(report: Report): string {
  return JSON.stringify(report, (_k, v: unknown) => (typeof v === "number" && !Number.isFinite(v) ? null : v), 2);
}
