// The book's equations and its offline widgets on one page. The widget manager (embed-amd.js)
// typesets widget labels with MathJax 2's `MathJax.Hub.Queue` whenever `window.MathJax` exists;
// MathJax 3 (_static/mathjax/tex-svg.js, on pages with maths) has no `Hub`. This file runs after
// Sphinx's inline `window.MathJax = {...}` configuration and near MathJax itself (both
// deferred): it gives `window.MathJax` a `Hub` that typesets with MathJax 3, whichever it is
// when this runs: MathJax itself (loaded first) or still its configuration, in which case the
// MathJax object gets the `Hub` again once it has replaced the configuration.
(function () {
  "use strict";
  if (window.MathJax === undefined) {
    return;  // a page without maths: no MathJax, and the widget manager does not call it
  }
  var hub = {
    Queue: function (job) {
      var mj = window.MathJax;
      if (mj && typeof mj.typesetPromise === "function") {
        mj.typesetPromise(job && job[2] ? [job[2]] : undefined).catch(function () {});
      }
    }
  };
  window.MathJax.Hub = hub;
  if (window.MathJax.version !== undefined) {
    return;  // MathJax 3 is loaded already
  }
  var startup = window.MathJax.startup || {};
  window.MathJax.startup = Object.assign({}, startup, {
    ready: function () {
      window.MathJax.startup.defaultReady();
      window.MathJax.Hub = hub;
    }
  });
})();
