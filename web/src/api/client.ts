// The control plane's HTTP API: same origin, API key from session storage as a Bearer token.

import { ApiError, errorFromResponse } from "../lib/errors";

const KEY_STORAGE = "stimm.apiKey";

export function getApiKey(): string | null {
  return sessionStorage.getItem(KEY_STORAGE);
}

export function setApiKey(key: string | null): void {
  if (key) sessionStorage.setItem(KEY_STORAGE, key);
  else sessionStorage.removeItem(KEY_STORAGE);
}

type Listener = () => void;
const unauthorizedListeners = new Set<Listener>();

/** Called when a request is refused with 401: the key was revoked or is wrong. */
export function onUnauthorized(listener: Listener): () => void {
  unauthorizedListeners.add(listener);
  return () => {
    unauthorizedListeners.delete(listener);
  };
}

function headers(extra?: HeadersInit): Headers {
  const h = new Headers(extra);
  const key = getApiKey();
  if (key) h.set("Authorization", `Bearer ${key}`);
  return h;
}

async function parse(resp: Response): Promise<unknown> {
  if (resp.status === 204) return null;
  const text = await resp.text();
  if (!text) return null;
  try {
    return JSON.parse(text);
  } catch {
    return { detail: text.slice(0, 300) };
  }
}

export async function request<T>(
  method: string,
  path: string,
  body?: unknown,
  opts: { key?: string; signal?: AbortSignal } = {},
): Promise<T> {
  const h = headers(body === undefined ? undefined : { "Content-Type": "application/json" });
  if (opts.key) h.set("Authorization", `Bearer ${opts.key}`);
  let resp: Response;
  try {
    resp = await fetch(path, {
      method,
      headers: h,
      body: body === undefined ? undefined : JSON.stringify(body),
      signal: opts.signal,
    });
  } catch (e) {
    if ((e as Error).name === "AbortError") throw e;
    throw new ApiError(0, "The control plane cannot be reached.");
  }
  const data = await parse(resp);
  if (!resp.ok) {
    if (resp.status === 401 && !opts.key) unauthorizedListeners.forEach((l) => l());
    throw errorFromResponse(resp.status, data);
  }
  return data as T;
}

/** A file from the API (sent with the API key), saved by the browser under `filename`. */
export async function download(path: string, filename: string): Promise<void> {
  const resp = await fetch(path, { headers: headers() });
  if (!resp.ok) throw errorFromResponse(resp.status, await parse(resp));
  const url = URL.createObjectURL(await resp.blob());
  const link = document.createElement("a");
  link.href = url;
  link.download = filename;
  link.click();
  URL.revokeObjectURL(url);
}

export const api = {
  get: <T>(path: string, signal?: AbortSignal) => request<T>("GET", path, undefined, { signal }),
  post: <T>(path: string, body?: unknown) => request<T>("POST", path, body ?? {}),
  patch: <T>(path: string, body: unknown) => request<T>("PATCH", path, body),
  put: <T>(path: string, body: unknown) => request<T>("PUT", path, body),
  delete: (path: string) => request<null>("DELETE", path),
};

/** Multipart upload with progress (fetch cannot report upload progress; XHR can). */
export function upload<T>(
  path: string,
  file: File,
  onProgress: (fraction: number) => void,
): Promise<T> {
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    xhr.open("POST", path);
    const key = getApiKey();
    if (key) xhr.setRequestHeader("Authorization", `Bearer ${key}`);
    xhr.upload.onprogress = (e) => {
      if (e.lengthComputable) onProgress(e.loaded / e.total);
    };
    xhr.onerror = () => reject(new ApiError(0, "The upload was interrupted."));
    xhr.onload = () => {
      let data: unknown = null;
      try {
        data = xhr.responseText ? JSON.parse(xhr.responseText) : null;
      } catch {
        data = { detail: xhr.responseText.slice(0, 300) };
      }
      if (xhr.status >= 200 && xhr.status < 300) {
        onProgress(1);
        resolve(data as T);
      } else {
        if (xhr.status === 401) unauthorizedListeners.forEach((l) => l());
        reject(errorFromResponse(xhr.status, data));
      }
    };
    const form = new FormData();
    form.append("file", file);
    xhr.send(form);
  });
}
