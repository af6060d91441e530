// gristmill dashboard: small conveniences only; every page works without JavaScript.
"use strict";

// Times in the reader's own zone (the server renders them in its zone).
for (const el of document.querySelectorAll("time[datetime]")) {
  const at = new Date(el.getAttribute("datetime"));
  if (!Number.isNaN(at.getTime())) {
    el.title = el.textContent;
    el.textContent = at.toLocaleString();
  }
}

// The overview refreshes itself while it is visible.
const every = Number(document.body.dataset.refresh || 0);
if (every > 0) {
  setInterval(() => {
    if (document.visibilityState === "visible") {
      window.location.reload();
    }
  }, every * 1000);
}
