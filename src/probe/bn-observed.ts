import type { NormMatch } from "../graph/norms";
import { batchNormTrainingMode } from "../graph/norms";
import { channelStatistics, type ChannelTapOutputs } from "../instrument/channel-stats";
import type { GraphAdditions } from "../instrument/stats-graph";
import type { Model } from "../onnx/model";
import type { HostTensor } from "../runtime/session";
import type { ProbeExtension } from "./run";

/** Per-channel statistics of a BatchNormalization's input as the probe saw them. */
export interface ObservedChannels {
  readonly node: string;
  readonly tensor: string;
  /** Values per channel over all batches. */
  readonly count: number;
  readonly mean: Float64Array;
  readonly variance: Float64Array;
}

/**
 * Adds per-channel mean and variance of every inference-mode BatchNormalization's input to the
 * probe, so the stored running statistics can be compared with what the layer actually receives.
 */
export class BatchNormProbe implements ProbeExtension {
  readonly additions: GraphAdditions;
  private readonly targets: { norm: NormMatch; channels: number; out: ChannelTapOutputs; s1: Float64Array; s2: Float64Array; n: number; center: Float64Array }[] = [];

  constructor(model: Model, norms: readonly NormMatch[]) {
    const chosen: { norm: NormMatch; channels: number; center: Float64Array }[] = [];
    for (const norm of norms) {
      const node = norm.nodes[0];
      if (norm.form !== "op" || node.opType !== "BatchNormalization" || node.scope !== "" || batchNormTrainingMode(node)) continue;
      const mean = model.constants.get(node.inputs[3]);
      const variance = model.constants.get(node.inputs[4]);
      if (!mean || !variance || mean.size !== variance.size || mean.size < 1) continue;
      let center: Float64Array;
      try {
        center = Float64Array.from(mean.fill !== undefined ? new Float64Array(mean.size).fill(mean.fill) : mean.values());
      } catch {
        continue;
      }
      chosen.push({ norm, channels: mean.size, center });
    }
    const castToFloat = (name: string): boolean => {
      const c = model.constants.get(name);
      return !!c && c.dtype !== "float32";
    };
    const { additions, outputs } = channelStatistics(model, chosen.map((c) => ({
      tensor: c.norm.input, channels: c.channels, center: c.norm.nodes[0].inputs[3], castToFloat: castToFloat(c.norm.nodes[0].inputs[3]),
    })));
    this.additions = additions;
    chosen.forEach((c, i) => this.targets.push({ ...c, out: outputs[i], s1: new Float64Array(c.channels), s2: new Float64Array(c.channels), n: 0 }));
  }

  get size(): number {
    return this.targets.length;
  }

  add(r: Record<string, HostTensor>): void {
    for (const t of this.targets) {
      const mean = r[t.out.mean]?.data;
      const square = r[t.out.meanSquare]?.data;
      const count = Number(r[t.out.count]?.data[0] ?? 0);
      if (!mean || !square || !(count > 0)) continue;
      for (let c = 0; c < t.channels; c++) {
        t.s1[c] += count * Number(mean[c]);
        t.s2[c] += count * Number(square[c]);
      }
      t.n += count;
    }
  }

  /** Observed statistics by BatchNormalization node name (after the probe ran). */
  results(): Map<string, ObservedChannels> {
    const out = new Map<string, ObservedChannels>();
    for (const t of this.targets) {
      if (!t.n) continue;
      const mean = new Float64Array(t.channels);
      const variance = new Float64Array(t.channels);
      for (let c = 0; c < t.channels; c++) {
        const m = t.s1[c] / t.n;
        mean[c] = t.center[c] + m;
        variance[c] = Math.max(0, t.s2[c] / t.n - m * m);
      }
      out.set(t.norm.node, { node: t.norm.node, tensor: t.norm.input, count: t.n, mean, variance });
    }
    return out;
  }
}
