// Who the UI calls the API as. config.js decides (see docs/web-ui.md and docs/auth.md):
//   auth.mode "cognito": the user signs in against the Cognito user pool with Cognito's own
//     API (InitiateAuth USER_PASSWORD_AUTH on auth.endpoint); the ID token goes on every API
//     call and is refreshed with the refresh token before it expires.
//   auth.mode "dev": the local stack's stand-in (`Bearer dev-<firmId>`, an admin of that
//     firm), for tests only; no deployed API accepts it.

export class AuthNotConfigured extends Error {}

/** Cognito refused: `code` is its exception name (NotAuthorizedException, ...). */
export class SignInError extends Error {
  constructor(code, message) {
    super(message);
    this.code = code;
  }
}

const SESSION_KEY = "billbridge.session";
// Refresh this long before the ID token expires, so no call goes out with a dying token.
const REFRESH_MARGIN_MS = 120_000;

let me = null; // GET /me, once signed in
let refreshing = null;

function config() {
  const cfg = window.BILLBRIDGE_CONFIG;
  if (!cfg || !cfg.auth) {
    throw new AuthNotConfigured("config.js did not load, so BillBridge does not know how to sign you in.");
  }
  const mode = cfg.auth.mode;
  if (mode !== "dev" && mode !== "cognito") {
    throw new AuthNotConfigured(`config.js names an unknown sign-in mode: ${mode}`);
  }
  if (mode === "cognito" && !(cfg.auth.clientId && cfg.auth.endpoint)) {
    throw new AuthNotConfigured("config.js names no Cognito app client or endpoint (template.yaml's WebConfigJs output).");
  }
  return cfg;
}

export function authMode() {
  return config().auth.mode;
}

export function apiBase() {
  return (config().apiBase || "").replace(/\/$/, "");
}

// --- Cognito's API ---------------------------------------------------------------------------

const FRIENDLY = {
  NotAuthorizedException: "The email address or password is not right.",
  UserNotFoundException: "The email address or password is not right.",
  UserNotConfirmedException: "Confirm your email address first: enter the code we emailed you.",
  PasswordResetRequiredException: "Your password must be reset before you can sign in.",
  InvalidPasswordException: "Choose a password of at least 12 characters with upper and lower case letters and a number.",
  CodeMismatchException: "That code is not right. Check it and try again.",
  ExpiredCodeException: "That code has expired.",
  TooManyRequestsException: "Too many attempts. Wait a minute and try again.",
  LimitExceededException: "Too many attempts. Wait a minute and try again.",
};

async function cognito(action, body) {
  const { auth } = config();
  let response;
  try {
    response = await fetch(auth.endpoint, {
      method: "POST",
      headers: {
        "Content-Type": "application/x-amz-json-1.1",
        "X-Amz-Target": `AWSCognitoIdentityProviderService.${action}`,
      },
      body: JSON.stringify(body),
    });
  } catch {
    throw new SignInError("network", "The sign-in service could not be reached. Check your connection and try again.");
  }
  let data = {};
  try { data = await response.json(); } catch { data = {}; }
  if (!response.ok) {
    const code = String(data.__type || "Error").split("#").pop();
    throw new SignInError(code, FRIENDLY[code] || data.message || "Signing in failed.");
  }
  return data;
}

function claimsOf(token) {
  try {
    const part = token.split(".")[1].replace(/-/g, "+").replace(/_/g, "/");
    return JSON.parse(decodeURIComponent(escape(atob(part))));
  } catch {
    return {};
  }
}

function readSession() {
  try { return JSON.parse(localStorage.getItem(SESSION_KEY) || "null"); } catch { return null; }
}

function keep(result, previous = null) {
  const idToken = result.IdToken;
  const claims = claimsOf(idToken);
  const session = {
    idToken,
    accessToken: result.AccessToken,
    // A refresh answers no new refresh token: the one we had stays.
    refreshToken: result.RefreshToken || (previous && previous.refreshToken),
    expiresAt: (claims.exp ? claims.exp * 1000 : Date.now() + (result.ExpiresIn || 3600) * 1000),
    email: claims.email || (previous && previous.email) || null,
  };
  localStorage.setItem(SESSION_KEY, JSON.stringify(session));
  if (!previous) me = null; // a new sign-in; a refresh is the same user
  return session;
}

/** What signing in asks next: null when signed in, else {challenge, session, email}. */
function outcome(answer, email) {
  if (answer.AuthenticationResult) {
    keep(answer.AuthenticationResult);
    return null;
  }
  return { challenge: answer.ChallengeName, session: answer.Session, email };
}

export async function signIn(email, password) {
  const answer = await cognito("InitiateAuth", {
    AuthFlow: "USER_PASSWORD_AUTH",
    ClientId: config().auth.clientId,
    AuthParameters: { USERNAME: email, PASSWORD: password },
  });
  return outcome(answer, email);
}

