// Small enhancements on top of htmx; every page works without this file.
(function () {
  "use strict";

  // A dialog rendered open by the server becomes a real modal dialog, with focus inside it.
  function openModals(root) {
    root.querySelectorAll("dialog[data-modal][open]").forEach(function (dialog) {
      if (dialog.dataset.upgraded) return;
      dialog.dataset.upgraded = "true";
      dialog.close();
      dialog.showModal();
      var first = dialog.querySelector("[autofocus]") || dialog.querySelector("button, a, input");
      if (first) first.focus();
    });
  }

  // Copy buttons: data-copy names the input whose value to copy.
  document.addEventListener("click", function (event) {
    var button = event.target.closest("[data-copy]");
    if (!button) return;
    var source = document.getElementById(button.dataset.copy);
    if (!source) return;
    var done = function () {
      button.textContent = "Copied";
      button.setAttribute("aria-live", "polite");
    };
    if (navigator.clipboard && window.isSecureContext) {
      navigator.clipboard.writeText(source.value).then(done, function () {
        source.select();
      });
    } else {
      source.select();
      document.execCommand("copy");
      done();
    }
  });

  // Closing the reveal dialog leaves the page underneath; send focus to its heading.
  document.addEventListener("close", function (event) {
    if (!event.target.matches || !event.target.matches("dialog[data-modal]")) return;
    var back = document.querySelector("[data-focus-after-dialog]");
    if (back) back.focus();
  }, true);

  document.addEventListener("DOMContentLoaded", function () { openModals(document); });
  document.addEventListener("htmx:after:swap", function () { openModals(document); });
})();
