/**
 * `@username` mentions in a message's text, cut into pieces the view turns into text
 * nodes and `<span class="mention">` (never markup: the pieces are text). A username is
 * what Django's validator takes, `[\w.@+-]` with `\w` in Unicode; no DOM.
 * @module chat/mentions
 */

/** `@` not glued to the end of a word (so `bob@example.com` is no mention), then the name. */
const MENTION = /(?<![\p{L}\p{N}_.@+-])@([\p{L}\p{N}_.@+-]+)/gu;

/**
 * @typedef {{text: string, name?: string}} Piece a run of the text; with `name`, the
 *   mention of that username (`text` is `@` and the name)
 */

/**
 * Cut `text` into plain runs and mentions; joined again, the pieces give `text` back.
 * Dots that end a mention are the sentence's, not the name's ("thanks @bob."): a
 * username may hold dots, but rarely ends with one.
 * @param {string} text
 * @returns {Piece[]}
 */
export function mentionPieces(text) {
  const pieces = [];
  let from = 0;
  for (const match of text.matchAll(MENTION)) {
    const name = match[1].replace(/\.+$/, "");
    if (!name) continue;
    if (match.index > from) pieces.push({ text: text.slice(from, match.index) });
    pieces.push({ text: `@${name}`, name });
    from = match.index + 1 + name.length;
  }
  if (from < text.length) pieces.push({ text: text.slice(from) });
  return pieces;
}

/**
 * @param {Piece[]} pieces
 * @param {string | null | undefined} username the reader's, if signed in
 * @returns {boolean} whether one of them mentions `username` (exactly: Django's usernames
 *   are case-sensitive, `Bob` is another person)
 */
export function mentions(pieces, username) {
  return Boolean(username) && pieces.some((piece) => piece.name === username);
}
