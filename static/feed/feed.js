/**
 * A running feed: subscribes to `user:<id>` with a {@link RealtimeClient}, keeps a
 * {@link FeedModel} and draws it with a {@link FeedView}. Shared by the site's own bell
 * (bell.js) and the embed for other sites (embed-widget.js), which differ only in
 * how they authenticate.
 * @module feed/feed
 */

import { Retry, backoff } from "../realtime/backoff.js";
import { State } from "../realtime/client.js";
import { FeedModel } from "./model.js";
import { FeedView } from "./view.js";

/** Messages asked for on the first subscribe (and reloaded after `recovered: false`). */
export const HISTORY = 50;
/** Waits before loading again after a failure (the read position, the history, the embed's
 * token), in ms: the last one repeats. The feed's loads add jitter to them. */
export const RELOAD_RETRY = [1000, 2000, 5000, 10000, 30000];
/** The feed's reloads wait half to all of each step. */
const RELOAD_WAIT = backoff({ steps: RELOAD_RETRY, jitter: [0.5, 1] });
/** API error codes that no retry changes: the feed shows its error. */
const REFUSED = new Set(["forbidden", "unauthorized"]);

/**
 * @param {object} options
 * @param {ShadowRoot} options.root
 * @param {import("../realtime/client.js").RealtimeClient} options.client
 * @param {import("./http.js").FeedHttp} options.http
 * @param {string} options.stream `user:<id>`
 * @param {"start" | "end"} [options.align]
 * @returns {{model: FeedModel, view: FeedView, fail: (text: string) => void, setState: (state: string, text?: string) => void}}
 */
export function startFeed({ root, client, http, stream, align }) {
  const model = new FeedModel();
  const view = new FeedView(root, { align, onMarkAllRead: markAllRead });
  let failed = false;

  const render = () => view.render(model);
  const fail = (text) => {
    failed = true;
    view.setState("error", text);
  };
  const setState = (state, text) => {
    if (!failed) view.setState(state, text);
  };

  client.on("state", ({ newState }) => {
    if (newState === State.CONNECTED) setState("connected");
    else if (newState === State.CONNECTING) setState("connecting", "Connecting…");
    else setState("offline", "Offline.");
  });

  const position = retrying("read position", () => http.readPosition(), (got) => model.setRead(got) && render());
  position.load();
  const history = retrying("notifications", () => http.history(HISTORY), (page) => model.merge(page) && render());

  const sub = client.subscribe(stream, {
    history: HISTORY,
    onSubscribed: ({ epoch }) => model.setEpoch(epoch),
    onMessage: (msg) => model.apply(msg) && render(),
    onRecoveryFailed: () => reload(),
    onError: (err) => fail(explain(err)),
  });

  /** After `recovered: false`: merge the kept history (never clear: live messages keep
   * arriving meanwhile) and read the position again, its markers may be gone too. The
   * model takes a page only of the epoch the subscription is in. */
  function reload() {
    history.load();
    position.load();
  }

  /**
   * A load that a network blip must not stop for good: a failure shows "offline" and tries
   * again after a growing wait; a refusal (no right, no session) is the feed's error. A
   * newer load replaces one under way, whose late answer is then dropped.
   */
  function retrying(what, get, take) {
    let generation = 0;
    const retry = new Retry(RELOAD_WAIT);
    const attempt = (mine) => {
      get()
        .then((answer) => {
          if (mine !== generation) return;
          take(answer);
          if (client.state === State.CONNECTED) setState("connected");
        })
        .catch((err) => {
          if (mine !== generation) return;
          if (REFUSED.has(err && err.code)) return fail(explain(err));
          setState("offline", `Could not load the ${what} (${(err && err.message) || err}); retrying.`);
          retry.later(() => attempt(mine));
        });
    };
    return {
      load() {
        retry.reset();
        attempt(++generation);
      },
    };
  }

  function markAllRead() {
    if (sub.epoch === null || sub.seq === null) return;
    // Shown at once; the server keeps the later position and tells the other tabs.
    if (model.setRead({ epoch: sub.epoch, seq: sub.seq })) render();
    http
      .markRead(sub.epoch, sub.seq)
      .then((position) => model.setRead(position) && render())
      .catch((err) => view.setState(failed ? "error" : "offline", `Could not mark read: ${explain(err)}`));
  }

  render();
  return { model, view, fail, setState };
}

/** @returns {string} a sentence for a refusal, in the person's terms */
export function explain(err) {
  const code = err && err.code;
  if (code === "forbidden") return "You may not read this feed.";
  if (code === "unauthorized") return "Your session for notifications has expired.";
  return `Notifications are unavailable (${(err && err.message) || err}).`;
}
