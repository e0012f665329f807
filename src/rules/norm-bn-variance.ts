import type { NormMatch } from "../graph/norms";
import type { ObservedChannels } from "../probe/bn-observed";
import type { Finding } from "../report/types";
import { unnormalizedInputs } from "./input-unnormalized";
import type { Rule } from "./rule";
import { fmt } from "./rule";

/** The first BatchNorm's median channel this many running stds off: a scale mismatch, not drift. */
const GROSS_SHIFT = 10;

/** A layer is reported when its median channel's normalized output is off by this much. */
export const BN_SHIFT_LIMIT = 1;
export const BN_SCALE_LIMIT = 2;

/**
 * BatchNorm's running statistics (the seed: normalize each channel to zero mean, unit variance
 * with statistics gathered during training). Broken ones break inference: a NaN or negative
 * running variance makes sqrt(var + eps) NaN; a running variance far below epsilon means the
 * channel never varied in training. With a probe, the running mean and variance are compared with
 * the statistics the layer actually receives: when they disagree, the layer's output at inference
 * is no longer zero-mean, unit-variance (stale statistics, never updated, or computed on other data).
 */
export const normBnVariance: Rule = {
  id: "norm.bn-variance",
  needsProbe: false,
  check: ({ architecture, model, bnObserved, syntheticProbe, inputData }) => {
    if (!architecture) return [];
    const findings: Finding[] = [];
    const mismatched: Finding[] = [];
    let compared = 0;
    for (const norm of architecture.norms) {
      const node = norm.nodes[0];
      if (norm.form !== "op" || node.opType !== "BatchNormalization") continue;
      const meanT = model.constants.get(node.inputs[3]);
      const varT = model.constants.get(node.inputs[4]);
      if (!meanT || !varT) continue;
      let mean: Float32Array | Float64Array;
      let variance: Float32Array | Float64Array;
      try {
        mean = meanT.fill !== undefined ? new Float64Array(meanT.size).fill(meanT.fill) : meanT.values();
        variance = varT.fill !== undefined ? new Float64Array(varT.size).fill(varT.fill) : varT.values();
      } catch {
        continue;
      }
      const eps = norm.epsilon ?? 1e-5;
      const bad: number[] = [];
      const nan: number[] = [];
      const tiny: number[] = [];
      for (let c = 0; c < variance.length; c++) {
        const v = variance[c];
        if (Number.isNaN(v) || !Number.isFinite(mean[c] ?? 0)) nan.push(c);
        else if (v < 0) bad.push(c);
        else if (v < eps / 100) tiny.push(c);
      }
      const name = norm.module ?? node.name;
      if (nan.length || bad.length) {
        findings.push({
          ruleId: "norm.bn-variance/invalid", category: "norm.bn-variance", severity: "error", layer: norm.module, node: node.name, tensor: varT.name,
          message: `BatchNorm ${name}: ${nan.length ? `${nan.length} channel(s) have a NaN running mean or variance (e.g. channel ${nan[0]})` : ""}${nan.length && bad.length ? " and " : ""}${bad.length ? `${bad.length} channel(s) have a negative running variance (e.g. channel ${bad[0]}: ${fmt(variance[bad[0]])})` : ""}; these channels output NaN at inference (sqrt(var + eps) is not a number).`,
          evidence: { nanChannels: nan.length, negativeChannels: bad.length, channels: variance.length, epsilon: eps },
          fix: "Re-estimate the running statistics: run a few hundred training batches with the model in train() mode and torch.no_grad(), or reset_running_stats() and recalibrate; look for a NaN loss during training.",
        });
      }
      const seen = bnObserved?.get(norm.node);
      if (seen) {
        compared++;
        mismatched.push(...compare(norm, mean, variance, eps, seen, syntheticProbe));
      } else if (tiny.length) {
        findings.push({
          ruleId: "norm.bn-variance/tiny", category: "norm.bn-variance", severity: "info", layer: norm.module, node: node.name, tensor: varT.name,
          message: `BatchNorm ${name}: ${tiny.length} of ${variance.length} channels have a running variance below eps/100 (eps = ${fmt(eps)}, e.g. channel ${tiny[0]}: ${fmt(variance[tiny[0]])}): they did not vary in training, so eps alone sets their scale; any input variation there is amplified up to 1/sqrt(eps) = ${fmt(1 / Math.sqrt(eps))}x.`,
          evidence: { tinyChannels: tiny.length, channels: variance.length, epsilon: eps },
          fix: "Usually dead channels (e.g. pruned or never-activated inputs); nothing to do unless the probe shows those channels receiving signal.",
        });
      }
    }
    if (syntheticProbe && mismatched.length) {
      // On synthetic data a trained model's BatchNorms all disagree with their running statistics: one line, not one per layer.
      const first = mismatched[0];
      findings.push({
        ...first, ruleId: "norm.bn-variance/synthetic-probe", severity: "info",
        message: `${mismatched.length} of ${compared} BatchNorm layers receive statistics on the synthetic N(0,1) probe far from their running statistics (first: ${first.layer ?? first.node}, where the median channel's observed mean is ${fmt(Number(first.evidence.medianShift))} running std from the running mean and its std ${fmt(Number(first.evidence.medianStdRatio))}x the running std). That is expected when the probe is not the training data; run with --input on real data to check them.`,
        evidence: { ...first.evidence, layers: mismatched.length, compared },
      });
      return findings;
    }
    // The inputs input.unnormalized warns about, quoted, for either case below.
    const inputs = unnormalizedInputs(inputData).map((n) => `"${n}"`).join(", ");
    if (mismatched.length === compared && compared > 1 && Number(mismatched[0].evidence.medianShift) > GROSS_SHIFT && inputs) {
      // Every BatchNorm disagrees, the first by tens of running stds, and the input is off its
      // scale (raw 0-255 pixels into a net trained on standardised ones): the data, not the
      // statistics, are the likely cause, so one finding instead of one per BatchNorm.
      const first = mismatched[0];
      findings.push({
        ...first, ruleId: "norm.bn-variance/input-scale",
        message: `${mismatched.length} of ${compared} BatchNorm layers receive statistics far from their running statistics (first: ${first.layer ?? first.node}, where the median channel's observed mean is ${fmt(Number(first.evidence.medianShift))} running std from the running mean and its std ${fmt(Number(first.evidence.medianStdRatio))}x the running std), and input ${inputs} is not normalized (see input.unnormalized): the probe data are probably not preprocessed as the training data were.`,
        evidence: { ...first.evidence, layers: mismatched.length, compared, unnormalizedInputs: inputs },
        fix: `Preprocess ${inputs} as in training (the same scaling and per-channel mean/std) and probe again; if the BatchNorms still disagree, recompute their running statistics on representative data (model.train(); with torch.no_grad(): a few hundred batches; model.eval()) and export again.`,
      });
    } else {
      // A milder mismatch may be the statistics' own (calibrated on other data): each BatchNorm keeps
      // its finding, and an unnormalized input is named as the first thing to rule out.
      findings.push(...mismatched.map((f) => (inputs ? { ...f, message: `${f.message} Input ${inputs} is not normalized (see input.unnormalized); rule out preprocessing that differs from training first.` } : f)));
    }
    return findings;
  },
};

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length ? (s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2) : NaN;
}

