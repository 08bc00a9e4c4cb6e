/* s3dest dashboard: a little progressive enhancement, no framework, no build step.
 * - live key preview on the destination form (debounced, via POST /ui/api/key-preview)
 * - Test connection without leaving the page (POST /ui/api/destinations/{id}/test)
 * - a chosen amp.yaml file is loaded into the text box
 * - Test these settings: the connection test on the form's values, before saving
 * - times in the reader's local time zone (UTC on hover)
 * Every form also works without JavaScript.
 */
(function () {
  "use strict";

  function csrf() {
    return document.body.getAttribute("data-csrf") || "";
  }

  function postJSON(url, body, signal) {
    return fetch(url, {
      method: "POST",
      credentials: "same-origin",
      headers: { "Content-Type": "application/json", "X-CSRF-Token": csrf() },
      body: JSON.stringify(body || {}),
      signal: signal,
    }).then(function (response) {
      if (response.status === 401) {
        window.location.href = "/signin?next=" + encodeURIComponent(window.location.pathname);
        throw new Error("signed out");
      }
      return response.json();
    });
  }

  /* -- live key preview ------------------------------------------------------------- */
  function setupPreview() {
    var input = document.querySelector("textarea[data-preview]");
    if (!input) return;
    var box = document.getElementById(input.getAttribute("data-preview"));
    if (!box) return;
    var endpoint = box.getAttribute("data-endpoint");
    var readEl = document.getElementById("preview-read");
    var subEl = document.getElementById("preview-subscribe");
    var errorEl = document.getElementById("preview-error");
    var warnBox = document.getElementById("preview-warnings-box");
    var warnList = document.getElementById("preview-warnings");
    var statusEl = document.getElementById("preview-status");
    var recentBox = document.getElementById("preview-recent-box");
    var recentList = document.getElementById("preview-recent");
    var recentNone = document.getElementById("preview-recent-none");
    var destination = box.getAttribute("data-destination");
    var timer = null;
    var controller = null;
    var sequence = 0;

    function show(result) {
      box.classList.remove("pending");
      if (result.ok) {
        readEl.textContent = result.sampleKeys.read;
        subEl.textContent = result.sampleKeys.subscribe;
        errorEl.hidden = true;
        errorEl.textContent = "";
        input.removeAttribute("aria-invalid");
        // The server's error from the last submit no longer applies to this template.
        var stale = document.getElementById(input.id + "-error");
        if (stale) stale.hidden = true;
        warnList.textContent = "";
        (result.warnings || []).forEach(function (w) {
          var li = document.createElement("li");
          li.textContent = w;
          warnList.appendChild(li);
        });
        warnBox.hidden = !(result.warnings && result.warnings.length);
        showRecent(result.recentKeys || []);
        statusEl.textContent = result["default"] ? "Default template" : "Template OK";
      } else {
        readEl.textContent = "—";
        subEl.textContent = "—";
        errorEl.textContent =
          typeof result.error === "string"
            ? result.error
            : (result.error && result.error.message) || "Invalid template";
        errorEl.hidden = false;
        warnBox.hidden = true;
        if (recentBox) recentBox.hidden = true;
        if (recentNone) recentNone.hidden = true;
        statusEl.textContent = "Template has an error";
      }
      box.setAttribute("data-template", input.value);
    }

    function showRecent(recent) {
      if (!recentList) return;
      recentList.textContent = "";
      recent.forEach(function (r) {
        var li = document.createElement("li");
        li.setAttribute("data-event-id", r.eventId);
        var link = document.createElement("a");
        link.className = "mono small";
        link.href = "/messages/" + encodeURIComponent(r.eventId);
        link.textContent = r.eventId;
        li.appendChild(link);
        li.appendChild(document.createTextNode(" "));
        var out = document.createElement(r.key !== null ? "code" : "span");
        out.className = r.key !== null ? "key" : "field-error";
        out.textContent = r.key !== null ? r.key : r.error;
        li.appendChild(out);
        recentList.appendChild(li);
      });
      recentBox.hidden = !recent.length;
      recentNone.hidden = !!recent.length;
    }

    function refresh() {
      var mine = ++sequence;
      if (controller) controller.abort();
      controller = window.AbortController ? new AbortController() : null;
      box.classList.add("pending");
      statusEl.textContent = "Checking…";
      var request = { keyTemplate: input.value };
      if (destination) request.destination = destination;
      postJSON(endpoint, request, controller ? controller.signal : undefined)
        .then(function (result) {
          if (mine === sequence) show(result);
        })
        .catch(function (err) {
          if (err && err.name === "AbortError") return;
          if (mine === sequence) {
            box.classList.remove("pending");
            statusEl.textContent = "Preview unavailable";
          }
        });
    }

    input.addEventListener("input", function () {
      if (timer) clearTimeout(timer);
      timer = setTimeout(refresh, 300);
    });
    box.setAttribute("data-template", input.value);
  }

  /* -- Test connection -------------------------------------------------------------- */
  function setupTestButtons() {
    var forms = document.querySelectorAll("form[data-test-connection]");
    Array.prototype.forEach.call(forms, function (form) {
      form.addEventListener("submit", function (event) {
        event.preventDefault();
        var id = form.getAttribute("data-test-connection");
        var target = document.getElementById("test-result-" + id);
        var button = form.querySelector("button");
        button.disabled = true;
        var label = button.textContent;
        button.textContent = "Testing…";
        target.innerHTML = '<p class="muted">Writing a test object…</p>';
        postJSON("/ui/api/destinations/" + encodeURIComponent(id) + "/test", {})
          .then(function (result) {
            if (result.html) {
              target.innerHTML = result.html; // rendered (and escaped) by the server
              showStatus(form, result.status);
            } else {
              target.textContent = (result.error && result.error.message) || "Test failed";
            }
          })
          .catch(function () {
            target.textContent = "The test could not be run; reload the page and try again.";
          })
          .then(function () {
            button.disabled = false;
            button.textContent = label;
          });
      });
    });
  }

  /* The status the test left the destination in (failing with its diagnosis, or
   * healthy: again, or for the first time after "untested"), on its card's badge. */
  function showStatus(form, status) {
    var card = form.closest ? form.closest("article.dest") : null;
    if (!card || !status) return;
    var badge = card.querySelector(".badge");
    if (!badge) return;
    badge.className = "badge badge-" + status;
    badge.setAttribute("data-status", status);
    badge.textContent = status.charAt(0).toUpperCase() + status.slice(1);
    card.className = card.className.replace(/\bstatus-\w+/, "status-" + status);
    var note = card.querySelector(".untested-note");
    if (note && status !== "untested") note.parentNode.removeChild(note);
  }

  /* -- Test these settings (before saving) ------------------------------------------ */
  function setupDraftTest() {
    var button = document.querySelector("button[data-draft-test]");
    var form = document.getElementById("destination-form");
    var target = document.getElementById("draft-test-result");
    if (!button || !form || !target || !window.FormData) return;
    button.addEventListener("click", function (event) {
      event.preventDefault();
      var label = button.textContent;
      button.disabled = true;
      button.textContent = "Testing…";
      target.innerHTML = '<p class="muted">Writing a test object with these settings…</p>';
      fetch("/ui/api/draft-test", {
        method: "POST",
        credentials: "same-origin",
        headers: { "X-CSRF-Token": csrf() },
        body: new FormData(form),
      })
        .then(function (response) {
          if (response.status === 401) {
            window.location.href = "/signin?next=" + encodeURIComponent(window.location.pathname);
            throw new Error("signed out");
          }
          return response.json();
        })
        .then(function (result) {
          if (result.html) {
            target.innerHTML = result.html; // rendered (and escaped) by the server
            return;
          }
          var box = document.createElement("div");
          box.className = "result result-error";
          box.setAttribute("role", "alert");
          var title = document.createElement("strong");
          title.textContent = result.invalid
            ? "Not tested: fix these fields first."
            : (result.error && result.error.message) || "The test could not be run.";
          box.appendChild(title);
          var list = document.createElement("ul");
          Object.keys(result.fields || {}).forEach(function (name) {
            var li = document.createElement("li");
            li.textContent = name + ": " + result.fields[name];
            list.appendChild(li);
          });
          if (list.childNodes.length) box.appendChild(list);
          target.textContent = "";
          target.appendChild(box);
        })
        .catch(function () {
          target.textContent = "The test could not be run; reload the page and try again.";
        })
        .then(function () {
          button.disabled = false;
          button.textContent = label;
        });
    });
  }

  /* -- amp.yaml file ---------------------------------------------------------------- */
  function setupManifestFile() {
    var file = document.getElementById("file");
    var source = document.getElementById("source");
    if (!file || !source || !window.FileReader) return;
    file.addEventListener("change", function () {
      if (!file.files || !file.files[0]) return;
      var reader = new FileReader();
      reader.onload = function () {
        source.value = String(reader.result);
        file.value = "";
        source.focus();
      };
      reader.readAsText(file.files[0]);
    });
  }

  /* -- times: the reader's local time, UTC on hover ---------------------------------- */
  var LOCAL = {
    year: "numeric", month: "short", day: "numeric",
    hour: "2-digit", minute: "2-digit", second: "2-digit", timeZoneName: "short",
  };

  function localTimes() {
    var times = document.querySelectorAll("time[datetime][data-utc]");
    Array.prototype.forEach.call(times, function (el) {
      var when = new Date(el.getAttribute("datetime"));
      if (isNaN(when.getTime())) return;
      var local = when.toLocaleString(undefined, LOCAL);
      var utc = el.getAttribute("data-utc");
      if (el.hasAttribute("data-local")) {
        el.textContent = local; // absolute: local in the page, UTC on hover
        el.title = utc;
      } else {
        el.title = local + " (" + utc + ")"; // relative: both on hover
      }
    });
  }

  function focusErrors() {
    var summary = document.getElementById("error-summary") || document.getElementById("manifest-errors");
    if (summary) summary.focus();
  }

  document.addEventListener("DOMContentLoaded", function () {
    setupPreview();
    setupTestButtons();
    setupDraftTest();
    setupManifestFile();
    localTimes();
    focusErrors();
  });
})();
