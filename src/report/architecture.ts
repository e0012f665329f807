import { squaredFrobenius, summarizeArchitecture, type Architecture } from "../graph/architecture";
import type { Layer } from "../graph/layers";
import type { ArchitectureReport, LayerReport } from "./types";

/** The report's `architecture` section: what the extension's "Architecture" view shows. */
export function architectureReport(arch: Architecture, layers: readonly Layer[], reports: readonly LayerReport[]): ArchitectureReport {
  const s = summarizeArchitecture(arch);
  const weighted = layers.filter((l) => l.kind !== "norm" && reports[l.id].weight).map((l) => ({ l, sq: squaredFrobenius(reports[l.id]) ?? 0 }));
  const total = weighted.reduce((a, w) => a + w.sq, 0);
  const parts: string[] = [];
  if (s.text) parts.push(s.text);
  // ResNet-style blocks: x + f(x) with a convolutional (or other non-transformer) branch.
  const conv = arch.blocks.filter((b) => b.kind === "conv").length;
  const other = arch.blocks.filter((b) => b.kind === "other").length;
  if (conv) parts.push(`${conv} convolutional residual block(s)`);
  if (other) parts.push(`${other} other residual block(s)`);
  if (arch.recurrent.length) parts.push(`${arch.recurrent.length} recurrent layer(s)`);
  if (arch.dropouts.length) parts.push(`${arch.dropouts.length} Dropout node(s)`);
  const bn = arch.norms.filter((n) => n.kind === "batch").length;
  if (bn) parts.push(`${bn} BatchNorm layer(s)`);
  return {
    summary: parts.join("; ") || `${weighted.length} weight layer(s), no residual blocks or normalizations`,
    transformerLayers: s.transformerLayers,
    placement: s.placement,
    dModel: s.dModel,
    blocks: arch.blocks.map((b) => {
      const n = b.preNorm ?? b.postNorm;
      return { node: b.join.name || b.join.outputs[0], module: b.module ?? null, kind: b.kind, placement: b.placement, norm: n?.label ?? null, normModule: n?.module ?? null, width: b.width ?? null };
    }),
    norms: arch.norms.map((n) => ({ kind: n.kind, form: n.form, label: n.label, node: n.node, module: n.module ?? null, epsilon: n.epsilon ?? null, width: n.scale?.size ?? null })),
    dropout: arch.dropouts.map((d) => ({ node: d.node.name || d.node.outputs[0], module: d.module ?? null, rate: d.rate, keepProb: d.rate === null ? null : 1 - d.rate, trainingMode: d.trainingMode })),
    weightNorms: weighted.map(({ l, sq }) => ({ layer: l.name, tensor: l.weight!.name, parameters: l.weight!.size, frobenius: Math.sqrt(sq), share: total > 0 ? sq / total : 0 })),
    recurrent: arch.recurrent.map((r) => ({
      layer: r.layer, op: r.op, node: r.node, tensor: r.tensor, hiddenSize: r.hiddenSize, vanilla: r.vanilla, unrolledSteps: r.unrolledSteps ?? null,
      activation: r.activation ?? null, matrices: r.matrices.map((m) => ({ ...m })),
    })),
  };
}
