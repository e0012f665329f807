import { basename } from "node:path";
import type { UnsupportedOp } from "../autodiff/backward";
import type { GradEmitter } from "../autodiff/emit";
import { buildGradientGraph, type GradientGraph } from "../autodiff/graph";
import { lossDefinition, TargetFeeder, type LossName, type ProbabilityOutput } from "../autodiff/loss";
import { probeTensorInfo, type TensorInfo } from "../autodiff/shapes";
import type { Layer } from "../graph/layers";
import { sharedParameterCopies } from "../graph/shared-weights";
import type { GraphAdditions } from "../instrument/stats-graph";
import { oneLine } from "../onnx/errors";
import type { Finding, GradientCoverageReport, LayerReport } from "../report/types";
import type { Model } from "../onnx/model";
import type { HostTensor } from "../runtime/session";
import type { ProbePlan } from "./inputs";
import { readLabelsFile } from "./npy";
import type { ProbeExtension } from "./run";

export interface GradientOptions {
  loss: LossName;
  /** .npy labels: class ids for ce (one per output position), targets for mse; rows follow the probe batches. */
  labelsFile?: string;
  intraOpThreads?: number;
  /** Subgraph scopes inlined into `model` (the If branches the probe takes): their layers get gradients too. */
  scopes?: ReadonlySet<string>;
}

/** Gradient statistics of one layer over the probe (see {@link GradientProbe.summary} for the aggregation). */
export interface LayerGradient {
  /** With respect to the layer's output: root mean over batches of the per-batch l2 norm. */
  readonly l2: number;
  readonly rms: number;
  readonly absMax: number;
  readonly weight: {
    readonly l2: number;
    readonly rms: number;
    /** Output units whose weight gradient was exactly zero on every probe batch. */
    readonly zeroUnits: number | null;
    readonly units: number | null;
  } | null;
}

export interface GradientSummary {
  readonly loss: { name: LossName; definition: string; value: number };
  readonly coverage: {
    layers: number;
    supported: number;
    unsupportedOps: { op: string; count: number; reason: string; nodes: string[] }[];
  };
  /** By layer id; null when an op without a gradient rule lies between the layer and the loss. */
  readonly layers: ReadonlyMap<number, LayerGradient | null>;
  /** Batches that contributed gradients (a batch of another shape gets forward statistics only). */
  readonly batches: number;
  readonly error?: string;
  /** A later batch could not run the backward graph: why (the statistics come from the batches before it). */
  readonly stoppedEarly?: string;
}

interface Stat {
  readonly sumsq?: string;
  readonly absMax?: string;
  readonly units?: string;
  readonly count: number;
}

interface LayerTaps {
  readonly layer: Layer;
  readonly out: Stat | 0 | null;
  readonly weight: (Stat & { readonly layout?: { outer: number; units: number; inner: number } }) | 0 | null | undefined;
  sumsq: number[];
  absMax: number;
  wSumsq: number[];
  unitSumsq?: Float64Array;
}

/**
 * The gradient half of the probe (DESIGN decision 2): loss + generated backward graph + in-graph
 * reductions of every layer's output and weight gradient, appended to the probe's own graph so
 * one onnxruntime run per batch does forward, backward and all statistics. Only scalars (and one
 * small vector per weight for dead units) leave the runtime.
 */
export class GradientProbe implements ProbeExtension {
  readonly additions: GraphAdditions;
  private readonly taps: LayerTaps[] = [];
  private readonly lossValue: string;
  private readonly feeder: TargetFeeder;
  private readonly shapes: ReadonlyMap<string, readonly number[]>;
  private readonly lossValues: number[] = [];
  private failure?: string;
  /** A later batch could not run the backward graph; the batches before it still count. */
  private stoppedEarly?: string;

