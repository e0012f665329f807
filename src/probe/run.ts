import type { Layer } from "../graph/layers";
import { mergeAdditions } from "../instrument/channel-stats";
import { generatedPrefix } from "../instrument/names";
import { instrumentStatistics, NodeBuilder, serializeWith, tapOutputNames, type GraphAdditions, type Tap, type TapOutputs } from "../instrument/stats-graph";
import { DoctorError } from "../onnx/errors";
import { attrInt, defaultOpset, type Model } from "../onnx/model";
import { TensorProto_DataType as DT } from "../onnx/gen/onnx_pb";
import { RuntimeSession, shortRuntimeMessage, type HostTensor } from "../runtime/session";
import { moments, RunningMoments } from "../stats/moments";
import { histogram, type Histogram } from "../stats/histogram";
import { Random } from "../stats/random";
import { inlineTakenBranches, type InlinedModel } from "../instrument/inline-branches";
import type { ProbePlan } from "./inputs";

/** Per-layer activation statistics aggregated over all probe batches. */
export interface ActivationStats {
  readonly tensor: string;
  readonly count: number;
  readonly mean: number;
  readonly std: number;
  readonly min: number;
  readonly max: number;
  readonly zeroFraction: number;
  /** The zero fraction was read from the histogram sample (layers without ReLU-like units). */
  readonly zeroFractionFromSample: boolean;
  readonly saturatedFraction: number | null;
  readonly nonFinite: number;
  /** Units (channels or features) that never produced a positive value on the probe. */
  readonly deadUnits: number | null;
  readonly units: number | null;
  readonly histogram: Histogram;
}

export interface ProbeResult {
  readonly activations: ReadonlyMap<number, ActivationStats>;
  /** The first node (topological order) that produced NaN or Inf, when one did. */
  readonly firstNonFinite?: { node: string; opType: string; tensor: string; batch: number; inputsFinite: boolean };
  readonly seconds: number;
  /** If nodes replaced by the branch the probe inputs take ("If_25 -> then_branch"). */
  readonly branches?: readonly string[];
}

export interface ProbeHooks {
  signal?: AbortSignal;
  progress?: (fraction: number, message: string) => void;
  intraOpThreads?: number;
  /** Extra in-graph reductions run along with the probe (per-channel BatchNorm input statistics). */
  extensions?: readonly ProbeExtension[];
  /**
   * The model with the taken If branches inlined, when the caller did it already (the backward
   * graph of the gradient probe must be built on the same graph the probe runs).
   */
  inlined?: InlinedModel;
}

/** Nodes appended to the probe graph, and a sink for their fetched values after every batch. */
export interface ProbeExtension {
  readonly additions: GraphAdditions;
  add(results: Record<string, HostTensor>): void;
  /** Feeds for the inputs the additions declare (loss targets), for batch b. */
  feeds?(batch: number, inputs: Record<string, HostTensor>): Record<string, HostTensor>;
  /** False when batch b cannot carry the additions (its shapes differ): their outputs are not fetched. */
  accepts?(inputs: Record<string, HostTensor>): boolean;
  /**
   * Makes the extension optional: when the graph with it cannot be created or run, it is dropped
   * with this call and the forward probe goes on (the generated backward graph).
   */
  failed?(error: unknown): void;
}

const isRelu = (l: Layer): boolean => l.activation === "relu" || l.activation === "leaky_relu" || l.activation === "prelu";

/** Which statistics each layer needs; exported for the benchmark, which times the same graph. */
export function tapsFor(layers: readonly Layer[]): Tap[] {
  return layers.map((l) => ({
    tensor: l.output,
    saturation: l.activation === "tanh" ? "tanh" : l.activation === "sigmoid" ? "sigmoid" : undefined,
    unitMax: isRelu(l),
    countZeros: isRelu(l),
    channelFirst: l.spatial,
    castToFloat: !!l.weight && l.weight.dtype !== "float32",
  }));
}

/** Tensors whose non-finite values one locating run counts. */
const LOCATE_CHUNK = 16;

/** Histogram values kept per layer across all batches. */
const MAX_SAMPLES = 1 << 16;

class TapAccumulator {
  readonly moments = new RunningMoments();
  min = Infinity;
  max = -Infinity;
  size = 0;
  zeros = 0;
  saturated = 0;
  unitMax: Float32Array | undefined;
  samples: number[] = [];
  sawNonFinite = false;
  private seen = 0;
  private readonly reservoir = new Random(1);

