import { activationDead } from "./activation-dead";
import { activationSaturated } from "./activation-saturated";
import { activationTrend } from "./activation-trend";
import { initScale } from "./init-scale";
import { initSymmetric } from "./init-symmetric";
import { initZero } from "./init-zero";
import { numericNonFinite } from "./numeric-nonfinite";
import type { Rule } from "./rule";
import { weightsNonFinite } from "./weights-nonfinite";

/** Every rule, static ones first. Adding a rule means adding a file and a line here. */
export const RULES: readonly Rule[] = [
  weightsNonFinite, initZero, initSymmetric, initScale,
  numericNonFinite, activationTrend, activationDead, activationSaturated,
];
