// Building the page from data without innerHTML: every text from the API goes in as text.

/** h("a", {href, class, onclick, "aria-label": …}, child, …): an element. Attributes that are
 * null, undefined or false are left out; `true` sets a boolean attribute; functions under `on…`
 * become listeners; children may be strings, numbers, nodes, arrays or null. */
export function h(tag, attrs = {}, ...children) {
  const el = tag.includes(":")
    ? document.createElementNS("http://www.w3.org/2000/svg", tag.split(":")[1])
    : document.createElement(tag);
  for (const [name, value] of Object.entries(attrs || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (name.startsWith("on") && typeof value === "function") {
      el.addEventListener(name.slice(2), value);
    } else if (name === "value" || name === "checked" || name === "indeterminate") {
      el[name] = value;
    } else {
      el.setAttribute(name, value === true ? "" : String(value));
    }
  }
  append(el, children);
  return el;
}

export function append(parent, children) {
  for (const child of [children].flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    parent.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return parent;
}

export function replace(parent, ...children) {
  parent.replaceChildren();
  return append(parent, children);
}

let uid = 0;
/** A page-unique id, for label/aria wiring. */
export function newId(prefix = "bb") {
  uid += 1;
  return `${prefix}-${uid}`;
}

/** Say something to screen readers without moving focus. */
export function announce(message) {
  const region = document.getElementById("announcer");
  if (!region) return;
  region.textContent = "";
  // A fresh text node after a tick makes screen readers repeat an identical message.
  setTimeout(() => { region.textContent = message; }, 30);
}

/** Show an error under a form control and wire it for assistive technology; null clears it. */
export function setFieldError(control, message) {
  const wrap = control.closest(".field") || control.parentElement;
  let box = wrap.querySelector(":scope > .field-error");
  if (!message) {
    if (box) box.remove();
    control.removeAttribute("aria-invalid");
    const described = (control.getAttribute("aria-describedby") || "").split(" ")
      .filter((id) => id && !id.startsWith("err-"));
    if (described.length) control.setAttribute("aria-describedby", described.join(" "));
    else control.removeAttribute("aria-describedby");
    return;
  }
  if (!box) {
    box = h("p", { class: "field-error", id: newId("err"), role: "alert" });
    wrap.append(box);
  }
  box.textContent = message;
  control.setAttribute("aria-invalid", "true");
  const described = (control.getAttribute("aria-describedby") || "").split(" ")
    .filter((id) => id && !id.startsWith("err-"));
  control.setAttribute("aria-describedby", [...described, box.id].join(" "));
}

/** A labelled text input or textarea inside a .field wrapper: returns {field, control}. */
export function textField({ label, name, value = "", multiline = false, hint, attrs = {} }) {
  const id = newId("f");
  const hintId = hint ? `${id}-hint` : null;
  const control = multiline
    ? h("textarea", { id, name, "aria-describedby": hintId, ...attrs })
    : h("input", { id, name, type: "text", "aria-describedby": hintId, ...attrs });
  control.value = value ?? "";
  const field = h("div", { class: "field" },
    h("label", { for: id }, label),
    hint ? h("p", { class: "hint", id: hintId }, hint) : null,
    control);
  return { field, control };
}

/** The small status pill used for bill states, envelope states, flags and transactions. */
export function badge(text, tone = "neutral") {
  return h("span", { class: `badge badge-${tone}` }, text);
}

/** An error panel with an optional retry button, for a screen or a section that failed. */
export function errorBox(message, retry) {
  return h("div", { class: "error-box", role: "alert" },
    h("p", {}, message),
    retry ? h("button", { type: "button", onclick: retry }, "Try again") : null);
}

export function loadingBox(message) {
  return h("p", { class: "loading", role: "status" }, h("span", { class: "spinner", "aria-hidden": "true" }), message);
}

export function emptyBox(title, detail) {
  return h("div", { class: "empty" }, h("p", { class: "empty-title" }, title),
    detail ? h("p", {}, detail) : null);
}

/** The chain-link icon of the Payment link column. */
export function linkIcon() {
  const svg = h("svg:svg", { viewBox: "0 0 24 24", width: "18", height: "18", "aria-hidden": "true", focusable: "false" });
  svg.append(h("svg:path", {
    d: "M10 14a5 5 0 0 0 7.07 0l3-3a5 5 0 0 0-7.07-7.07l-1.5 1.5M14 10a5 5 0 0 0-7.07 0l-3 3a5 5 0 0 0 7.07 7.07l1.5-1.5",
    fill: "none", stroke: "currentColor", "stroke-width": "2", "stroke-linecap": "round",
  }));
  return svg;
}

/** The heading every screen starts with; the router moves focus to it. */
export function pageTitle(text) {
  document.title = `${text} · BillBridge`;
  return h("h1", { tabindex: "-1", "data-page-title": true }, text);
}
