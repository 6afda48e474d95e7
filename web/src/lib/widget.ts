// The embeddable widget as the console shows it: the snippet to paste and the origins typed in.

/** The `<script>` tag that puts the widget on a site (`server`: this control plane's origin). */
export function widgetSnippet(server: string, key: string, agentId?: string): string {
  const agent = agentId ? ` data-agent="${agentId}"` : "";
  return `<script src="${server.replace(/\/+$/, "")}/widget.js" data-key="${key}"${agent} async></script>`;
}

/** Origins typed one per line (or comma-separated); the API checks and normalizes each. */
export function parseOrigins(text: string): string[] {
  return text
    .split(/[\n,]/)
    .map((s) => s.trim())
    .filter(Boolean);
}
