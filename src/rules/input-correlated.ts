import type { Rule } from "./rule";
import { fmt } from "./rule";

/** Two features with |correlation| at least this are near copies of each other. */
export const CORRELATION_LIMIT = 0.95;

/**
 * The seed's PCA and whitening: strongly correlated features carry the same information twice and
 * make the cost surface elongated along a diagonal that per-feature normalization cannot fix;
 * rotating onto the covariance's eigenvectors (PCA) decorrelates them, and dividing by
 * sqrt(eigenvalue) (whitening) also equalizes their variance. Tabular and sequence features only:
 * the colour channels of natural images are always correlated, and CNNs are fed them as they are.
 */
export const inputCorrelated: Rule = {
  id: "input.correlated",
  needsProbe: true,
  check: ({ inputData }) =>
    (inputData ?? []).flatMap((s) => {
      const c = s.covariance;
      if (!c || s.layout === "channels" || c.maxAbsCorrelation < CORRELATION_LIMIT || !c.maxPair) return [];
      const [i, j] = c.maxPair;
      const top = c.explainedVarianceRatio.slice(0, 3).map((r) => `${fmt(100 * r)}%`).join(", ");
      return [{
        ruleId: "input.correlated", category: "input.correlated" as const, severity: "warning" as const, tensor: s.name,
        message: `Input ${s.name}: features ${i} and ${j} have correlation ${fmt(c.maxAbsCorrelation)}; ${c.componentsFor99} of ${s.features} principal components carry 99% of the variance (first components: ${top}), and the correlation matrix has condition number ${fmt(c.correlationConditionNumber)}. Strongly correlated inputs make the cost surface a narrow diagonal valley that per-feature scaling does not remove.`,
        evidence: { maxAbsCorrelation: c.maxAbsCorrelation, componentsFor99: c.componentsFor99, features: s.features, conditionNumber: c.conditionNumber, correlationConditionNumber: c.correlationConditionNumber },
        fix: "Decorrelate: centre the data, cov = X.T @ X / N, U, S, V = svd(cov), X_rot = X @ U (PCA; keep the leading components), optionally X_white = X_rot / sqrt(S + 1e-5) (whitening); or drop redundant features.",
      }];
    }),
};
