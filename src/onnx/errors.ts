/**
 * An error the user can act on. `code` is a finding category from the fixed vocabulary
 * (`model.invalid`, `model.unsupported`, ...) so every surface (CLI, extension, report) can show
 * it as one line without a stack trace.
 */
export class DoctorError extends Error {
  constructor(
    readonly code: "model.invalid" | "model.unsupported" | "probe.input" | "cancelled",
    message: string,
  ) {
    super(message);
    this.name = "DoctorError";
  }
}

/** Turns anything thrown into one line: the error's own message without stack or newlines. */
export function oneLine(error: unknown): string {
  const text = error instanceof Error ? error.message : String(error);
  return text.replace(/\s+/g, " ").trim();
}
