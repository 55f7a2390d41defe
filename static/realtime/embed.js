/**
 * The notification feed for other sites, in one tag (docs/embed.md):
 *
 * ```html
 * <script type="module" src="https://HOST/static/realtime/embed.js" data-token-url="/rt-token"></script>
 * ```
 *
 * Draws the bell, unread count and list right after the tag, in an open shadow root (no
 * styles cross either way), and connects to the server that served this file. The token is
 * `data-token` (fixed) or comes from `data-token-url`, fetched again before its `exp` and
 * after a 4501 close; the feed then carries on from its position (`since`). Without a
 * valid token the widget shows an error: it never reads anonymously. `data-user` reads
 * `user:<id>` other than the token's `sub` (needs a `subs` grant).
 * @module realtime/embed
 */

import { RealtimeClient } from "./client.js";
import { explain, startFeed } from "../feed/feed.js";
import { FeedHttp } from "../feed/http.js";
import { FeedModel } from "../feed/model.js";
import { FeedView } from "../feed/view.js";
import { claimsOf, fetchToken, renewDelay } from "../feed/token.js";

const HERE = new URL(import.meta.url);
const SERVER = HERE.origin;
const WS_URL = `${HERE.protocol === "https:" ? "wss" : "ws"}://${HERE.host}/ws/`;
/** Waits between attempts to fetch a token, in ms: the last one repeats. */
const TOKEN_RETRY = [1000, 2000, 5000, 10000, 30000];

/** @returns {HTMLScriptElement[]} the tags that load this module and have no widget yet */
function ownScripts() {
  return [...document.querySelectorAll("script[src]")].filter((script) => {
    const src = new URL(script.src, document.baseURI);
    return src.origin === HERE.origin && src.pathname === HERE.pathname && !script.dataset.rtMounted;
  });
}

/** Renews the token before `exp` and after a 4501, and reconnects with the new one. */
class TokenKeeper {
  constructor({ url, client, feed }) {
    this.url = url;
    this.client = client;
    this.feed = feed;
    this.timer = null;
    this.failures = 0;
  }

  /** Use `token` now and plan its replacement. */
  use(token) {
    this.client.token = token;
    clearTimeout(this.timer);
    const { exp } = claimsOf(token);
    if (this.url && typeof exp === "number") this.timer = setTimeout(() => this.renew(), renewDelay(exp));
  }

  async renew() {
    clearTimeout(this.timer);
    let token;
    try {
      token = await fetchToken(this.url);
    } catch (err) {
      const wait = TOKEN_RETRY[Math.min(this.failures, TOKEN_RETRY.length - 1)];
      this.failures += 1;
      this.feed.setState("error", `Could not renew the token (${err.message}); retrying.`);
      this.timer = setTimeout(() => this.renew(), wait);
      return;
    }
    this.failures = 0;
    this.use(token);
    // A fresh socket with the fresh token: subscriptions resume from their position.
    this.client.disconnect();
    this.client.connect();
  }
}

async function mount(script) {
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
      await new Promise((resolve) => setTimeout(resolve, TOKEN_RETRY[Math.min(attempt, TOKEN_RETRY.length - 1)]));
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

  const client = new RealtimeClient({ url: WS_URL, token, autoConnect: false });
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
    if (code === 4501 && tokenUrl) keeper.renew();
    else feed.fail(code === 4501 ? explain({ code: "unauthorized" }) : `Disconnected by the server (${code}).`);
  });
  client.connect();
  host.feed = feed;
}

for (const script of ownScripts()) mount(script);
