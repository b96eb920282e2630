// FactoryHub's JupyterLab plugin, shipped as a prebuilt federated extension written by hand:
// a module-federation container (init/get) whose "./extension" module exports one plugin. It
// imports nothing from JupyterLab's shared scope; it uses two of JupyterLab's own commands,
// docmanager:save-all and apputils:notify, so no build toolchain is needed.
//
// Every POLL_MS it reads the session's clock from the server extension
// (GET <base_url>factoryhub/session). Once Slurm's walltime warning has come (or the time left
// is under the session's warning lead), it saves every open document and shows a notification
// that stays until dismissed.
var _JUPYTERLAB;
(function () {
  "use strict";
  var POLL_MS = 15000;

  function endText(info) {
    if (!info.end) {
      return "soon";
    }
    return new Date(info.end).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
  }

  function due(info) {
    if (info.warned) {
      return true;
    }
    return info.seconds_left !== null && info.warn_seconds !== null &&
      info.seconds_left <= info.warn_seconds;
  }

  function headers() {
    // Cookie-authenticated API calls to a JupyterHub single-user server need the XSRF token,
    // GETs included (JupyterLab's own requests send it the same way).
    var xsrf = document.cookie.match(/(?:^|;\s*)_xsrf=([^;]*)/);
    return xsrf ? { "X-XSRFToken": decodeURIComponent(xsrf[1]) } : {};
  }

  var plugin = {
    id: "factoryhub-session:walltime-warning",
    description: "Warns before the session's walltime ends and saves open documents.",
    autoStart: true,
    activate: function (app) {
      var url = app.serviceManager.serverSettings.baseUrl + "factoryhub/session";
      var done = false;
      var timer = null;

      function check() {
        if (done) {
          return;
        }
        fetch(url, { credentials: "same-origin", cache: "no-store", headers: headers() })
          .then(function (reply) { return reply.ok ? reply.json() : null; })
          .then(function (info) {
            if (!info || done || !due(info)) {
              return;
            }
            done = true;
            window.clearInterval(timer);
            return app.commands.execute("docmanager:save-all")
              .catch(function () { return null; })
              .then(function () {
                return app.commands.execute("apputils:notify", {
                  message: "This session ends at " + endText(info) + " (its Slurm time limit)." +
                    " Your open documents were saved; save any other work and finish up.",
                  type: "warning",
                  options: { autoClose: false }
                });
              });
          })
          .catch(function () { return null; });
      }

      timer = window.setInterval(check, POLL_MS);
      app.restored.then(check);
    }
  };

  _JUPYTERLAB = window._JUPYTERLAB = window._JUPYTERLAB || {};
  window._JUPYTERLAB["factoryhub-session"] = {
    init: function () { return Promise.resolve(); },
    get: function (module) {
      if (module !== "./extension") {
        return Promise.reject(new Error("factoryhub-session has no module " + module));
      }
      return Promise.resolve(function () { return { __esModule: true, default: [plugin] }; });
    }
  };
})();
