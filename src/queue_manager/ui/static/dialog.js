// Every action confirms what it will do, in a modal <dialog> (focus trapped, Escape cancels).

import { el } from "./format.js";

/** Resolves true when the person confirms, false when they cancel. */
export function confirmAction({ title, body, confirm, danger }) {
  return new Promise((resolve) => {
    const cancelButton = el("button", { type: "button", class: "button", value: "cancel" }, "Cancel");
    const confirmButton = el(
      "button",
      { type: "button", class: `button ${danger ? "danger" : "primary"}`, value: "confirm" },
      confirm,
    );
    const dialog = el(
      "dialog",
      { class: "confirm", "aria-labelledby": "confirm-title", "aria-describedby": "confirm-body" },
      el("h2", { id: "confirm-title" }, title),
      el("div", { id: "confirm-body" }, ...[body].flat().map((line) => el("p", {}, line))),
      el("div", { class: "actions" }, cancelButton, confirmButton),
    );
    let answered = false;
    const answer = (value) => {
      if (answered) return;
      answered = true;
      dialog.close();
      dialog.remove();
      resolve(value);
    };
    cancelButton.addEventListener("click", () => answer(false));
    confirmButton.addEventListener("click", () => answer(true));
    dialog.addEventListener("cancel", () => answer(false));
    dialog.addEventListener("close", () => answer(false));
    document.body.append(dialog);
    dialog.showModal();
    cancelButton.focus();
  });
}

/** A short-lived message at the bottom of the page (role=status for screen readers). */
export function notify(text, kind = "info") {
  const area = document.getElementById("notices");
  const notice = el("div", { class: `notice ${kind}` }, text);
  area.append(notice);
  window.setTimeout(() => notice.remove(), kind === "error" ? 8000 : 4000);
}
