/* The reviewer's appeal page: templates inserted without a reload (nothing typed is lost), keyboard
   shortcuts listed on "?", and the address bar back on the appeal after a refused form. */
(function () {
  "use strict";

  function typing(target) {
    var tag = target && target.tagName;
    return tag === "INPUT" || tag === "TEXTAREA" || tag === "SELECT" || (target && target.isContentEditable);
  }

  function useTemplates() {
    var forms = document.querySelectorAll("form[data-template-form]");
    Array.prototype.forEach.call(forms, function (form) {
      form.addEventListener("submit", function (event) {
        var select = form.querySelector("select");
        var option = select && select.options[select.selectedIndex];
        var area = document.getElementById(form.getAttribute("data-target"));
        if (!option || !area) { return; }  // no target here: let the page do it
        event.preventDefault();
        var body = option.getAttribute("data-body") || "";
        // Added after what is already written, never instead of it.
        area.value = area.value.trim() ? area.value.replace(/\s+$/, "") + "\n\n" + body : body;
        area.dispatchEvent(new Event("input", { bubbles: true }));
        area.focus();
        var first = area.value.indexOf("{");
        if (first >= 0) {  // select the first placeholder left to fill
          var end = area.value.indexOf("}", first);
          area.setSelectionRange(first, end >= 0 ? end + 1 : first);
        }
      });
    });
  }

  function queueKeys() {
    // On the queue, j and k walk the appeals' links; Enter opens the focused one.
    var links = Array.prototype.slice.call(document.querySelectorAll("[data-queue-link]"));
    return function (step) {
      if (!links.length) { return; }
      var at = links.indexOf(document.activeElement);
      var next = at < 0 ? (step > 0 ? 0 : links.length - 1) : Math.min(links.length - 1, Math.max(0, at + step));
      links[next].focus();
    };
  }

  function shortcuts(page) {
    var panel = document.getElementById("shortcuts");
    var toggle = document.querySelector("[data-shortcuts-toggle]");
    function show(open) {
      if (!panel) { return; }
      panel.hidden = !open;
      if (toggle) { toggle.setAttribute("aria-expanded", open ? "true" : "false"); }
      if (open) { panel.focus(); }
    }
    if (toggle) { toggle.addEventListener("click", function () { show(panel.hidden); }); }
    document.addEventListener("keydown", function (event) {
      if (event.ctrlKey || event.metaKey || event.altKey || typing(event.target)) { return; }
      var walk = page.id === "review-queue" ? queueKeys() : null;
      var go = function (attr) {
        if (walk) { walk(attr === "data-next-url" ? 1 : -1); return; }
        var url = page.getAttribute(attr);
        if (url) { window.location.assign(url); }
      };
      if (event.key === "?") { event.preventDefault(); show(panel.hidden); }
      else if (event.key === "Escape" && panel && !panel.hidden) { show(false); }
      else if (event.key === "j") { go("data-next-url"); }
      else if (event.key === "k") { go("data-previous-url"); }
      else if (event.key === "c") {
        var claim = document.getElementById("claim-form");
        if (claim) { event.preventDefault(); claim.requestSubmit(); }
      } else if (event.key === "d") {
        var decide = document.querySelector("#decide input[name=action]:checked") ||
                     document.querySelector("#decide input[name=action]") ||
                     document.querySelector("#confirm input, #confirm button");
        if (decide) { event.preventDefault(); decide.focus(); decide.scrollIntoView({ block: "center" }); }
      }
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    var page = document.getElementById("review-page") || document.getElementById("review-queue");
    if (!page) { return; }
    // A refused form renders at its POST address; the address bar shows the appeal again.
    var canonical = page.getAttribute("data-canonical-url");
    if (canonical && window.location.pathname !== canonical && window.history.replaceState) {
      window.history.replaceState(null, "", canonical + window.location.hash);
    }
    useTemplates();
    shortcuts(page);
  });
}());
