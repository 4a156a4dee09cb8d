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

  // Copy buttons need this script: without it the stylesheet hides them (html:not(.js)).
  document.documentElement.classList.add("js");

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

  // A create form loaded as a whole page shows both types' settings (for browsers without
  // JavaScript); here htmx runs, so ask it for the form of the chosen type straight away.
  function followType(root) {
    var form = root.querySelector("#key-form[data-refresh-type]");
    if (!form) return;
    form.removeAttribute("data-refresh-type");
    var checked = form.querySelector("input[name=key_type]:checked");
    if (checked) checked.dispatchEvent(new Event("change", { bubbles: true }));
    lastRadio = null;  // nobody chose a type: leave the focus where the page put it
  }

  // After a swap, focus what the server marked: a new origin or IP-range row, or the error
  // summary. After the type swap, the radio that was chosen (its id survives the swap).
  var lastRadio = null;
  document.addEventListener("change", function (event) {
    if (event.target.matches && event.target.matches("#key-form input[name=key_type]")) {
      lastRadio = event.target.id;
    }
  }, true);
  function focusMarked(root) {
    var marked = root.querySelector("[data-focus-now]");
    if (marked) {
      marked.removeAttribute("data-focus-now");
      marked.focus();
      return;
    }
    if (lastRadio) {
      var radio = document.getElementById(lastRadio);
      lastRadio = null;
      if (radio) radio.focus();
    }
  }

  document.documentElement.classList.add("js");
  document.addEventListener("DOMContentLoaded", function () {
    openModals(document);
    setTimeout(function () { followType(document); });  // once htmx has processed the page
    var marked = document.querySelector("[data-focus-now]");
    if (marked) marked.removeAttribute("data-focus-now");  // autofocus did it on page load
  });
  document.addEventListener("htmx:after:swap", function () {
    openModals(document);
    focusMarked(document);
  });
})();
