// Sign up (A2): a new firm and its first admin. The API makes the firm and the account;
// Cognito emails a six-digit code; the code confirms the address, and the new admin is signed
// in with the password just chosen.

import { describe, sendJson } from "../api.js";
import { authMode, signIn } from "../auth.js";
import { h, pageTitle, replace, setFieldError, textField } from "../dom.js";
import { navigate } from "../router.js";

export async function render({ main }) {
  const content = h("div", { class: "auth-panel" });
  replace(main, h("div", { class: "page-head" }, pageTitle("Create your firm's account")), content);
  detailsStep(content);
}

function detailsStep(content) {
  const firm = textField({ label: "Firm name", name: "firm_name", attrs: { autocomplete: "organization", required: true } });
  const email = textField({ label: "Your email address", name: "email", hint: "You will be the firm's admin.",
    attrs: { type: "email", autocomplete: "email", required: true } });
  const password = textField({ label: "Password", name: "password",
    hint: "At least 12 characters, with upper and lower case letters and a number.",
    attrs: { type: "password", autocomplete: "new-password", required: true } });
  const problem = h("p", { class: "field-error", role: "alert" });
  const submit = h("button", { type: "submit", class: "primary" }, "Create account");
  const form = h("form", { class: "card", novalidate: true, "aria-label": "Sign up" },
    firm.field, email.field, password.field, problem, h("div", { class: "actions" }, submit),
    h("p", {}, "Already have an account? ", h("a", { href: "#/sign-in" }, "Sign in"), "."));
  replace(content, form);
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    problem.textContent = "";
    for (const f of [firm, email, password]) setFieldError(f.control, null);
    submit.disabled = true;
    try {
      const made = await sendJson("POST", "/signup", {
        firm_name: firm.control.value.trim(),
        email: email.control.value.trim(),
        password: password.control.value,
      }, { anonymous: true });
      confirmStep(content, made.email, password.control.value);
    } catch (err) {
      const target = { firm_name: firm, email, password }[err.field];
      if (target) { setFieldError(target.control, describe(err)); target.control.focus(); }
      else problem.textContent = describe(err);
      submit.disabled = false;
    }
  });
}

function confirmStep(content, address, password) {
  const code = textField({ label: "Confirmation code", name: "code",
    hint: `We emailed a six-digit code to ${address}.`,
    attrs: { inputmode: "numeric", autocomplete: "one-time-code", required: true, maxlength: "6" } });
  const problem = h("p", { class: "field-error", role: "alert" });
  const submit = h("button", { type: "submit", class: "primary" }, "Confirm");
  const form = h("form", { class: "card", novalidate: true, "aria-label": "Confirm your email address" },
    code.field, problem, h("div", { class: "actions" }, submit));
  replace(content, form);
  code.control.focus();
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    problem.textContent = "";
    submit.disabled = true;
    try {
      await sendJson("POST", "/signup/confirm", { email: address, code: code.control.value.trim() },
        { anonymous: true });
    } catch (err) {
      setFieldError(code.control, describe(err));
      submit.disabled = false;
      return;
    }
    // A new firm starts on its onboarding checklist (Clio, payment accounts, sender, templates).
    if (authMode() !== "cognito") { navigate("#/onboarding"); return; }
    try {
      await signIn(address, password);
      navigate("#/onboarding");
    } catch (err) {
      navigate(`#/sign-in?email=${encodeURIComponent(address)}`);
    }
  });
}
