import type { Finding } from "../report/types";
import type { Rule } from "./rule";
import { fmt } from "./rule";

/**
 * The seed's W^L argument applied through time: a vanilla recurrence h_t = f(W h_{t-1} + U x_t)
 * multiplies perturbations of the hidden state by W at every step, so their size (and the gradient
 * through time) scales like rho(W)^T, where rho is the spectral radius (largest |eigenvalue|).
 * rho > 1 explodes, as 1.5^L in the seed; gated cells (LSTM, GRU) rescale the path with their
 * gates, so their radii are only reported.
 */
export const recurrentSpectralRadius: Rule = {
  id: "recurrent.spectral-radius",
  needsProbe: false,
  check: ({ architecture }) => {
    if (!architecture) return [];
    const findings: Finding[] = [];
    for (const r of architecture.recurrent) {
      const radius = Math.max(...r.matrices.map((m) => m.spectralRadius));
      const where = r.unrolledSteps ? `${r.layer} (${r.op} reused over ${r.unrolledSteps} unrolled steps, ${r.hiddenSize}x${r.hiddenSize}${r.activation ? `, ${r.activation}` : ""})` : `${r.layer} (${r.op}, hidden ${r.hiddenSize}${r.activation ? `, ${r.activation}` : ""})`;
      const base = { category: "recurrent.spectral-radius" as const, layer: r.layer, node: r.node, tensor: r.tensor };
      if (r.vanilla && radius > 1) {
        // The model's own sequence length when it is known; otherwise an example length, said as such.
        const known = r.unrolledSteps ?? r.sequenceLength;
        const steps = known ?? 50;
        findings.push({
          ...base, ruleId: "recurrent.spectral-radius", severity: "warning",
          message: `${where}: the recurrent weight has spectral radius ${fmt(radius)} > 1, so a change of the hidden state grows about ${fmt(radius)}x per step (${fmt(radius ** steps)}x over ${known ? `the ${steps} steps of this model's sequence` : `${steps} steps, for example`}) and gradients through time explode.`,
          evidence: { spectralRadius: radius, hiddenSize: r.hiddenSize, steps },
          fix: "Initialise the recurrent weight orthogonally (torch.nn.init.orthogonal_) and scale it to a spectral radius just below 1, clip gradients (torch.nn.utils.clip_grad_norm_), or use an LSTM/GRU.",
        });
      } else if (!r.vanilla) {
        findings.push({
          ...base, ruleId: "recurrent.spectral-radius/gated", severity: "info",
          message: `${where}: spectral radius of the recurrent weights per gate: ${r.matrices.map((m) => `${m.gate}${r.matrices.some((x) => x.direction > 0) ? `[${m.direction}]` : ""} ${fmt(m.spectralRadius)}`).join(", ")}. Gates rescale the recurrent path, so radii above 1 are not by themselves a problem here.`,
          evidence: { maxSpectralRadius: radius, hiddenSize: r.hiddenSize },
          fix: "Nothing to do; watch the gradient statistics through time if training is unstable.",
        });
      }
    }
    return findings;
  },
};
