// A tiny hash router: "#/payment-links/pl_1?x=y" -> the view whose pattern matches "/payment-links/pl_1".
// Hash routes need no server rewrites, so the files deploy to S3 as they are.

const routes = [];
let current = null; // AbortController of the screen on view
let firstRender = true;
let guard = null; // (route) => true when the screen may show; else it has sent the user on

/** route(/^\/invoices$/, "invoices", () => import("./views/invoices.js")); `{ open: true }`
 * for the screens shown to someone not signed in (sign-in, sign-up), `{ admin: true }` for
 * an admin's only. */
export function route(pattern, nav, load, { open = false, admin = false } = {}) {
  routes.push({ pattern, nav, load, open, admin });
}

/** Checked before every screen that is not open: the sign-in gate (app.js). */
export function setGuard(check) {
  guard = check;
}

export function parseHash(hash = location.hash) {
  const text = hash.startsWith("#/") ? hash.slice(1) : "/invoices";
  const [path, search = ""] = text.split("?");
  return { path, query: new URLSearchParams(search) };
}

/** Change the hash's query without re-rendering the screen (filters, page size). */
export function replaceQuery(query) {
  const { path } = parseHash();
  const text = query.toString();
  history.replaceState(history.state, "", `#${path}${text ? `?${text}` : ""}`);
}

export function navigate(hash) {
  if (location.hash === hash) render();
  else location.hash = hash;
}

export async function render() {
  const main = document.getElementById("main");
  const { path, query } = parseHash();
  if (current) current.abort();
  const controller = new AbortController();
  current = controller;
  const match = routes.map((r) => ({ r, m: r.pattern.exec(path) })).find((x) => x.m);
  for (const link of document.querySelectorAll("[data-nav]")) {
    if (match && link.dataset.nav === match.r.nav) link.setAttribute("aria-current", "page");
    else link.removeAttribute("aria-current");
  }
  if (match && !match.r.open && guard && !(await guard(match.r))) return;
  if (controller.signal.aborted) return;
  main.replaceChildren();
  main.setAttribute("aria-busy", "true");
  try {
    if (!match) {
      const { notFound } = await import("./views/common.js");
      notFound(main, path);
      return;
    }
    const view = await match.r.load();
    if (controller.signal.aborted) return;
    const params = match.m.groups || {};
    const done = view.render({ main, params, query, signal: controller.signal });
    focusTitle(main);
    await done;
  } catch (err) {
    if (err && err.name === "AbortError") return;
    const { crashed } = await import("./views/common.js");
    crashed(main, err);
  } finally {
    if (current === controller) main.removeAttribute("aria-busy");
  }
}

function focusTitle(main) {
  // Move focus to the new screen's heading so keyboard and screen reader users start there;
  // not on the first load, where the browser's own start point is expected.
  if (firstRender) { firstRender = false; return; }
  const title = main.querySelector("[data-page-title]");
  if (title) title.focus({ preventScroll: false });
}

export function start() {
  // In-page anchors ("#main" of the skip link) are not routes: the screen stays.
  window.addEventListener("hashchange", () => { if (location.hash.startsWith("#/") || !location.hash) render(); });
  if (!location.hash) history.replaceState(null, "", "#/invoices");
  render();
}
