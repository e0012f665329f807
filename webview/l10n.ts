// Runtime localisation of the report UI. The extension host embeds its l10n bundle (vscode.l10n.bundle:
// l10n/bundle.l10n.<language>.json, English source strings as keys) in the webview's HTML as
// <script type="application/json" id="md-l10n">; without one (English, or the standalone HTML export)
// the source strings are used as they are. Same placeholder syntax as vscode.l10n.t: {0}, {1}, ...

let bundle: Record<string, string | { message: string }> = {};

/** Reads the embedded bundle once at start-up. */
export function loadBundle(doc: Document): void {
  const text = doc.getElementById("md-l10n")?.textContent;
  if (!text) return;
  try {
    const b = JSON.parse(text) as unknown;
    if (b && typeof b === "object") bundle = b as typeof bundle;
  } catch {
    // a broken bundle falls back to English
  }
}

/** Translates `message` and fills in {0}, {1}, ... */
export function t(message: string, ...args: (string | number)[]): string {
  const e = bundle[message];
  const s = typeof e === "string" ? e : e && typeof e.message === "string" ? e.message : message;
  return s.replace(/\{(\d+)\}/g, (m, i: string) => (args[Number(i)] !== undefined ? String(args[Number(i)]) : m));
}
