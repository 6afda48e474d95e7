// What the widget is told (script tag attributes or React props) and what it tells visitors.

export interface WidgetOptions {
  /** The Stimm control plane, e.g. https://stimm.example.com (the script's own origin). */
  server: string;
  /** A publishable key (stimm_pk_...): starts sessions with its agents from its origins only. */
  publishableKey: string;
  /** One of the key's agents; the key's first agent when left out. */
  agentId?: string;
  /** The talk button's text. */
  label?: string;
}

export const DEFAULT_LABEL = "Talk to us";

/** Options from `<script src=".../widget.js" data-key="stimm_pk_..." data-agent="...">`. */
export function scriptOptions(src: string, data: Record<string, string | undefined>): WidgetOptions {
  const key = data.key?.trim();
  if (!key) throw new Error('Stimm widget: the <script> tag needs data-key="stimm_pk_..."');
  return {
    server: new URL(src).origin,
    publishableKey: key,
    agentId: data.agent?.trim() || undefined,
    label: data.label?.trim() || undefined,
  };
}

/**
 * What to tell a visitor whose call could not start. Status 0 is a request the browser
 * stopped: the server is unreachable, or (CORS) this site is not one of the key's origins.
 */
export function startErrorText(status: number, detail?: string): string {
  switch (status) {
    case 0:
      return "The call could not start: the agent's server cannot be reached, or this site is not allowed to use this widget.";
    case 401:
      return "The call could not start: this widget's key is unknown or has been revoked.";
    case 403:
      return `The call could not start: ${detail ?? "this site or agent is not allowed for this widget's key."}`;
    case 429:
      return "Too many calls right now; please try again in a minute.";
    case 502:
    case 503:
      return "No agent is free right now; please try again shortly.";
    default:
      return `The call could not start${detail ? `: ${detail}` : ` (HTTP ${status})`}.`;
  }
}

/** The `detail` of a FastAPI error body, when it is a sentence. */
export function errorDetail(body: unknown): string | undefined {
  if (body && typeof body === "object" && "detail" in body) {
    const detail = (body as { detail: unknown }).detail;
    if (typeof detail === "string") return detail;
  }
  return undefined;
}