function compare(norm: NormMatch, mean: ArrayLike<number>, variance: ArrayLike<number>, eps: number, seen: ObservedChannels, synthetic: boolean): Finding[] {
  const shifts: number[] = [];
  const scales: number[] = [];
  for (let c = 0; c < seen.mean.length; c++) {
    const v = variance[c];
    if (!(v >= 0) || !Number.isFinite(mean[c])) continue;
    const denom = Math.sqrt(v + eps);
    shifts.push(Math.abs(seen.mean[c] - mean[c]) / denom);
    scales.push(Math.sqrt(seen.variance[c] + eps) / denom);
  }
  if (!shifts.length) return [];
  const shift = median(shifts);
  const scale = median(scales);
  if (!(shift > BN_SHIFT_LIMIT || scale > BN_SCALE_LIMIT || scale < 1 / BN_SCALE_LIMIT)) return [];
  // Inputs larger than (or shifted from) what the running statistics expect blow the outputs up at
  // inference; smaller ones only attenuate them (as in a freshly initialised net whose running
  // variance has not converged yet), which is worth knowing but rarely breaks a model.
  const inflated = shift > BN_SHIFT_LIMIT || scale > BN_SCALE_LIMIT;
  // The worst channel, for the message.
  let worst = 0;
  for (let c = 1; c < shifts.length; c++) if (shifts[c] + Math.abs(Math.log(scales[c])) > shifts[worst] + Math.abs(Math.log(scales[worst]))) worst = c;
  const name = norm.module ?? norm.node;
  return [{
    ruleId: "norm.bn-variance/running-stats", category: "norm.bn-variance", severity: synthetic || !inflated ? "info" : "warning", layer: norm.module, node: norm.node, tensor: seen.tensor,
    message: `BatchNorm ${name}: its running statistics do not match what the layer receives on the probe${synthetic ? " (synthetic N(0,1) data, which may differ from the training data)" : ""}. In the median channel the observed mean is ${fmt(shift)} running std away from the running mean and the observed std is ${fmt(scale)}x the running std, so at inference the output is not zero-mean, unit-variance${inflated ? "" : " (it is attenuated, not inflated)"} (channel ${worst}: running mean ${fmt(mean[worst])}, var ${fmt(variance[worst])}; observed mean ${fmt(seen.mean[worst])}, var ${fmt(seen.variance[worst])}).`,
    evidence: { medianShift: shift, medianStdRatio: scale, channels: seen.mean.length, samplesPerChannel: seen.count, synthetic },
    fix: "Recompute the running statistics on representative data: model.train(); with torch.no_grad(): run a few hundred batches; model.eval() (or set momentum=None for an exact average); then export again. If the probe data are not what the model sees in use, pass real data with --input.",
  }];
}
