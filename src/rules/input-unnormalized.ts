import type { Finding, InputStatsReport } from "../report/types";
import type { Rule } from "./rule";
import { fmt } from "./rule";

/** A feature counts as off-centre when |mean| > 1 and > its std. */
export const MEAN_LIMIT = 1;
/** ... and as badly scaled when its std is outside [0.1, 10] or stds differ by more than 10x. */
export const STD_LOW = 0.1;
export const STD_HIGH = 10;
export const STD_SPREAD = 10;
/**
 * A whole-signal input (a waveform: one feature over all its values) has no other feature to be
 * out of scale with, so only a scale that would starve or swamp the first layer counts: quiet audio
 * at std 0.03 is how VADs are fed.
 */
export const SIGNAL_STD_LOW = 1e-3;

/** The inputs this rule warns about (their statistics, as the model sees them, are off). */
export function unnormalizedInputs(inputData: readonly InputStatsReport[] | undefined): string[] {
  return (inputData ?? []).filter((s) => s.preprocessing?.kind !== "norm" && inputProblems(s).problems.length > 0).map((s) => s.name);
}

/** {@link normalizationProblems} of an input as the model sees it (after its own (x - mean) / std); a waveform by its own limits. */
function inputProblems(s: InputStatsReport): { problems: string[]; worst: number[] } {
  const view = s.normalized ?? s;
  const signal = s.features === 1 && s.layout === "features";
  return normalizationProblems(view.mean, view.std, signal ? SIGNAL_STD_LOW : STD_LOW);
}

/** Problems of one input's per-feature statistics, worst first, as short phrases. */
export function normalizationProblems(mean: readonly number[], std: readonly number[], stdLow = STD_LOW): { problems: string[]; worst: number[] } {
  const d = mean.length;
  const live = [...Array(d).keys()].filter((k) => std[k] > 0 && Number.isFinite(std[k]));
  const offCentre = live.filter((k) => Math.abs(mean[k]) > MEAN_LIMIT && Math.abs(mean[k]) > std[k]);
  const badScale = live.filter((k) => std[k] > STD_HIGH || std[k] < stdLow);
  const stds = live.map((k) => std[k]);
  const spread = stds.length >= 2 ? Math.max(...stds) / Math.min(...stds) : 1;
  const problems: string[] = [];
  if (offCentre.length) problems.push(`${offCentre.length} of ${d} not zero-mean`);
  if (badScale.length) problems.push(`${badScale.length} of ${d} with std outside [${stdLow}, ${STD_HIGH}]`);
  if (spread > STD_SPREAD) problems.push(`stds differ by ${fmt(spread)}x between features`);
  const score = (k: number): number => Math.abs(mean[k]) / Math.max(std[k], 1e-12) + Math.abs(Math.log10(Math.max(std[k], 1e-12)));
  const worst = [...new Set([...offCentre, ...badScale])].sort((a, b) => score(b) - score(a));
  if (spread > STD_SPREAD && !worst.length) worst.push(live.reduce((a, k) => (std[k] > std[a] ? k : a), live[0]));
  return { problems, worst };
}

const unit = (s: InputStatsReport): string => (s.layout === "channels" ? "channel" : "feature");

/**
 * The seed's input normalization: features with different means and variances make the cost
 * surface long and narrow, so gradient descent zig-zags; subtracting the mean and dividing by the
 * std per feature makes it round. Judged on the model's view of the data: when the model applies
 * (x - mean) / std itself, the statistics after that step count; when it starts with a
 * normalization layer, the input is not judged.
 */
export const inputUnnormalized: Rule = {
  id: "input.unnormalized",
  needsProbe: true,
  check: ({ inputData }) =>
    (inputData ?? []).flatMap((s): Finding[] => {
      if (s.preprocessing?.kind === "norm") return [];
      const view = s.normalized ?? s;
      const { problems, worst } = inputProblems(s);
      if (!problems.length) return looksLikeUnitRangeImage(s) ? [unitRangeFinding(s)] : [];
      const shown = worst.slice(0, 4).map((k) => `${unit(s)} ${k}: mean ${fmt(view.mean[k])}, std ${fmt(view.std[k])}${s.normalized ? "" : `, range [${fmt(s.min[k])}, ${fmt(s.max[k])}]`}`);
      return [{
        ruleId: "input.unnormalized", category: "input.unnormalized" as const, severity: "warning" as const, tensor: s.name,
        message: `Input ${s.name} (${s.samples} samples${s.normalized ? `, after the model's own ${s.preprocessing?.description.replace(/^the model applies /, "")}` : ""}) is not normalized: ${problems.join("; ")} (${shown.join("; ")}). Unnormalized inputs stretch the cost surface into a narrow valley, so gradient descent needs a small learning rate and zig-zags.`,
        evidence: { features: s.features, samples: s.samples, worstMean: view.mean[worst[0]] ?? null, worstStd: view.std[worst[0]] ?? null },
        fix: `Standardize each ${unit(s)} with statistics of the training set, x = (x - mean) / std, and apply the same mean and std at inference; for images, per-channel mean/std (e.g. torchvision.transforms.Normalize). Or put the normalization inside the model.`,
      }];
    }),
};

/**
 * Images scaled to [0, 1] (torchvision's ToTensor) and fed as they are: within the limits above
 * (mean 0.5 is within one std of 0), yet not zero-centred, and not what pretrained torchvision
 * weights were trained on. Every value of every channel is in [0, 1] and the means sit well inside.
 */
function looksLikeUnitRangeImage(s: InputStatsReport): boolean {
  if (s.layout !== "channels" || s.normalized || s.preprocessing) return false;
  const k = [...s.mean.keys()];
  // 0/1 planes (a board, a mask) are categories, not intensities: their variance is mean·(1 - mean).
  const binary = k.every((c) => Math.abs(s.std[c] ** 2 - s.mean[c] * (1 - s.mean[c])) < 1e-3);
  return k.length > 0 && !binary && k.every((c) => s.min[c] >= 0 && s.max[c] <= 1 && s.max[c] > 0.5 && s.mean[c] > 0.15 && s.mean[c] < 0.85);
}

function unitRangeFinding(s: InputStatsReport): Finding {
  const range = (xs: readonly number[]): string => (fmt(Math.min(...xs)) === fmt(Math.max(...xs)) ? fmt(xs[0]) : `${fmt(Math.min(...xs))} to ${fmt(Math.max(...xs))}`);
  return {
    ruleId: "input.unnormalized/unit-range", category: "input.unnormalized" as const, severity: "info" as const, tensor: s.name,
    message: `Input ${s.name} (${s.samples} samples) looks like images scaled to [0, 1] without per-channel normalization: every value is in [0, 1], channel means ${range(s.mean)}, stds ${range(s.std)}. Zero-centred inputs (mean 0, std 1 per channel) train faster: with all-positive inputs, the gradients of a unit's weights all share one sign, so updates zig-zag.`,
    evidence: { features: s.features, samples: s.samples, means: [...s.mean], stds: [...s.std] },
    fix: "Add per-channel normalization after scaling to [0, 1], with the training set's statistics (torchvision.transforms.Normalize(mean, std); ImageNet-pretrained models expect mean (0.485, 0.456, 0.406), std (0.229, 0.224, 0.225)), at training and inference alike.",
  };
}