  private readonly lossName: LossName;
  private readonly unsupported: readonly UnsupportedOp[];
  /** Where the loss depends on the layers through zero-derivative ops (the backward graph's zeroCuts). */
  readonly zeroCuts: readonly { op: string; node: string }[];
  private readonly lossOutputs: readonly string[];
  private readonly probabilities: ProbabilityOutput | undefined;

  private constructor(layers: readonly Layer[], info: TensorInfo, plan: ProbePlan, labels: HostTensor | undefined, private readonly labelsName: string | undefined, gg: GradientGraph, parameterOf: (weight: string) => string) {
    this.lossName = gg.loss.name;
    this.unsupported = gg.backward.unsupported;
    this.zeroCuts = gg.backward.zeroCuts;
    this.lossOutputs = gg.loss.outputs;
    this.probabilities = gg.loss.probabilities;
    this.shapes = new Map(plan.inputs.map((i) => [i.name, info.shapes.get(i.name) ?? i.shape]));
    const e = gg.emitter;
    const size = (t: string): number => (info.shapes.get(t) ?? []).reduce((a, b) => a * b, 1);
    const stat = (g: string | 0 | null, tensor: string, absMax: boolean): Stat | 0 | null => {
      if (g === null || g === 0) return g;
      // max(max g, -min g): two reductions read g twice but skip writing |g| (half the time of Abs + ReduceMax).
      const gAbsMax = (): string => e.op("Max", [e.reduce("ReduceMax", g, undefined, false), e.neg(e.reduce("ReduceMin", g, undefined, false))]);
      return { sumsq: e.reduce("ReduceSumSquare", g, undefined, false), absMax: absMax ? gAbsMax() : undefined, count: size(tensor) };
    };
    for (const layer of layers) {
      const out = stat(gg.backward.grad(layer.output), layer.output, true);
      let weight: LayerTaps["weight"];
      const w = layer.weight;
      if (w && (w.dtype === "float32" || w.dtype === "float64")) {
        // A weight read through a copy of a shared parameter reports the parameter's gradient (the sum over its uses), as torch does.
        const g = gg.backward.grad(parameterOf(w.name));
        const s = stat(g, w.name, false);
        const layout = layer.units ?? (layer.kind === "norm" ? { outer: 1, units: w.size, inner: 1 } : undefined);
        weight = s && layout && layout.outer * layout.units * layout.inner === w.size && typeof g === "string"
          ? { ...s, layout, units: unitSumsq(e, g, layout) }
          : s === 0 && layout ? 0 : s;
      }
      this.taps.push({ layer, out, weight, sumsq: [], absMax: 0, wSumsq: [] });
    }
    const outputs = [gg.loss.value, ...this.taps.flatMap((t) => [t.out, t.weight].flatMap((s) => (s ? [s.sumsq, s.absMax, s.units] : [])))].filter((n): n is string => !!n);
    this.additions = { nodes: e.nodes, initializers: e.initializers, inputs: gg.loss.inputs, outputs };
    this.lossValue = gg.loss.value;
    this.feeder = new TargetFeeder(gg.loss.targets, plan.seed, labels, plan.batchSize);
  }

  /**
   * Runs the shape probe on the first batch and builds loss, backward graph and reductions.
   * Throws DoctorError for unusable labels; other failures give a probe without gradients
   * (see {@link GradientProbe.summary}'s `error`).
   */
  static async prepare(model: Model, layers: readonly Layer[], plan: ProbePlan, options: GradientOptions): Promise<GradientProbe> {
    const labels = options.labelsFile ? readLabelsFile(options.labelsFile, options.loss, plan.fileRows) : undefined;
    const visible = layers.filter((l) => l.scope === "" || options.scopes?.has(l.scope));
    const info = await probeTensorInfo(model, plan.feeds(0), options.intraOpThreads);
    const reuses = sharedParameterCopies(model);
    const parameterOf = (weight: string): string => reuses.get(weight) ?? weight;
    const targets = [...new Set(visible.flatMap((l) => [l.output, ...(l.weight ? [parameterOf(l.weight.name)] : [])]))];
    const gg = buildGradientGraph(model, info, options.loss, targets, { withTargets: options.loss === "mse" && !!labels, identityCopiesAreParameters: true });
    return new GradientProbe(visible, info, plan, labels, options.labelsFile ? basename(options.labelsFile) : undefined, gg, parameterOf);
  }

