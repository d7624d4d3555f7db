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

// What the setup page's "send a test email" box shows of a logged email.
function showArrival(event) {
  const box = document.getElementById("arrivals");
  if (!box) return;
  const item = document.createElement("li");
  const link = document.createElement("a");
  link.href = "/emails/" + event.email_id;
  link.textContent = (event.detail && event.detail.subject) || "(no subject)";
  item.append("Logged: ", link);
  document.getElementById("arrived").append(item);
  document.getElementById("waiting").textContent = "Your email arrived and is logged.";
  box.dataset.state = "arrived";
}

const NOTICES = {
  open: () => "Your email was opened",
  click: (event) => "A link was clicked" + (event.detail && event.detail.url ? ": " + event.detail.url : ""),
  reply: (event) => "Reply" + (event.detail && event.detail.from ? " from " + event.detail.from : ""),
  inbox_disconnected: (event) => "Inbox " + ((event.detail && event.detail.address) || "")
    + " was disconnected" + (event.detail && event.detail.reason ? ": " + event.detail.reason : ""),
};

// Opens, clicks and replies as they happen, on every page (people only, not machines).
function showNotice(event) {
  const box = document.getElementById("notices");
  if (!box || event.machine) return;
  const item = document.createElement("p");
  item.className = "notice";
  item.dataset.type = event.type;
  item.append(NOTICES[event.type](event) + " ");
  if (event.email_id) {
    const link = document.createElement("a");
    link.href = "/emails/" + event.email_id;
    link.textContent = "See the email";
    item.append(link);
  } else if (event.type === "inbox_disconnected") {
    const link = document.createElement("a");
    link.href = "/inboxes" + (event.detail && event.detail.inbox_id ? "#inbox-" + event.detail.inbox_id : "");
    link.textContent = "See the inbox";
    item.append(link);
  }
  box.append(item);
}

function setUpLive() {
  const after = document.body.dataset.liveAfter;
  if (after === undefined || !window.EventSource) return;
  const stream = new EventSource("/live?after=" + encodeURIComponent(after));
  stream.addEventListener("logged", (message) => showArrival(JSON.parse(message.data)));
  for (const type of Object.keys(NOTICES)) {
    stream.addEventListener(type, (message) => showNotice(JSON.parse(message.data)));
  }
  window.addEventListener("pagehide", () => stream.close());
}

document.addEventListener("DOMContentLoaded", () => {
  setUpCopyButtons();
  setUpLive();
});
