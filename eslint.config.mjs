// Type-aware linting of the engine, CLI, extension, webview and tests.
import tseslint from "typescript-eslint";

export default tseslint.config(
  { ignores: ["dist/**", "node_modules/**", "tmp/**", "bench-out/**", "src/onnx/gen/**", "test/fixtures/**", "out/**", ".cache/**", "**/*.mjs", "**/*.py"] },
  ...tseslint.configs.recommended,
  {
    rules: {
      "@typescript-eslint/no-non-null-assertion": "off",
      "@typescript-eslint/no-unused-vars": ["error", { argsIgnorePattern: "^_" }],
      // The engine must stay editor-independent (DESIGN: only extension/ imports vscode).
      "no-restricted-imports": ["error", { paths: [{ name: "vscode", message: "Only extension/ may import vscode." }] }],
    },
  },
  {
    files: ["extension/**/*.ts", "test/vscode/**/*.ts"],
    rules: { "no-restricted-imports": "off" },
  },
);
