// The misunderstood inbox: "Копировать" puts a snippet on the clipboard; where the browser refuses the
// clipboard, the snippet's text is selected instead, for Ctrl+C. Choosing a scenario, act or period shows
// it at once (the forms work without this too).
(function () {
  "use strict";

  function select(block) {
    var range = document.createRange();
    range.selectNodeContents(block);
    var selection = window.getSelection();
    selection.removeAllRanges();
    selection.addRange(range);
  }

  function done(button, text) {
    button.textContent = text;
    setTimeout(function () { button.textContent = "Копировать"; }, 2000);
  }

  document.addEventListener("click", function (event) {
    var button = event.target.closest && event.target.closest("button.copy[data-copy]");
    if (!button) return;
    var block = document.getElementById(button.getAttribute("data-copy"));
    if (!block) return;
    var text = block.textContent;
    if (navigator.clipboard && navigator.clipboard.writeText) {
      navigator.clipboard.writeText(text).then(
        function () { button.setAttribute("data-copied", "1"); done(button, "Скопировано"); },
        function () { select(block); done(button, "Выделено: Ctrl+C"); }
      );
    } else {
      select(block);
      done(button, "Выделено: Ctrl+C");
    }
  });

  document.addEventListener("change", function (event) {
    var field = event.target;
    if (field.matches && field.matches("select[data-autosubmit]") && field.form) field.form.submit();
  });
})();
