// Who the UI calls the API as. config.js decides; see docs/web-ui.md.

export class AuthNotConfigured extends Error {}

function config() {
  const cfg = window.BILLBRIDGE_CONFIG;
  if (!cfg || !cfg.auth) {
    throw new AuthNotConfigured("config.js did not load, so BillBridge does not know how to sign you in.");
  }
  return cfg;
}

/** The Authorization header value for API calls. */
export function authorization() {
  const { auth } = config();
  if (auth.mode === "dev") {
    // The local API Gateway's stand-in for the Cognito authorizer (local stack only).
    return `Bearer dev-${auth.firmId}`;
  }
  if (auth.mode === "cognito") {
    throw new AuthNotConfigured(
      "Sign-in with Cognito is not part of this build of the web UI yet. " +
      "The deployment must add it (see docs/web-ui.md).");
  }
  throw new AuthNotConfigured(`config.js names an unknown sign-in mode: ${auth.mode}`);
}

/** A short description of who is signed in, for the header. */
export function whoAmI() {
  const { auth } = config();
  return auth.mode === "dev" ? `Firm ${auth.firmId} (local)` : "";
}

export function apiBase() {
  return (config().apiBase || "").replace(/\/$/, "");
}
