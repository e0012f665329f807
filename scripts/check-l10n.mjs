// Checks the runtime localisation: every string literal passed to vscode.l10n.t (extension/) or t (webview/)
// must have a translation in each l10n/bundle.l10n.<lang>.json, with the same {n} placeholders, and no
// bundle may keep keys the code no longer uses. `--write` regenerates l10n/bundle.l10n.json (the English
// source strings, as `@vscode/l10n-dev export` would write it). Exit 1 on a problem. Also run by the
// VS Code integration tests (test/vscode/extension.test.ts).
import { readdirSync, readFileSync, writeFileSync } from "node:fs";
import path from "node:path";

const root = path.resolve(path.dirname(new URL(import.meta.url).pathname), "..");

/** The source strings used by the code, in order of first use. */
export function sourceStrings() {
  const keys = new Set();
  for (const dir of ["extension", "extension/worker", "webview"]) {
    for (const f of readdirSync(path.join(root, dir)).filter((n) => n.endsWith(".ts")).sort()) {
      const text = readFileSync(path.join(root, dir, f), "utf8");
      // vscode.l10n.t("...") in the extension, t("...") in the webview; double-quoted literals only.
      const re = dir === "webview" ? /(?<![\w.])t\(\s*"((?:[^"\\]|\\.)*)"/g : /l10n\.t\(\s*"((?:[^"\\]|\\.)*)"/g;
      for (const m of text.matchAll(re)) keys.add(JSON.parse(`"${m[1]}"`));
    }
  }
  return [...keys];
}

export function check() {
  const keys = sourceStrings();
  const problems = [];
  const bundles = readdirSync(path.join(root, "l10n")).filter((f) => /^bundle\.l10n\.[\w-]+\.json$/.test(f));
  const placeholders = (s) => [...s.matchAll(/\{\d+\}/g)].map((m) => m[0]).sort().join();
  for (const b of bundles) {
    const bundle = JSON.parse(readFileSync(path.join(root, "l10n", b), "utf8"));
    for (const k of keys) {
      if (typeof bundle[k] !== "string") problems.push(`${b}: missing "${k}"`);
      else if (placeholders(bundle[k]) !== placeholders(k)) problems.push(`${b}: placeholders differ for "${k}"`);
    }
    for (const k of Object.keys(bundle)) if (!keys.includes(k)) problems.push(`${b}: unused key "${k}"`);
  }
  return { keys, bundles, problems };
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const { keys, bundles, problems } = check();
  if (process.argv.includes("--write")) {
    writeFileSync(path.join(root, "l10n", "bundle.l10n.json"), JSON.stringify(Object.fromEntries(keys.map((k) => [k, k])), null, 2) + "\n");
  }
  for (const p of problems) console.error(p);
  console.log(`${keys.length} strings, bundles: ${bundles.join(", ")}, ${problems.length} problems`);
  process.exit(problems.length ? 1 : 0);
}
