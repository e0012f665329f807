import { pathToFileURL } from "node:url";
import { isAbsolute, relative } from "node:path";
import { CATEGORIES, type Finding, type Report, type Severity } from "./types";

/** SARIF 2.1.0 levels for our severities. */
const LEVEL: Record<Severity, "error" | "warning" | "note"> = { error: "error", warning: "warning", info: "note" };

export interface SarifOptions {
  /** Make the artifact URI relative to this folder (with `%SRCROOT%` as its base), as code-scanning expects. */
  baseDir?: string;
}

type Json = string | number | boolean | null | Json[] | { [k: string]: Json };

function finiteEvidence(e: Finding["evidence"]): { [k: string]: Json } {
  const out: { [k: string]: Json } = {};
  for (const [k, v] of Object.entries(e)) {
    if (typeof v === "number") out[k] = Number.isFinite(v) ? v : String(v);
    else if (Array.isArray(v)) out[k] = v.map((x: number) => (Number.isFinite(x) ? x : String(x)));
    else out[k] = v as Json;
  }
  return out;
}

/**
 * One SARIF 2.1.0 log with one run: a rule per finding category (the fixed vocabulary), a result
 * per finding located on the model file (ONNX is binary, so there is no region; the layer, node
 * and tensor go in a logical location and in properties). NaN/Infinity never appear as numbers.
 */
export function toSarif(report: Report, options: SarifOptions = {}): string {
  const path = report.model.path;
  const useBase = options.baseDir !== undefined && isAbsolute(path) && !relative(options.baseDir, path).startsWith("..");
  const artifact = useBase
    ? { uri: relative(options.baseDir!, path).split("\\").join("/"), uriBaseId: "%SRCROOT%" }
    : { uri: isAbsolute(path) ? pathToFileURL(path).href : path.split("\\").join("/") };
  const used = [...new Set(report.findings.map((f) => f.category))];
  const rules = CATEGORIES.filter((c) => used.includes(c)).map((c) => ({
    id: c,
    name: c.replace(/[.-](\w)/g, (_m, ch: string) => ch.toUpperCase()).replace(/^\w/, (ch) => ch.toUpperCase()),
    shortDescription: { text: c },
  }));
  const ruleIndex = new Map(rules.map((r, i) => [r.id, i]));
  const results = report.findings.map((f) => ({
    ruleId: f.category,
    ruleIndex: ruleIndex.get(f.category)!,
    level: LEVEL[f.severity],
    message: { text: `${f.message} Fix: ${f.fix}` },
    locations: [{
      physicalLocation: { artifactLocation: artifact },
      ...(f.layer || f.node ? { logicalLocations: [{ name: f.layer ?? f.node!, fullyQualifiedName: f.node ?? f.layer!, kind: "module" }] } : {}),
    }],
    partialFingerprints: { "onnxModelDoctor/v1": `${f.ruleId}|${f.layer ?? ""}|${f.node ?? ""}|${f.tensor ?? ""}` },
    properties: {
      ruleId: f.ruleId, severity: f.severity,
      ...(f.layer ? { layer: f.layer } : {}), ...(f.node ? { node: f.node } : {}), ...(f.tensor ? { tensor: f.tensor } : {}),
      evidence: finiteEvidence(f.evidence), fix: f.fix,
    },
  }));
  const log = {
    $schema: "https://json.schemastore.org/sarif-2.1.0.json",
    version: "2.1.0",
    runs: [{
      tool: { driver: { name: report.tool.name, version: report.tool.version, semanticVersion: report.tool.version, rules } },
      artifacts: [{ location: artifact, length: report.model.sizeBytes, hashes: { "sha-256": report.model.sha256 } }],
      results,
      properties: { probeRan: report.probe.ran, summary: report.summary },
    }],
  };
  return JSON.stringify(log, null, 2) + "\n";
}
