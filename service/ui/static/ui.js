// pixstor-mgmt admin pages: a running job's page, or a busy item's, reads itself again every
// data-refresh milliseconds and swaps in its live parts ([data-live] with an id) until the
// work is done. Everything else works without this script.
(function () {
  "use strict";
  var every = Number(document.body.getAttribute("data-refresh"));
  if (!every) {
    return;
  }
  function tick() {
    fetch(window.location.href, { headers: { Accept: "text/html" }, credentials: "same-origin" })
      .then(function (answer) {
        if (!answer.ok || answer.redirected) {    // gone (a finished delete), or signed out
          window.location.reload();
          return null;
        }
        return answer.text();
      })
      .then(function (html) {
        if (html === null) {
          return;
        }
        var fresh = new DOMParser().parseFromString(html, "text/html");
        document.querySelectorAll("[data-live]").forEach(function (part) {
          var now = fresh.getElementById(part.id);
          if (now) {
            part.replaceWith(document.importNode(now, true));
          }
        });
        if (fresh.body.getAttribute("data-refresh")) {
          window.setTimeout(tick, every);
        } else {
          document.body.removeAttribute("data-refresh");
        }
      })
      .catch(function () {
        window.setTimeout(tick, every * 3);
      });
  }
  window.setTimeout(tick, every);
})();
