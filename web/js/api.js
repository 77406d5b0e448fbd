// The one way the UI talks to the API (../shared/docs/api.md): JSON in and out, the auth
// header on every call, and failures as ApiError carrying the contract's {code, message, field}.

import { SignInError, apiBase, authMode, authorization, dropSession } from "./auth.js";

export class ApiError extends Error {
  constructor(status, code, message, field = null) {
    super(message);
    this.status = status;
    this.code = code;
    this.field = field;
  }
}

async function send(path, { method = "GET", body, query, signal, accept = "application/json", anonymous = false } = {}) {
  let url = `${apiBase()}${path}`;
  if (query) {
    const params = new URLSearchParams();
    for (const [k, v] of Object.entries(query)) if (v !== null && v !== undefined && v !== "") params.set(k, v);
    const text = params.toString();
    if (text) url += `${url.includes("?") ? "&" : "?"}${text}`;
  }
  const headers = { Accept: accept };
  // Sign-up's calls go out with no credential: nobody is signed in yet.
  if (!anonymous) {
    try {
      headers.Authorization = await authorization();
    } catch (err) {
      if (err instanceof SignInError) { toSignIn(); throw new ApiError(401, "unauthorized", err.message); }
      throw err;
    }
  }
  if (body !== undefined) headers["Content-Type"] = "application/json";
  let response;
  try {
    response = await fetch(url, {
      method, headers, signal, body: body === undefined ? undefined : JSON.stringify(body),
    });
  } catch (err) {
    if (err.name === "AbortError") throw err;
    throw new ApiError(0, "network", "BillBridge could not be reached. Check your connection and try again.");
  }
  if (!response.ok) {
    const error = await errorOf(response);
    if (response.status === 401 && !anonymous && authMode() === "cognito") { dropSession(); toSignIn(); }
    throw error;
  }
  return response;
}

/** Send the user to the sign-in screen, back here once signed in. */
export function toSignIn() {
  const here = location.hash || "#/invoices";
  if (here.startsWith("#/sign-in") || here.startsWith("#/sign-up")) return;
  location.hash = `#/sign-in?next=${encodeURIComponent(here)}`;
}

async function errorOf(response) {
  let payload = null;
  try { payload = await response.json(); } catch { /* not JSON: a gateway or proxy page */ }
  const error = payload && payload.error;
  if (response.status === 403 && error && error.code === "forbidden") {
    return new ApiError(403, "forbidden", error.message || "Your role may not do this.");
  }
  if (response.status === 401 || response.status === 403) {
    return new ApiError(response.status, "unauthorized", "You are not signed in, or your session has ended. Sign in again.");
  }
  if (error && typeof error === "object" && error.message) {
    return new ApiError(response.status, error.code || "error", plainWords(error.message, error.field), error.field || null);
  }
  if (response.status >= 500) {
    return new ApiError(response.status, "server", "Something went wrong on our side. Try again in a moment.");
  }
  return new ApiError(response.status, "error", (payload && payload.message) || `The request failed (${response.status}).`);
}

/** The API's validation messages start with the field's path and pydantic's "Value error, ";
 * the UI shows the message next to the field, so both are noise there. */
export function plainWords(message, field) {
  let text = String(message);
  if (field && text.startsWith(`${field}: `)) text = text.slice(field.length + 2);
  text = text.replace(/^Value error, /, "");
  return text.charAt(0).toUpperCase() + text.slice(1);
}

async function jsonOf(response) {
  const text = await response.text();
  if (!text) return null;
  // An HTML page where data was expected: a route this API does not have (the static
  // server answers unknown paths with the web UI itself).
  if (!(response.headers.get("Content-Type") || "").includes("json")) {
    throw new ApiError(response.status, "not_json", "This server does not offer that yet (it answered with a web page, not data).");
  }
  return JSON.parse(text);
}

export async function getJson(path, options = {}) {
  return jsonOf(await send(path, options));
}

export async function sendJson(method, path, body, options = {}) {
  const response = await send(path, { ...options, method, body });
  return response.status === 204 ? null : jsonOf(response);
}

/** A binary or text download (a bill PDF, the reconciliation CSV) as a Blob. */
export async function getBlob(path, { query, accept = "*/*", signal } = {}) {
  const response = await send(path, { query, accept, signal });
  return response.blob();
}

/** Ask `read` every `interval` ms until `done(result)` or the timeout (then the last result is
 * returned with `timedOut: true`). Stops quietly when `signal` aborts (the user left the screen). */
export async function pollUntil(read, done, { interval = 700, timeout = 120000, signal } = {}) {
  const deadline = Date.now() + timeout;
  for (;;) {
    const result = await read();
    if (done(result)) return { result, timedOut: false };
    if (Date.now() > deadline) return { result, timedOut: true };
    await new Promise((resolve, reject) => {
      const timer = setTimeout(resolve, interval);
      signal?.addEventListener("abort", () => { clearTimeout(timer); reject(new DOMException("left", "AbortError")); }, { once: true });
    });
  }
}

/** Text for any failure caught in a view. */
export function describe(err) {
  if (err instanceof ApiError) return err.message;
  if (err && err.name === "AbortError") return "";
  return (err && err.message) || "Something went wrong.";
}