  add(out: TapOutputs, r: Record<string, HostTensor>): void {
    const scalar = (name: string): number => Number(r[name].data[0]);
    const size = scalar(out.size);
    const mean = scalar(out.mean);
    // The in-graph one-pass sum can round below zero (stats-graph.ts); Math.max keeps NaN.
    this.moments.add(size, mean, Math.max(0, scalar(out.m2)));
    this.min = Math.min(this.min, scalar(out.min));
    this.max = Math.max(this.max, scalar(out.max));
    if (!Number.isFinite(mean)) this.sawNonFinite = true;
    this.size += size;
    if (out.zeros) this.zeros += scalar(out.zeros);
    else this.zeros = NaN;
    if (out.saturated) this.saturated += scalar(out.saturated);
    if (out.unitMax) {
      const u = r[out.unitMax].data as Float32Array;
      if (!this.unitMax || this.unitMax.length !== u.length) this.unitMax = Float32Array.from(u);
      else for (let i = 0; i < u.length; i++) if (u[i] > this.unitMax[i]) this.unitMax[i] = u[i];
    }
    const s = r[out.sample].data as Float32Array;
    // Reservoir sampling: at most MAX_SAMPLES values, a uniform sample however many batches run.
    for (let i = 0; i < s.length; i++, this.seen++) {
      if (this.samples.length < MAX_SAMPLES) this.samples.push(s[i]);
      else {
        const j = this.reservoir.int(this.seen + 1);
        if (j < MAX_SAMPLES) this.samples[j] = s[i];
      }
    }
  }

  finish(layer: Layer, tap: Tap, nonFinite: number): ActivationStats {
    let deadUnits: number | null = null;
    let units: number | null = null;
    const channels = layer.units?.units ?? layer.fanOut;
    // NaN never compares > 0: with NaN in the tensor every unit would read as never firing.
    if (this.unitMax && channels && this.unitMax.length % channels === 0 && nonFinite === 0) {
      units = channels;
      const per = this.unitMax.length / channels;
      const alive = new Uint8Array(channels);
      for (let p = 0; p < this.unitMax.length; p++) {
        const c = layer.unitAxis === "channel" ? Math.floor(p / per) : p % channels;
        if (this.unitMax[p] > 0) alive[c] = 1;
      }
      deadUnits = channels - alive.reduce((a, b) => a + b, 0);
    }
    // Exact count after ReLU-like units; elsewhere the share of zeros in the sample.
    const sampled = Number.isNaN(this.zeros);
    const zeros = sampled ? (this.samples.filter((v) => v === 0).length / Math.max(1, this.samples.length)) * this.size : this.zeros;
    let mean = this.moments.mean;
    let std = Math.sqrt(this.moments.variance);
    if (!Number.isFinite(std) && nonFinite === 0 && Number.isFinite(this.min) && Number.isFinite(this.max)) {
      // Finite values beyond ~1e19 overflow float32 sums of squares; fall back to the sample, in float64.
      const m = moments(this.samples);
      mean = m.mean;
      std = m.std;
    }
    return {
      tensor: tap.tensor,
      count: this.size,
      mean,
      std,
      min: this.min,
      max: this.max,
      zeroFraction: this.size ? zeros / this.size : NaN,
      zeroFractionFromSample: sampled,
      saturatedFraction: tap.saturation ? this.saturated / this.size : null,
      nonFinite,
      deadUnits,
      units,
      histogram: histogram(this.samples, this.min, this.max),
    };
  }
}

/**
 * Runs the probe: one session over the model with in-graph reductions, fed batch by batch,
 * statistics merged as they stream in. If anything turns non-finite, a second pass on that
 * batch fetches every intermediate tensor to name the node where NaN/Inf first appear.
 */
