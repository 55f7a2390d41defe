/**
 * The embed's widget, loaded by its loader (feed/static/realtime/embed.js, served at
 * /static/realtime/embed.js, the URL sites paste) once it has found its tags: the code lives here, with the feed it draws,
 * because a classic `<script>` cannot hold static imports, and the tag must work in both
 * forms (docs/embed.md).
 *
 * Draws the bell, unread count and list right after a tag, in an open shadow root (no
 * styles cross either way), and connects to the server that served this file. The token is
 * `data-token` (fixed) or comes from `data-token-url`, fetched again before its `exp` and
 * after a 4501 close; the feed then carries on from its position (`since`). Without a
 * valid token the widget shows an error: it never reads anonymously. `data-user` names
 * the feed `user:<id>` (else the token's `sub`): the token that docs/embed.md recommends
 * has only a `subs` grant for it, no `sub`.
 * @module feed/embed-widget
 */

import { backoff } from "../realtime/backoff.js";
import { CloseCode, RealtimeClient, State, wsUrl } from "../realtime/client.js";
import { RELOAD_RETRY, explain, startFeed } from "./feed.js";
import { FeedHttp } from "./http.js";
import { FeedModel } from "./model.js";
import { FeedView } from "./view.js";
import { claimsOf, fetchToken, renewAt, timerDelay } from "./token.js";

const HERE = new URL(import.meta.url);
const SERVER = HERE.origin;
/** The loader that tags name in their `src`: /static/realtime/embed.js. */
const LOADER = new URL("../realtime/embed.js", HERE);
/** 4501 closes in a row for tokens that should still be good before the widget gives up. */
const REFUSALS = 3;
/** First wait after such a refusal, in ms; doubled for each one after, with jitter. */
const REFUSED_BACKOFF = 1000;
/** After a refusal: half to all of 1 s, 2 s, 4 s, ... */
const refusedWait = backoff({ base: REFUSED_BACKOFF, jitter: [0.5, 1] });
/** While the token URL fails: 1, 2, 5, 10, then every 30 s (docs/embed.md). */
const tokenUrlWait = backoff({ steps: RELOAD_RETRY });
/**
 * A 4501 within this many ms of connecting is a refusal of the token; later, the token was
 * taken and has run out (served from a cache, renewed late): renew at once, no count.
 */
const REFUSAL_WINDOW = 5000;

/** @returns {HTMLScriptElement[]} the tags that load embed.js and have no widget yet */
function ownScripts() {
  return [...document.querySelectorAll("script[src]")].filter((script) => {
    const src = new URL(script.src, document.baseURI);
    return src.origin === LOADER.origin && src.pathname === LOADER.pathname && !script.dataset.rtMounted;
  });
}

/**
 * Renews the token before `exp` and after a 4501, and reconnects with the new one. A 4501
 * soon after connecting, for a token that should still be good (the site mints with
 * another secret, or its token URL serves an expired token), is a refusal: the widget
 * waits longer after each one and after {@link REFUSALS} in a row shows its error and
 * stops, rather than hammer the token URL and the server. A 4501 on a socket that was up
 * a while only says the token ran out.
 */
class TokenKeeper {
  constructor({ url, client, feed }) {
    this.url = url;
    this.client = client;
    this.feed = feed;
    this.timer = null;
    this.failures = 0;
    this.refusals = 0;
    /** When the current token is due for renewal (this clock); a 4501 before then is a refusal. */
    this.due = Infinity;
    /** When the current socket connected (this clock), null while it is not. */
    this.connectedAt = null;
    this.stopped = false;
    client.on("state", ({ newState }) => {
      if (newState === State.CONNECTED) this.connectedAt = Date.now();
      else if (newState === State.CONNECTING) this.connectedAt = null;
    });
  }

  /** Use `token` now and plan its replacement. */
  use(token) {
    this.client.token = token;
    clearTimeout(this.timer);
    const claims = claimsOf(token);
    this.due = typeof claims.exp === "number" ? renewAt(claims, Date.now()) : Infinity;
    if (this.url && this.due !== Infinity) this._wake(this.due);
  }

  /** Renew at `at`; a timer holds at most ~24.8 days, so a longer wait re-arms when it fires. */
  _wake(at) {
    clearTimeout(this.timer);
    this.timer = setTimeout(() => {
      if (Date.now() < at) return this._wake(at);
      this.refusals = 0; // this token lasted until its renewal: the site's tokens are good
      this.renew();
    }, timerDelay(at));
  }

