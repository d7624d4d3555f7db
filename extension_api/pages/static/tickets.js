// The ticket page: tells the server this agent is viewing (or writing a reply to) the
// ticket, renewing it before it lapses (core.tickets.presence: 30 s), and shows who else
// is on it. Loaded from /static only (the pages' CSP forbids inline script).
"use strict";

const RENEW_MS = 15000;

function showOthers(others) {
  const box = document.getElementById("collision");
  const list = document.getElementById("others");
  if (!box || !list) return;
  list.replaceChildren(...others.map((other) => {
    const item = document.createElement("li");
    item.dataset.state = other.state;
    item.textContent = other.name + " (" + other.email + ") is " + other.state;
    return item;
  }));
  box.hidden = others.length === 0;
}

function setUpPresence() {
  const section = document.getElementById("presence");
  if (!section) return;
  const url = section.dataset.url;
  const csrf = section.querySelector("input[name=csrf]").value;
  const reply = document.getElementById("reply-text");
  const state = () => (reply && (reply === document.activeElement || reply.value.trim())
    ? "replying" : "viewing");
  let sent = "viewing";
  async function report(now) {
    sent = now;
    const body = new URLSearchParams({ csrf, state: now });
    try {
      const answer = await fetch(url, { method: "POST", body, credentials: "same-origin" });
      if (answer.ok) showOthers((await answer.json()).others);
    } catch (error) {
      // Offline for a moment: the next renewal tries again.
    }
  }
  setInterval(() => report(state()), RENEW_MS);
  if (reply) {
    reply.addEventListener("focus", () => report("replying"));
    reply.addEventListener("blur", () => { if (state() !== sent) report(state()); });
  }
  window.addEventListener("pagehide", () => {
    navigator.sendBeacon(url, new URLSearchParams({ csrf, state: "left" }));
  });
}

document.addEventListener("DOMContentLoaded", setUpPresence);
