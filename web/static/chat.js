// Web chat: messages arrive over server-sent events (bot and operator alike); sending is a POST.
// Text is always inserted with textContent, never as HTML.
(function () {
  "use strict";
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
      headers: { "Content-Type": "application/json", "X-Tonebot-Chat": "1" },
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

  var stream = new EventSource("/chat/api/stream");
  stream.onmessage = function (event) {
    try { render(JSON.parse(event.data)); } catch (e) { /* a malformed event is skipped */ }
  };

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