export async function runProbe(model: Model, layers: readonly Layer[], plan: ProbePlan, hooks: ProbeHooks = {}): Promise<ProbeResult> {
  const started = performance.now();
  const opset = defaultOpset(model);
  if (opset < 7) {
    throw new DoctorError("model.unsupported", `opset ${opset} predates numpy-style broadcasting (opset 7), which the probe's statistics need; only the weights were checked`);
  }
  // Layers inside If branches become visible when the probe's inputs always take the same branch.
  const inlined = hooks.inlined ?? await inlineTakenBranches(model, plan, hooks.intraOpThreads);
  model = inlined.model;
  const visible = layers.filter((l) => l.scope === "" || inlined.scopes.has(l.scope));
  const taps = tapsFor(visible);
  let extensions = hooks.extensions ?? [];
  let { bytes, outputs } = instrumentStatistics(model, taps, mergeAdditions(extensions.map((e) => e.additions)));
  hooks.progress?.(0, "creating onnxruntime session");
  // onnxruntime's float64 RMSNorm fusion swaps the model's epsilon for 1e-5: a model that computes
  // in double runs unfused, as written (and as the backward graph differentiates it).
  const sessionOptions = { intraOpThreads: hooks.intraOpThreads, ...(computesInDouble(model) ? { optimization: "basic" as const } : {}) };
  let session: RuntimeSession;
  try {
    session = await RuntimeSession.open(bytes, model.externalFiles, sessionOptions);
  } catch (e) {
    // An optional extension (the generated backward graph) must not cost the forward probe.
    if (!extensions.some((x) => x.failed)) throw e;
    for (const x of extensions) x.failed?.(e);
    extensions = extensions.filter((x) => !x.failed);
    ({ bytes, outputs } = instrumentStatistics(model, taps, mergeAdditions(extensions.map((x) => x.additions))));
    session = await RuntimeSession.open(bytes, model.externalFiles, sessionOptions);
  }
  const acc = taps.map(() => new TapAccumulator());
  const fetch = outputs.flatMap(tapOutputNames);
  // Model outputs are always fetched: with no visible layers they are all we can check for NaN.
  fetch.push(...model.outputs.map((o) => o.name));
  let badBatch: number | undefined;
  // Extensions that may decline a batch (another shape) or fail at run time get a session without
  // them for those batches: onnxruntime runs every node of a graph whatever is fetched.
  const optional = (x: ProbeExtension): boolean => !!(x.accepts || x.failed);
  let plain: RuntimeSession | undefined;
  let plainOnly = false;
  const plainRun = async (b: number): Promise<Record<string, HostTensor>> => {
    const sure = extensions.filter((x) => !optional(x));
    plain ??= await RuntimeSession.open(instrumentStatistics(model, taps, mergeAdditions(sure.map((x) => x.additions))).bytes, model.externalFiles, sessionOptions);
    const feeds = plan.feeds(b);
    for (const x of sure) if (x.feeds) Object.assign(feeds, x.feeds(b, feeds));
    return plain.run(feeds, [...fetch, ...sure.flatMap((x) => x.additions.outputs)]);
  };
  try {
    for (let b = 0; b < plan.batches; b++) {
      if (hooks.signal?.aborted) throw new DoctorError("cancelled", "analysis cancelled");
      hooks.progress?.(b / plan.batches, `probe batch ${b + 1}/${plan.batches}`);
      const feeds = plan.feeds(b);
      let using = plainOnly || extensions.some((x) => x.accepts && !x.accepts(feeds)) ? extensions.filter((x) => !optional(x)) : extensions;
      let r: Record<string, HostTensor> | undefined;
      if (using === extensions) {
        for (const x of extensions) if (x.feeds) Object.assign(feeds, x.feeds(b, feeds));
        try {
          r = await session.run(feeds, [...fetch, ...using.flatMap((x) => x.additions.outputs)]);
        } catch (e) {
          if (!extensions.some((x) => x.failed)) throw e;
          // The added graphs are specialised to batch 1's shapes (see autodiff/shapes.ts); a later
          // batch whose intermediate shapes differ (data-dependent shapes) cannot run them.
          const reason = b > 0 ? new Error(`probe batch ${b + 1} has intermediate shapes other than batch 1's, which the backward graph was built for (data-dependent shapes); onnxruntime: ${shortRuntimeMessage(e)}`) : e;
          for (const x of extensions) x.failed?.(reason);
          extensions = extensions.filter((x) => !x.failed);
          using = extensions.filter((x) => !optional(x));
          plainOnly = true;
        }
      }
      r ??= await plainRun(b);
      outputs.forEach((o, i) => acc[i].add(o, r));
      for (const x of using) x.add(r);
      const outputNonFinite = model.outputs.some((o) => { const d = r[o.name]?.data; return (d instanceof Float32Array || d instanceof Float64Array) && !d.every(Number.isFinite); });
      if (badBatch === undefined && (outputNonFinite || acc.some((a) => a.sawNonFinite))) badBatch = b;
    }
  } finally {
    await session.release();
    await plain?.release();
  }
  let firstNonFinite: ProbeResult["firstNonFinite"];
  const nonFiniteByTensor = new Map<string, number>();
  if (badBatch !== undefined) {
    hooks.progress?.(1, "locating the first NaN/Inf");
    firstNonFinite = await locateNonFinite(model, plan, badBatch, nonFiniteByTensor);
  }
  const activations = new Map<number, ActivationStats>();
  visible.forEach((l, i) => activations.set(l.id, acc[i].finish(l, taps[i], nonFiniteByTensor.get(l.output) ?? 0)));
  return { activations, firstNonFinite, seconds: (performance.now() - started) / 1000, branches: inlined.taken };
}

