import type { Finding } from "../report/types";
import type { Rule } from "./rule";
import { fmt } from "./rule";

/** Ops that pass dropout's zeros and 1/keep-prob scaling through unchanged in kind. */
const PASS = new Set(["Relu", "LeakyRelu", "PRelu", "Elu", "Gelu", "Tanh", "Sigmoid", "Clip", "Identity", "Cast", "Reshape", "Transpose", "Flatten", "Squeeze", "Unsqueeze", "MaxPool", "AveragePool"]);

/**
 * The seed: "Dropout会使得Batch Normalization要用的统计量产生误差，因此Dropout直接在BN前面用会有问题".
 * In training, inverted dropout zeroes activations and scales the rest by 1/keep-prob, so the batch
 * variance BatchNorm accumulates into its running statistics is inflated; at inference dropout is
 * off and the same running variance no longer matches the activations (variance shift).
 */
export const normDropoutBeforeBn: Rule = {
  id: "norm.dropout-before-bn",
  needsProbe: false,
  check: ({ architecture, index }) => {
    if (!architecture) return [];
    const findings: Finding[] = [];
    for (const d of architecture.dropouts) {
      for (const [c, t] of index.consumersAlong(d.node.outputs[0], (n) => PASS.has(n.opType))) {
        if (c.opType === "BatchNormalization" && c.inputs[0] === t) {
          const bn = architecture.norms.find((n) => n.nodes[0] === c);
          const keep = d.rate === null ? null : 1 - d.rate;
          findings.push({
            ruleId: "norm.dropout-before-bn", category: "norm.dropout-before-bn", severity: "warning",
            layer: bn?.module ?? d.module, node: c.name, tensor: t,
            message: `Dropout${d.rate === null ? "" : ` (rate ${fmt(d.rate)}, keep-prob ${fmt(keep)})`} at ${d.module ?? d.node.name} feeds BatchNorm ${bn?.module ?? c.name} directly: during training BatchNorm's statistics are taken on dropped and rescaled activations${keep ? ` (variance inflated by up to 1/keep-prob = ${fmt(1 / keep)}x)` : ""}, but at inference dropout is off, so the running variance no longer matches what the layer receives (variance shift).`,
            evidence: { dropoutRate: d.rate, keepProb: keep, dropout: d.node.name, batchNorm: c.name },
            fix: "Move the dropout after the BatchNorm (and its activation), or to after the last BatchNorm of the network; or drop it, since BatchNorm already regularizes.",
          });
        }
      }
    }
    return findings;
  },
};
