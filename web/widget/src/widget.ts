// The widget's interface, in plain DOM inside a shadow root (the host page's styles cannot
// reach it): a talk button, the call's state, and live captions.

import type { TranscriptLine } from "../../src/lib/transcript";
import { type CallState, WidgetCall } from "./call";
import { DEFAULT_LABEL, type WidgetOptions } from "./options";

const STYLE = `
:host { all: initial; font: 14px/1.4 system-ui, -apple-system, "Segoe UI", sans-serif; color: #1d2330; }
.panel { display: flex; flex-direction: column; gap: 8px; width: 320px; max-width: calc(100vw - 32px); }
.floating { position: fixed; right: 16px; bottom: 16px; z-index: 2147483000; align-items: flex-end; }
button { font: inherit; border: 0; border-radius: 999px; padding: 10px 18px; cursor: pointer;
  background: #3056d3; color: #fff; box-shadow: 0 4px 14px rgba(0,0,0,.18); align-self: flex-end; }
button.hangup { background: #c62f3a; }
button:disabled { opacity: .6; cursor: default; }
.card { background: #fff; border: 1px solid #dfe3ea; border-radius: 12px; padding: 10px 12px;
  box-shadow: 0 6px 24px rgba(0,0,0,.12); }
.captions { max-height: 240px; overflow-y: auto; display: flex; flex-direction: column; gap: 6px; }
.line { padding: 6px 10px; border-radius: 10px; background: #f1f3f7; }
.line.user { background: #e6edff; align-self: flex-end; }
.line.interim { opacity: .65; }
.status { font-size: 12px; color: #5b6475; }
.error { color: #b3261e; font-size: 13px; }
[hidden] { display: none !important; }
`;

const STATE_TEXT: Record<CallState, string> = {
  idle: "",
  starting: "Connecting…",
  connected: "Listening: speak whenever you like",
  ended: "Call ended",
  failed: "",
};

export interface MountedWidget {
  destroy(): void;
}

/** Put the widget into `target` (inline), or fixed in the page's corner with `floating`. */
export function mountWidget(target: HTMLElement, options: WidgetOptions, floating = false): MountedWidget {
  const host = document.createElement("div");
  host.className = "stimm-widget";
  const root = host.attachShadow({ mode: "open" });
  root.innerHTML = `<style>${STYLE}</style>
    <div class="panel${floating ? " floating" : ""}" role="region" aria-label="Voice assistant">
      <div class="card" hidden>
        <div class="status" role="status"></div>
        <div class="error" role="alert" hidden></div>
        <div class="captions" role="log" aria-label="Captions" aria-live="polite"></div>
      </div>
      <button type="button"></button>
      <div class="audio" hidden></div>
    </div>`;
  const q = <T extends Element>(selector: string) => root.querySelector(selector) as T;
  const card = q<HTMLDivElement>(".card");
  const statusEl = q<HTMLDivElement>(".status");
  const errorEl = q<HTMLDivElement>(".error");
  const captions = q<HTMLDivElement>(".captions");
  const button = q<HTMLButtonElement>("button");
  const audio = q<HTMLDivElement>(".audio");
  const label = options.label ?? DEFAULT_LABEL;

  let state: CallState = "idle";
  const render = (message?: string) => {
    const inCall = state === "starting" || state === "connected";
    button.textContent = inCall ? "Hang up" : label;
    button.classList.toggle("hangup", inCall);
    button.disabled = state === "starting";
    statusEl.textContent = STATE_TEXT[state];
    errorEl.hidden = state !== "failed";
    errorEl.textContent = state === "failed" ? (message ?? "The call failed.") : "";
    card.hidden = state === "idle";
    if (!inCall) audio.replaceChildren();
  };
  const showCaptions = (lines: TranscriptLine[]) => {
    captions.replaceChildren(
      ...lines.map((l) => {
        const div = document.createElement("div");
        div.className = `line ${l.speaker}${l.final ? "" : " interim"}`;
        div.dataset.speaker = l.speaker;
        div.textContent = l.text;
        return div;
      }),
    );
    captions.scrollTop = captions.scrollHeight;
  };

  const call = new WidgetCall(options, {
    onState: (next, message) => {
      state = next;
      render(message);
    },
    onCaptions: showCaptions,
    onAudio: (element) => audio.appendChild(element),
  });
  button.addEventListener("click", () => {
    if (state === "starting" || state === "connected") void call.stop();
    else void call.start();
  });
  render();
  target.appendChild(host);
  return {
    destroy() {
      void call.stop();
      host.remove();
    },
  };
}
