import { squaredFrobenius } from "../graph/architecture";
import type { Rule } from "./rule";
import { fmt } from "./rule";

/** A layer holding at least this share (most of it) of sum ||W||_F^2 dominates the L2 penalty. */
export const L2_DOMINANT_SHARE = 0.8;

/**
 * Regularization overview (the seed's L2 and dropout): weight decay adds (lambda/2m) sum ||W||_F^2
 * to the cost, so it acts on each layer in proportion to that layer's squared Frobenius norm. When
 * one layer holds most of the sum, the penalty (and the lambda chosen on the validation set) is
 * really about that layer alone. Per-layer norms and dropout keep-probs are in the report's
 * architecture section; this info finding appears only for a dominating layer.
 */
export const fitRegularization: Rule = {
  id: "fit.regularization",
  needsProbe: false,
  check: ({ layers, reports, architecture }) => {
    const weighted = layers.filter((l) => l.kind !== "norm" && reports[l.id].weight).map((l) => ({ layer: l, sq: squaredFrobenius(reports[l.id]) ?? 0 }));
    if (weighted.length < 3) return [];
    const total = weighted.reduce((a, w) => a + w.sq, 0);
    if (!(total > 0)) return [];
    const top = weighted.reduce((a, w) => (w.sq > a.sq ? w : a));
    const share = top.sq / total;
    if (share < L2_DOMINANT_SHARE) return [];
    const params = top.layer.weight?.size ?? 0;
    const allParams = weighted.reduce((a, w) => a + (w.layer.weight?.size ?? 0), 0);
    const dropout = architecture?.dropouts.filter((d) => d.rate !== null).map((d) => `${d.module ?? d.node.name} keep-prob ${fmt(1 - d.rate!)}`) ?? [];
    return [{
      ruleId: "fit.regularization", category: "fit.regularization", severity: "info", layer: top.layer.name, node: top.layer.node.name, tensor: top.layer.weight?.name,
      message: `${top.layer.name} holds ${fmt(100 * share)}% of the sum of squared weight norms (||W||_F = ${fmt(Math.sqrt(top.sq))}, ${fmt(100 * params / allParams)}% of the weights), so an L2 penalty (weight decay, (lambda/2m) sum ||W||_F^2) acts almost only on this layer.${dropout.length ? ` Dropout: ${dropout.join(", ")}.` : ""}`,
      evidence: { share, frobenius: Math.sqrt(top.sq), parameters: params, layers: weighted.length },
      fix: "Usually fine; if you tune weight decay to fight over-fitting, consider excluding this layer (e.g. embeddings) from decay or giving it its own lambda, and check its initialisation scale.",
    }];
  },
};