  /** The server closed with 4501: renew, or back off when it keeps refusing good-looking tokens. */
  refused() {
    if (this.stopped) return;
    const now = Date.now();
    const soon = this.connectedAt === null || now - this.connectedAt < REFUSAL_WINDOW;
    this.connectedAt = null;
    this.refusals = soon && now < this.due ? this.refusals + 1 : 0;
    if (this.refusals >= REFUSALS) {
      this.stop();
      this.feed.fail(
        `The server refused ${REFUSALS} tokens in a row from the token URL (signed with another secret, or already expired?). Reload the page to try again.`,
      );
      return;
    }
    if (this.refusals === 0) return this.renew();
    this.feed.setState("connecting", "The token was refused; trying a new one…");
    clearTimeout(this.timer);
    this.timer = setTimeout(() => this.renew(), refusedWait(this.refusals));
  }

  stop() {
    this.stopped = true;
    clearTimeout(this.timer);
  }

  async renew() {
    clearTimeout(this.timer);
    if (this.stopped) return;
    let token;
    try {
      token = await fetchToken(this.url);
    } catch (err) {
      this.failures += 1;
      const wait = tokenUrlWait(this.failures);
      this.feed.setState("error", `Could not renew the token (${err.message}); retrying.`);
      this.timer = setTimeout(() => this.renew(), wait);
      return;
    }
    if (this.stopped) return;
    this.failures = 0;
    const same = token === this.client.token && this.client.state === State.CONNECTED;
    this.use(token);
    // The token URL served the token in use (a cache): the socket carries on with it.
    if (same) return;
    // A fresh socket with the fresh token: subscriptions resume from their position.
    this.client.disconnect();
    this.client.connect();
  }
}

/** Draw the widget after `script` and start its feed. */
export async function mount(script) {
  script.dataset.rtMounted = "1";
  const host = document.createElement("rt-feed");
  host.className = "rt-feed";
  script.after(host);
  const root = host.attachShadow({ mode: "open" });
  const tokenUrl = script.dataset.tokenUrl ? new URL(script.dataset.tokenUrl, document.baseURI).href : null;
  const align = script.dataset.align === "end" ? "end" : "start";
  const errorOnly = (text) => {
    // No feed without a token: the widget in its error state, connected to nothing.
    root.replaceChildren();
    const view = new FeedView(root, { align, onMarkAllRead: () => {} });
    view.render(new FeedModel());
    view.setState("error", text);
  };

  let token = script.dataset.token || null;
  for (let attempt = 0; !token && tokenUrl; attempt++) {
    try {
      token = await fetchToken(tokenUrl);
    } catch (err) {
      if (attempt === 0) errorOnly(`Could not get a token (${err.message}); retrying.`);
      await new Promise((resolve) => setTimeout(resolve, tokenUrlWait(attempt + 1)));
    }
  }
  if (!token) return errorOnly("No token: set data-token or data-token-url on the script tag.");
  let claims;
  try {
    claims = claimsOf(token);
  } catch (err) {
    return errorOnly("The token is not a JWT.");
  }
  const userId = script.dataset.user || claims.sub;
  if (!userId) return errorOnly("The token names no user (sub), and data-user is not set.");
  if (root.firstChild) root.replaceChildren();

  const client = new RealtimeClient({ url: wsUrl(HERE), token, autoConnect: false });
  const feed = startFeed({
    root,
    client,
    http: new FeedHttp({ base: SERVER, userId: String(userId), token: () => client.token }),
    stream: `user:${userId}`,
    align,
  });
  const keeper = new TokenKeeper({ url: tokenUrl, client, feed });
  keeper.use(token);
  client.on("closed", ({ code }) => {
    if (code === CloseCode.BAD_TOKEN && tokenUrl) keeper.refused();
    else feed.fail(code === CloseCode.BAD_TOKEN ? explain({ code: "unauthorized" }) : `Disconnected by the server (${code}).`);
  });
  client.connect();
  host.feed = feed;
}

/** A widget for each tag of embed.js that has none yet: what a module tag asks for. */
export function mountAll() {
  for (const script of ownScripts()) mount(script);
}
