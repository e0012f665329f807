import { layerHasFreshBatchNorm } from "../graph/fresh-batchnorm";
import type { Layer } from "../graph/layers";
import { unnormalizedInputs } from "./input-unnormalized";
import type { Rule, RuleContext } from "./rule";
import { fmt, isReluLike, layerTitle } from "./rule";

/** Fraction of never-firing ReLU units from which a layer is reported. A healthy deep He-init
 * ReLU net shows up to ~30% of units silent on a 16-sample probe, so the bar sits above that. */
export const DEAD_WARNING_FRACTION = 0.5;

/**
 * ReLU units that never output a positive value on the probe: their gradient is zero for every
 * input, so they never learn again (a large negative bias or a too-high learning rate does this).
 */
/** Ops through which an all-zero tensor stays all zero, so a layer past them still sees zeros. */
const ZERO_PRESERVING = new Set(["Reshape", "Flatten", "Identity", "Dropout", "Transpose", "Squeeze", "Unsqueeze", "MaxPool", "AveragePool", "Relu"]);

/**
 * The layer whose all-zero output this layer reads (through reshapes and pools), if any: then this
 * layer sees only its bias, and its silence is the upstream layer's fault, not its own bias's.
 */
function silentUpstream(layer: Layer, ctx: RuleContext): Layer | undefined {
  const byOutput = new Map(ctx.layers.map((l) => [l.output, l]));
  let tensor: string | undefined = layer.node.inputs[0];
  for (let hops = 0; tensor && hops < 16; hops++) {
    const upstream = byOutput.get(tensor);
    // An exact count only: a zero fraction read off the histogram sample can miss the few non-zeros.
    const a = upstream && ctx.reports[upstream.id].activation;
    if (upstream) return a && a.zeroFraction === 1 && !a.zeroFractionFromSample ? upstream : undefined;
    const producer = ctx.index.producer.get(tensor);
    tensor = producer && ZERO_PRESERVING.has(producer.opType) ? producer.inputs[0] : undefined;
  }
  return undefined;
}

/**
 * The layer reads a globally pooled vector (a squeeze-and-excitation block's squeeze, a classifier
 * head after global pooling): one value per channel and sample, which synthetic noise images make
 * nearly the same for every sample, so a zero-bias ReLU unit's sign is decided once for the whole
 * probe and about half of them never fire there. Real images vary far more.
 */
function readsPooledVector(layer: Layer, ctx: RuleContext): boolean {
  let tensor: string | undefined = layer.node.inputs[0];
  for (let hops = 0; tensor && hops < 8; hops++) {
    const producer = ctx.index.producer.get(tensor);
    if (!producer) return false;
    if (producer.opType === "GlobalAveragePool" || producer.opType === "ReduceMean") return true;
    tensor = ["Reshape", "Flatten", "Squeeze", "Identity"].includes(producer.opType) ? producer.inputs[0] : undefined;
  }
  return false;
}

/**
 * At least half as many units as are silent have a bias far below what initialisation gives
 * (PyTorch draws biases within ±1/sqrt(fan_in); here below -3/sqrt(fan_in)): the bias switches them
 * off, whatever the probe, so the silence is no artefact of a synthetic input.
 */
function biasSwitchesUnitsOff(layer: Layer, fanIn: number | null | undefined, dead: number): boolean {
  if (!layer.bias || !fanIn) return false;
  const floor = -3 / Math.sqrt(fanIn);
  let off = 0;
  try {
    for (const b of layer.bias.values()) if (b < floor) off++;
  } catch {
    return false;
  }
  return off * 2 >= dead;
}

const RUN_ON_REAL_DATA = "Run the probe on real inputs (--input data.npz); if units stay silent there, check the bias and learning rate, or use LeakyReLU/GELU.";

