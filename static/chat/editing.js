/**
 * The Edit and Delete buttons of the message list (drawn by chat/message-element.js):
 * Edit opens an input in place of the text, Enter publishes the edit, Escape puts the text
 * back; Delete asks "Delete?" on the button itself and a second click publishes the
 * deletion (no `window.confirm`: a modal blocks the page and its tests). One listener on
 * the list for all messages, so redrawing a message needs no wiring. What the server
 * then sends is folded in by the model; this module only asks.
 * @module chat/editing
 */

/** How long the "Delete?" of a first click waits for the second (ms). */
export const CONFIRM_FOR = 4000;

export class MessageActions {
  /**
   * @param {object} options
   * @param {HTMLElement} options.list `#messages`
   * @param {(seq: number, text: string) => Promise<any>} options.onEdit publishes `{"edit": seq, "text"}`
   * @param {(seq: number) => Promise<any>} options.onDelete publishes `{"delete": seq}`
   */
  constructor({ list, onEdit, onDelete }) {
    this.list = list;
    this.onEdit = onEdit;
    this.onDelete = onDelete;
    /** @type {WeakMap<HTMLButtonElement, any>} the timer that turns "Delete?" back */
    this.confirmTimers = new WeakMap();
    list.addEventListener("click", (event) => this._onClick(event));
    list.addEventListener("submit", (event) => this._onSubmit(event));
    list.addEventListener("keydown", (event) => {
      if (event.key === "Escape" && event.target.matches("input.edit-text")) this.closeEditor(event.target.closest("li"));
    });
  }

  _onClick(event) {
    const target = event.target.closest("button");
    const li = target && target.closest("li[data-seq]");
    if (!li || !this.list.contains(li)) return;
    if (target.classList.contains("edit")) this.openEditor(li);
    else if (target.classList.contains("delete")) this._delete(li, target);
    else if (target.classList.contains("cancel-edit")) this.closeEditor(li);
  }

  /** The text as an input, with what is shown (mentions are text inside their spans). */
  openEditor(li) {
    if (li.querySelector("form.edit-form")) return;
    const shown = li.querySelector(".text");
    const form = document.createElement("form");
    form.className = "edit-form";
    const input = document.createElement("input");
    input.className = "edit-text";
    input.maxLength = 4000;
    input.required = true;
    input.setAttribute("aria-label", "Edit message");
    input.value = shown.textContent;
    const save = document.createElement("button");
    save.type = "submit";
    save.className = "save-edit";
    save.textContent = "Save";
    const cancel = document.createElement("button");
    cancel.type = "button";
    cancel.className = "cancel-edit";
    cancel.textContent = "Cancel";
    form.append(input, save, cancel);
    shown.hidden = true;
    shown.after(form);
    this._clearWhy(li);
    input.focus();
    input.setSelectionRange(input.value.length, input.value.length);
  }

  closeEditor(li) {
    const form = li && li.querySelector("form.edit-form");
    if (!form) return;
    form.remove();
    li.querySelector(".text").hidden = false;
  }

  async _onSubmit(event) {
    const form = event.target;
    if (!form.matches("form.edit-form")) return;
    event.preventDefault();
    const li = form.closest("li[data-seq]");
    const input = form.querySelector("input.edit-text");
    const text = input.value.trim();
    if (!text || text === li.querySelector(".text").textContent) {
      this.closeEditor(li);
      return;
    }
    for (const el of form.elements) el.disabled = true;
    try {
      await this.onEdit(Number(li.dataset.seq), text);
      this.closeEditor(li); // usually gone already: the folded edit redrew the message
    } catch (err) {
      for (const el of form.elements) el.disabled = false;
      this._why(li, `Not edited: ${err.code || err.message}`);
    }
  }

  async _delete(li, target) {
    if (!target.classList.contains("confirming")) {
      target.classList.add("confirming");
      target.textContent = "Delete?";
      clearTimeout(this.confirmTimers.get(target));
      this.confirmTimers.set(target, setTimeout(() => {
        target.classList.remove("confirming");
        target.textContent = "Delete";
      }, CONFIRM_FOR));
      return;
    }
    clearTimeout(this.confirmTimers.get(target));
    target.disabled = true;
    target.textContent = "Deleting…";
    try {
      await this.onDelete(Number(li.dataset.seq));
    } catch (err) {
      target.disabled = false;
      target.classList.remove("confirming");
      target.textContent = "Delete";
      this._why(li, `Not deleted: ${err.code || err.message}`);
    }
  }

  _why(li, text) {
    this._clearWhy(li);
    const why = document.createElement("div");
    why.className = "why";
    why.textContent = text;
    li.append(why);
  }

  _clearWhy(li) {
    for (const el of li.querySelectorAll(".why")) el.remove();
  }
}
