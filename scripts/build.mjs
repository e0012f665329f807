// Bundles the CLI (and, later, the extension and webview) with esbuild. onnxruntime-node stays
// external: it loads a native binary relative to its own package folder.
import { build } from "esbuild";
import { chmodSync } from "node:fs";

await build({
  entryPoints: { cli: "src/cli/main.ts" },
  outdir: "dist",
  bundle: true,
  platform: "node",
  target: "node20",
  format: "cjs",
  sourcemap: true,
  external: ["onnxruntime-node"],
  logLevel: "warning",
});
chmodSync("dist/cli.js", 0o755);
