import type { Architecture } from "../graph/architecture";
import type { GraphIndex } from "../graph/index";
import { layerHasFreshBatchNorm, looksFolded } from "../graph/fresh-batchnorm";
import type { Layer } from "../graph/layers";
import type { Model } from "../onnx/model";
import type { ObservedChannels } from "../probe/bn-observed";
import type { ProbeResult } from "../probe/run";
import type { FitReport, Finding, InputStatsReport, LayerReport } from "../report/types";

/** Everything a rule may read. Rules are pure: they never run the model themselves. */
export interface RuleContext {
  readonly model: Model;
  readonly index: GraphIndex;
  readonly layers: readonly Layer[];
  /** Same order and ids as `layers`. */
  readonly reports: readonly LayerReport[];
  readonly probe?: ProbeResult;
  /** Most sizeable layers look trained; initialisation rules stay quiet. */
  readonly modelLooksTrained: boolean;
  /** The probe fed synthetic data, not the user's: a trained model may behave differently on real inputs. */
  readonly syntheticProbe: boolean;
  /** Why every probe sample was the same (one row, constant inputs): then "never fires" says little. */
  readonly identicalSamples?: string;
  /** Residual blocks, normalizations, dropout and recurrences (src/graph/architecture.ts). */
  readonly architecture?: Architecture;
  /** Per-channel statistics each BatchNormalization received during the probe, by node name. */
  readonly bnObserved?: ReadonlyMap<string, ObservedChannels>;
  /** Statistics of the user's probe data (--input), one entry per input read from the file. */
  readonly inputData?: readonly InputStatsReport[];
  /** Train vs validation loss and error (--train-data, --val-data). */
  readonly fit?: FitReport;
  /** The precision the model will run in; "fp16" turns on float16 range checks for float32 models. */
  readonly target?: "fp32" | "fp16";
}

export interface Rule {
  readonly id: string;
  /** Runtime rules need activation statistics and are skipped by static-only analysis. */
  readonly needsProbe: boolean;
  check(ctx: RuleContext): Finding[];
}

/** Numbers as a person reads them: 3 significant digits, exponent notation when tiny or huge. */
export function fmt(x: number | null | undefined): string {
  if (x === null || x === undefined || Number.isNaN(x)) return "NaN";
  if (!Number.isFinite(x)) return x > 0 ? "Inf" : "-Inf";
  if (x === 0) return "0";
  const a = Math.abs(x);
  if (a >= 1e4 || a < 1e-3) return x.toExponential(1).replace("e+", "e");
  return Number(x.toPrecision(3)).toString();
}

/** "layers.5 (Gemm 128->128, tanh)": the layer as a person recognises it. */
export function layerTitle(layer: Layer): string {
  const shape = layer.shapeLabel && layer.kind !== "norm" ? ` ${layer.shapeLabel}` : "";
  return `${layer.name} (${layer.op}${shape}${layer.activation ? `, ${layer.activation}` : ""})`;
}

export const isReluLike = (l: Layer): boolean => l.activation === "relu" || l.activation === "leaky_relu" || l.activation === "prelu";

/**
 * The normalization part of a vanishing/exploding fix: "add normalization between layers" only
 * when the model has none; a model that already normalises (light_resnet50 has 53 BatchNorms)
 * needs to look at what the normalizations leave alone.
 */
export function normalizationAdvice(architecture: Architecture | undefined, layers: readonly Layer[]): string {
  const norms = architecture?.norms.length ?? 0;
  if (norms > 0) return `the model already has ${norms} normalization layer${norms === 1 ? "" : "s"}, so look at what they leave alone: layers between them, norm weights far from 1, stale running statistics, residual branches added without scaling`;
  // An eval-mode torch export folds BatchNorms into the convs: the graph has none, the model may.
  const folded = layers.filter((l) => looksFolded(l.node, l.weight, l.bias)).length;
  return folded > 0
    ? `add normalization between layers; but ${folded} convolution${folded === 1 ? "" : "s"} carry weights renamed onnx::Conv_<n>, as torch's constant folding leaves a conv with a BatchNorm folded in, so the model may have BatchNorms this eval-mode graph no longer shows: if so, look at their running statistics and at what they leave alone`
    : "add normalization (BatchNorm/LayerNorm) between layers";
}

