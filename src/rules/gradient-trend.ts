import type { Layer } from "../graph/layers";
import type { Finding, LayerReport } from "../report/types";
import type { Rule } from "./rule";
import { evalModeBatchNormNote, fmt, freshBatchNorm, isReluLike, layerTitle, normalizationAdvice } from "./rule";
import { slope } from "../stats/trend";

/**
 * AutoTrainer's thresholds (Zhang et al., ICSE 2021) on ||g_first|| / ||g_last||: below 1e-3 the
 * gradient vanishes, above 70 it explodes. They are the anchor; see {@link gradientTrend} for what
 * is added so healthy deep nets stay quiet.
 */
export const AUTOTRAINER_VANISH = 1e-3;
export const AUTOTRAINER_EXPLODE = 70;
/** The least-squares line through log ||g|| over depth must agree: at least this overall change. */
export const TREND_VANISH = 1e-2;
export const TREND_EXPLODE = 10;

interface Point {
  readonly layer: Layer;
  readonly report: LayerReport;
  readonly l2: number;
}

/**
 * Vanishing and exploding gradients (the seed, 梯度消失/梯度爆炸): the l2 norm of the loss gradient
 * with respect to each layer's output, over depth. With L layers each scaling the backward signal
 * by w, the first layer sees w^(L-1) of the last layer's gradient.
 *
 * Compared with AutoTrainer's bare first/last ratio, the rule (1) leaves out the output layer,
 * whose gradient is set by the loss definition (a softmax output over 1000 classes alone divides
 * the backward signal by ~1000) rather than by back-propagation; (2) leaves out layers with
 * exactly zero gradient (dead units, zero-initialised residual branches: other rules report
 * those); (3) requires the least-squares trend of log ||g|| over depth to show the same change
 * (a steady per-layer factor), so one odd layer at either end cannot raise it. Measured on the
 * fixtures: the sigmoid MLP falls to 1.6e-7 (about x6.6 per layer); healthy controls (He ReLU MLP,
 * ResNet with BatchNorm, pre- and post-norm transformers, generated ResNet-18) stay within 0.03-3.
 */
