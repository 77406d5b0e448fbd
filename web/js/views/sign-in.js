// Sign in (A1) against the firm user pool with Cognito's own API: email and password, then,
// when Cognito asks, a new password (an invited user's first sign-in) or a TOTP code.

import { answerMfa, authMode, setNewPassword, signIn } from "../auth.js";
import { h, pageTitle, replace, setFieldError, textField } from "../dom.js";
import { navigate } from "../router.js";

function nextScreen(query) {
  const next = query.get("next") || "";
  return next.startsWith("#/") && !next.startsWith("#/sign-") ? next : "#/invoices";
}

export async function render({ main, query }) {
  if (authMode() !== "cognito") { navigate(nextScreen(query)); return; }
  const content = h("div", { class: "auth-panel" });
  replace(main, h("div", { class: "page-head" }, pageTitle("Sign in")), content);
  const done = () => navigate(nextScreen(query));
  passwordStep(content, done, query.get("email") || "");
}

function errorLine() {
  return h("p", { class: "field-error", role: "alert" });
}

function passwordStep(content, done, email) {
  const emailField = textField({ label: "Email address", name: "email", value: email,
    attrs: { type: "email", autocomplete: "username", required: true } });
  const passwordField = textField({ label: "Password", name: "password",
    attrs: { type: "password", autocomplete: "current-password", required: true } });
  const problem = errorLine();
  const submit = h("button", { type: "submit", class: "primary" }, "Sign in");
  const form = h("form", { class: "card", novalidate: true, "aria-label": "Sign in" },
    emailField.field, passwordField.field, problem,
    h("div", { class: "actions" }, submit),
    h("p", {}, "New to BillBridge? ", h("a", { href: "#/sign-up" }, "Create your firm's account"), "."));
  replace(content, form);
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    problem.textContent = "";
    const address = emailField.control.value.trim();
    if (!address) { setFieldError(emailField.control, "Enter your email address."); emailField.control.focus(); return; }
    setFieldError(emailField.control, null);
    submit.disabled = true;
    try {
      const step = await signIn(address, passwordField.control.value);
      follow(content, step, done);
    } catch (err) {
      problem.textContent = err.message;
      submit.disabled = false;
    }
  });
}

function follow(content, step, done) {
  if (!step) { done(); return; }
  if (step.challenge === "NEW_PASSWORD_REQUIRED") { newPasswordStep(content, step, done); return; }
  if (step.challenge === "SOFTWARE_TOKEN_MFA") { mfaStep(content, step, done); return; }
  replace(content, h("div", { class: "error-box", role: "alert" },
    h("p", {}, "This account needs a sign-in step BillBridge does not offer. Ask your firm's admin.")));
}

function newPasswordStep(content, step, done) {
  const passwordField = textField({ label: "New password", name: "new_password",
    hint: "At least 12 characters, with upper and lower case letters and a number.",
    attrs: { type: "password", autocomplete: "new-password", required: true } });
  const problem = errorLine();
  const submit = h("button", { type: "submit", class: "primary" }, "Set password and sign in");
  const form = h("form", { class: "card", novalidate: true, "aria-label": "Choose your password" },
    h("p", {}, "Welcome to BillBridge. Choose your own password to finish signing in."),
    passwordField.field, problem, h("div", { class: "actions" }, submit));
  replace(content, form);
  passwordField.control.focus();
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    problem.textContent = "";
    submit.disabled = true;
    try {
      follow(content, await setNewPassword(step, passwordField.control.value), done);
    } catch (err) {
      problem.textContent = err.message;
      submit.disabled = false;
    }
  });
}

function mfaStep(content, step, done) {
  const codeField = textField({ label: "Code from your authenticator app", name: "code",
    attrs: { inputmode: "numeric", autocomplete: "one-time-code", required: true } });
  const problem = errorLine();
  const submit = h("button", { type: "submit", class: "primary" }, "Sign in");
  const form = h("form", { class: "card", novalidate: true, "aria-label": "Authenticator code" },
    codeField.field, problem, h("div", { class: "actions" }, submit));
  replace(content, form);
  codeField.control.focus();
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    problem.textContent = "";
    submit.disabled = true;
    try {
      follow(content, await answerMfa(step, codeField.control.value.trim()), done);
    } catch (err) {
      problem.textContent = err.message;
      submit.disabled = false;
    }
  });
}
