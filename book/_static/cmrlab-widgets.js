/*
 * Lets the vendored ipywidgets embed manager work without network. Loaded on pages that carry
 * saved widget state, after vendor/requirejs/require.js and before
 * vendor/jupyter-widgets/embed-amd.js (the order is set by nb_ipywidgets_js in _config.yml).
 */
(function () {
  "use strict";
  var base = new URL("vendor/jupyter-widgets/", document.currentScript.src).href;

  // Each module of embed-amd.js takes its webpack public path (where its CSS finds the Font
  // Awesome fonts) from the folder of its own AMD module URL. Map every module id that the
  // bundle defines to a name directly in `base`, so that all of them look for the fonts there.
  // Third-party widget modules (not in the bundle) are looked up under
  // vendor/jupyter-widgets/modules/<name>@<version>/dist/index.js, never on a CDN:
  // embed-amd.js is given data-jupyter-widgets-cdn="modules/" and data-jupyter-widgets-cdn-only.
  window.__jupyter_widgets_assets_path__ = base;
  window.requirejs.config({
    baseUrl: base,
    paths: {
      "@jupyter-widgets/base": "base",
      "@jupyter-widgets/base7": "base7",
      "@jupyter-widgets/controls": "controls",
      "@jupyter-widgets/controls7": "controls7",
      "@jupyter-widgets/html-manager": "html-manager",
      "@jupyter-widgets/html-manager/dist/libembed-amd": "libembed-amd",
    },
  });

  // ipywidgets typesets widget labels with the MathJax 2 API (MathJax.Hub.Queue); the site runs
  // MathJax 3, which has no Hub. Give MathJax 3 a Hub.Queue that forwards to typesetPromise.
  // The widgets are rendered on the window "load" event, so add it just before.
  window.addEventListener("load", function () {
    var mj = window.MathJax;
    if (!mj || mj.Hub || !mj.startup) {
      return;
    }
    mj.Hub = {
      Queue: function (job) {
        var element = job && job[2];
        mj.startup.promise.then(function () {
          return mj.typesetPromise(element ? [element] : undefined);
        });
      },
    };
  });
})();
