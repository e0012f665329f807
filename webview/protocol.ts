// Typed messages between the extension host and the report webview (both sides import this file).
// Reports cross a JSON boundary, so NaN/±Infinity arrive as null: the webview treats every number
// as possibly null.
import type { Report } from "../src/report/types";

export interface ReportContext {
  /** The model's file name (not the full path) for the title. */
  fileName: string;
  /** True when the workspace is untrusted, so only static analysis ran. */
  untrusted: boolean;
  /** ISO time of the analysis. */
  analyzedAt: string;
}

export type ToWebview =
  | { type: "report"; report: Report; context: ReportContext }
  | { type: "analyzing"; fraction: number; message: string }
  | { type: "error"; message: string }
  /** Highlight a layer (by its name as in Finding.layer / LayerReport.name) and optionally a finding. */
  | { type: "highlight"; layer?: string; finding?: number };

export type FromWebview =
  | { type: "ready" }
  | { type: "reanalyze"; staticOnly: boolean }
  | { type: "export" }
  | { type: "selected"; layer: string | null };

export const isToWebview = (m: unknown): m is ToWebview =>
  typeof m === "object" && m !== null && typeof (m as { type?: unknown }).type === "string";
export const isFromWebview = (m: unknown): m is FromWebview =>
  typeof m === "object" && m !== null && typeof (m as { type?: unknown }).type === "string";
