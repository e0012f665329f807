import type { Rule } from "./rule";
import { fmt, layerTitle } from "./rule";

/** Fraction of saturated outputs (tanh |a| > 0.99, sigmoid outside [0.01, 0.99]) that is reported. */
export const SATURATED_FRACTION = 0.2;

/** Saturated tanh/sigmoid units have derivative near 0, so almost no gradient passes through them. */
export const activationSaturated: Rule = {
  id: "activation.saturated",
  needsProbe: true,
  check: ({ layers, reports, modelLooksTrained }) =>
    layers.flatMap((layer) => {
      const a = reports[layer.id].activation;
      // An output sigmoid/tanh saturates when the model is confident; with the matching loss
      // (cross-entropy) its derivative cancels, so saturation there is not a gradient problem.
      // A recurrent layer's outputs are also its next step's state: saturated, they block the
      // gradient through time wherever the layer sits.
      const recurrent = layer.kind === "recurrent";
      if (!a || (layer.isOutputLayer && !recurrent) || a.saturatedFraction === null || !(a.saturatedFraction >= SATURATED_FRACTION)) return [];
      const bound = layer.activation === "tanh" ? "|a| > 0.99" : "a < 0.01 or a > 0.99";
      return [{
        ruleId: "activation.saturated", category: "activation.saturated", severity: "warning" as const,
        layer: layer.name, node: layer.node.name, tensor: a.tensor,
        message: `${layerTitle(layer)}: ${fmt(100 * a.saturatedFraction)}% of outputs are saturated (${bound}), where the derivative is below 0.02; gradients through this layer${recurrent ? " and back through its time steps" : ""} nearly vanish.`,
        evidence: { saturatedFraction: a.saturatedFraction, std: a.std },
        // A trained model's saturation is learned (a squeeze-and-excitation gate fully open or shut), not its initialisation.
        fix: modelLooksTrained
          ? "The weights look trained, so the saturation was learned: a gate (squeeze-and-excitation, attention) that settled fully open or shut may be intended. If it is not, check the inputs are normalized as in training, and lower the learning rate or add LayerNorm/BatchNorm before the nonlinearity when retraining."
          : "Make pre-activations smaller: Xavier initialisation (std = sqrt(2/(fan_in+fan_out))), normalized inputs, or LayerNorm/BatchNorm before the nonlinearity.",
      }];
    }),
};