  /** Whether batch b has the shapes the backward graph was built for (a short last batch of user data has not). */
  accepts(inputs: Record<string, HostTensor>): boolean {
    if (this.failure || this.stoppedEarly) return false;
    for (const [name, dims] of this.shapes) {
      const t = inputs[name];
      if (t && (t.dims.length !== dims.length || t.dims.some((d, i) => d !== dims[i]))) return false;
    }
    return true;
  }

  /** The loss targets of batch b (zeros when the batch is not used for gradients). */
  feeds(batch: number, inputs: Record<string, HostTensor>): Record<string, HostTensor> {
    return this.accepts(inputs) ? this.feeder.feeds(batch) : this.feeder.placeholders();
  }

  /** The probe could not run the backward graph; gradients are reported missing with this reason. */
  failed(error: unknown): void {
    if (this.lossValues.length > 0) this.stoppedEarly = oneLine(error);
    else this.failure = oneLine(error);
  }

  add(r: Record<string, HostTensor>): void {
    const scalar = (name: string | undefined): number => (name ? Number(r[name].data[0]) : 0);
    if (!(this.lossValue in r)) return;
    this.lossValues.push(scalar(this.lossValue));
    for (const t of this.taps) {
      if (t.out) {
        t.sumsq.push(scalar(t.out.sumsq));
        t.absMax = Math.max(t.absMax, scalar(t.out.absMax));
      } else if (t.out === 0) {
        t.sumsq.push(0);
      }
      if (t.weight) {
        t.wSumsq.push(scalar(t.weight.sumsq));
        if (t.weight.units) {
          const u = r[t.weight.units].data as Float32Array | Float64Array;
          t.unitSumsq ??= new Float64Array(u.length);
          for (let i = 0; i < u.length; i++) t.unitSumsq[i] += u[i];
        }
      } else if (t.weight === 0) {
        t.wSumsq.push(0);
      }
    }
  }

  /**
   * Per layer: l2 = sqrt(mean over batches of ||g_b||^2) (the l2 of one batch's gradient, averaged
   * in square over batches; equals torch's for a single batch), rms = sqrt(sum ||g_b||^2 / elements),
   * absMax over all batches. The loss is the mean of each batch's loss.
   */
  summary(): GradientSummary {
    const batches = this.lossValues.length;
    const mean = (xs: number[]): number => xs.reduce((a, b) => a + b, 0) / xs.length;
    const layers = new Map<number, LayerGradient | null>();
    let supported = 0;
    for (const t of this.taps) {
      if (t.out === null || this.failure || !batches) {
        layers.set(t.layer.id, null);
        continue;
      }
      const count = t.out === 0 ? 1 : t.out.count;
      const ms = mean(t.sumsq);
      let weight: LayerGradient["weight"] = null;
      if (t.weight !== undefined && t.weight !== null) {
        const wms = mean(t.wSumsq);
        const size = t.layer.weight!.size;
        const units = t.weight === 0 ? null : t.weight.layout?.units ?? null;
        weight = {
          l2: Math.sqrt(wms), rms: Math.sqrt(wms / size),
          zeroUnits: t.weight === 0 ? (t.layer.units?.units ?? null) : t.unitSumsq ? t.unitSumsq.reduce((n, v) => n + (v === 0 ? 1 : 0), 0) : null,
          units: t.weight === 0 ? (t.layer.units?.units ?? null) : units,
        };
      }
      if (t.weight !== null) supported++;
      layers.set(t.layer.id, { l2: Math.sqrt(ms), rms: Math.sqrt(ms / count), absMax: t.absMax, weight });
    }
    const byOp = new Map<string, { op: string; count: number; reason: string; nodes: string[] }>();
    for (const u of this.unsupported) {
      const entry = byOp.get(u.op) ?? { op: u.op, count: 0, reason: u.reason, nodes: [] };
      entry.count++;
      if (entry.nodes.length < 5) entry.nodes.push(u.node);
      byOp.set(u.op, entry);
    }
    return {
      loss: { name: this.lossName, definition: lossDefinition(this.lossName, this.lossOutputs, this.labelsName, this.probabilities), value: batches ? mean(this.lossValues) : NaN },
      coverage: { layers: this.taps.length, supported: this.failure ? 0 : supported, unsupportedOps: [...byOp.values()] },
      layers, batches, error: this.failure, stoppedEarly: this.stoppedEarly,
    };
  }
}

