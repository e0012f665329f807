import * as vscode from "vscode";
import type { Finding, Report, Severity } from "../src/report/types";

export const SEVERITY: Record<Severity, vscode.DiagnosticSeverity> = {
  error: vscode.DiagnosticSeverity.Error,
  warning: vscode.DiagnosticSeverity.Warning,
  info: vscode.DiagnosticSeverity.Information,
};

/** One Problems entry per finding, on the model file (binary, so at line 1). `code` is the category. */
export function toDiagnostic(f: Finding): vscode.Diagnostic {
  const d = new vscode.Diagnostic(new vscode.Range(0, 0, 0, 0), `${f.message}\n${vscode.l10n.t("Fix: {0}", f.fix)}`, SEVERITY[f.severity] ?? vscode.DiagnosticSeverity.Information);
  d.source = "Model Doctor";
  d.code = f.category;
  return d;
}

export function publish(collection: vscode.DiagnosticCollection, uri: vscode.Uri, report: Report): void {
  collection.set(uri, report.findings.map(toDiagnostic));
}
