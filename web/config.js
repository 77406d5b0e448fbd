// Deployment settings for the web UI, read once at start. A deploy replaces this one file (it is
// served with no-cache headers); nothing else in web/ changes between environments.
//   apiBase: where the API answers, without a trailing slash; "" means the same origin.
//   auth.mode "dev": the local stack's stand-in for the Cognito authorizer, sending
//     `Authorization: Bearer dev-<firmId>`. Only the local API Gateway accepts it.
//   auth.mode "cognito" is not built yet: see docs/web-ui.md.
window.BILLBRIDGE_CONFIG = {
  apiBase: "",
  auth: { mode: "dev", firmId: "demo" },
};
