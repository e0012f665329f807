import type { Rule } from "./rule";

/** Names the first node, in execution order, whose output holds NaN or Inf on the probe. */
export const numericNonFinite: Rule = {
  id: "numeric.nonfinite",
  needsProbe: true,
  check: ({ probe, layers, model }) => {
    const first = probe?.firstNonFinite;
    if (!first) return [];
    if (first.opType === "input") {
      return [{
        ruleId: "numeric.nonfinite/input", category: "numeric.nonfinite", severity: "error",
        tensor: first.tensor,
        message: `The probe data for input ${first.tensor} already contains NaN/Inf (batch ${first.batch + 1}); everything computed from it is NaN.`,
        evidence: { input: first.tensor, batch: first.batch },
        fix: "Clean the data (drop or impute missing values) before feeding it to the model.",
      }];
    }
    const layer = layers.find((l) => l.nodes.some((n) => n.name === first.node));
    // The probe tracks computed tensors only; a NaN stored in the node's own weights is read here.
    const node = model.nodes.find((n) => n.name === first.node && n.outputs.includes(first.tensor));
    const badConstants = (node?.inputs ?? []).filter((i) => {
      const c = model.constants.get(i);
      return c && (c.dtype === "float32" || c.dtype === "float64" || c.dtype === "float16" || c.dtype === "bfloat16") && !Array.from(c.values()).every(Number.isFinite);
    });
    const cause = badConstants.length
      ? `its constant input ${badConstants.join(", ")} already holds NaN/Inf (a weight stored that way: replace it)`
      : first.inputsFinite
        ? `its inputs are finite, so ${first.opType} itself creates the NaN/Inf (overflow, division by zero, log or sqrt of a non-positive number)`
        : "it receives a NaN/Inf model input";
    return [{
      ruleId: "numeric.nonfinite", category: "numeric.nonfinite", severity: "error",
      layer: layer?.name, node: first.node, tensor: first.tensor,
      message: `NaN/Inf first appears at node ${first.node} (${first.opType}) in output ${first.tensor} on probe batch ${first.batch + 1}; ${cause}. Everything downstream is NaN.`,
      evidence: { opType: first.opType, batch: first.batch, inputsFinite: first.inputsFinite },
      fix: "Fix the value at this node: replace NaN weights, add an epsilon to divisions/logs/sqrts, or keep values in range (normalize inputs, lower the learning rate).",
    }];
  },
};
