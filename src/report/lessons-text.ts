import { fmt } from "../rules/rule";
import type { Report } from "./types";

const list = (xs: readonly number[], max = 8): string => `[${xs.slice(0, max).map(fmt).join(", ")}${xs.length > max ? ", …" : ""}]`;

/**
 * Plain lines for the report's architecture, input-data and fit sections (shared by the text and
 * Markdown writers; the caller escapes them for Markdown).
 */
export function lessonLines(report: Report): string[] {
  const lines: string[] = [];
  const a = report.architecture;
  if (a) {
    lines.push(`architecture: ${a.summary}`);
    const drop = a.dropout.filter((d) => d.rate !== null);
    if (drop.length) lines.push(`dropout: ${drop.map((d) => `${d.module ?? d.node} keep-prob ${fmt(d.keepProb)}`).join(", ")}`);
    const top = [...a.weightNorms].sort((x, y) => y.share - x.share).slice(0, 3);
    if (top.length) lines.push(`weight norms (${top.length < a.weightNorms.length ? `largest ${top.length} of ${a.weightNorms.length}, ` : ""}share of sum ||W||_F^2): ${top.map((w) => `${w.layer} ${fmt(w.frobenius)} (${fmt(100 * w.share)}%)`).join(", ")}`);
    for (const r of a.recurrent) lines.push(`recurrent: ${r.layer} (${r.op}${r.unrolledSteps ? `, unrolled ${r.unrolledSteps} steps` : ""}) spectral radius ${r.matrices.map((m) => `${m.gate} ${fmt(m.spectralRadius)}`).join(", ")}`);
  }
  for (const s of report.inputData?.inputs ?? []) {
    const unit = s.features === 1 ? "signal (all values together)" : s.layout === "channels" ? "channels" : "features";
    lines.push(`input data: ${s.name}, ${s.samples} samples, ${s.features === 1 ? "one" : s.features} ${unit}: mean ${list(s.mean)}, std ${list(s.std)}${s.preprocessing ? `; ${s.preprocessing.description}` : ""}`);
    if (s.covariance) lines.push(`  covariance condition number ${fmt(s.covariance.conditionNumber)}, max |correlation| ${fmt(s.covariance.maxAbsCorrelation)}; PCA explained variance ${list(s.covariance.explainedVarianceRatio, 6)}, ${s.covariance.componentsFor99} component(s) for 99%`);
  }
  const f = report.fit;
  if (f) lines.push(`fit (${f.task}): train error ${fmt(100 * f.train.error)}% (loss ${fmt(f.train.loss)}, ${f.train.samples} samples), validation error ${fmt(100 * f.val.error)}% (loss ${fmt(f.val.loss)}, ${f.val.samples} samples): ${f.verdict.replace("+", " and ")}`);
  return lines;
}
