import type { Layer } from "../graph/layers";
import { branchesHolding } from "../graph/residual";
import type { Finding, WeightReport } from "../report/types";
import type { Rule } from "./rule";
import { fmt, isReluLike, layerTitle } from "./rule";

/** Below this fraction of the expected std the signal shrinks layer after layer. */
export const SMALL_RATIO = 0.25;
/** Above this multiple it grows layer after layer (or saturates tanh/sigmoid). */
export const LARGE_RATIO = 2;

/**
 * Weight std against what keeps activation variance constant through depth: He, sqrt(2/fan_in)
 * (forward) to sqrt(2/fan_out) (backward, torchvision's mode="fan_out"), before ReLU-like units;
 * Xavier, sqrt(2/(fan_in+fan_out)), or LeCun, sqrt(1/fan_in), before tanh/sigmoid/linear. PyTorch's default (std = LeCun/sqrt(3)) passes.
 * Exempt: layers followed by a normalization (it rescales), and trained weights.
 */
export const initScale: Rule = {
  id: "init.scale",
  needsProbe: false,
  check: ({ layers, reports, modelLooksTrained, architecture }) => {
    if (modelLooksTrained) return [];
    const findings: Finding[] = [];
    for (const layer of layers) {
      const w = reports[layer.id].weight;
      if (!w?.expectedStd || layer.followedByNorm || w.looksTrained || w.zeroFraction === 1 || w.identicalUnits) continue;
      if (!(w.std > 0) || (layer.kind !== "linear" && layer.kind !== "conv")) continue;
      const { reference, lo, hi, range } = expectedRange(layer, w);
      const ratio = w.std < lo ? w.std / lo : w.std > hi ? w.std / hi : 1;
      if (ratio >= SMALL_RATIO && ratio <= LARGE_RATIO) continue;
      const small = ratio < SMALL_RATIO;
      const target = small ? lo : hi;
      findings.push({
        ruleId: small ? "init.scale-small" : "init.scale-large",
        category: small ? "init.scale-small" : "init.scale-large",
        severity: "warning",
        layer: layer.name, node: layer.node.name, tensor: w.tensor,
        message: `${layerTitle(layer)}: weight std ${fmt(w.std)} is ${fmt(ratio)}x ${range
          ? `the ${small ? "bottom" : "top"} of the healthy range (${range}, fan_in ${w.fanIn}, fan_out ${w.fanOut})`
          : `the ${reference} std ${fmt(target)} for fan_in ${w.fanIn}`}${layer.activation ? ` before ${layer.activation}` : ""}; ` +
          (small
            ? "activations shrink at every such layer and gradients vanish."
            : layer.activation === "tanh" || layer.activation === "sigmoid" || layer.activation === "hard_sigmoid"
              ? `pre-activations are large, so ${layer.activation} units saturate and their gradients vanish.`
              : "activations grow at every such layer and gradients explode."),
        evidence: { std: w.std, ratio, he: w.expectedStd.he, xavier: w.expectedStd.xavier, lecun: w.expectedStd.lecun, fanIn: w.fanIn, fanOut: w.fanOut, activation: layer.activation ?? null },
        fix: heFamily(layer)
          ? `Use He initialisation: std = sqrt(2/fan_in) = ${fmt(w.expectedStd.he)} (torch.nn.init.kaiming_normal_(w, nonlinearity="relu")), or add BatchNorm after this layer.`
          : `Use Xavier initialisation: std = sqrt(2/(fan_in+fan_out)) = ${fmt(w.expectedStd.xavier)} (torch.nn.init.xavier_normal_), or LeCun std = sqrt(1/fan_in) = ${fmt(w.expectedStd.lecun)}; or add LayerNorm between layers.`,
      });
    }
    const layerOf = (f: Finding): Layer | undefined => layers.find((l) => l.name === f.layer);
    const graded = findings.map((f) => {
      const layer = layerOf(f);
      if (layer?.foldedFreshNorm) return asFoldedBatchNorm(f);
      if (layer && f.category === "init.scale-small" && architecture && branchesHolding(layer, architecture.blocks).length) return asResidualBranchChoice(f);
      return f;
    });
    return graded.map((f) => (isLoneOutputLayer(f, graded, layers) ? asOutputLayerChoice(f) : f));
  },
};

/**
 * A conv that seems to carry a BatchNorm folded in by the export (graph/fresh-batchnorm.ts) is
 * rescaled by that BatchNorm in training, so its weight scale does not matter there; torchvision's
 * kaiming fan_out init of a linear bottleneck is 2-3x Xavier, harmless before a BatchNorm. The fold
 * is read off names, so the finding stays, as information that says what it rests on.
 */
function asFoldedBatchNorm(f: Finding): Finding {
  return {
    ...f, ruleId: `${f.category}/folded-batchnorm`, severity: "info",
    message: `${f.message} The conv looks like one into which the export folded a BatchNorm with untrained running statistics (its bias is exactly zero and named onnx::Conv_<n>, as torch's constant folding leaves it); if so, that BatchNorm rescales its output in training and this scale does not matter.`,
    fix: `If the model has no BatchNorm after this conv: ${f.fix}`,
  };
}

