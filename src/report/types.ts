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
  "norm.placement", "norm.post-norm", "norm.dropout-before-bn", "norm.bn-variance", "export.training-mode",
  "input.unnormalized", "input.correlated", "recurrent.spectral-radius", "fit.high-bias",
  "fit.high-variance", "fit.regularization", "model.unsupported", "model.invalid",
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
  /** The layer's bias and its NaN/Inf count (null without a float bias). */
  bias: { tensor: string; nonFinite: number } | null;
  kurtosis: number;
  /** Heavy tails or a non-Gaussian shape: the weights look trained, not freshly initialised. */
  looksTrained: boolean;
  /** Every output unit has the same weight vector (includes constant tensors). */
  identicalUnits: boolean | null;
  expectedStd: { he: number; xavier: number; lecun: number } | null;
  /** Gradient of the probe loss with respect to this weight (absent without a gradient probe). */
  gradient?: WeightGradientReport;
}

/** l2 of a gradient: sqrt(mean over probe batches of ||g_batch||^2), i.e. one batch's l2 averaged in square. */
export interface GradientReport {
  l2: number;
  /** sqrt(sum of g^2 / elements) over all batches. */
  rms: number;
  absMax: number;
}

export interface WeightGradientReport {
  l2: number;
  rms: number;
  /** ||dW|| / ||W||: the relative size of one plain gradient step (learning rate 1). */
  ratioToWeight: number;
  /** Output units whose weight gradient was exactly zero on every probe batch: they do not learn. */
  zeroUnits: number | null;
  units: number | null;
}

/** Which layers got gradients, and the ops that stopped them (they have no vector-Jacobian rule). */
export interface GradientCoverageReport {
  layers: number;
  supported: number;
  unsupportedOps: { op: string; count: number; reason: string; nodes: string[] }[];
  /** Probe batches that carried gradients (a short last batch of user data gets activations only). */
  batches?: number;
  /** Why there are no gradients at all (the backward graph could not be built or run). */
  error?: string;
  /** Why later batches carried no gradients (the statistics come from the first `batches`). */
  stoppedEarly?: string;
}

export interface ActivationReport {
  tensor: string;
  mean: number;
  std: number;
  min: number;
  max: number;
  zeroFraction: number;
  /** Read from the histogram sample rather than counted exactly (layers without ReLU-like units). */
  zeroFractionFromSample?: boolean;
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
  /** Gradient of the probe loss with respect to the layer's output (absent when unavailable). */
  gradient?: GradientReport;
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
    /** What differs from what was asked (a fixed batch dimension, a short last batch). */
    notes?: string[];
    /** The loss the gradients are of (`--loss`); null for a forward-only probe. `value`: mean over batches. */
    loss: { name: string; definition: string; value?: number } | null;
    gradientCoverage?: GradientCoverageReport;
    seed: number;
    /** If nodes the probe replaced by the branch its inputs take ("If_25 -> then_branch"). */
    branches?: string[];
    seconds?: number;
    error?: string;
  };
  layers: LayerReport[];
  findings: Finding[];
  summary: { errors: number; warnings: number; infos: number };
  /** Residual blocks, normalization placement, dropout, weight norms, recurrences (absent when nothing applies). */
  architecture?: ArchitectureReport;
  /** Statistics of the user's probe data (`--input`); absent for synthetic probes. */
  inputData?: InputDataReport;
  /** Training vs validation loss and error (`--train-data`, `--val-data`). */
  fit?: FitReport;
}

/** One residual block `x + f(x)` of a transformer-like model. */
export interface ResidualBlockReport {
  /** The Add (or fused SkipLayerNormalization) joining the branch to the stream. */
  node: string;
  module: string | null;
  kind: "attention" | "feed-forward" | "conv" | "other";
  /** Pre-Norm: x + f(Norm(x)); Post-Norm: Norm(x + f(x)); none: no normalization at either place. */
  placement: "pre-norm" | "post-norm" | "none";
  /** "decomposed LayerNorm", "LayerNormalization", ...; null without one. */
  norm: string | null;
  normModule: string | null;
  width: number | null;
}