/** Per-unit sum of squares of a weight gradient laid out as [outer, units, inner]. */
function unitSumsq(e: GradEmitter, g: string, layout: { outer: number; units: number; inner: number }): string {
  return e.reduce("ReduceSumSquare", e.reshape(g, [layout.outer, layout.units, layout.inner]), [0, 2], false);
}

/** Above this many bytes of float weights the gradient probe is off unless a loss is asked for: weight gradients double the memory. */
export const GRADIENT_DEFAULT_LIMIT = 512e6;

/**
 * Above this many nodes (subgraphs included) the gradient probe is off unless a loss is asked for:
 * onnxruntime's session creation grows faster than the node count, and the backward graph adds
 * several nodes per node. Measured on 2 cores (whole analysis with gradients vs --loss none):
 * transformer blocks 1,320 nodes 2.7 vs 0.9 s, 2,640 nodes 7.2 vs 1.5 s, 5,280 nodes 23.9 vs 3.7 s;
 * Add/Mul chains 2,000 nodes 1.7 vs 0.5 s, 4,000 6.1 vs 1.1 s, 6,000 13.1 vs 1.6 s, 10,000 40 vs
 * 3.6 s, 20,000 280 vs 15 s.
 */
export const GRADIENT_DEFAULT_MAX_NODES = 3000;

/**
 * The loss of the gradient probe: the one asked for; else ce with labels, random without; and
 * "none" by default for models with more than {@link GRADIENT_DEFAULT_LIMIT} bytes of weights or
 * more than {@link GRADIENT_DEFAULT_MAX_NODES} nodes.
 */
export function chooseLoss(model: Model, asked: LossName | "none" | undefined, labelsFile: string | undefined): { loss: LossName | "none"; skipped?: string } {
  if (asked) return { loss: asked };
  let bytes = 0;
  for (const c of model.constants.values()) {
    if (c.source === "initializer" || c.source === "external" || c.source === "Constant") bytes += c.dtype === "float64" ? 8 * c.size : c.dtype === "float32" ? 4 * c.size : c.dtype === "float16" || c.dtype === "bfloat16" ? 2 * c.size : 0;
  }
  if (bytes > GRADIENT_DEFAULT_LIMIT) {
    return { loss: "none", skipped: `skipped by default: the model holds ${(bytes / 1e6).toFixed(0)} MB of float weights and their gradients would need as much again; ask for them with --loss random|ce|mse` };
  }
  const nodes = model.nodes.length + model.subgraphNodes.length;
  if (nodes > GRADIENT_DEFAULT_MAX_NODES) {
    return { loss: "none", skipped: `skipped by default: the model has ${nodes} nodes (more than ${GRADIENT_DEFAULT_MAX_NODES}), and onnxruntime's time to prepare the backward graph grows faster than the node count (about 20 s at 5,000 nodes, minutes at 20,000); ask for them with --loss random|ce|mse` };
  }
  return { loss: labelsFile ? "ce" : "random" };
}