/**
 * A layer of a residual branch drawn small keeps its block near the identity at the start (GPT-2
 * draws its projections from N(0, 0.02) and scales the last ones by 1/sqrt(2 x layers); Fixup and
 * ReZero go to zero): the skip connection carries the signal through depth, so a small branch
 * does not make it vanish. (All-zero weights stay init.zero's: they are symmetric.)
 */
function asResidualBranchChoice(f: Finding): Finding {
  return {
    ...f, ruleId: "init.scale-small/residual-branch", severity: "info",
    message: f.message.replace(/; activations shrink at every such layer and gradients vanish\.$/, "; it is in a residual branch, so the block starts near the identity and the skip connection carries the signal through depth (a common choice: GPT-2, Fixup)."),
    fix: `Nothing to change if the small residual branch is intended. ${f.fix}`,
  };
}

/**
 * A mis-scaled output layer next to healthy hidden layers is a deliberate choice more often than a
 * mistake (torchvision draws SqueezeNet's classifier from N(0, 0.01) and EfficientNet's from
 * U(±1/sqrt(classes)); small logits start the softmax near uniform), and one layer cannot shrink or
 * grow a signal through depth. When a hidden layer is mis-scaled too, the output layer is part of
 * the same mistake and stays a warning; so does an output layer with a saturating activation, and
 * one more than 10x too large.
 */
function isLoneOutputLayer(f: Finding, all: readonly Finding[], layers: readonly Layer[]): boolean {
  const layerOf = (name: string | undefined): Layer | undefined => layers.find((l) => l.name === name);
  const own = layerOf(f.layer);
  const saturating = own?.activation === "sigmoid" || own?.activation === "tanh" || own?.activation === "hard_sigmoid";
  // Far too large logits (std 40: a first cross-entropy of 93 against ln(classes)) are no choice anyone makes.
  const huge = f.category === "init.scale-large" && Number(f.evidence.ratio) > MAX_OUTPUT_LAYER_RATIO;
  return !!own?.isOutputLayer && !saturating && !huge && !all.some((g) => g.severity !== "info" && !layerOf(g.layer)?.isOutputLayer);
}

/** A lone output layer up to this many times the healthy std is a choice (EfficientNet's head: 4.7x); beyond, a mistake. */
const MAX_OUTPUT_LAYER_RATIO = 10;

function asOutputLayerChoice(f: Finding): Finding {
  const small = f.category === "init.scale-small";
  return {
    ...f, ruleId: `${f.category}/output-layer`, severity: "info",
    message: f.message.replace(/; activations (shrink|grow) at every such layer and gradients (vanish|explode)\.$/, `; it is the output layer, so this only scales the outputs (${small ? "a small last layer is a common choice: it starts the logits near zero" : "large initial logits make the softmax confident before training starts"}), and the hidden layers are initialised at a healthy scale.`),
    fix: `Nothing to change if the ${small ? "small" : "large"} output layer is intended; otherwise initialise it like the hidden layers. ${f.fix}`,
  };
}

/** Units that pass about half their input, as ReLU does (GELU, ELU, SiLU, hardswish): He's scale fits them. */
const heFamily = (layer: Layer): boolean =>
  isReluLike(layer) || layer.activation === "gelu" || layer.activation === "elu" || layer.activation === "silu" || layer.activation === "hard_swish";

/** The healthy std range; for tanh/sigmoid/linear layers it runs between Xavier and LeCun, named in `range`. */
function expectedRange(layer: Layer, w: WeightReport): { reference: string; lo: number; hi: number; range?: string } {
  const e = w.expectedStd!;
  if (heFamily(layer)) {
    // He et al. keep either the forward variance (fan_in) or the backward one (fan_out); torchvision
    // initialises its convolutions with mode="fan_out". Both ends are healthy, and so is between.
    const heOut = w.fanOut ? Math.sqrt(2 / w.fanOut) : e.he;
    const [lo, hi] = heOut < e.he ? [heOut, e.he] : [e.he, heOut];
    if (hi <= lo * (1 + 1e-9)) return { reference: "He", lo, hi };
    return { reference: w.std < lo ? (lo === heOut ? "He fan_out" : "He") : hi === heOut ? "He fan_out" : "He", lo, hi, range: `He fan_${lo === heOut ? "out" : "in"} ${fmt(lo)} to He fan_${hi === heOut ? "out" : "in"} ${fmt(hi)}` };
  }
  // Xavier and LeCun bound the healthy range; PyTorch's default (LeCun/sqrt(3)) stays above SMALL_RATIO.
  const [lo, hi] = e.xavier <= e.lecun ? [["Xavier", e.xavier], ["LeCun", e.lecun]] as const : [["LeCun", e.lecun], ["Xavier", e.xavier]] as const;
  return { reference: w.std < lo[1] ? lo[0] : hi[0], lo: lo[1], hi: hi[1], range: hi[1] > lo[1] * (1 + 1e-9) ? `${lo[0]} ${fmt(lo[1])} to ${hi[0]} ${fmt(hi[1])}` : undefined };
}
