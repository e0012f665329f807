import type { Layer } from "../graph/layers";
import { instrumentStatistics, serializeWith, type Tap, type TapOutputs } from "../instrument/stats-graph";
import { DoctorError } from "../onnx/errors";
import type { Model } from "../onnx/model";
import { RuntimeSession, type HostTensor } from "../runtime/session";
import { moments, RunningMoments } from "../stats/moments";
import { histogram, type Histogram } from "../stats/histogram";
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
}

export interface ProbeHooks {
  signal?: AbortSignal;
  progress?: (fraction: number, message: string) => void;
  intraOpThreads?: number;
}

const isRelu = (l: Layer): boolean => l.activation === "relu" || l.activation === "leaky_relu" || l.activation === "prelu";

/** Which statistics each layer needs; exported for the benchmark, which times the same graph. */
export function tapsFor(layers: readonly Layer[]): Tap[] {
  return layers.filter((l) => l.scope === "").map((l) => ({
    tensor: l.output,
    saturation: l.activation === "tanh" ? "tanh" : l.activation === "sigmoid" ? "sigmoid" : undefined,
    unitMax: isRelu(l),
    channelFirst: l.spatial,
    castToFloat: !!l.weight && l.weight.dtype !== "float32",
  }));
}

class TapAccumulator {
  readonly moments = new RunningMoments();
  min = Infinity;
  max = -Infinity;
  size = 0;
  nonzero = 0;
  saturated = 0;
  unitMax: Float32Array | undefined;
  samples: number[] = [];
  sawNonFinite = false;

  add(out: TapOutputs, r: Record<string, HostTensor>): void {
    const scalar = (name: string): number => Number(r[name].data[0]);
    const size = scalar(out.size);
    const mean = scalar(out.mean);
    this.moments.add(size, mean, scalar(out.m2));
    this.min = Math.min(this.min, scalar(out.min));
    this.max = Math.max(this.max, scalar(out.max));
    if (!Number.isFinite(mean)) this.sawNonFinite = true;
    this.size += size;
    this.nonzero += scalar(out.nonzero);
    if (out.saturated) this.saturated += scalar(out.saturated);
    if (out.unitMax) {
      const u = r[out.unitMax].data as Float32Array;
      if (!this.unitMax || this.unitMax.length !== u.length) this.unitMax = Float32Array.from(u);
      else for (let i = 0; i < u.length; i++) if (u[i] > this.unitMax[i]) this.unitMax[i] = u[i];
    }
    const s = r[out.sample].data as Float32Array;
    for (let i = 0; i < s.length; i++) this.samples.push(s[i]);
  }

  finish(layer: Layer, tap: Tap, nonFinite: number): ActivationStats {
    let deadUnits: number | null = null;
    let units: number | null = null;
    const channels = layer.units?.units ?? layer.fanOut;
    if (this.unitMax && channels && this.unitMax.length % channels === 0) {
      units = channels;
      const per = this.unitMax.length / channels;
      const alive = new Uint8Array(channels);
      for (let p = 0; p < this.unitMax.length; p++) {
        const c = layer.unitAxis === "channel" ? Math.floor(p / per) : p % channels;
        if (this.unitMax[p] > 0) alive[c] = 1;
      }
      deadUnits = channels - alive.reduce((a, b) => a + b, 0);
    }
    const zeros = this.size - this.nonzero;
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
  const visible = layers.filter((l) => l.scope === "");
  const taps = tapsFor(visible);
  const { bytes, outputs } = instrumentStatistics(model, taps);
  hooks.progress?.(0, "creating onnxruntime session");
  const session = await RuntimeSession.open(bytes, model.externalFiles, { intraOpThreads: hooks.intraOpThreads });
  const acc = taps.map(() => new TapAccumulator());
  const fetch = outputs.flatMap((o) => [o.mean, o.m2, o.max, o.min, o.size, o.nonzero, o.saturated, o.unitMax, o.sample]).filter((n): n is string => !!n);
  // Model outputs are always fetched: with no visible layers they are all we can check for NaN.
  fetch.push(...model.outputs.map((o) => o.name));
  let badBatch: number | undefined;
  try {
    for (let b = 0; b < plan.batches; b++) {
      if (hooks.signal?.aborted) throw new DoctorError("cancelled", "analysis cancelled");
      hooks.progress?.(b / plan.batches, `probe batch ${b + 1}/${plan.batches}`);
      const r = await session.run(plan.feeds(b), fetch);
      outputs.forEach((o, i) => acc[i].add(o, r));
      const outputNonFinite = model.outputs.some((o) => { const d = r[o.name]?.data; return (d instanceof Float32Array || d instanceof Float64Array) && !d.every(Number.isFinite); });
      if (badBatch === undefined && (outputNonFinite || acc.some((a) => a.sawNonFinite))) badBatch = b;
    }
  } finally {
    await session.release();
  }
  let firstNonFinite: ProbeResult["firstNonFinite"];
  const nonFiniteByTensor = new Map<string, number>();
  if (badBatch !== undefined) {
    hooks.progress?.(1, "locating the first NaN/Inf");
    firstNonFinite = await locateNonFinite(model, plan, badBatch, nonFiniteByTensor);
  }
  const activations = new Map<number, ActivationStats>();
  visible.forEach((l, i) => activations.set(l.id, acc[i].finish(l, taps[i], nonFiniteByTensor.get(l.output) ?? 0)));
  return { activations, firstNonFinite, seconds: (performance.now() - started) / 1000 };
}

async function locateNonFinite(model: Model, plan: ProbePlan, batch: number, counts: Map<string, number>): Promise<ProbeResult["firstNonFinite"]> {
  const names = model.nodes.flatMap((n) => n.outputs.filter(Boolean));
  const session = await RuntimeSession.open(serializeWith(model, [], [], names), model.externalFiles);
  let r: Record<string, HostTensor>;
  try {
    r = await session.run(plan.feeds(batch), names);
  } finally {
    await session.release();
  }
  const bad = new Set<string>();
  for (const [name, t] of Object.entries(r)) {
    if (!(t.data instanceof Float32Array || t.data instanceof Float64Array)) continue;
    let n = 0;
    for (let i = 0; i < t.data.length; i++) if (!Number.isFinite(t.data[i])) n++;
    counts.set(name, n);
    if (n) bad.add(name);
  }
  for (const node of model.nodes) {
    const out = node.outputs.find((o) => bad.has(o));
    if (out) return { node: node.name, opType: node.opType, tensor: out, batch, inputsFinite: !node.inputs.some((i) => bad.has(i)) };
  }
  return undefined;
}