export interface NormReport {
  kind: "batch" | "layer" | "rms" | "instance" | "group";
  form: "op" | "decomposed";
  label: string;
  node: string;
  module: string | null;
  epsilon: number | null;
  width: number | null;
}

export interface DropoutReport {
  node: string;
  module: string | null;
  /** Drop probability; keepProb = 1 - rate (the seed's keep-prob). */
  rate: number | null;
  keepProb: number | null;
  trainingMode: boolean | null;
}

export interface WeightNormReport {
  layer: string;
  tensor: string;
  parameters: number;
  /** ||W||_F, the square root of this layer's term in the L2 penalty (lambda/2m) sum ||W||_F^2. */
  frobenius: number;
  /** This layer's share of sum ||W||_F^2 over all weight layers. */
  share: number;
}

export interface RecurrentReport {
  layer: string;
  op: string;
  node: string;
  tensor: string;
  hiddenSize: number;
  vanilla: boolean;
  unrolledSteps: number | null;
  activation: string | null;
  /** Spectral radius of each recurrent matrix (per gate and direction). */
  matrices: { gate: string; direction: number; spectralRadius: number }[];
}

export interface ArchitectureReport {
  /** One line: "4 Post-Norm transformer layers (decomposed LayerNorm), d_model 16". */
  summary: string;
  /** Attention blocks (or feed-forward blocks when there is no attention). */
  transformerLayers: number;
  placement: "pre-norm" | "post-norm" | "mixed" | "none" | null;
  dModel: number | null;
  blocks: ResidualBlockReport[];
  norms: NormReport[];
  dropout: DropoutReport[];
  weightNorms: WeightNormReport[];
  recurrent: RecurrentReport[];
}

/** Per-feature (tabular) or per-channel (images, NCHW) statistics of one input. */
export interface InputStatsReport {
  name: string;
  samples: number;
  /** "features": axis 1 of [N, D]; "channels": axis 1 of [N, C, ...]; "last": last axis of [N, T, D]. */
  layout: "features" | "channels" | "last";
  features: number;
  mean: number[];
  std: number[];
  min: number[];
  max: number[];
  /** Covariance of the features (not computed for channels of images). */
  covariance: {
    conditionNumber: number;
    /** Condition number of the correlation matrix: scale-free collinearity. */
    correlationConditionNumber: number;
    maxAbsCorrelation: number;
    maxPair: [number, number] | null;
    /** PCA explained variance ratio of each component, largest first (the seed's np.linalg.svd(cov)). */
    explainedVarianceRatio: number[];
    /** Components needed for 99% of the variance. */
    componentsFor99: number;
  } | null;
  /** Normalization the model applies to this input itself, when recognised. */
  preprocessing: { kind: "affine" | "norm"; node: string; description: string } | null;
  /** Mean and std after the model's own affine preprocessing (Sub/Div/Mul/Add by constants). */
  normalized: { mean: number[]; std: number[] } | null;
}

export interface InputDataReport {
  inputs: InputStatsReport[];
}

export interface FitSetReport {
  samples: number;
  loss: number;
  /** Misclassification rate; for regression, 1 - R^2 (fraction of variance unexplained). */
  error: number;
}

export interface FitReport {
  task: "classification" | "binary" | "regression";
  output: string;
  labels: string;
  train: FitSetReport;
  val: FitSetReport;
  /** The error a perfect model would still make (the seed's baseline); 0 unless given. */
  baselineError: number;
  verdict: "high-bias" | "high-variance" | "high-bias+high-variance" | "just-right";
}

/** JSON with NaN and ±Infinity written as null (JSON has no such numbers). */
export function toJson(report: Report): string {
  return JSON.stringify(report, (_k, v: unknown) => (typeof v === "number" && !Number.isFinite(v) ? null : v), 2);
}