/**
 * Names where NaN/Inf first appear on one batch: a model input, or the first node (in execution
 * order) with a non-finite output. Only scalars leave onnxruntime: every float tensor gets an
 * in-graph count of its non-finite elements (x - x is NaN exactly for NaN and ±Inf), so memory
 * stays flat however many intermediates the model has.
 */
async function locateNonFinite(model: Model, plan: ProbePlan, batch: number, counts: Map<string, number>): Promise<ProbeResult["firstNonFinite"]> {
  const feeds = plan.feeds(batch);
  for (const [name, t] of Object.entries(feeds)) {
    if (!(t.data instanceof Float32Array || t.data instanceof Float64Array)) continue;
    let n = 0;
    for (let i = 0; i < t.data.length; i++) if (!Number.isFinite(t.data[i])) n++;
    if (n) return { node: name, opType: "input", tensor: name, batch, inputsFinite: false };
  }
  const names = model.nodes.flatMap((n) => n.outputs.filter(Boolean));
  // onnxruntime infers the element type of outputs declared without one; only float ones can hold NaN.
  const typing = await RuntimeSession.open(serializeWith(model, [], [], names), model.externalFiles);
  const types = typing.outputTypes();
  await typing.release();
  const candidates = names.filter((n) => { const t = types.get(n); return t === "float32" || t === "float16" || t === "float64"; });
  // Counted a chunk at a time in execution order, stopping at the first chunk with NaN/Inf:
  // onnxruntime keeps a counted tensor alive until its counter runs, so counting everything at
  // once can hold every intermediate in memory together.
  const bad = new Set<string>();
  for (let start = 0; start < candidates.length && bad.size === 0; start += LOCATE_CHUNK) {
    const chunk = candidates.slice(start, start + LOCATE_CHUNK);
    const b = new NodeBuilder(generatedPrefix(model, "__doctor_nan"));
    const counters = chunk.map((name) => {
      const x = types.get(name) === "float32" ? name : b.op("Cast", [name], { to: 1 });
      return { name, finite: b.countTrue(b.op("Less", [b.op("Abs", [b.op("Sub", [x, x])]), b.constFloat(1)])), size: b.op("Size", [x]) };
    });
    const fetch = counters.flatMap((c) => [c.finite, c.size]);
    const session = await RuntimeSession.open(serializeWith(model, b.nodes, b.initializers, fetch), model.externalFiles);
    let r: Record<string, HostTensor>;
    try {
      r = await session.run(feeds, fetch);
    } finally {
      await session.release();
    }
    for (const c of counters) {
      const n = Number(r[c.size].data[0]) - Number(r[c.finite].data[0]);
      counts.set(c.name, n);
      if (n > 0) bad.add(c.name);
    }
  }
  for (const node of model.nodes) {
    const out = node.outputs.find((o) => bad.has(o));
    if (out) return { node: node.name, opType: node.opType, tensor: out, batch, inputsFinite: !node.inputs.some((i) => bad.has(i)) };
  }
  return undefined;
}

/** Whether any of the model's inputs, weights or casts is float64. */
function computesInDouble(model: Model): boolean {
  return model.inputs.some((i) => i.dtype === "float64")
    || [...model.constants.values()].some((c) => c.dtype === "float64")
    || model.nodes.some((n) => n.opType === "Cast" && attrInt(n, "to", 0) === DT.DOUBLE);
}
