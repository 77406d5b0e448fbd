// The Clio Status filter: a disclosure button holding one checkbox per Clio bill state.

import { h, newId } from "../dom.js";
import { BILL_STATES, stateLabel } from "../format.js";

/** stateFilter({selected, onChange}) -> {element, set(states)}; onChange gets the new list.
 * At least one state stays checked: the API needs one, and an empty list would show nothing. */
export function stateFilter({ selected, onChange, signal }) {
  const summaryText = h("span", {});
  const note = h("p", { class: "hint", role: "status" });
  const boxes = BILL_STATES.map(([value, label]) => {
    const id = newId("state");
    const input = h("input", { type: "checkbox", id, value, name: "states" });
    input.addEventListener("change", () => {
      const chosen = boxes.filter((b) => b.input.checked).map((b) => b.input.value);
      if (!chosen.length) {
        input.checked = true;
        note.textContent = "Keep at least one state checked.";
        return;
      }
      note.textContent = "";
      update(chosen);
      onChange(chosen);
    });
    return { input, row: h("div", { class: "check" }, input, h("label", { for: id }, label)) };
  });
  const details = h("details", { class: "filter" },
    h("summary", {}, h("span", { class: "filter-label" }, "Clio Status: "), summaryText),
    h("fieldset", { class: "filter-panel" },
      h("legend", {}, "Show bills in these Clio states"),
      boxes.map((b) => b.row), note));
  details.addEventListener("keydown", (event) => {
    if (event.key === "Escape" && details.open) {
      details.open = false;
      details.querySelector("summary").focus();
    }
  });
  document.addEventListener("click", (event) => {
    if (details.open && !details.contains(event.target)) details.open = false;
  }, { signal });

  function update(states) {
    for (const b of boxes) b.input.checked = states.includes(b.input.value);
    summaryText.textContent = states.length === BILL_STATES.length ? "All states" : states.map(stateLabel).join(", ");
  }
  update(selected);
  return { element: details, set: update };
}
