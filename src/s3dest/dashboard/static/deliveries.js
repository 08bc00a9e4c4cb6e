/* s3dest deliveries page: refresh the counts and tables in place every few seconds.
 * The page is fetched again as HTML and only the #live region is swapped, so there is no
 * full-page flicker, the search form keeps what is typed, and without JavaScript the page
 * is the same (with its Refresh button). A refresh waits while you are using the region:
 * a ticked box, focus inside it, or a hidden tab.
 */
(function () {
  "use strict";

  function setup() {
    var live = document.getElementById("live");
    var toggle = document.getElementById("auto-refresh");
    var stamp = document.getElementById("refreshed");
    if (!live || !toggle) return;
    var seconds = parseInt(live.getAttribute("data-refresh-seconds"), 10) || 5;
    var busy = false;

    function inUse() {
      if (document.hidden || !toggle.checked) return true;
      if (live.contains(document.activeElement) && document.activeElement !== document.body) return true;
      return live.querySelector("input[type=checkbox]:checked") !== null;
    }

    function tick() {
      if (busy || inUse()) return;
      busy = true;
      fetch(window.location.href, { credentials: "same-origin", headers: { Accept: "text/html" } })
        .then(function (response) {
          if (response.redirected && /\/signin/.test(response.url)) {
            window.location.href = response.url;
            throw new Error("signed out");
          }
          if (!response.ok) throw new Error("HTTP " + response.status);
          return response.text();
        })
        .then(function (html) {
          var next = new DOMParser().parseFromString(html, "text/html").getElementById("live");
          if (next && !inUse()) {
            live.replaceChildren.apply(live, Array.prototype.slice.call(next.childNodes));
            var now = new Date();
            stamp.textContent = "updated " + now.toLocaleTimeString();
            stamp.setAttribute("title", now.toISOString());
            live.setAttribute("data-refreshed", String(Date.now()));
          }
        })
        .catch(function () {
          stamp.textContent = "could not refresh; retrying";
        })
        .then(function () {
          busy = false;
        });
    }

    window.setInterval(tick, seconds * 1000);
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", setup);
  else setup();
})();
