/**
 * The feed widget's DOM: a bell with the unread count and a dropdown list, drawn inside a
 * shadow root with its own styles, so that the page around it and the widget cannot
 * restyle each other. Sizes are in px and em, never rem: rem follows the host page's root
 * font size, which a shadow root does not shut out. Text is only ever set with `textContent`.
 * @module feed/view
 */

const STYLES = `
:host { all: initial !important; display: inline-block !important; position: relative !important;
  visibility: visible !important; opacity: 1 !important; }
.feed { all: initial; display: inline-block; position: relative; color: #1d2330;
  font: 15px/1.4 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; }
.feed * { box-sizing: border-box; font: inherit; color: inherit; }
.bell { all: unset; position: relative; display: inline-flex; align-items: center; justify-content: center;
  width: 2.4em; height: 2.4em; border-radius: 999px; cursor: pointer; background: #eef2f7; color: #1d2330; }
.bell:focus-visible { outline: 2px solid #2563eb; outline-offset: 2px; }
.bell svg { width: 1.3em; height: 1.3em; fill: currentColor; display: block; }
.count { position: absolute; top: -.2em; right: -.3em; min-width: 1.25em; height: 1.25em; padding: 0 .3em;
  border-radius: 999px; background: #d92d20; color: #fff; font-size: .72em; font-weight: 700;
  line-height: 1.25em; text-align: center; }
.count[hidden], .panel[hidden], .empty[hidden], .status[hidden] { display: none; }
.panel { position: absolute; top: calc(100% + .4em); z-index: 2147483000; width: min(22em, calc(100vw - 1em));
  max-height: min(28em, 70vh); overflow: auto; background: #fff; border: 1px solid #e3e6eb; border-radius: 12px;
  box-shadow: 0 10px 30px rgba(16, 24, 40, .18); text-align: left; }
.feed[data-align=end] .panel { right: 0; }
.feed[data-align=start] .panel { left: 0; }
.head { display: flex; align-items: center; justify-content: space-between; gap: .5em; padding: .6em .8em;
  border-bottom: 1px solid #e3e6eb; }
.head strong { font-weight: 700; }
.mark { all: unset; color: #2563eb; cursor: pointer; font-size: .85em; }
.mark:disabled { color: #9aa1ad; cursor: default; }
.status { margin: 0; padding: .5em .8em; font-size: .85em; background: #fff4d6; color: #8a5a00; }
.feed[data-state=error] .status { background: #fde8e8; color: #b42318; }
.feed[data-state=error] .bell { background: #fde8e8; color: #b42318; }
.list { list-style: none; margin: 0; padding: 0; }
.item { display: block; padding: .6em .8em; border-top: 1px solid #f0f1f4; }
.item:first-child { border-top: 0; }
.item.unread { background: #eef4ff; }
.item a { color: #2563eb; text-decoration: none; }
.title { display: block; font-weight: 600; overflow-wrap: anywhere; }
.body { display: block; white-space: pre-wrap; overflow-wrap: anywhere; }
.time { display: block; font-size: .75em; color: #6b7280; }
.empty { margin: 0; padding: 1em .8em; color: #6b7280; font-size: .9em; }
`;

const BELL_SVG =
  '<svg viewBox="0 0 24 24" aria-hidden="true"><path d="M12 22a2.5 2.5 0 0 0 2.45-2h-4.9A2.5 2.5 0 0 0 12 22Zm7-6V11a7 7 0 0 0-5.5-6.84V3a1.5 1.5 0 0 0-3 0v1.16A7 7 0 0 0 5 11v5l-2 2v1h18v-1l-2-2Z"/></svg>';

/** The styles as one constructed sheet, adopted by each widget's shadow root: no `<style>`
 * element, which a Content-Security-Policy without 'unsafe-inline' refuses (this site's
 * own, and a host site's). */
let sheet = null;

function adoptStyles(root) {
  if (!("adoptedStyleSheets" in root)) {
    const style = document.createElement("style");
    style.textContent = STYLES;
    root.prepend(style);
    return;
  }
  if (!sheet) {
    sheet = new CSSStyleSheet();
    sheet.replaceSync(STYLES);
  }
  if (!root.adoptedStyleSheets.includes(sheet)) root.adoptedStyleSheets = [...root.adoptedStyleSheets, sheet];
}

