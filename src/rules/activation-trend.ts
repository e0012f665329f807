import type { GraphIndex } from "../graph/index";
import type { Layer } from "../graph/layers";
import type { GraphNode } from "../onnx/model";
import type { Finding } from "../report/types";
import type { Rule } from "./rule";
import { fmt, freshBatchNorm, layerTitle, normalizationAdvice } from "./rule";
import { slope } from "../stats/trend";

/** Overall fall (or rise) of activation std from the first layer that counts as vanishing (exploding). */
export const VANISH_RATIO = 1e-2;
export const EXPLODE_RATIO = 1e2;

/**
 * The std of activations over depth. In a well-initialised net it stays roughly constant; a
 * steady per-layer factor below 1 means the signal vanishes, above 1 that it explodes (the
 * seed: with L layers the output scales like w^L). Layers followed by a normalization are left
 * out because the normalization resets their scale.
 */
export const activationTrend: Rule = {
  id: "activation.trend",
  needsProbe: true,
  check: ({ model, index, layers, reports, architecture }) => {
    const seq = layers
      // The output layer's scale is the logits' (often drawn small on purpose), and a gate (an
      // SE block's sigmoid that multiplies the features) is off the signal's path: neither says
      // whether the signal carried through depth.
      .filter((l) => !l.followedByNorm && l.kind !== "embedding" && !l.isOutputLayer && !isGate(l, index))
      .map((l) => ({ layer: l, std: reports[l.id].activation?.std ?? NaN }))
      // Exactly-zero outputs (a zero-initialised residual branch or LoRA B) are intentional or
      // reported by init.zero/activation.dead; they are not a trend.
      .filter((s) => Number.isFinite(s.std) && s.std > 0);
    if (seq.length < 3 || !(seq[0].std > 0)) return [];
    const trend = seq.map((x) => ({ layer: x.layer, value: x.std }));
    const first = seq[0];
    const logs = seq.map((s) => Math.log10(Math.max(s.std, 1e-30)));
    const factor = 10 ** slope(logs);
    const findings: Finding[] = [];
    const min = seq.slice(1).reduce((a, b) => (b.std < a.std ? b : a));
    const max = seq.slice(1).reduce((a, b) => (b.std > a.std ? b : a));
    const stds = seq.map((s) => s.std);
    // The signal must stay gone: one layer that drops it (a large negative bias) and a next one
    // that brings it back up more than tenfold is not a fall over depth.
    const recovered = seq[seq.length - 1].std / min.std > 1 / Math.sqrt(VANISH_RATIO);
    if (min.std / first.std < VANISH_RATIO && factor < 0.7 && !recovered) {
      const fresh = freshBatchNorm(model, trend, false);
      findings.push({
        ruleId: fresh ? "activation.vanishing/fresh-batchnorm" : "activation.vanishing", category: "activation.vanishing", severity: fresh ? "info" : "warning",
        layer: min.layer.name, node: min.layer.node.name, tensor: min.layer.output,
        message: `${layerTitle(min.layer)}: activation std falls from ${fmt(first.std)} (${first.layer.name}) to ${fmt(min.std)} (${min.layer.name}), about x${fmt(factor)} per layer, so the signal is almost gone before the output and gradients vanish with it.${fresh ? ` ${fresh.note}` : ""}`,
        evidence: { firstStd: first.std, minStd: min.std, ratio: min.std / first.std, perLayerFactor: factor, stds },
        fix: fresh ? fresh.fix : `Initialise tanh/sigmoid layers with Xavier (std = sqrt(2/(fan_in+fan_out))) and ReLU layers with He (std = sqrt(2/fan_in)); ${normalizationAdvice(architecture, layers)}.`,
      });
    }
    if ((max.std / first.std > EXPLODE_RATIO && factor > 1.5) || max.std > 1e4) {
      const fresh = freshBatchNorm(model, trend, true);
      findings.push({
        ruleId: fresh ? "activation.exploding/fresh-batchnorm" : "activation.exploding", category: "activation.exploding", severity: fresh ? "info" : "warning",
        layer: max.layer.name, node: max.layer.node.name, tensor: max.layer.output,
        message: `${layerTitle(max.layer)}: activation std grows from ${fmt(first.std)} (${first.layer.name}) to ${fmt(max.std)} (${max.layer.name}), about x${fmt(factor)} per layer; activations and gradients explode.${fresh ? ` ${fresh.note}` : ""}`,
        evidence: { firstStd: first.std, maxStd: max.std, ratio: max.std / first.std, perLayerFactor: factor, stds },
        fix: fresh ? fresh.fix : `Scale the weights down: He (std = sqrt(2/fan_in)) before ReLU, Xavier before tanh; ${normalizationAdvice(architecture, layers)}; clip gradients while training.`,
      });
    }
    return findings;
  },
};

/**
 * A squeeze-and-excitation gate: a sigmoid-like layer whose output (through reshapes) only scales
 * tensors that are themselves pooled into the vector the gate was computed from. A sigmoid that
 * multiplies a constant (2·sigmoid(z) - 1) or gates the main stream itself (h·sigmoid(Wh)) is
 * the signal, not a side branch, and stays in the trend.
 */
function isGate(layer: Layer, index: GraphIndex): boolean {
  if (layer.activation !== "sigmoid" && layer.activation !== "hard_sigmoid") return false;
  const uses: GraphNode[] = [];
  const pending = [layer.output];
  while (pending.length && uses.length < 16) {
    for (const n of index.consumersOf(pending.pop()!)) {
      if (["Reshape", "Unsqueeze", "Flatten", "Identity", "Expand"].includes(n.opType)) pending.push(n.outputs[0]);
      else uses.push(n);
    }
  }
  return uses.length > 0 && uses.every((mul) => mul.opType === "Mul" && mul.inputs.some((other) =>
    !index.isConstant(other) && index.consumersOf(other).some((n) => n.opType === "GlobalAveragePool" || n.opType === "ReduceMean")));
}