/** Copies the gradient statistics into the layer reports (ratioToWeight from the weight's own moments). */
export function applyGradients(reports: readonly LayerReport[], summary: GradientSummary): void {
  for (const r of reports) {
    const g = summary.layers.get(r.id);
    if (!g) continue;
    r.gradient = { l2: g.l2, rms: g.rms, absMax: g.absMax };
    if (r.weight && g.weight) {
      const size = r.weight.shape.reduce((a, b) => a * b, 1);
      const norm = Math.sqrt(size * (r.weight.std ** 2 + r.weight.mean ** 2));
      r.weight.gradient = { l2: g.weight.l2, rms: g.weight.rms, ratioToWeight: norm > 0 ? g.weight.l2 / norm : g.weight.l2 > 0 ? Infinity : 0, zeroUnits: g.weight.zeroUnits, units: g.weight.units };
    }
  }
}

/** The report's `probe.gradientCoverage`. */
export function coverageReport(summary: GradientSummary | undefined, error?: string): GradientCoverageReport | undefined {
  if (!summary) return error ? { layers: 0, supported: 0, unsupportedOps: [], error } : undefined;
  return {
    ...summary.coverage, batches: summary.batches,
    ...(summary.error || error ? { error: summary.error ?? error } : {}),
    ...(summary.stoppedEarly ? { stoppedEarly: summary.stoppedEarly } : {}),
  };
}

/** An info finding when ops without a gradient rule (or a failure) left layers without gradients. */
export function coverageFindings(coverage: GradientCoverageReport | undefined): Finding[] {
  if (!coverage) return [];
  if (coverage.error) {
    // Skipped for size is the engine's choice, not an op it cannot handle: its own rule id says so.
    const skipped = coverage.error.startsWith("skipped");
    return [{
      ruleId: skipped ? "model.unsupported/gradient-skipped" : "model.unsupported/gradient", category: "model.unsupported", severity: "info",
      message: skipped
        ? `No gradient statistics: ${coverage.error}.`
        : `No gradient statistics: the backward graph could not be built or run (${coverage.error}). Activation statistics are unaffected.`,
      evidence: { error: coverage.error },
      fix: skipped
        ? "Ask for gradient statistics with --loss random (or ce/mse with --labels); the analysis then takes longer and needs more memory."
        : "Gradient statistics need float32/float64 tensors and ops with vector-Jacobian rules; try --loss none to skip them.",
    }];
  }
  const early: Finding[] = coverage.stoppedEarly ? [{
    ruleId: "model.unsupported/gradient-batches", category: "model.unsupported", severity: "info",
    message: `Gradient statistics come from the first ${coverage.batches} probe batch(es) only: ${coverage.stoppedEarly}.`,
    evidence: { batches: coverage.batches ?? 0, reason: coverage.stoppedEarly },
    fix: "Probe with data whose batches give the model the same intermediate shapes (e.g. equal sequence lengths), or accept statistics from fewer batches.",
  }] : [];
  if (!coverage.unsupportedOps.length) return early;
  const ops = coverage.unsupportedOps.map((u) => `${u.op} (${u.count} node${u.count > 1 ? "s" : ""}: ${u.reason})`).join("; ");
  const missing = coverage.layers - coverage.supported;
  return [{
    ruleId: "model.unsupported/gradient", category: "model.unsupported", severity: "info",
    node: coverage.unsupportedOps[0].nodes[0],
    message: `Gradients stop at ${ops}: ${missing} of ${coverage.layers} layers upstream of them get no gradient statistics (never a partial, wrong one).`,
    evidence: { layers: coverage.layers, supported: coverage.supported, unsupportedOps: coverage.unsupportedOps.map((u) => u.op).join(", ") },
    fix: "Nothing to change in the model; these ops have no vector-Jacobian rule in the engine yet.",
  }, ...early];
}
