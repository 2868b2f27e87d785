// ipywidgets 8 typesets widget labels with the MathJax 2 API (MathJax.Hub.Queue), but this site
// loads MathJax 3: give it a Hub whose Queue calls MathJax 3's typesetPromise. Loaded (by conf.py)
// on pages with widget snapshots, after Sphinx's `window.MathJax = {...}` configuration and
// before MathJax itself, which is deferred.
(function () {
  function hub() {
    return {
      Queue: function (job) {
        var mj = window.MathJax;
        var element = job && job[2];
        if (mj && mj.startup && mj.startup.promise && mj.typesetPromise) {
          mj.startup.promise.then(function () {
            return mj.typesetPromise(element ? [element] : undefined);
          });
        }
        // Before MathJax is ready there is nothing to do: its start-up typesets the whole page.
      },
    };
  }
  var config = (window.MathJax = window.MathJax || {});
  config.Hub = hub();
  config.startup = config.startup || {};
  var ready = config.startup.ready;
  config.startup.ready = function () {
    if (ready) {
      ready();
    } else {
      window.MathJax.startup.defaultReady();
    }
    window.MathJax.Hub = window.MathJax.Hub || hub();
  };
})();