/**
 * Why a trend of activation or gradient scale over depth may not hold in training: the change
 * happens across layers normalised by BatchNorms that still have untrained running statistics
 * (graph/fresh-batchnorm.ts), so in eval mode, the mode of the export, they pass the signal
 * unchanged, while in training each one renormalises its layer with the batch's own statistics.
 *
 * `seq` is the trend's layers in depth order with the measured value (activation std or gradient
 * l2); `rising` says the finding is about the value growing with depth (exploding activations,
 * vanishing gradients). Each step between neighbours is the doing of the deeper layer (forward,
 * its weights act on the shallower one's output; backward, the gradient passes back through it).
 * Applies when at least two layers of `seq` have such a BatchNorm and their steps carry at least
 * half of the change in the finding's direction: fresh BatchNorms in a trunk say nothing about an
 * unnormalised head where the signal really falls.
 */
export function freshBatchNorm(model: Model, seq: readonly { readonly layer: Layer; readonly value: number }[], rising: boolean): { note: string; fix: string } | undefined {
  const fresh = (l: Layer): boolean => l.keptFreshNorm || layerHasFreshBatchNorm(model, l);
  let change = 0;
  let explained = 0;
  for (let i = 1; i < seq.length; i++) {
    const step = (rising ? 1 : -1) * Math.log(seq[i].value / seq[i - 1].value);
    if (!(step > 0)) continue;
    change += step;
    if (fresh(seq[i].layer)) explained += step;
  }
  const covered = seq.filter((s) => fresh(s.layer));
  if (covered.length < 2 || !(change > 0) || explained < change / 2) return undefined;
  // A folded BatchNorm leaves only names behind (a zero bias called onnx::Conv_<n>), so it is a likely reading, not a fact.
  const folded = covered.filter((s) => s.layer.foldedFreshNorm && !s.layer.keptFreshNorm).length;
  const kept = covered.length - folded;
  const untrained = "a BatchNorm with untrained running statistics (mean 0, variance 1";
  const foldSign = "a folded one leaves a zero bias named onnx::Conv_<n>, as torch's constant folding does";
  const which = folded === 0
    ? `are followed by ${untrained})`
    : kept === 0
    ? `look like convolutions into which the export folded ${untrained}; ${foldSign})`
    : `are followed by ${untrained}; ${kept} of them) or look like convolutions into which the export folded one (${folded}; ${foldSign})`;
  return {
    note: `${Math.round((100 * explained) / change)}% of this change happens across the ${covered.length} of these ${seq.length} layers that ${which}, so in eval mode those BatchNorms pass the signal through unchanged and this measures the network without its normalization; in training each BatchNorm renormalises its layer with the batch's own statistics, which keeps this from happening there.`,
    fix: "Nothing to change for training while the BatchNorms run in train mode. To check the network as it will run after training, export it after training (or after a few hundred batches in train() mode, which fills the running statistics); to keep the BatchNorms visible in the graph, export with training=torch.onnx.TrainingMode.PRESERVE, do_constant_folding=False. If the model has no BatchNorms after these layers, this reading is wrong: treat the finding as a warning.",
  };
}

/**
 * For gradient findings on a model with trained BatchNorms (kept, or folded into convs): the
 * backward graph is the exported eval-mode one, where each BatchNorm is a fixed per-channel scale
 * from its running statistics; in training it divides by the batch's own statistics, which also
 * rescales the gradient. The finding describes the eval-mode graph, and says so.
 */
export function evalModeBatchNormNote(architecture: Architecture | undefined, layers: readonly Layer[]): string {
  const kept = architecture?.norms.filter((n) => n.kind === "batch").length ?? 0;
  const folded = layers.filter((l) => looksFolded(l.node, l.weight, l.bias)).length;
  if (!kept && !folded) return "";
  return ` Measured in the exported eval-mode graph, where each BatchNorm${kept ? "" : " (folded into the convolutions, as their onnx::Conv_<n> names suggest)"} scales by its running statistics; in training it divides by the batch's own statistics, which rescales the gradient too, so compare with the per-layer gradient norms of a training run before changing the model.`;
}
