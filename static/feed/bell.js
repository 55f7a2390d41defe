/**
 * The bell in the site's navigation (templates/feed/bell.html): the signed-in person's
 * feed over the session cookie, read state over the API with the CSRF token.
 * @module feed/bell
 */

import { pageClient } from "../realtime/client.js";
import { startFeed } from "./feed.js";
import { FeedHttp } from "./http.js";

const host = document.getElementById("feed-bell");
if (host && host.dataset.userId) {
  const userId = host.dataset.userId;
  const client = pageClient();
  const feed = startFeed({
    root: host.attachShadow({ mode: "open" }),
    client,
    http: new FeedHttp({ base: location.origin, userId, csrf: host.dataset.csrf }),
    stream: `user:${userId}`,
    align: "end",
  });
  client.on("closed", ({ code }) => feed.fail(`Disconnected by the server (${code}); reload the page.`));
  host.feed = feed;
}
