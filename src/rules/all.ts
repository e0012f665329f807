import { activationDead } from "./activation-dead";
import { activationSaturated } from "./activation-saturated";
import { activationTrend } from "./activation-trend";
import { initScale } from "./init-scale";
import { initSymmetric } from "./init-symmetric";
import { initZero } from "./init-zero";
import { numericNonFinite } from "./numeric-nonfinite";
import type { Rule } from "./rule";
import { weightsNonFinite } from "./weights-nonfinite";
import { gradientTrend } from "./gradient-trend";
import { exportTrainingMode } from "./export-training-mode";
import { fitHighBias } from "./fit-high-bias";
import { fitHighVariance } from "./fit-high-variance";
import { fitRegularization } from "./fit-regularization";
import { inputCorrelated } from "./input-correlated";
import { inputUnnormalized } from "./input-unnormalized";
import { normBnVariance } from "./norm-bn-variance";
import { normDropoutBeforeBn } from "./norm-dropout-before-bn";
import { normPostNorm } from "./norm-post-norm";
import { numericFp16Range } from "./numeric-fp16-range";
import { recurrentSpectralRadius } from "./recurrent-spectral-radius";
import { modelIntegerLayers } from "./model-integer-layers";

/** Every rule, static ones first. Adding a rule means adding a file and a line here. */
export const RULES: readonly Rule[] = [
  weightsNonFinite, initZero, initSymmetric, initScale,
  numericNonFinite, activationTrend, activationDead, activationSaturated,
  // The seed's remaining lessons (issue 5): normalization, dropout, data, fit, precision, recurrences.
  normPostNorm, normDropoutBeforeBn, exportTrainingMode, normBnVariance, fitRegularization, recurrentSpectralRadius,
  numericFp16Range, inputUnnormalized, inputCorrelated, fitHighBias, fitHighVariance, modelIntegerLayers,
  // Gradients from the generated backward graph (issue 4).
  gradientTrend,
];
