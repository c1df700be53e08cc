// Registry Hooks portal behaviour. Loaded as a file (the CSP allows no inline
// script): inline-validation state, dialogs, tabs, toasts, busy forms.
(function () {
  "use strict";

  // A field's message slot was re-rendered by inline validation: mirror it
  // into aria-invalid on the field it describes.
  function syncInvalid(slot) {
    var field = slot.getAttribute("data-field");
    if (!field) return;
    var el = document.getElementById("f-" + field);
    if (!el) return;
    if (slot.textContent.trim() !== "") el.setAttribute("aria-invalid", "true");
    else el.removeAttribute("aria-invalid");
  }

  document.addEventListener("htmx:afterSwap", function (e) {
    var t = e.detail.target;
    if (t && t.classList && t.classList.contains("field-error")) syncInvalid(t);
    document.querySelectorAll(".field-error").forEach(syncInvalid);
    initToasts();
  });

  // Show a progress bar while any htmx request runs.
  var inflight = 0;
  document.addEventListener("htmx:beforeRequest", function () { inflight++; document.body.classList.add("htmx-request-any"); });
  document.addEventListener("htmx:afterRequest", function () {
    inflight = Math.max(0, inflight - 1);
    if (inflight === 0) document.body.classList.remove("htmx-request-any");
  });
  document.addEventListener("htmx:responseError", function (e) {
    var xhr = e.detail.xhr;
    var ct = xhr.getResponseHeader("Content-Type") || "";
    // The server's own short message (a refusal it explains) beats the status line.
    if (ct.indexOf("text/plain") === 0 && xhr.responseText && xhr.responseText.length < 400) {
      toast(xhr.responseText, true);
      return;
    }
    toast("Request failed: " + xhr.status + " " + (xhr.statusText || ""), true);
  });
  document.addEventListener("htmx:sendError", function () { toast("The server cannot be reached.", true); });

  function toast(msg, isError) {
    var box = document.getElementById("toasts");
    if (!box) return;
    var d = document.createElement("div");
    d.className = "toast pointer-events-auto rounded-md px-4 py-3 text-sm shadow-lg ring-1 " +
      (isError ? "bg-rose-50 text-rose-900 ring-rose-200" : "bg-emerald-50 text-emerald-900 ring-emerald-200");
    d.setAttribute("data-toast", "");
    d.textContent = msg;
    box.appendChild(d);
    initToasts();
  }

  function initToasts() {
    document.querySelectorAll("[data-toast]:not([data-armed])").forEach(function (t) {
      t.setAttribute("data-armed", "");
      setTimeout(function () { t.remove(); }, 6000);
    });
  }

  document.addEventListener("click", function (e) {
    var open = e.target.closest("[data-open-dialog]");
    if (open) {
      var dlg = document.getElementById(open.getAttribute("data-open-dialog"));
      if (dlg && dlg.showModal) dlg.showModal();
      return;
    }
    var close = e.target.closest("[data-close-dialog]");
    if (close) {
      var d = close.closest("dialog");
      if (d) d.close();
      return;
    }
    var tab = e.target.closest('[role="tab"]');
    if (tab) selectTab(tab);
  });

  function selectTab(tab) {
    var list = tab.closest('[role="tablist"]');
    list.querySelectorAll('[role="tab"]').forEach(function (t) {
      var on = t === tab;
      t.setAttribute("aria-selected", on ? "true" : "false");
      t.tabIndex = on ? 0 : -1;
      var panel = document.getElementById(t.getAttribute("aria-controls"));
      if (panel) panel.hidden = !on;
    });
    tab.focus();
  }

  // Arrow keys move between tabs, as the ARIA tabs pattern expects.
  document.addEventListener("keydown", function (e) {
    var tab = e.target.closest && e.target.closest('[role="tab"]');
    if (!tab || (e.key !== "ArrowRight" && e.key !== "ArrowLeft")) return;
    var tabs = Array.prototype.slice.call(tab.closest('[role="tablist"]').querySelectorAll('[role="tab"]'));
    var i = tabs.indexOf(tab) + (e.key === "ArrowRight" ? 1 : -1);
    selectTab(tabs[(i + tabs.length) % tabs.length]);
    e.preventDefault();
  });

  document.addEventListener("submit", function (e) {
    var f = e.target;
    var msg = f.getAttribute("data-confirm");
    if (msg && !window.confirm(msg)) { e.preventDefault(); return; }
    if (f.hasAttribute("data-busy-on-submit")) {
      f.setAttribute("aria-busy", "true");
      f.querySelectorAll('button[type="submit"]').forEach(function (b) { b.disabled = true; });
    }
  });

  document.addEventListener("change", function (e) {
    var f = e.target.form;
    if (f && f.hasAttribute("data-autosubmit")) f.submit();
  });

  // Server-sent confirmations (HX-Trigger: {"rh:toast": "..."}).
  document.addEventListener("rh:toast", function (e) {
    toast(e.detail && e.detail.value ? e.detail.value : String(e.detail || ""), false);
  });

  document.addEventListener("DOMContentLoaded", initToasts);
})();
