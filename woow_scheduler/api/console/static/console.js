// woow console: the only script. Pages work without it; it refreshes a running execution in place.
"use strict";
(function () {
  function refresh(el) {
    if (el.dataset.live !== "on") return;
    setTimeout(async function () {
      try {
        const resp = await fetch(window.location.href, { credentials: "same-origin", cache: "no-store" });
        if (!resp.ok) { refresh(el); return; }
        const doc = new DOMParser().parseFromString(await resp.text(), "text/html");
        const fresh = doc.getElementById(el.id);
        if (!fresh) return;
        el.replaceWith(fresh);
        refresh(fresh);
      } catch (e) {
        refresh(el);
      }
    }, 1000);
  }
  document.addEventListener("DOMContentLoaded", function () {
    document.querySelectorAll("[data-live]").forEach(refresh);
  });
})();
