// inboxlog pages: the little script they need (no build step, no third-party code).
// Loaded from /static only: the pages' CSP forbids inline script.
"use strict";

function setUpCopyButtons() {
  for (const button of document.querySelectorAll("button[data-copy]")) {
    button.addEventListener("click", async () => {
      const source = document.getElementById(button.dataset.copy);
      const status = document.getElementById(button.getAttribute("aria-describedby"));
      const text = source ? source.textContent.trim() : "";
      try {
        await navigator.clipboard.writeText(text);
        if (status) status.textContent = "Copied.";
      } catch (error) {
        // No clipboard access (an insecure origin, a denied permission): select it.
        const range = document.createRange();
        range.selectNodeContents(source);
        const selection = window.getSelection();
        selection.removeAllRanges();
        selection.addRange(range);
        if (status) status.textContent = "Selected: press Ctrl+C (⌘C) to copy.";
      }
    });
  }
}

function setUpArrivals() {
  const box = document.getElementById("arrivals");
  if (!box || !window.EventSource) return;
  const list = document.getElementById("arrived");
  const waiting = document.getElementById("waiting");
  const stream = new EventSource("/live?after=" + encodeURIComponent(box.dataset.liveAfter));
  stream.addEventListener("logged", (message) => {
    const event = JSON.parse(message.data);
    const item = document.createElement("li");
    const link = document.createElement("a");
    link.href = "/emails/" + event.email_id;
    link.textContent = (event.detail && event.detail.subject) || "(no subject)";
    item.append("Logged: ", link);
    list.append(item);
    waiting.textContent = "Your email arrived and is logged.";
    box.dataset.state = "arrived";
  });
  window.addEventListener("pagehide", () => stream.close());
}

document.addEventListener("DOMContentLoaded", () => {
  setUpCopyButtons();
  setUpArrivals();
});
