import { type FormEvent, useState } from "react";

import { BrandMark } from "../App";
import { request, setApiKey } from "../api/client";
import { ApiError, errorMessage } from "../lib/errors";

export function SignInPage({ onSignedIn }: { onSignedIn: () => void }) {
  const [key, setKey] = useState("");
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);

  async function submit(e: FormEvent) {
    e.preventDefault();
    const trimmed = key.trim();
    if (!trimmed) return setError("Paste an API key.");
    setBusy(true);
    setError(null);
    try {
      await request("GET", "/api/agents?limit=1", undefined, { key: trimmed });
      setApiKey(trimmed);
      onSignedIn();
    } catch (err) {
      setError(
        err instanceof ApiError && err.status === 401
          ? "This API key is unknown or has been revoked."
          : errorMessage(err),
      );
    } finally {
      setBusy(false);
    }
  }

  return (
    <div className="signin">
      <form className="card stack" onSubmit={submit}>
        <div className="brand">
          <BrandMark /> Stimm console
        </div>
        <div>
          <h1>Sign in</h1>
          <p className="muted" style={{ margin: "4px 0 0" }}>
            Use an API key of this control plane. The first one is printed when it starts; create
            more with <code>stimm api-key create</code>.
          </p>
        </div>
        <div className={`field${error ? " invalid" : ""}`}>
          <label htmlFor="api-key">API key</label>
          <input
            id="api-key"
            className="input mono"
            type="password"
            autoComplete="off"
            placeholder="stimm_…"
            value={key}
            onChange={(e) => setKey(e.target.value)}
            autoFocus
          />
          {error && (
            <div className="field-error" role="alert">
              {error}
            </div>
          )}
        </div>
        <button className="btn primary lg" type="submit" disabled={busy}>
          {busy ? "Checking…" : "Sign in"}
        </button>
        <p className="small muted" style={{ margin: 0 }}>
          The key stays in this browser tab only (session storage).
        </p>
      </form>
    </div>
  );
}