export const activationDead: Rule = {
  id: "activation.dead",
  needsProbe: true,
  check: (ctx) => {
    const { layers, reports, modelLooksTrained, syntheticProbe } = ctx;
    const unnormalized = unnormalizedInputs(ctx.inputData).map((n) => `"${n}"`).join(", ");
    return layers.flatMap((layer) => {
      const a = reports[layer.id].activation;
      // NaN outputs never compare > 0; numeric.nonfinite reports them, not this rule.
      if (!a || !isReluLike(layer) || a.deadUnits === null || !a.units || a.nonFinite > 0 || !Number.isFinite(a.mean)) return [];
      // With a gradient probe, a unit counts only if its weight gradient was also exactly zero on
      // every batch (a LeakyReLU/PReLU unit that never fires still learns through its slope).
      const wg = reports[layer.id].weight?.gradient;
      const zeroGradient = wg && wg.zeroUnits !== null && wg.units === a.units ? wg.zeroUnits : null;
      const dead = zeroGradient !== null ? Math.min(a.deadUnits, zeroGradient) : a.deadUnits;
      const fraction = dead / a.units;
      // Two-unit squeeze layers (SE blocks) swing to 50% on one unit; need a few units unless all are dead.
      if (fraction < DEAD_WARNING_FRACTION || (a.units < 4 && fraction < 1)) return [];
      const bias = reports[layer.id].weight && layer.bias ? layer.bias : undefined;
      // A trained net fed random noise is off its data distribution; silent units there prove little.
      const offDistribution = modelLooksTrained && syntheticProbe;
      // A bias far below what initialisation gives switches the units off whatever the probe.
      const biasOff = biasSwitchesUnitsOff(layer, reports[layer.id].weight?.fanIn, dead);
      // When each unit's sign is decided once for the whole probe, about half the units stay silent,
      // binomially: far more than that (3 standard deviations) is not the probe's doing.
      const beyondChance = dead > a.units / 2 + 1.5 * Math.sqrt(a.units);
      const pooledNoise = syntheticProbe && fraction < 1 && !beyondChance && readsPooledVector(layer, ctx) && !biasOff;
      // Units that a training-mode BatchNorm would centre: silent in the eval-mode export only.
      const uncentred = fraction < 1 && layerHasFreshBatchNorm(ctx.model, layer);
      // Equal weights (init.zero / init.symmetric) make every unit compute the same value: that, not
      // the bias or the learning rate, is why they are silent together.
      const w = reports[layer.id].weight;
      // A norm layer's scale of ones is its standard init, not symmetry: it acts per element.
      const equalWeights = !!w && w.std === 0 && layer.kind !== "norm";
      const upstream = silentUpstream(layer, ctx);
      // One sample (or copies of one): each unit's sign is decided once, so about half never fire.
      const sameSamples = !offDistribution && !pooledNoise && !uncentred && !equalWeights && !upstream && !biasOff && !beyondChance ? ctx.identicalSamples : undefined;
      // Why the silence may be the probe's or the export's doing rather than the model's; the first
      // names the finding and its fix, and each adds its note.
      const caveats = [
        offDistribution && { id: "synthetic-probe", note: "The weights look trained and the probe was synthetic: confirm with real data (--input).", fix: RUN_ON_REAL_DATA },
        pooledNoise && !offDistribution && { id: "synthetic-probe", note: "The layer reads a globally pooled vector, which the synthetic probe's noise inputs make nearly the same for every sample, so each unit's sign is decided once for the whole probe: confirm with real data (--input).", fix: RUN_ON_REAL_DATA },
        uncentred && { id: "fresh-batchnorm", note: `Its BatchNorm${layer.foldedFreshNorm ? " (folded into the conv by the export)" : ""} has untrained running statistics (mean 0, variance 1), so in eval mode it does not centre the pre-activations; in training it centres them with the batch's statistics and the units fire about half the time.`, fix: "Nothing to change for training. To check the trained network, export it after training (or after a few hundred batches in train() mode, which fills the running statistics)." },
        sameSamples && { id: "identical-samples", note: `But ${sameSamples}, so each unit's sign was decided once: units silent on it may fire on other inputs.`, fix: "Probe with varied data: --input with many rows of real inputs (a --fill constant or an all-ones input gives every sample the same value)." },
      ].filter((c) => !!c);
      // An input far off centre (input.unnormalized) fixes each unit's sign for every sample through
      // the weights on that feature: normalizing the data comes before any change to the layer.
      const offInputs = !caveats.length && !equalWeights && !upstream && !biasOff ? unnormalized : "";
      // Every unit silent: no gradient passes back through the layer, so the layers before it freeze too.
      const frozen = fraction === 1 && !caveats.length
        ? layers.filter((l) => l.id < layer.id && reports[l.id].gradient?.l2 === 0 && (reports[l.id].weight?.gradient?.l2 ?? 0) === 0).map((l) => l.name)
        : [];
      const notes = [
        upstream && `Its input is all zero: every unit of ${upstream.name} before it is silent, so this layer sees only its bias.`,
        frozen.length > 0 && `No gradient passes back through it, so ${frozen.length === 1 ? "the layer" : `the ${frozen.length} layers`} before it (${frozen.slice(0, 6).join(", ")}${frozen.length > 6 ? ", …" : ""}) ${frozen.length === 1 ? "gets" : "get"} exactly zero gradient and cannot learn either.`,
        ...caveats.map((c) => c.note),
        offInputs && `Input ${offInputs} is not normalized (see input.unnormalized): a feature with a large mean adds the same large term to every sample's pre-activation, so each unit's sign is the same for all of them.`,
      ].filter((n) => !!n);
      return [{
        ruleId: caveats.length ? `activation.dead/${caveats[0].id}` : "activation.dead", category: "activation.dead",
        severity: caveats.length ? "info" as const : fraction === 1 ? "error" as const : "warning" as const,
        layer: layer.name, node: layer.node.name, tensor: a.tensor,
        message: `${layerTitle(layer)}: ${dead} of ${a.units} ReLU units (${fmt(100 * fraction)}%) never fire on the probe (${fmt(100 * a.zeroFraction)}% of outputs are zero); ${zeroGradient !== null ? "their weight gradients are exactly zero on every probe batch, so they stop learning and cannot recover" : "dead units get zero gradient and stop learning"}.${notes.map((n) => ` ${n}`).join("")}`,
        evidence: { deadUnits: dead, neverFiring: a.deadUnits, zeroGradientUnits: zeroGradient, units: a.units, deadFraction: fraction, zeroFraction: a.zeroFraction, bias: bias?.name ?? null, silentInputFrom: upstream?.name ?? null, frozenBefore: frozen.length ? frozen.join(", ") : null },
        // Equal weights are this layer's own fault whatever its input; otherwise a silent input is the cause.
        fix: equalWeights
          ? `All weights of this layer are equal (${fmt(w!.mean)}), so every unit computes the same value and they go silent together: initialise with random weights (He, std = sqrt(2/fan_in), before ReLU); the init findings on this layer say the same.`
          : upstream
          ? `Fix ${upstream.name} first (its finding says why it is silent); this layer's units cannot fire while their input is zero, whatever their own bias.`
          : caveats.length
          ? caveats[0].fix
          : biasOff
          ? `The bias switches these units off: ${bias?.name ?? "the bias"} holds values below -3/sqrt(fan_in) = ${fmt(-3 / Math.sqrt(w?.fanIn ?? 1))}, beyond what initialisation gives (within ±1/sqrt(fan_in)). Re-initialise the biases (zero, or PyTorch's default) and, if training drove them there, lower the learning rate (Adam with a large step kills ReLU units this way).`
          : offInputs
          ? `Normalize ${offInputs} first (x = (x - mean) / std per feature, with the training set's statistics) and probe again; if units stay silent, check the bias and the learning rate.`
          : layer.kind === "norm"
          ? "A normalization's outputs change sign from sample to sample when its input varies; units that never fire mean the input hardly varies between samples. Check the layer before it: weights initialised too small next to its bias (the bias then sets every sample's value), or a constant input."
          : "Check the bias (large negative values switch units off) and the learning rate; use He initialisation, LeakyReLU/GELU, or normalization before the ReLU.",
      }];
    });
  },
};
