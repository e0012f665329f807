import * as vscode from "vscode";
import type { Report } from "../src/report/types";

export interface StoredReport {
  uri: vscode.Uri;
  report: Report;
  staticOnly: boolean;
  analyzedAt: Date;
}

/** The latest report per model file; views and diagnostics follow its change event. */
export class ReportStore implements vscode.Disposable {
  private readonly reports = new Map<string, StoredReport>();
  private readonly changed = new vscode.EventEmitter<vscode.Uri | undefined>();
  readonly onDidChange = this.changed.event;

  get(uri: vscode.Uri): StoredReport | undefined {
    return this.reports.get(uri.toString());
  }
  all(): StoredReport[] {
    return [...this.reports.values()].sort((a, b) => a.uri.fsPath.localeCompare(b.uri.fsPath));
  }
  set(uri: vscode.Uri, report: Report, staticOnly: boolean): StoredReport {
    const s = { uri, report, staticOnly, analyzedAt: new Date() };
    this.reports.set(uri.toString(), s);
    this.changed.fire(uri);
    return s;
  }
  delete(uri: vscode.Uri): void {
    if (this.reports.delete(uri.toString())) this.changed.fire(uri);
  }
  clear(): void {
    this.reports.clear();
    this.changed.fire(undefined);
  }
  dispose(): void {
    this.changed.dispose();
  }
}