/** An invited user's first sign-in: choose a password (challenge NEW_PASSWORD_REQUIRED). */
export async function setNewPassword(step, password) {
  const answer = await cognito("RespondToAuthChallenge", {
    ClientId: config().auth.clientId,
    ChallengeName: "NEW_PASSWORD_REQUIRED",
    Session: step.session,
    ChallengeResponses: { USERNAME: step.email, NEW_PASSWORD: password },
  });
  return outcome(answer, step.email);
}

/** The one-time code of a user who turned on TOTP (challenge SOFTWARE_TOKEN_MFA). */
export async function answerMfa(step, code) {
  const answer = await cognito("RespondToAuthChallenge", {
    ClientId: config().auth.clientId,
    ChallengeName: "SOFTWARE_TOKEN_MFA",
    Session: step.session,
    ChallengeResponses: { USERNAME: step.email, SOFTWARE_TOKEN_MFA_CODE: code },
  });
  return outcome(answer, step.email);
}

async function refresh(session) {
  const answer = await cognito("InitiateAuth", {
    AuthFlow: "REFRESH_TOKEN_AUTH",
    ClientId: config().auth.clientId,
    AuthParameters: { REFRESH_TOKEN: session.refreshToken },
  });
  return keep(answer.AuthenticationResult, session);
}

export function signedIn() {
  if (authMode() === "dev") return true;
  const session = readSession();
  return Boolean(session && session.idToken && session.refreshToken);
}

/** Forget the tokens here and revoke the refresh token at Cognito. */
export async function signOut() {
  const session = readSession();
  localStorage.removeItem(SESSION_KEY);
  me = null;
  if (session && session.refreshToken && authMode() === "cognito") {
    try {
      await cognito("RevokeToken", { ClientId: config().auth.clientId, Token: session.refreshToken });
    } catch { /* signed out here either way */ }
  }
}

/** The Authorization header value for API calls; refreshes the ID token when it is about to
 * expire. Throws SignInError("signed_out") when there is no usable session. */
export async function authorization() {
  const { auth } = config();
  if (auth.mode === "dev") return `Bearer dev-${auth.firmId}`;
  let session = readSession();
  if (!session || !session.idToken) throw new SignInError("signed_out", "Sign in to continue.");
  if (session.expiresAt - Date.now() < REFRESH_MARGIN_MS) {
    refreshing = refreshing || refresh(session).finally(() => { refreshing = null; });
    try {
      session = await refreshing;
    } catch (err) {
      localStorage.removeItem(SESSION_KEY);
      throw new SignInError("signed_out", "Your session has ended. Sign in again.");
    }
  }
  return `Bearer ${session.idToken}`;
}

/** Forget a session the API refused (401): the next screen asks to sign in. */
export function dropSession() {
  localStorage.removeItem(SESSION_KEY);
  me = null;
}

/** The signed-in user as the API knows them (GET /me), cached for the page. */
export async function currentUser(getJson) {
  if (!me) me = await getJson("/me");
  return me;
}

export function knownUser() {
  return me;
}

export function isAdmin() {
  return Boolean(me && me.role === "admin");
}

/** A short description of who is signed in, for the header. */
export function whoAmI() {
  if (!me) return "";
  const role = me.role === "admin" ? "Admin" : "Staff";
  const local = authMode() === "dev" ? " (local)" : "";
  return `${me.email || `Firm ${me.firm_id}`} · ${role}${local}`;
}

// --- two-step sign-in (TOTP): the signed-in user's own Cognito calls, with their access token

FRIENDLY.EnableSoftwareTokenMFAException = "That code is not right. Check the time on your phone, then enter the code your app shows now.";

async function accessToken() {
  await authorization(); // refreshes the tokens when they are about to expire
  const session = readSession();
  if (!session || !session.accessToken) throw new SignInError("signed_out", "Sign in to continue.");
  return session.accessToken;
}

/** Whether the signed-in user's sign-in asks for an authenticator code (GetUser). */
export async function totpEnabled() {
  const user = await cognito("GetUser", { AccessToken: await accessToken() });
  return (user.UserMFASettingList || []).includes("SOFTWARE_TOKEN_MFA");
}

/** A new authenticator secret for the user (AssociateSoftwareToken): {secret, uri}. */
export async function startTotp() {
  const answer = await cognito("AssociateSoftwareToken", { AccessToken: await accessToken() });
  const secret = answer.SecretCode;
  const account = encodeURIComponent(`BillBridge:${readSession().email || "account"}`);
  return { secret, uri: `otpauth://totp/${account}?secret=${secret}&issuer=BillBridge` };
}

/** Check a code of the new secret (VerifySoftwareToken), then ask for it at every sign-in. */
export async function confirmTotp(code) {
  const token = await accessToken();
  await cognito("VerifySoftwareToken", { AccessToken: token, UserCode: code, FriendlyDeviceName: "Authenticator app" });
  await cognito("SetUserMFAPreference", { AccessToken: token, SoftwareTokenMfaSettings: { Enabled: true, PreferredMfa: true } });
}

/** Stop asking for a code at sign-in (SetUserMFAPreference). */
export async function turnOffTotp() {
  await cognito("SetUserMFAPreference", { AccessToken: await accessToken(), SoftwareTokenMfaSettings: { Enabled: false, PreferredMfa: false } });
}
