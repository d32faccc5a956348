// Web chat: messages arrive over server-sent events (bot and operator alike); sending is a POST.
// Text is always inserted with textContent, never as HTML.
(function () {
  "use strict";
  var VISITOR_KEY = "tonebot_visitor";
  var VISITOR_FORMAT = /^[A-Za-z0-9_-]{16,64}$/;
  var list = document.getElementById("messages");
  var form = document.getElementById("chat-form");
  var input = document.getElementById("chat-input");
  var errorBox = document.getElementById("chat-error");
  var seen = {};
  var labels = {};

  function newId() {
    if (window.crypto && crypto.randomUUID) return crypto.randomUUID();
    var bytes = new Uint8Array(16);
    crypto.getRandomValues(bytes);
    return Array.prototype.map.call(bytes, function (b) { return b.toString(16).padStart(2, "0"); }).join("");
  }

  // The visitor's secret: the one this browser keeps, else the one the page brought (also set as a cookie).
  // Sent in a header, it works where the cookie does not: in an iframe on the company's own site.
  function visitorSecret() {
    var kept = null;
    try { kept = window.localStorage.getItem(VISITOR_KEY); } catch (e) { /* storage blocked: the page's */ }
    if (kept && VISITOR_FORMAT.test(kept)) return kept;
    var given = document.getElementById("chat").getAttribute("data-visitor") || "";
    try { window.localStorage.setItem(VISITOR_KEY, given); } catch (e) { /* kept for this page only */ }
    return given;
  }
  var visitor = visitorSecret();

  function showError(text) {
    errorBox.textContent = text || "";
    errorBox.hidden = !text;
  }

  // A message the server could not take (503: storage away) keeps its id and is sent again until it is
  // taken: the server stores one copy however many times it arrives.
  var RETRY_MS = 3000;

  function send(body) {
    if (!body.id) body.id = newId();
    return fetch("/chat/api/messages", {
      method: "POST",
      credentials: "same-origin",
      headers: { "Content-Type": "application/json", "X-Tonebot-Chat": "1", "X-Tonebot-Visitor": visitor },
      body: JSON.stringify(body)
    }).then(function (response) {
      if (response.ok) { showError(""); return true; }
      if (response.status === 503) {
        response.json().then(function (data) { showError(data.error || ""); }, function () {});
        return new Promise(function (resolve) { setTimeout(resolve, RETRY_MS); }).then(function () {
          return send(body);
        });
      }
      return response.json().then(
        function (data) { showError(data.error || "Не получилось отправить. Попробуйте ещё раз."); return false; },
        function () { showError("Не получилось отправить. Попробуйте ещё раз."); return false; }
      );
    }, function () {
      showError("Нет связи. Проверьте интернет и попробуйте ещё раз.");
      return false;
    });
  }

  function render(message) {
    if (seen[message.id]) return;
    seen[message.id] = true;
    var bubble = document.createElement("div");
    bubble.className = "bubble " + (message.direction === "in" ? "mine" : "theirs");
    if (message.author && message.author !== "bot" && message.author !== "client") bubble.classList.add("person");
    bubble.setAttribute("data-id", message.id);
    var text = document.createElement("div");
    text.className = "text";
    text.textContent = message.direction === "in" && labels[message.text] ? labels[message.text] : message.text;
    bubble.appendChild(text);
    list.querySelectorAll(".choices button").forEach(function (old) { old.disabled = true; });
    if (message.buttons && message.buttons.length) {
      var row = document.createElement("div");
      row.className = "choices";
      message.buttons.forEach(function (b) {
        labels[b.payload] = b.text;
        var button = document.createElement("button");
        button.type = "button";
        button.textContent = b.text;
        button.addEventListener("click", function () {
          row.querySelectorAll("button").forEach(function (x) { x.disabled = true; });
          send({ text: "", payload: b.payload });
        });
        row.appendChild(button);
      });
      bubble.appendChild(row);
    }
    list.appendChild(bubble);
    list.scrollTop = list.scrollHeight;
  }

  // Server-sent events read with fetch (EventSource cannot send the visitor header); after a break the
  // stream is opened again from the last message shown.
  var after = 0;
  var STREAM_RETRY_MS = 1000;
  var STREAM_BUSY_MS = 10000;
  var streamTrouble = false;

  function onEvent(block) {
    var data = [];
    block.split("\n").forEach(function (line) {
      var id = line.indexOf("id:") === 0 ? line.slice(3).trim() : "";
      if (line.indexOf("data:") === 0) data.push(line.slice(5).replace(/^ /, ""));
      else if (/^\d+$/.test(id)) after = Number(id);
    });
    if (!data.length) return;
    try { render(JSON.parse(data.join("\n"))); } catch (e) { /* a malformed event is skipped */ }
  }

  function openStream() {
    fetch("/chat/api/stream?after=" + after, {
      credentials: "same-origin",
      cache: "no-store",
      headers: { "X-Tonebot-Visitor": visitor }
    }).then(function (response) {
      if (!response.ok || !response.body) {
        return response.json().then(function (data) { throw data; }, function () { throw {}; });
      }
      if (streamTrouble) showError("");
      streamTrouble = false;
      var reader = response.body.getReader();
      var decoder = new TextDecoder();
      var buffer = "";
      function pump() {
        return reader.read().then(function (chunk) {
          if (chunk.done) throw {};
          buffer += decoder.decode(chunk.value, { stream: true }).replace(/\r\n?/g, "\n");
          var blocks = buffer.split("\n\n");
          buffer = blocks.pop();
          blocks.forEach(onEvent);
          return pump();
        });
      }
      return pump();
    }).catch(function (problem) {
      var busy = problem && problem.error;
      if (busy) { showError(problem.error); streamTrouble = true; }
      setTimeout(openStream, busy ? STREAM_BUSY_MS : STREAM_RETRY_MS);
    });
  }
  openStream();

  form.addEventListener("submit", function (event) {
    event.preventDefault();
    var text = input.value;
    if (!text.trim()) return;
    input.disabled = true;
    send({ text: text }).then(function (ok) {
      input.disabled = false;
      if (ok) input.value = "";
      input.focus();
    });
  });
  input.focus();
})();
