/**
 * The notification feed for other sites, in one tag (docs/embed.md), classic or module:
 *
 * ```html
 * <script src="https://HOST/static/realtime/embed.js" data-token-url="/rt-token" data-user="42"></script>
 * <script type="module" src="https://HOST/static/realtime/embed.js" data-token-url="/rt-token" data-user="42"></script>
 * ```
 *
 * It is the feed's file, kept at the URL sites already paste (the core's own static files,
 * static/realtime/, depend on no app). A loader only: no static import, no export and no
 * `import.meta`, which are syntax errors in a classic script. It finds its tag and loads the widget, which belongs to the
 * feed (/static/feed/embed-widget.js, resolved against this file's own URL), with a
 * dynamic `import()`. A classic tag is `document.currentScript`, run once per tag; a
 * module runs once per page, and the widget then finds every module tag.
 * Wrapped in a function so that two classic tags do not declare the same names twice.
 * @module feed/embed-loader
 */

(() => {
  "use strict";

  const WIDGET = "../feed/embed-widget.js";
  const tag = document.currentScript;

  const failed = (err) => console.error("realtime embed: the widget could not be loaded", err);

  if (tag) {
    // Claimed at once: a module tag of the same page, run later, must not draw it again.
    tag.dataset.rtMounted = "1";
    import(new URL(WIDGET, tag.src).href).then((widget) => widget.mount(tag), failed);
  } else {
    // A module: the specifier resolves against this module's own URL.
    import(WIDGET).then((widget) => widget.mountAll(), failed);
  }
})();
