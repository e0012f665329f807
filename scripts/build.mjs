// Bundles the CLI, the extension, its engine worker and the report webview with esbuild.
// onnxruntime-node stays external: it loads a native binary relative to its own package folder.
// `node scripts/build.mjs --tests` also bundles the VS Code integration tests (test/vscode -> dist/test).
import { build } from "esbuild";
import { chmodSync, readdirSync } from "node:fs";

const node = { bundle: true, platform: "node", target: "node20", format: "cjs", sourcemap: true, logLevel: "warning" };

await build({ ...node, entryPoints: { cli: "src/cli/main.ts" }, outdir: "dist", external: ["onnxruntime-node"] });
chmodSync("dist/cli.js", 0o755);

// The extension host side (imports vscode) and the worker it forks (runs the engine).
await build({ ...node, entryPoints: { extension: "extension/extension.ts", worker: "extension/worker/worker.ts" }, outdir: "dist", external: ["vscode", "onnxruntime-node"] });

// The report UI for the webview and the standalone HTML export (one self-contained script).
await build({
  entryPoints: { webview: "webview/main.ts" }, outdir: "dist", bundle: true, platform: "browser", format: "iife",
  target: ["chrome120"], minify: true, sourcemap: false, logLevel: "warning", legalComments: "none",
});

if (process.argv.includes("--tests")) {
  const tests = readdirSync("test/vscode").filter((f) => f.endsWith(".ts")).map((f) => `test/vscode/${f}`);
  await build({ ...node, entryPoints: tests, outdir: "dist/test", external: ["vscode", "mocha", "onnxruntime-node"] });
}
