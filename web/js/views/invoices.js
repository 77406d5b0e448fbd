// Invoices (C2, C3, L1-L4): the firm's Clio bills, synced on view, filtered by Clio status,
// paged by cursor, selected for "Review and send selected".

import { describe, getJson, pollUntil, sendJson } from "../api.js";
import { announce, emptyBox, errorBox, h, loadingBox, pageTitle, replace } from "../dom.js";
import { BILL_STATES, dateTime, plural } from "../format.js";
import { navigate, replaceQuery } from "../router.js";
import { rememberBills } from "./common.js";
import { hasBalance, invoicesTable, markRow } from "./invoices-table.js";
import { findersBar, findersFromQuery } from "./invoices-finders.js";
import { stateFilter } from "./state-filter.js";

const PAGE_SIZES = [10, 25, 50, 100, 200];
const FALLBACK_STATES = ["awaiting_payment", "paid"]; // the API's own default (api.md)
const KNOWN_STATES = BILL_STATES.map(([value]) => value);

export async function render({ main, query, signal }) {
  const savedSize = Number(query.get("per_page") || localStorage.getItem("billbridge.perPage"));
  const s = {
    states: (query.get("states") || "").split(",").filter((x) => KNOWN_STATES.includes(x)),
    pageSize: PAGE_SIZES.includes(savedSize) ? savedSize : 25,
    ...findersFromQuery(query),
    cursors: [null], // cursors[i] opens page i; "Previous" steps back through them
    index: 0,
    page: null,
    rows: new Map(),
    selected: new Map(), // bill id -> bill, kept across pages and filters
    syncing: false,
    followed: null, // the sync run whose end already refreshed the list
    loads: 0,
  };

  // --- the screen's frame ----------------------------------------------------------------
  const syncStatus = h("p", { class: "sync-status", role: "status" }, "Loading…");
  const syncButton = h("button", { type: "button", class: "primary", onclick: () => startSync() }, "Sync");
  const syncError = h("div", {});
  const selection = h("p", { class: "selection", role: "status" });
  const reviewButton = h("button", { type: "button", class: "primary", onclick: () => review() }, "Review and send selected");
  const reviewError = h("div", {});
  const results = h("div", { class: "results" });
  const headerBox = h("input", { type: "checkbox", "aria-label": "Select every bill with a balance on this page" });
  headerBox.addEventListener("change", () => selectPage(headerBox.checked));
  const sizeSelect = h("select", { id: "per-page" },
    PAGE_SIZES.map((n) => h("option", { value: n, selected: n === s.pageSize }, String(n))));
  sizeSelect.addEventListener("change", () => {
    s.pageSize = Number(sizeSelect.value);
    localStorage.setItem("billbridge.perPage", String(s.pageSize));
    restart();
  });
  const prevButton = h("button", { type: "button", onclick: () => turn(-1) }, "Previous");
  const nextButton = h("button", { type: "button", onclick: () => turn(1) }, "Next");
  const pageLabel = h("span", { class: "page-label", "aria-live": "polite" });
  const filterSlot = h("div", { class: "filter-slot" });

  // Search, sort and the overdue filter (L5): each change starts again at page 1.
  const finders = findersBar({ s, onChange: () => restart() });

  replace(main,
    h("div", { class: "page-head" },
      pageTitle("Invoices"),
      h("div", { class: "sync" }, syncStatus, syncButton),
      syncError),
    finders,
    h("div", { class: "toolbar" }, filterSlot,
      h("div", { class: "toolbar-actions" }, selection, reviewButton)),
    reviewError,
    results,
    h("nav", { class: "pager", "aria-label": "Pages of bills" },
      h("span", { class: "per-page" }, h("label", { for: "per-page" }, "Records per page"), sizeSelect),
      h("span", { class: "pager-buttons" }, prevButton, pageLabel, nextButton)));
  updateSelection("");

  // --- the filter: the URL's, else the firm's default (settings), else the API's default ----
  if (!s.states.length) {
    try {
      const settings = await getJson("/settings", { signal });
      s.states = settings.default_states?.length ? settings.default_states : FALLBACK_STATES;
    } catch (err) {
      if (err.name === "AbortError") return;
      s.states = FALLBACK_STATES;
    }
  }
  const filter = stateFilter({ selected: s.states, signal, onChange: (states) => { s.states = states; restart(); } });
  filterSlot.append(filter.element);
  await load();

  // --- loading pages ----------------------------------------------------------------------
  function restart() {
    s.cursors = [null];
    s.index = 0;
    const q = new URLSearchParams({ states: s.states.join(","), per_page: String(s.pageSize) });
    if (s.q.trim()) q.set("q", s.q.trim());
    if (s.sort) q.set("sort", s.sort);
    if (s.overdue) q.set("overdue", "1");
    replaceQuery(q);
    load();
  }

  async function load() {
    const mine = ++s.loads;
    results.setAttribute("aria-busy", "true");
    if (!s.page) replace(results, loadingBox("Loading bills…"));
    else results.classList.add("stale");
    prevButton.disabled = nextButton.disabled = true;
    try {
      const page = await getJson("/invoices", {
        signal,
        query: {
          states: s.states.join(","), page_size: s.pageSize, cursor: s.cursors[s.index],
          q: s.q.trim() || null, sort: s.sort || null, overdue: s.overdue ? "true" : null,
        },
      });
      if (mine !== s.loads) return;
      s.page = page;
      rememberBills(page.items);
      showPage();
      if (page.sync && page.sync.status === "running" && page.sync.id !== s.followed && !s.syncing) {
        follow(page.sync.id); // C2: the view started a sync; refresh the list when it ends
      }
    } catch (err) {
      if (err.name === "AbortError" || mine !== s.loads) return;
      s.page = null;
      if (!s.syncing) syncStatus.textContent = "";
      replace(results, errorBox(`The bills could not be loaded. ${describe(err)}`, () => load()));
      pageLabel.textContent = "";
    } finally {
      if (mine === s.loads) {
        results.removeAttribute("aria-busy");
        results.classList.remove("stale");
      }
    }
  }

  function showPage() {
    const { items, next_cursor: next } = s.page;
    showSyncText();
    prevButton.disabled = s.index === 0;
    nextButton.disabled = !next;
    pageLabel.textContent = `Page ${s.index + 1}`;
    if (!items.length) {
      s.rows = new Map();
      const firstImport = !s.page.synced_at;
      const narrowed = s.q.trim() || s.overdue;
      replace(results, firstImport
        ? emptyBox("Importing your bills from Clio…", "They appear here as soon as the first sync finishes.")
        : narrowed
          ? emptyBox(s.q.trim() ? `No bills match “${s.q.trim()}”.` : "No overdue bills in the chosen Clio states.",
            "Search by the start of any word of the client's name, or of the bill number or the matter, or clear the search and the Overdue filter.")
          : emptyBox("No bills in the chosen Clio states.", "Choose more states in the Clio Status filter, or press Sync to fetch changes from Clio."));
      updateHeaderBox();
      return;
    }
    const made = invoicesTable({ items, selected: s.selected, headerBox, onToggle: toggle });
    s.rows = made.rows;
    replace(results, h("div", { class: "table-wrap" }, made.table));
    updateHeaderBox();
  }

  function turn(step) {
    if (step > 0) {
      if (!s.page?.next_cursor) return;
      s.cursors[s.index + 1] = s.page.next_cursor;
      s.cursors.length = s.index + 2;
    }
    s.index = Math.max(0, s.index + step);
    load().then(() => {
      // Keep keyboard focus in the pager when the pressed button turned off.
      if (document.activeElement === document.body || document.activeElement?.disabled) {
        (nextButton.disabled ? prevButton : nextButton).focus();
      }
    });
  }

  // --- selection (L4) -----------------------------------------------------------------------
  function toggle(bill, checked) {
    if (checked) s.selected.set(bill.id, bill);
    else s.selected.delete(bill.id);
    markRow(s.rows.get(bill.id), checked);
    updateHeaderBox();
    updateSelection(`${plural(s.selected.size, "bill")} selected`);
  }

  function selectPage(checked) {
    const items = s.page?.items || [];
    const withBalance = items.filter(hasBalance);
    for (const bill of items) {
      const on = checked && hasBalance(bill);
      if (on) s.selected.set(bill.id, bill);
      else s.selected.delete(bill.id);
      markRow(s.rows.get(bill.id), on);
    }
    updateHeaderBox();
    updateSelection(checked
      ? `${plural(withBalance.length, "bill")} with a balance selected on this page`
      : "No bills selected on this page");
  }

  function updateHeaderBox() {
    const items = s.page?.items || [];
    const withBalance = items.filter(hasBalance);
    const chosen = withBalance.filter((b) => s.selected.has(b.id)).length;
    headerBox.disabled = withBalance.length === 0;
    headerBox.title = withBalance.length ? "Select every bill with a balance on this page" : "Nothing on this page is payable now";
    headerBox.checked = withBalance.length > 0 && chosen === withBalance.length;
    headerBox.indeterminate = chosen > 0 && chosen < withBalance.length;
  }

  function updateSelection(message) {
    const onPage = (s.page?.items || []).filter((b) => s.selected.has(b.id)).length;
    const elsewhere = s.selected.size - onPage;
    const extra = elsewhere > 0 ? ` (${elsewhere} more on other pages or filters)` : "";
    selection.textContent = s.selected.size ? `${message}${extra}` : message;
    reviewLabel();
  }

  function reviewLabel() {
    reviewButton.textContent = s.selected.size ? `Review and send selected (${s.selected.size})` : "Review and send selected";
  }

  async function review() {
    replace(reviewError);
    if (!s.selected.size) {
      replace(reviewError, errorBox("Select at least one bill with a balance first."));
      return;
    }
    reviewButton.disabled = true;
    reviewButton.textContent = "Preparing envelopes…";
    try {
      const batch = await sendJson("POST", "/envelopes", { bill_ids: [...s.selected.keys()] }, { signal });
      s.selected.clear();
      navigate(`#/review/${encodeURIComponent(batch.batch_id)}`);
    } catch (err) {
      if (err.name === "AbortError") return;
      replace(reviewError, errorBox(`The envelopes could not be prepared. ${describe(err)}`));
      reviewButton.disabled = false;
      reviewLabel();
    }
  }

  // --- sync (C2, C3) ------------------------------------------------------------------------
  function showSyncText() {
    const at = s.page?.synced_at;
    if (s.syncing) syncStatus.textContent = at ? `Syncing with Clio… (last synced ${dateTime(at)})` : "Syncing with Clio…";
    else syncStatus.textContent = at ? `Synced at ${dateTime(at)}` : "Not synced with Clio yet";
  }

  function setSyncing(on) {
    s.syncing = on;
    syncButton.disabled = on;
    syncButton.setAttribute("aria-busy", String(on));
    replace(syncButton, on ? [h("span", { class: "spinner", "aria-hidden": "true" }), "Syncing…"] : "Sync");
    showSyncText();
  }

  async function startSync() {
    replace(syncError);
    setSyncing(true);
    try {
      const run = await sendJson("POST", "/sync", undefined, { signal });
      await follow(run.id);
    } catch (err) {
      if (err.name === "AbortError") return;
      setSyncing(false);
      replace(syncError, errorBox(`The sync could not start. ${describe(err)}`));
    }
  }

  async function follow(runId) {
    s.followed = runId;
    setSyncing(true);
    try {
      const { result, timedOut } = await pollUntil(
        () => getJson(`/sync/${encodeURIComponent(runId)}`, { signal }),
        (run) => run.status !== "running", { interval: 800, timeout: 180000, signal });
      setSyncing(false);
      if (timedOut) {
        replace(syncError, errorBox("The sync is taking a while. The list refreshes the next time you open it."));
      } else if (result.status === "failed") {
        replace(syncError, errorBox(`The sync with Clio failed${result.error ? `: ${result.error}` : "."} The list shows what was synced before.`));
      } else {
        announce(`Sync finished. ${plural(result.bills_changed ?? 0, "bill")} changed.`);
        await load();
      }
    } catch (err) {
      if (err.name === "AbortError") return;
      setSyncing(false);
      replace(syncError, errorBox(`Could not follow the sync. ${describe(err)}`));
    }
  }
}
