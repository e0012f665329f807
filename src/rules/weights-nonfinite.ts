import type { Rule } from "./rule";
import { layerTitle } from "./rule";

/** NaN or Inf stored in a weight: every output that touches it is NaN, and training cannot recover. */
export const weightsNonFinite: Rule = {
  id: "weights.nonfinite",
  needsProbe: false,
  check: ({ layers, reports }) =>
    layers.flatMap((layer) => {
      const w = reports[layer.id].weight;
      if (!w || w.nonFinite === 0) return [];
      return [{
        ruleId: "weights.nonfinite", category: "weights.nonfinite", severity: "error" as const,
        layer: layer.name, node: layer.node.name, tensor: w.tensor,
        message: `${layerTitle(layer)}: weight ${w.tensor} holds ${w.nonFinite} NaN/Inf value(s) out of ${w.shape.reduce((a, b) => a * b, 1)}; every activation computed from it becomes NaN.`,
        evidence: { nonFinite: w.nonFinite, size: w.shape.reduce((a, b) => a * b, 1) },
        fix: "Find where training diverged (lower the learning rate, clip gradients, check for log(0) or division by zero in the loss) and re-export from a checkpoint without NaN.",
      }];
    }),
};
