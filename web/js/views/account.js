// Your account: who you are signed in as, and two-step sign-in (a code from an authenticator
// app at every sign-in, Cognito's optional TOTP MFA) turned on or off.

import { getJson } from "../api.js";
import { authMode, confirmTotp, currentUser, startTotp, totpEnabled, turnOffTotp } from "../auth.js";
import { h, pageTitle, replace, textField } from "../dom.js";

export async function render({ main }) {
  const me = await currentUser(getJson);
  const section = h("section", { class: "card", "aria-label": "Two-step sign-in" });
  replace(main, h("div", { class: "page-head" }, pageTitle("Your account")),
    h("p", {}, `Signed in as ${me.email || me.user_id}, ${me.role === "admin" ? "an admin" : "staff"} of your firm.`),
    section);
  if (authMode() !== "cognito") {
    replace(section, h("p", {}, "Two-step sign-in is set up when you sign in with your own account."));
    return;
  }
  await showStatus(section);
}

function problemLine() {
  return h("p", { class: "field-error", role: "alert" });
}

async function showStatus(section) {
  const problem = problemLine();
  let on;
  try {
    on = await totpEnabled();
  } catch (err) {
    replace(section, h("h2", {}, "Two-step sign-in"), h("p", { role: "alert" }, err.message));
    return;
  }
  const button = on
    ? h("button", { type: "button", onclick: () => turnOff(section, button, problem) }, "Turn off two-step sign-in")
    : h("button", { type: "button", class: "primary", onclick: () => setUp(section, button, problem) }, "Turn on two-step sign-in");
  replace(section, h("h2", {}, "Two-step sign-in"),
    h("p", { "data-testid": "totp-status" }, on
      ? "On: signing in asks for the code your authenticator app shows, after your password."
      : "Off: signing in asks for your password only."),
    h("div", { class: "actions" }, button), problem);
}

async function turnOff(section, button, problem) {
  button.disabled = true;
  problem.textContent = "";
  try {
    await turnOffTotp();
    await showStatus(section);
  } catch (err) {
    problem.textContent = err.message;
    button.disabled = false;
  }
}

async function setUp(section, button, problem) {
  button.disabled = true;
  problem.textContent = "";
  let made;
  try {
    made = await startTotp();
  } catch (err) {
    problem.textContent = err.message;
    button.disabled = false;
    return;
  }
  const codeField = textField({ label: "Code from your authenticator app", name: "code",
    hint: "Six digits; a new one every 30 seconds.",
    attrs: { inputmode: "numeric", autocomplete: "one-time-code", required: true } });
  const error = problemLine();
  const submit = h("button", { type: "submit", class: "primary" }, "Turn on");
  const cancel = h("button", { type: "button", onclick: () => showStatus(section) }, "Cancel");
  const form = h("form", { novalidate: true, "aria-label": "Set up two-step sign-in" },
    h("p", {}, "In your authenticator app, add an account with this key (or open the link on your phone), then enter the code it shows."),
    h("p", {}, "Key: ", h("code", { "data-testid": "totp-secret" }, made.secret)),
    h("p", {}, h("a", { href: made.uri, "data-testid": "totp-uri" }, "Add to an authenticator app on this device")),
    codeField.field, error, h("div", { class: "actions" }, submit, " ", cancel));
  replace(section, h("h2", {}, "Two-step sign-in"), form);
  codeField.control.focus();
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    error.textContent = "";
    const code = codeField.control.value.trim();
    if (!/^\d{6}$/.test(code)) { error.textContent = "Enter the six digits your app shows."; return; }
    submit.disabled = true;
    try {
      await confirmTotp(code);
      await showStatus(section);
    } catch (err) {
      error.textContent = err.message;
      submit.disabled = false;
    }
  });
}
