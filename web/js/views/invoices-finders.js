// The Invoices list's search, sort and overdue filter (L5): the API's `q`, `sort` and `overdue`,
// kept in the address like the Clio Status filter.

import { h } from "../dom.js";

// The list's orders (L5): the API's `sort` values; "" is newest Clio id first.
const SORTS = [
  ["", "Newest first"],
  ["due_at", "Due date, oldest first"],
  ["-due_at", "Due date, latest first"],
  ["-amount", "Outstanding, highest first"],
  ["amount", "Outstanding, lowest first"],
  ["client", "Client, A to Z"],
  ["-client", "Client, Z to A"],
];
const SORT_VALUES = SORTS.map(([value]) => value);

/** {q, sort, overdue} from the address. */
export function findersFromQuery(query) {
  const sort = query.get("sort") || "";
  return {
    q: (query.get("q") || "").slice(0, 100),
    sort: SORT_VALUES.includes(sort) ? sort : "",
    overdue: query.get("overdue") === "1",
  };
}

/** The bar: a search box (typing waits a moment; Enter searches at once), the sort and the
 * overdue checkbox, writing into `s` and calling onChange(). */
export function findersBar({ s, onChange }) {
  const searchBox = h("input", { id: "bill-search", type: "search", value: s.q, maxlength: "100",
    placeholder: "Client, bill number or matter", autocomplete: "off" });
  let timer = null;
  const search = () => {
    clearTimeout(timer);
    if (searchBox.value.trim() === s.q.trim()) return;
    s.q = searchBox.value;
    onChange();
  };
  searchBox.addEventListener("input", () => { clearTimeout(timer); timer = setTimeout(search, 350); });
  const form = h("form", { class: "search", role: "search", "aria-label": "Bills" },
    h("label", { for: "bill-search" }, "Search"), searchBox);
  form.addEventListener("submit", (event) => { event.preventDefault(); search(); });
  const sortSelect = h("select", { id: "bill-sort" },
    SORTS.map(([value, label]) => h("option", { value, selected: value === s.sort }, label)));
  sortSelect.addEventListener("change", () => { s.sort = sortSelect.value; onChange(); });
  const overdueBox = h("input", { id: "bill-overdue", type: "checkbox", checked: s.overdue });
  overdueBox.addEventListener("change", () => { s.overdue = overdueBox.checked; onChange(); });
  return h("div", { class: "finders" }, form,
    h("span", { class: "field-inline" }, h("label", { for: "bill-sort" }, "Sort by"), sortSelect),
    h("span", { class: "check" }, overdueBox, h("label", { for: "bill-overdue" }, "Overdue only")));
}
