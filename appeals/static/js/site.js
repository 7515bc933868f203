/* Behaviour shared by every page, loaded as a static file (no inline script anywhere):
   - the error summary takes focus, and its links move focus to the field concerned;
   - forms marked data-keep-draft keep what was typed across a reload or a lost connection;
   - a region marked data-poll-url follows a running correction without a reload. */
(function () {
  "use strict";

  function focusErrorSummary() {
    var summary = document.querySelector("[data-error-summary]");
    if (!summary) {
      // After an action, focus lands on what happened (screen readers read it first).
      var outcome = document.querySelector("[data-outcome]");
      if (outcome) { outcome.focus(); }
      return;
    }
    summary.focus();
    summary.addEventListener("click", function (event) {
      var link = event.target.closest("a[href^='#']");
      if (!link) { return; }
      var target = document.getElementById(link.getAttribute("href").slice(1));
      if (!target) { return; }
      event.preventDefault();
      // Show the question with its field: the legend or label sits above the input.
      var context = target.closest("fieldset") || target.closest(".field") || target;
      context.scrollIntoView();
      target.focus({ preventScroll: true });
    });
  }

  function draftKey(form) {
    return "draft:" + window.location.pathname + ":" + (form.getAttribute("action") || "");
  }

  function keepDrafts() {
    var forms = document.querySelectorAll("form[data-keep-draft]");
    Array.prototype.forEach.call(forms, function (form) {
      var key = draftKey(form);
      var saved = null;
      try { saved = JSON.parse(window.sessionStorage.getItem(key) || "null"); } catch (e) { saved = null; }
      if (saved) {
        Array.prototype.forEach.call(form.elements, function (el) {
          if (!el.name || !(el.name in saved) || el.type === "password" || el.type === "hidden" || el.type === "file") { return; }
          if (el.type === "radio") {
            var anyChecked = form.querySelector("input[type=radio][name='" + el.name + "']:checked");
            if (!anyChecked && saved[el.name] === el.value) { el.checked = true; }
          } else if (el.type === "checkbox") {
            return;  // a confirmation is always given afresh
          } else if (!el.value) {
            el.value = saved[el.name];  // what the server rendered (after an error) wins
          }
        });
      }
      form.addEventListener("input", function () {
        var data = {};
        Array.prototype.forEach.call(form.elements, function (el) {
          if (!el.name || el.type === "password" || el.type === "hidden" || el.type === "file" || el.type === "checkbox") { return; }
          if (el.type === "radio") { if (el.checked) { data[el.name] = el.value; } return; }
          data[el.name] = el.value;
        });
        try { window.sessionStorage.setItem(key, JSON.stringify(data)); } catch (e) { /* storage full or off */ }
      });
      form.addEventListener("submit", function () {
        // The server now holds the answers; after an error it renders them back itself.
        try { window.sessionStorage.removeItem(key); } catch (e) { /* ignore */ }
      });
    });
  }

  function pollStatus() {
    var region = document.querySelector("[data-poll-url]");
    if (!region) { return; }
    var url = region.getAttribute("data-poll-url");
    var version = region.getAttribute("data-version");
    var delay = parseInt(region.getAttribute("data-poll-seconds") || "4", 10) * 1000;
    function tick() {
      fetch(url, { headers: { "Accept": "application/json" }, credentials: "same-origin" })
        .then(function (response) { return response.ok ? response.json() : null; })
        .then(function (data) {
          if (!data) { window.setTimeout(tick, delay * 2); return; }
          if (String(data.version) !== version) {
            if (data.final) { window.location.reload(); return; }
            version = String(data.version);
            region.setAttribute("data-version", version);
            var title = region.querySelector("[data-status-title]");
            var text = region.querySelector("[data-status-explanation]");
            if (title) { title.textContent = data.status_title; title.className = "status status-" + data.status; }
            if (text) { text.textContent = data.status_explanation; }
          }
          if (data.polling) { window.setTimeout(tick, delay); }
        })
        .catch(function () { window.setTimeout(tick, delay * 2); });
    }
    window.setTimeout(tick, delay);
  }

  function scrollableTables() {
    // A table wider than its box scrolls sideways; keyboard users must be able to reach and scroll it.
    var wraps = document.querySelectorAll(".table-wrap");
    Array.prototype.forEach.call(wraps, function (wrap) {
      if (wrap.scrollWidth <= wrap.clientWidth || wrap.hasAttribute("tabindex")) { return; }
      var caption = wrap.querySelector("caption");
      wrap.setAttribute("tabindex", "0");
      wrap.setAttribute("role", "region");
      wrap.setAttribute("aria-label", caption ? caption.textContent.trim() : "Table, scrolls sideways");
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    scrollableTables();
    focusErrorSummary();
    keepDrafts();
    pollStatus();
  });
}());
