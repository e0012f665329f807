import type { Rule } from "./rule";
import { fmt, layerTitle } from "./rule";

/**
 * Constant weights, or output units with identical weight vectors: such units compute the same
 * function and receive the same gradient, so they stay copies of each other forever.
 */
export const initSymmetric: Rule = {
  id: "init.symmetric",
  needsProbe: false,
  check: ({ layers, reports }) =>
    layers.flatMap((layer) => {
      const w = reports[layer.id].weight;
      if (!w || layer.kind === "norm" || layer.kind === "embedding" || w.zeroFraction === 1 || !w.identicalUnits) return [];
      const constant = w.std === 0;
      const units = layer.units?.units ?? w.fanOut ?? 0;
      return [{
        ruleId: constant ? "init.symmetric/constant" : "init.symmetric/identical-units",
        category: "init.symmetric", severity: "error" as const,
        layer: layer.name, node: layer.node.name, tensor: w.tensor,
        message: constant
          ? `${layerTitle(layer)}: every weight equals ${fmt(w.mean)} (${w.source}), so all ${units} units compute the same function and get the same gradient; they can never learn different features.`
          : `${layerTitle(layer)}: all ${units} output units have identical weight vectors, so they compute the same function and get the same gradient.`,
        evidence: { value: constant ? w.mean : null, std: w.std, units, source: w.source },
        fix: "Break the symmetry with random initialisation (He for ReLU layers, Xavier for tanh/sigmoid layers).",
      }];
    }),
};
