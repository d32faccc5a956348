// Operators' console: live regions re-fetched on server-sent "change" events, ticking timers,
// suggestions that fill the reply box. Everything inserted comes as server-escaped HTML.
(function () {
  "use strict";
  var live = document.querySelector("[data-live]");

  function refresh() {
    if (!live) return;
    var history = live.querySelector(".history");
    var atBottom = !history || history.scrollHeight - history.scrollTop - history.clientHeight < 40;
    fetch(live.getAttribute("data-live"), { credentials: "same-origin" })
      .then(function (response) {
        if (response.status === 401) { window.location.reload(); return null; }
        return response.ok ? response.text() : null;
      })
      .then(function (html) {
        if (html === null || html === undefined) return;
        live.innerHTML = html;
        tick();
        var fresh = live.querySelector(".history");
        if (fresh && atBottom) fresh.scrollTop = fresh.scrollHeight;
      })
      .catch(function () { /* the next change or reconnect tries again */ });
  }

  if (live && window.EventSource) {
    var events = new EventSource("/console/stream");
    events.addEventListener("change", refresh);
    // The stream compares against the state it found when it connected: a change between this page's
    // render and that moment (or during a reconnect) would otherwise never show.
    events.addEventListener("open", refresh);
    var history = live.querySelector(".history");
    if (history) history.scrollTop = history.scrollHeight;
  }

  function span(ms) {
    var s = Math.max(0, Math.floor(ms / 1000));
    var m = Math.floor(s / 60);
    var h = Math.floor(m / 60);
    var mm = h ? String(m % 60).padStart(2, "0") : String(m);
    return (h ? h + ":" : "") + mm + ":" + String(s % 60).padStart(2, "0");
  }

  function tick() {
    var now = Date.now();
    document.querySelectorAll(".timer[data-since]").forEach(function (cell) {
      var since = Date.parse(cell.getAttribute("data-since"));
      if (!isNaN(since)) cell.textContent = span(now - since);
    });
    document.querySelectorAll(".due[data-due]").forEach(function (cell) {
      if (cell.hasAttribute("data-answered")) return;
      var due = Date.parse(cell.getAttribute("data-due"));
      if (isNaN(due)) return;
      if (now > due) {
        cell.classList.add("late");
        cell.textContent = "просрочено " + span(now - due);
      } else {
        cell.textContent = "осталось " + span(due - now);
      }
    });
  }
  tick();
  setInterval(tick, 1000);

  document.addEventListener("click", function (event) {
    var button = event.target.closest && event.target.closest(".suggestion");
    if (!button) return;
    var box = document.getElementById("reply-text");
    if (!box) return;
    box.value = button.getAttribute("data-text");
    box.focus();
  });
})();