function el(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

export class FeedView {
  /**
   * @param {ShadowRoot} root
   * @param {object} options
   * @param {"start" | "end"} [options.align] which edge of the bell the list opens from
   * @param {() => void} options.onMarkAllRead
   */
  constructor(root, { align = "start", onMarkAllRead }) {
    adoptStyles(root);
    this.box = el("div", "feed");
    this.box.dataset.align = align;
    this.box.dataset.state = "connecting";
    this.bell = el("button", "bell");
    this.bell.type = "button";
    this.bell.setAttribute("aria-haspopup", "true");
    this.bell.setAttribute("aria-expanded", "false");
    this.bell.innerHTML = BELL_SVG; // a constant of this module, never message text
    this.count = el("span", "count", "0");
    this.count.hidden = true;
    this.bell.append(this.count);
    this.panel = el("div", "panel");
    this.panel.hidden = true;
    this.panel.setAttribute("role", "region");
    this.panel.setAttribute("aria-label", "Notifications");
    const head = el("div", "head");
    this.markButton = el("button", "mark", "Mark all read");
    this.markButton.type = "button";
    this.markButton.addEventListener("click", () => onMarkAllRead());
    head.append(el("strong", "", "Notifications"), this.markButton);
    this.status = el("p", "status", "Connecting…");
    this.status.setAttribute("role", "status");
    this.list = el("ul", "list");
    this.empty = el("p", "empty", "No notifications yet.");
    this.panel.append(head, this.status, this.list, this.empty);
    this.box.append(this.bell, this.panel);
    root.append(this.box);
    this.bell.addEventListener("click", () => this.toggle());
    this._label(0);
  }

  toggle(open = this.panel.hidden) {
    this.panel.hidden = !open;
    this.bell.setAttribute("aria-expanded", String(open));
    if (open) this._placePanel();
  }

  /** Open from the bell's edge, but keep the whole list on screen (a phone's included). */
  _placePanel() {
    const margin = 8;
    const box = this.box.getBoundingClientRect();
    const width = Math.min(this.panel.offsetWidth, window.innerWidth - 2 * margin);
    const wanted = this.box.dataset.align === "end" ? box.right - width : box.left;
    const left = Math.max(margin, Math.min(wanted, window.innerWidth - margin - width));
    this.panel.style.left = `${left - box.left}px`;
    this.panel.style.right = "auto";
  }

  /**
   * @param {"connecting" | "connected" | "offline" | "error"} state
   * @param {string} [text] shown above the list; none when connected
   */
  setState(state, text) {
    this.box.dataset.state = state;
    this.status.hidden = state === "connected";
    this.status.textContent = text || "";
  }

  /** @param {import("./model.js").FeedModel} model */
  render(model) {
    const unread = model.unread;
    this.count.hidden = unread === 0;
    this.count.textContent = unread > 99 ? "99+" : String(unread);
    this._label(unread);
    this.markButton.disabled = unread === 0;
    this.empty.hidden = model.items.length > 0;
    this.list.replaceChildren(...model.items.map((item) => this._item(item, model.isUnread(item))));
  }

  _label(unread) {
    this.bell.setAttribute("aria-label", unread ? `Notifications, ${unread} unread` : "Notifications");
  }

  _item(item, unread) {
    const li = el("li", unread ? "item unread" : "item");
    li.dataset.seq = String(item.seq);
    const title = el(item.url ? "a" : "span", "title", item.title);
    if (item.url) {
      title.href = item.url;
      // This site's own links (a mention, a direct message) open here; another site's in a new tab.
      if (!sameOrigin(item.url)) {
        title.target = "_blank";
        title.rel = "noopener noreferrer";
      }
    }
    const time = el("time", "time", new Date(item.ts).toLocaleString());
    time.dateTime = new Date(item.ts).toISOString();
    li.append(title);
    if (item.body) li.append(el("span", "body", item.body));
    li.append(time);
    return li;
  }
}

/** Whether `url` belongs to the page's own site. */
function sameOrigin(url) {
  try {
    return new URL(url).origin === window.location.origin;
  } catch {
    return false;
  }
}
