import type { Rule } from "./rule";
import { layerTitle } from "./rule";

/** NaN or Inf stored in a weight or bias: every output that touches it is NaN, and training cannot recover. */
export const weightsNonFinite: Rule = {
  id: "weights.nonfinite",
  needsProbe: false,
  check: ({ layers, reports }) =>
    layers.flatMap((layer) => {
      const w = reports[layer.id].weight;
      if (!w) return [];
      const size = w.shape.reduce((a, b) => a * b, 1);
      // Each tensor with NaN/Inf, named: the bias is a tensor of its own in the checkpoint too.
      const bad = [
        ...(w.nonFinite > 0 ? [`weight ${w.tensor} holds ${w.nonFinite} NaN/Inf value(s) out of ${size}`] : []),
        ...(w.bias && w.bias.nonFinite > 0 ? [`bias ${w.bias.tensor} holds ${w.bias.nonFinite} NaN/Inf value(s)`] : []),
      ];
      if (bad.length === 0) return [];
      return [{
        ruleId: "weights.nonfinite", category: "weights.nonfinite", severity: "error" as const,
        layer: layer.name, node: layer.node.name, tensor: w.nonFinite > 0 || !w.bias ? w.tensor : w.bias.tensor,
        message: `${layerTitle(layer)}: ${bad.join("; ")}; every activation computed from ${bad.length > 1 ? "them" : "it"} becomes NaN.`,
        evidence: { nonFinite: w.nonFinite, size, biasNonFinite: w.bias?.nonFinite ?? null },
        fix: "Find where training diverged (lower the learning rate, clip gradients, check for log(0) or division by zero in the loss) and re-export from a checkpoint without NaN.",
      }];
    }),
};
