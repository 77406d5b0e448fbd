// The firm's users (A3, admin): invite by email (Cognito emails a temporary password), change
// a role, remove. The API keeps at least one admin and says so when asked to drop the last.

import { describe, getJson, sendJson } from "../api.js";
import { knownUser } from "../auth.js";
import { announce, badge, errorBox, h, loadingBox, newId, pageTitle, replace, textField } from "../dom.js";
import { dateTime } from "../format.js";

const STATUS = { active: ["Active", "good"], invited: ["Invited", "info"], unconfirmed: ["Unconfirmed", "warn"] };

export async function render({ main, signal }) {
  const notice = h("div", {});
  const list = h("div", {});
  replace(main, h("div", { class: "page-head" }, pageTitle("Users")),
    h("p", { class: "lead" }, "Admins refund payments and manage settings, payment accounts and users. Staff view, sync, draft, send and reconcile."),
    inviteForm(), notice, list);

  async function load() {
    replace(list, loadingBox("Loading users…"));
    try {
      const { users } = await getJson("/users", { signal });
      replace(list, table(users));
    } catch (err) {
      if (err.name === "AbortError") return;
      replace(list, errorBox(`Users could not be loaded. ${describe(err)}`, load));
    }
  }

  function say(text, good = true) {
    replace(notice, h("p", { class: `notice ${good ? "good" : "bad"}`, role: good ? "status" : "alert" }, text));
    if (good) announce(text);
  }

  function inviteForm() {
    const email = textField({ label: "Email address", name: "email", attrs: { type: "email", autocomplete: "off" } });
    const roleId = newId("role");
    const role = h("select", { id: roleId, name: "role" },
      h("option", { value: "staff" }, "Staff"), h("option", { value: "admin" }, "Admin"));
    const submit = h("button", { type: "submit", class: "primary" }, "Invite");
    const form = h("form", { class: "card", novalidate: true, "aria-label": "Invite a user" },
      h("h2", {}, "Invite a user"),
      h("p", { class: "hint" }, "They get an email with a temporary password and choose their own at first sign-in."),
      h("div", { class: "inline-fields" }, email.field,
        h("div", { class: "field" }, h("label", { for: roleId }, "Role"), role)),
      h("div", { class: "actions" }, submit));
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      submit.disabled = true;
      try {
        const made = await sendJson("POST", "/users", { email: email.control.value.trim(), role: role.value });
        say(`Invitation sent to ${made.email}.`);
        email.control.value = "";
        load();
      } catch (err) {
        say(describe(err), false);
      } finally {
        submit.disabled = false;
      }
    });
    return form;
  }

  function table(users) {
    const me = knownUser();
    return h("div", { class: "table-wrap" }, h("table", { class: "data users" },
      h("thead", {}, h("tr", {}, ["Email", "Role", "Status", "Added", "Actions"].map((c) => h("th", { scope: "col" }, c)))),
      h("tbody", {}, users.map((u) => {
        const [label, tone] = STATUS[u.status] || [u.status, "neutral"];
        const you = me && me.user_id === u.user_id;
        const roleSelect = h("select", { "aria-label": `Role of ${u.email}`, value: u.role },
          h("option", { value: "staff" }, "Staff"), h("option", { value: "admin" }, "Admin"));
        roleSelect.value = u.role;
        roleSelect.addEventListener("change", async () => {
          roleSelect.disabled = true;
          try {
            await sendJson("PATCH", `/users/${encodeURIComponent(u.user_id)}`, { role: roleSelect.value });
            say(`${u.email} is now ${roleSelect.value === "admin" ? "an admin" : "staff"}. They see it at their next sign-in.`);
          } catch (err) {
            roleSelect.value = u.role;
            say(describe(err), false);
          } finally {
            roleSelect.disabled = false;
          }
        });
        const remove = h("button", { type: "button", class: "small", "aria-label": `Remove ${u.email}` }, "Remove");
        remove.addEventListener("click", async () => {
          if (!window.confirm(`Remove ${u.email} from your firm? They are signed out and can no longer sign in.`)) return;
          remove.disabled = true;
          try {
            await sendJson("DELETE", `/users/${encodeURIComponent(u.user_id)}`);
            say(`${u.email} was removed.`);
            load();
          } catch (err) {
            say(describe(err), false);
            remove.disabled = false;
          }
        });
        return h("tr", {},
          h("td", { "data-label": "Email" }, u.email, you ? h("span", { class: "sub" }, "You") : null),
          h("td", { "data-label": "Role" }, roleSelect),
          h("td", { "data-label": "Status" }, badge(label, tone)),
          h("td", { "data-label": "Added" }, dateTime(u.created_at)),
          h("td", { "data-label": "Actions" }, remove));
      }))));
  }

  await load();
}
