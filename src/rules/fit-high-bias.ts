import { BIAS_MARGIN } from "../probe/fit";
import type { Rule } from "./rule";
import { fmt } from "./rule";

const pct = (x: number): string => `${fmt(100 * x)}%`;
/** A difference of two percentages, in percentage points (59.4 points above 0%, not "59.4% above"). */
const points = (x: number): string => `${fmt(100 * x)} percentage points`;

/**
 * The seed's bias/variance lesson: training error far above what the task allows (the baseline,
 * human-level error) with validation error close to it is high bias, under-fitting: the model is
 * too simple, or trained too little, or regularized too hard.
 */
export const fitHighBias: Rule = {
  id: "fit.high-bias",
  needsProbe: false,
  check: ({ fit, modelLooksTrained }) => {
    if (!fit || !fit.verdict.includes("high-bias")) return [];
    const what = fit.task === "regression" ? "fraction of variance unexplained (1 - R^2)" : "error";
    return [{
      ruleId: "fit.high-bias", category: "fit.high-bias", severity: "warning", tensor: fit.output,
      message: `High bias (under-fitting): training ${what} ${pct(fit.train.error)} is ${points(fit.train.error - fit.baselineError)} above the baseline ${pct(fit.baselineError)}${fit.verdict === "high-bias" ? `, and validation ${what} ${pct(fit.val.error)} is ${fit.val.error < fit.train.error - 0.02 ? "lower still (the sets may differ in difficulty)" : "about the same"}` : ` (validation ${pct(fit.val.error)})`}; loss ${fmt(fit.train.loss)} (train) vs ${fmt(fit.val.loss)} (validation), ${fit.train.samples} / ${fit.val.samples} samples.${modelLooksTrained ? " The model does not fit even the data it was trained on." : " The weights look freshly initialised (i.i.d. draws, as before training), so this is the error of an untrained model."}`,
      evidence: { trainError: fit.train.error, valError: fit.val.error, trainLoss: fit.train.loss, valLoss: fit.val.loss, baselineError: fit.baselineError, margin: BIAS_MARGIN },
      fix: !modelLooksTrained ? "Train the model first (this check compares a trained model's training and validation error); if a trained model still shows it, use a bigger network (more units or layers), train longer or with a better optimizer, reduce regularization (smaller lambda, higher keep-prob); more data does not help with bias." : "Use a bigger network (more units or layers), train longer or with a better optimizer, reduce regularization (smaller lambda, higher keep-prob); more data does not help with bias.",
    }];
  },
};
