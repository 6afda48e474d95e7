// API errors: what went wrong, and which form field it belongs to.

export interface ValidationIssue {
  loc: (string | number)[];
  msg: string;
  type?: string;
}

/** An error answered by the control plane (or the network on the way to it). */
export class ApiError extends Error {
  readonly status: number;
  /** Messages keyed by field path (`llm.0.model`); `""` holds those that name no field. */
  readonly fields: Record<string, string[]>;

  constructor(status: number, message: string, fields: Record<string, string[]> = {}) {
    super(message);
    this.name = "ApiError";
    this.status = status;
    this.fields = fields;
  }
}

const LOCATIONS = new Set(["body", "query", "path", "header"]);

/** `["body", "llm", 0, "model"]` → `llm.0.model`; tagged-union steps (`webhook`) are dropped. */
export function fieldPath(loc: (string | number)[]): string {
  const parts = loc.length && LOCATIONS.has(String(loc[0])) ? loc.slice(1) : loc;
  return parts
    .filter((p, i) => !(i > 0 && typeof parts[i - 1] === "number" && isToolTag(p)))
    .join(".");
}

function isToolTag(part: string | number): boolean {
  return part === "webhook" || part === "end_call" || part === "transfer_call";
}

function cleanMessage(msg: string): string {
  return msg.replace(/^Value error, /, "");
}

/** Group FastAPI's 422 `detail` list by field path. */
export function fieldErrors(detail: ValidationIssue[]): Record<string, string[]> {
  const out: Record<string, string[]> = {};
  for (const issue of detail) {
    const key = fieldPath(issue.loc ?? []);
    (out[key] ??= []).push(cleanMessage(issue.msg));
  }
  return out;
}

/** The human sentence for a response body; FastAPI's `detail` is a string or a list. */
export function errorFromResponse(status: number, body: unknown): ApiError {
  const detail = (body as { detail?: unknown } | null)?.detail;
  if (Array.isArray(detail)) {
    const fields = fieldErrors(detail as ValidationIssue[]);
    const count = detail.length;
    return new ApiError(
      status,
      count === 1 ? "One field needs attention." : `${count} fields need attention.`,
      fields,
    );
  }
  if (typeof detail === "string" && detail) return new ApiError(status, detail);
  if (status === 401) return new ApiError(status, "Your API key was not accepted.");
  if (status === 404) return new ApiError(status, "Not found.");
  if (status >= 500) return new ApiError(status, `The control plane failed (HTTP ${status}).`);
  return new ApiError(status, `Request failed (HTTP ${status}).`);
}

/** Messages for one field and, with `prefix`, every field under it (`llm` covers `llm.0.model`). */
export function messagesFor(error: unknown, path: string, prefix = false): string[] {
  if (!(error instanceof ApiError)) return [];
  return Object.entries(error.fields)
    .filter(([k]) => k === path || (prefix && k.startsWith(path + ".")))
    .flatMap(([k, msgs]) => (k === path ? msgs : msgs.map((m) => `${k.slice(path.length + 1)}: ${m}`)));
}

/** Messages that belong to none of the `shown` fields: shown next to the action instead. */
export function unplacedMessages(error: unknown, shown: string[]): string[] {
  if (!(error instanceof ApiError)) return [];
  return Object.entries(error.fields)
    .filter(([k]) => !shown.some((s) => k === s || k.startsWith(s + ".")))
    .flatMap(([k, msgs]) => msgs.map((m) => (k ? `${k}: ${m}` : m)));
}

export function errorMessage(error: unknown): string {
  if (error instanceof Error) return error.message;
  return String(error);
}
