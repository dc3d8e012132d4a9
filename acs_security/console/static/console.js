// acs-security web console: the little the pages do in the browser (docs/console.md).
// Served by the ACS itself; the Content-Security-Policy allows no inline script, so every
// behaviour is wired here from data- attributes of the server-rendered markup:
//   data-live-url   a job's live part, fetched again every data-interval seconds until final
//   data-lint-url   the policy editor's lint, fetched as the text changes
//   data-confirm    a question asked before a form is sent
(function () {
  "use strict";

  function csrf() {
    var input = document.querySelector('input[name="csrf"]');
    return input ? input.value : "";
  }

  function fragment(text, id) {
    var doc = new DOMParser().parseFromString(text, "text/html");
    var node = doc.getElementById(id) || doc.getElementById("problem");
    return node ? document.importNode(node, true) : null;
  }

  function live(section) {
    var url = section.getAttribute("data-live-url");
    var interval = 1000 * (parseFloat(section.getAttribute("data-interval")) || 2);
    if (section.getAttribute("data-final") === "true") {
      return;
    }
    function again(delay) {
      window.setTimeout(tick, delay);
    }
    function tick() {
      fetch(url, {credentials: "same-origin", cache: "no-store"}).then(function (response) {
        if (response.status === 401) {
          window.location.reload();  // signed out or revoked: the page goes to sign-in
          return null;
        }
        return response.text().then(function (text) {
          return {ok: response.ok, text: text};
        });
      }).then(function (result) {
        if (result === null) {
          return;
        }
        var inner = result.ok ? fragment(result.text, "live-inner") : null;
        if (inner === null || inner.id !== "live-inner") {
          again(interval * 2);  // a passing problem (a database outage answers 503): keep trying
          return;
        }
        section.replaceChildren(inner);
        section.setAttribute("data-updated", String(Date.now()));
        if (inner.getAttribute("data-final") === "true") {
          window.location.reload();  // the job is over: the phone list shows the final outcomes
          return;
        }
        again(interval);
      }).catch(function () {
        again(interval * 2);
      });
    }
    again(interval);
  }

  function lint(textarea) {
    var url = textarea.getAttribute("data-lint-url");
    var target = document.getElementById("lint");
    var timer = null;
    var sequence = 0;
    function run() {
      var mine = ++sequence;
      var body = new URLSearchParams();
      body.set("csrf", csrf());
      body.set("policy", textarea.value);
      var name = document.getElementById("policy_name");
      if (name) {
        body.set("policy_name", name.value);
      }
      fetch(url, {method: "POST", credentials: "same-origin", body: body,
                  headers: {"X-CSRF-Token": csrf()}}).then(function (response) {
        if (response.status === 401) {
          window.location.reload();
          return null;
        }
        return response.text();
      }).then(function (text) {
        if (text === null || mine !== sequence) {
          return;  // a later lint is on its way
        }
        var result = fragment(text, "lint-result");
        if (result !== null) {
          target.replaceChildren(result);
          target.setAttribute("data-linted", String(mine));
        }
      });
    }
    textarea.addEventListener("input", function () {
      window.clearTimeout(timer);
      timer = window.setTimeout(run, 400);
    });
  }

  function confirmations() {
    document.querySelectorAll("form[data-confirm]").forEach(function (form) {
      form.addEventListener("submit", function (event) {
        if (!window.confirm(form.getAttribute("data-confirm"))) {
          event.preventDefault();
        }
      });
    });
    document.querySelectorAll("button[data-confirm]").forEach(function (button) {
      button.addEventListener("click", function (event) {
        if (!window.confirm(button.getAttribute("data-confirm"))) {
          event.preventDefault();
        }
      });
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    document.querySelectorAll("[data-live-url]").forEach(live);
    document.querySelectorAll("textarea[data-lint-url]").forEach(lint);
    confirmations();
  });
}());
