// FactoryHub's JupyterLab plugins, shipped as a prebuilt federated extension written by hand:
// a module-federation container (init/get) whose "./extension" module exports the plugins
// below. No build toolchain: the plugins import no JupyterLab token. They use JupyterLab's own
// commands (docmanager:save-all, apputils:notify, apputils:dismiss-notification), declare
// their menu entry in their settings schema (schemas/factoryhub-session/support.json,
// `jupyter.lab.menus`), and talk only to the session's server extension
// (<base_url>factoryhub/…, `factoryhub.session`), which asks the hub service with the
// session's own token.
//
// - walltime-warning: once Slurm's walltime warning has come (or the time left is under the
//   session's lead), saves every open document and shows a notification that stays.
// - idle-warning: when the idle culler would stop this session (its GPU rule: idle for
//   gpu_idle_minutes; otherwise idle_minutes) within warn_minutes, saves every open document
//   FIRST, then shows the time left with a "Keep my session" action (POST
//   factoryhub/culling/keep: one more idle period, for this server only). The order is
//   warning + save at (stop − lead), then the culler's stop. Any request through the hub's
//   proxy counts as activity, these polls included, so a visible JupyterLab is never idle;
//   while the page is hidden the plugin stops asking (as JupyterLab's own polls do) and warns
//   from its last answer by a local timer, which can only come early: activity postpones a
//   stop, never advances it. Its save, when something was unsaved, is itself activity.
// - budget-indicator: "12.5 GPU-hours left on training" at the right of the top bar, every
//   BUDGET_MS. The indicator is a Lumino Widget placed with app.shell.add(…, "top"); the
//   Widget class comes from the shared scope JupyterLab hands every federated extension in
//   init() (what a webpack-built extension imports as @lumino/widgets, the same single copy),
//   so no build step is needed and the shell lays it out like its own top-bar items. Without
//   it (a JupyterLab that shares no @lumino/widgets) the same element is fixed at the top
//   right of the page instead.
// - support: Help → "Ask the support centre…" opens a dialog (a native <dialog>) that shows
//   exactly what will be sent (the learner's text, then the context the session gathers:
//   job, node, partition, account, the open notebook, log lines, errors, versions) and sends
//   that, unchanged, to the hub service's support endpoint.
// - announcements: each current announcement once as a notification (the ids shown are kept
//   in localStorage until the announcement expires).
//
// Every poll asks only while the page is visible, with `no_track_activity` so that Jupyter
// Server's own activity clock is not moved by it.
var _JUPYTERLAB;
(function () {
  "use strict";
  var NAME = "factoryhub-session";
  var POLL_MS = 15000; // the walltime clock
  var IDLE_MS = 60000; // the idle outlook
  var BUDGET_MS = 300000;
  var NEWS_MS = 300000;
  var SHOWN_KEY = NAME + ":announcements-shown";
  var shareScope = null; // JupyterLab's shared modules, given to init()

  function headers(json) {
    // Cookie-authenticated API calls to a JupyterHub single-user server need the XSRF token,
    // GETs included (JupyterLab's own requests send it the same way).
    var found = document.cookie.match(/(?:^|;\s*)_xsrf=([^;]*)/);
    var h = found ? { "X-XSRFToken": decodeURIComponent(found[1]) } : {};
    if (json) {
      h["Content-Type"] = "application/json";
    }
    return h;
  }

  // GET or POST <base_url>factoryhub/<path>; resolves to [ok, JSON] (never rejects).
  function call(app, path, body) {
    var url = app.serviceManager.serverSettings.baseUrl + "factoryhub/" + path;
    url += (url.indexOf("?") < 0 ? "?" : "&") + "no_track_activity=1";
    var init = { credentials: "same-origin", cache: "no-store", headers: headers(!!body) };
    if (body) {
      init.method = "POST";
      init.body = JSON.stringify(body);
    }
    return fetch(url, init)
      .then(function (reply) {
        return reply.json().then(
          function (data) { return [reply.ok, data]; },
          function () { return [false, { message: "HTTP " + reply.status }]; }
        );
      })
      .catch(function (err) { return [false, { message: String(err) }]; });
  }

  function visible() {
    return document.visibilityState !== "hidden";
  }

  function clock(date) {
    return date.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
  }

  function notify(app, message, type, options) {
    return app.commands.execute("apputils:notify", {
      message: message, type: type, options: options || { autoClose: false }
    }).catch(function () { return null; });
  }

  function dismiss(app, id) {
    if (id) {
      app.commands.execute("apputils:dismiss-notification", { id: id }).catch(function () {});
    }
  }

  function saveAll(app) {
    return app.commands.execute("docmanager:save-all").catch(function () { return null; });
  }

  // --- walltime -------------------------------------------------------------------------

  function endText(info) {
    return info.end ? clock(new Date(info.end)) : "soon";
  }

  function due(info) {
    if (info.warned) {
      return true;
    }
    return info.seconds_left !== null && info.warn_seconds !== null &&
      info.seconds_left <= info.warn_seconds;
  }

  var walltime = {
    id: NAME + ":walltime-warning",
    description: "Warns before the session's walltime ends and saves open documents.",
    autoStart: true,
    activate: function (app) {
      var done = false;
      var timer = null;

      function check() {
        if (done) {
          return;
        }
        call(app, "session").then(function (result) {
          var info = result[1];
          if (!result[0] || done || !due(info)) {
            return;
          }
          done = true;
          window.clearInterval(timer);
          return saveAll(app).then(function () {
            return notify(app,
              "This session ends at " + endText(info) + " (its Slurm time limit)." +
              " Your open documents were saved; save any other work and finish up.",
              "warning");
          });
        });
      }

      timer = window.setInterval(check, POLL_MS);
      app.restored.then(check);
    }
  };

  // --- idle culling ---------------------------------------------------------------------

  function minutesText(seconds) {
    var minutes = Math.max(1, Math.round(seconds / 60));
    return minutes === 1 ? "about a minute" : "about " + minutes + " minutes";
  }

  // JupyterLab cuts a notification's message at 140 characters: these stay under it.
  function idleMessage(outlook, stopAt) {
    var when = "this session stops at " + clock(new Date(stopAt)) + " (in " +
      minutesText((stopAt - Date.now()) / 1000) + ")";
    var what = outlook.rule === "gpu"
      ? "Idle with " + outlook.gpus + " GPU" + (outlook.gpus === 1 ? "" : "s") + ": " + when +
        " to free " + (outlook.gpus === 1 ? "it" : "them") + "."
      : "Idle: " + when + ".";
    return what + " Your documents were saved.";
  }

  var idle = {
    id: NAME + ":idle-warning",
    description: "Warns before the idle culler stops this session, saves, and keeps it on request.",
    autoStart: true,
    activate: function (app) {
      var warned = { stopAt: 0, id: null };
      var hiddenTimer = null;
      var last = null; // [outlook, the time it was read]

      app.commands.addCommand("factoryhub:keep-session", {
        label: "Keep my session",
        execute: function () {
          return call(app, "culling/keep", {}).then(function (result) {
            var data = result[1];
            dismiss(app, warned.id);
            warned.id = null;
            if (!result[0]) {
              return notify(app, "Not kept: " + data.message, "error");
            }
            last = [data, Date.now()];
            schedule();
            var until = data.kept_until ? clock(new Date(data.kept_until)) : "later";
            return notify(app, "Kept: this session will not be stopped for being idle before " +
              until + ".", "success", { autoClose: 15000 });
          });
        }
      });

      function stopAtOf(entry) {
        var outlook = entry[0];
        if (!outlook.rule || outlook.seconds_left === null || outlook.seconds_left === undefined) {
          return null;
        }
        return entry[1] + outlook.seconds_left * 1000;
      }

      function warn(entry, stopAt) {
        if (warned.id && Math.abs(warned.stopAt - stopAt) < 60000) {
          return; // this stop was announced already
        }
        dismiss(app, warned.id);
        warned.stopAt = stopAt;
        // the documents first, then the notification that says they were saved
        saveAll(app).then(function () {
          return notify(app, idleMessage(entry[0], stopAt), "warning", {
            autoClose: false,
            actions: [{
              label: "Keep my session", commandId: "factoryhub:keep-session",
              displayType: "accent", caption: "Keep this session for one more idle period"
            }]
          });
        }).then(function (id) {
          warned.id = id;
        });
      }

      function schedule() {
        // the warning by the page's own clock, for a page that has stopped asking
        window.clearTimeout(hiddenTimer);
        var stopAt = last && stopAtOf(last);
        if (!stopAt) {
          return;
        }
        var lead = last[0].warn_minutes * 60000;
        hiddenTimer = window.setTimeout(function () {
          if (!visible()) {
            warn(last, stopAt);
          }
        }, Math.max(0, stopAt - lead - Date.now()));
      }

      function check() {
        if (!visible()) {
          return;
        }
        call(app, "culling").then(function (result) {
          if (!result[0]) {
            return;
          }
          last = [result[1], Date.now()];
          var stopAt = stopAtOf(last);
          if (stopAt && stopAt - Date.now() <= result[1].warn_minutes * 60000) {
            warn(last, stopAt);
          } else if (warned.id) {
            dismiss(app, warned.id); // active again, or kept: no stop to announce
            warned.id = null;
          }
          schedule();
        });
      }

      window.setInterval(check, IDLE_MS);
      document.addEventListener("visibilitychange", check);
      app.restored.then(check);
    }
  };

  // --- budget indicator -----------------------------------------------------------------

  function sharedModule(name) {
    var versions = shareScope && shareScope[name];
    if (!versions) {
      return Promise.resolve(null);
    }
    var newest = Object.keys(versions).sort(function (a, b) {
      var pa = a.split(/[.-]/).map(Number), pb = b.split(/[.-]/).map(Number);
      for (var i = 0; i < 3; i++) {
        if ((pa[i] || 0) !== (pb[i] || 0)) {
          return (pa[i] || 0) - (pb[i] || 0);
        }
      }
      return 0;
    }).pop();
    return Promise.resolve(versions[newest].get())
      .then(function (factory) { return factory(); })
      .catch(function () { return null; });
  }

  var STYLE = "padding:0 12px;font-size:var(--jp-ui-font-size1);line-height:28px;" +
    "white-space:nowrap;color:var(--jp-ui-font-color1);";

  function indicatorNode(app) {
    return sharedModule("@lumino/widgets").then(function (lumino) {
      if (lumino && lumino.Widget) {
        var widget = new lumino.Widget();
        widget.id = "fh-budget";
        widget.addClass("fh-budget");
        widget.node.setAttribute("style", STYLE + "display:flex;align-items:center;");
        app.shell.add(widget, "top", { rank: 1000 });
        return widget.node;
      }
      var node = document.createElement("div");
      node.id = "fh-budget";
      node.className = "fh-budget";
      node.setAttribute("style", STYLE + "position:fixed;top:0;right:0;z-index:10;");
      document.body.appendChild(node);
      return node;
    });
  }

  var budget = {
    id: NAME + ":budget-indicator",
    description: "Shows the GPU-hours (or CPU-hours) left on the session's Slurm account.",
    autoStart: true,
    activate: function (app) {
      var node = null;

      function refresh() {
        if (!node || !visible()) {
          return;
        }
        call(app, "budget").then(function (result) {
          var data = result[1];
          if (!result[0] || !data.indicator) {
            node.textContent = "";
            node.title = "";
            return;
          }
          node.textContent = data.indicator;
          node.title = data.details || data.indicator;
        });
      }

      app.restored.then(function () { return indicatorNode(app); }).then(function (made) {
        node = made;
        refresh();
        window.setInterval(refresh, BUDGET_MS);
      });
    }
  };

  // --- ask the support centre -----------------------------------------------------------

  var ATTACHED = "\n\n--- attached by FactoryHub ---\n"; // as factoryhub.support.preview_text

  function element(tag, attributes, text) {
    var node = document.createElement(tag);
    Object.keys(attributes || {}).forEach(function (key) { node.setAttribute(key, attributes[key]); });
    if (text) {
      node.textContent = text;
    }
    return node;
  }

  function openNotebook(app) {
    var widget = app.shell.currentWidget;
    var context = widget && widget.context;
    return context && typeof context.path === "string" ? context.path : "";
  }

  function supportDialog(app, found) {
    var dialog = element("dialog", {
      id: "fh-support-dialog",
      style: "width:min(720px,90vw);background:var(--jp-layout-color1);" +
        "color:var(--jp-ui-font-color1);border:var(--jp-border-width) solid " +
        "var(--jp-border-color1);box-shadow:var(--jp-elevation-z20);padding:16px;"
    });
    var text = element("textarea", {
      "aria-label": "What went wrong?", rows: "5",
      placeholder: "What went wrong? What did you expect, what happened instead?",
      style: "width:100%;box-sizing:border-box;"
    });
    var preview = element("pre", {
      class: "fh-support-preview",
      style: "white-space:pre-wrap;max-height:16em;overflow:auto;padding:8px;" +
        "background:var(--jp-layout-color2);font-size:var(--jp-code-font-size);"
    });
    var result = element("p", { class: "fh-support-result", role: "status" });
    var send = element("button", { class: "jp-Dialog-button jp-mod-accept jp-mod-styled" },
      "Send to support");
    var close = element("button", { class: "jp-Dialog-button jp-mod-reject jp-mod-styled" },
      "Close");
    function show() {
      var message = text.value.trim();
      preview.textContent = (message || "(your message)") + ATTACHED + found.attached;
      send.disabled = !message;
    }
    text.addEventListener("input", show);
    close.addEventListener("click", function () { dialog.close(); });
    dialog.addEventListener("close", function () { dialog.remove(); });
    send.addEventListener("click", function () {
      send.disabled = true;
      var sent = { text: text.value.trim(), context: found.context };
      call(app, "support", sent).then(function (reply) {
        if (!reply[0]) {
          result.textContent = "Not sent: " + reply[1].message;
          send.disabled = false;
          return;
        }
        result.textContent = reply[1].message + " The answer will be on the support page.";
        text.disabled = true;
      });
    });
    var buttons = element("div", { style: "display:flex;gap:8px;justify-content:flex-end;" });
    buttons.append(close, send);
    dialog.append(
      element("h2", { style: "margin-top:0;" }, "Ask the support centre"),
      text,
      element("p", {}, "This is exactly what will be sent:"),
      preview, result, buttons);
    show();
    document.body.appendChild(dialog);
    dialog.showModal();
    text.focus();
  }

  var support = {
    id: NAME + ":support",
    description: "Help → Ask the support centre: a support request with the session's context.",
    autoStart: true,
    activate: function (app) {
      app.commands.addCommand("factoryhub:ask-support", {
        label: "Ask the support centre…",
        caption: "Write to the support centre; you see what is attached before it is sent",
        execute: function () {
          var path = "support/context?notebook=" + encodeURIComponent(openNotebook(app));
          return call(app, path).then(function (result) {
            if (!result[0]) {
              return notify(app, "The support request cannot be prepared: " +
                result[1].message, "error");
            }
            supportDialog(app, result[1]);
          });
        }
      });
    }
  };

  // --- announcements --------------------------------------------------------------------

  function shownIds() {
    try {
      return JSON.parse(window.localStorage.getItem(SHOWN_KEY) || "{}") || {};
    } catch (err) {
      return {};
    }
  }

  var announcements = {
    id: NAME + ":announcements",
    description: "Shows each current announcement of the site once.",
    autoStart: true,
    activate: function (app) {
      function check() {
        if (!visible()) {
          return;
        }
        call(app, "announcements").then(function (result) {
          if (!result[0]) {
            return;
          }
          var shown = shownIds();
          var now = Date.now();
          Object.keys(shown).forEach(function (id) {
            if (new Date(shown[id]).getTime() < now) {
              delete shown[id]; // expired: forgotten
            }
          });
          (result[1].announcements || []).forEach(function (item) {
            if (shown[item.id]) {
              return;
            }
            shown[item.id] = item.expires;
            notify(app, item.text + " (until " + clock(new Date(item.expires)) + ")", "info");
          });
          try {
            window.localStorage.setItem(SHOWN_KEY, JSON.stringify(shown));
          } catch (err) {
            // private mode: shown again on the next page load
          }
          document.body.setAttribute("data-fh-announcements",
            String((result[1].announcements || []).length));
        });
      }
      app.restored.then(check);
      window.setInterval(check, NEWS_MS);
    }
  };

  _JUPYTERLAB = window._JUPYTERLAB = window._JUPYTERLAB || {};
  window._JUPYTERLAB[NAME] = {
    init: function (scope) {
      shareScope = scope || null;
      return Promise.resolve();
    },
    get: function (module) {
      if (module !== "./extension") {
        return Promise.reject(new Error(NAME + " has no module " + module));
      }
      var plugins = [walltime, idle, budget, support, announcements];
      return Promise.resolve(function () { return { __esModule: true, default: plugins }; });
    }
  };
})();