export const gradientTrend: Rule = {
  id: "gradient.trend",
  needsProbe: true,
  check: ({ model, index, layers, reports, architecture }) => {
    const outputs = new Set(model.outputs.map((o) => o.name));
    // A side input added at many depths (a diffusion model's time embedding) sums the gradient of
    // every join it feeds: it is no point on the path the signal travels, so not the trend's start.
    const feedsManyJoins = (l: Layer): boolean => index.consumersOf(l.output).filter((n) => n.opType === "Add" || n.opType === "Sum").length >= 2;
    const seq: Point[] = layers
      .filter((l) => l.scope === "" && !outputs.has(l.output) && !feedsManyJoins(l))
      .map((l) => ({ layer: l, report: reports[l.id], l2: reports[l.id].gradient?.l2 ?? NaN }))
      .filter((p) => Number.isFinite(p.l2) && p.l2 > 0);
    if (seq.length < 3) return [];
    const first = seq[0];
    const last = seq[seq.length - 1];
    const ratio = first.l2 / last.l2;
    const logs = seq.map((p) => Math.log10(p.l2));
    const b = slope(logs);
    // Change toward the input along the fitted line, and per layer.
    const fittedRatio = 10 ** (-b * (seq.length - 1));
    const perLayer = 10 ** b;
    const weightRatio = weightGradientRatio(layers, reports);
    const evidence = {
      firstLayer: first.layer.name, lastLayer: last.layer.name, firstL2: first.l2, lastL2: last.l2, ratio,
      fittedRatio, perLayerFactor: perLayer, weightGradientRatio: weightRatio,
      thresholds: [AUTOTRAINER_VANISH, AUTOTRAINER_EXPLODE], l2: seq.map((p) => p.l2),
    };
    const findings: Finding[] = [];
    const trend = seq.map((p) => ({ layer: p.layer, value: p.l2 }));
    if (ratio < AUTOTRAINER_VANISH && fittedRatio < TREND_VANISH) {
      const fresh = freshBatchNorm(model, trend, true);
      const saturating = layers.some((l) => l.activation === "sigmoid" || l.activation === "tanh");
      const scale = initScale(seq);
      findings.push({
        ruleId: fresh ? "gradient.vanishing/fresh-batchnorm" : "gradient.vanishing", category: "gradient.vanishing", severity: fresh ? "info" : "warning",
        layer: first.layer.name, node: first.layer.node.name, tensor: first.layer.output,
        message: `${layerTitle(first.layer)}: the loss gradient shrinks about x${fmt(perLayer)} per layer on its way back, from l2 ${fmt(last.l2)} at ${last.layer.name} to ${fmt(first.l2)} here: first/last = ${fmt(ratio)} (vanishing below ${fmt(AUTOTRAINER_VANISH)}), so the first layers barely learn.${weightRatio === null ? "" : weightRatio < 0.1 ? ` Weight gradients: first/last = ${fmt(weightRatio)}.` : ` Weight gradients stay level (first/last = ${fmt(weightRatio)}) because dW = x^T g: the first layers see a large input and a vanished gradient, the last ones a vanished input and a large gradient, so no layer gets a useful update.`}${fresh ? ` ${fresh.note}` : evalModeBatchNormNote(architecture, layers)}`,
        evidence,
        fix: fresh ? fresh.fix : scale && scale.ratio < 0.5
          ? `The weights are initialised too small (median weight std ${fmt(scale.ratio)}x the ${scale.scheme} std), and each layer shrinks the backward signal with them: re-initialise with ${scale.scheme} scale (std = ${scale.scheme === "He" ? "sqrt(2/fan_in)" : "sqrt(2/(fan_in+fan_out))"}); if it persists, ${normalizationAdvice(architecture, layers)}, or add residual connections.`
          : saturating
          ? `Sigmoid/tanh derivatives are at most 0.25/1 and shrink the gradient at every layer: use ReLU-family activations in hidden layers, Xavier/He initialisation or residual connections; ${normalizationAdvice(architecture, layers)}.`
          : `Initialise with He (ReLU) or Xavier (tanh) scale so each layer keeps the gradient's size, or add residual connections; ${normalizationAdvice(architecture, layers)}.`,
      });
    }
    if (ratio > AUTOTRAINER_EXPLODE && fittedRatio > TREND_EXPLODE) {
      const fresh = freshBatchNorm(model, trend, false);
      findings.push({
        ruleId: fresh ? "gradient.exploding/fresh-batchnorm" : "gradient.exploding", category: "gradient.exploding", severity: fresh ? "info" : "warning",
        layer: first.layer.name, node: first.layer.node.name, tensor: first.layer.output,
        message: `${layerTitle(first.layer)}: the loss gradient grows about x${fmt(1 / perLayer)} per layer on its way back, from l2 ${fmt(last.l2)} at ${last.layer.name} to ${fmt(first.l2)} here: first/last = ${fmt(ratio)} (exploding above ${AUTOTRAINER_EXPLODE}); training steps will be unstable.${weightRatio !== null ? ` Weight gradients: first/last = ${fmt(weightRatio)}.` : ""}${fresh ? ` ${fresh.note}` : evalModeBatchNormNote(architecture, layers)}`,
        evidence,
        fix: fresh ? fresh.fix : `Scale the weights down (He std = sqrt(2/fan_in) before ReLU, Xavier before tanh), clip the gradient norm (torch.nn.utils.clip_grad_norm_) and lower the learning rate; ${normalizationAdvice(architecture, layers)}.`,
      });
    }
    return findings;
  },
};

/**
 * Median over the layers of weight std / the std its activation calls for (He before ReLU,
 * Xavier otherwise), so the advice names the initialisation when it is the cause.
 */
function initScale(seq: readonly Point[]): { ratio: number; scheme: "He" | "Xavier" } | null {
  const ratios: number[] = [];
  let relu = 0;
  for (const p of seq) {
    const w = p.report.weight;
    if (!w?.expectedStd || !(w.std > 0)) continue;
    const he = isReluLike(p.layer);
    if (he) relu++;
    ratios.push(w.std / (he ? w.expectedStd.he : w.expectedStd.xavier));
  }
  if (ratios.length < 2) return null;
  ratios.sort((a, b) => a - b);
  return { ratio: ratios[Math.floor(ratios.length / 2)], scheme: relu * 2 > ratios.length ? "He" : "Xavier" };
}

/** AutoTrainer's own measure, shown as evidence: ||dW_first|| / ||dW_last|| over linear/conv layers. */
function weightGradientRatio(layers: readonly Layer[], reports: readonly LayerReport[]): number | null {
  const w = layers
    .filter((l) => (l.kind === "linear" || l.kind === "conv") && l.scope === "")
    .map((l) => reports[l.id].weight?.gradient?.l2 ?? NaN)
    .filter((v) => Number.isFinite(v) && v > 0);
  return w.length >= 2 ? w[0] / w[w.length - 1] : null;
}
