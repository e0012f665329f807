import { gapStandardError, VARIANCE_MARGIN } from "../probe/fit";
import type { Rule } from "./rule";
import { fmt } from "./rule";

const pct = (x: number): string => `${fmt(100 * x)}%`;
/** A difference of two percentages, in percentage points (59.4 points above 0%, not "59.4% above"). */
const points = (x: number): string => `${fmt(100 * x)} percentage points`;

/**
 * The seed's bias/variance lesson: a small training error with a much larger validation error is
 * high variance, over-fitting: the model has learned its training set rather than the task.
 */
export const fitHighVariance: Rule = {
  id: "fit.high-variance",
  needsProbe: false,
  check: ({ fit }) => {
    if (!fit || !fit.verdict.includes("high-variance")) return [];
    const what = fit.task === "regression" ? "fraction of variance unexplained" : "error";
    return [{
      ruleId: "fit.high-variance", category: "fit.high-variance", severity: "warning", tensor: fit.output,
      message: `High variance (over-fitting): validation ${what} ${pct(fit.val.error)} vs training ${what} ${pct(fit.train.error)}, a gap of ${points(fit.val.error - fit.train.error)} (loss ${fmt(fit.val.loss)} vs ${fmt(fit.train.loss)}; ${fit.train.samples} training, ${fit.val.samples} validation samples). The model fits its training set much better than new data.`,
      evidence: { trainError: fit.train.error, valError: fit.val.error, trainLoss: fit.train.loss, valLoss: fit.val.loss, gapStandardError: gapStandardError(fit.train, fit.val, fit.task), margin: VARIANCE_MARGIN },
      fix: "Get more training data (or augment it: flips, crops, distortions), add regularization (L2 weight decay, dropout), stop training earlier, or use a smaller network.",
    }];
  },
};
