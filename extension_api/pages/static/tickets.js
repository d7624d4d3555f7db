// The ticket page: tells the server this agent is viewing (or writing a reply to) the
// ticket, renewing it before it lapses (core.tickets.presence: 30 s), and shows who else
// is on it; refreshes the conversation when the ticket changes. Loaded from /static only (the pages' CSP forbids inline script).
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

// New mail, a reply, an assignment or a close on this ticket (its ticket_* events, on
// the page's own stream /tickets/{id}/live): the conversation and the summary line are
// read again from the page and put in place; the reply box and its text stay as they are
// (so does the version it carries: a reply crossing one shown here is still held).
const TICKET_EVENTS = ["ticket_created", "ticket_assigned", "ticket_replied",
  "ticket_closed", "ticket_mentioned"];

async function refreshConversation() {
  const query = new URLSearchParams(window.location.search);
  query.set("refresh", "1");
  const answer = await fetch(window.location.pathname + "?" + query,
    { credentials: "same-origin" });
  if (!answer.ok) return;
  const page = new DOMParser().parseFromString(await answer.text(), "text/html");
  for (const id of ["conversation", "ticket-summary"]) {
    const fresh = page.getElementById(id);
    const shown = document.getElementById(id);
    if (fresh && shown) shown.replaceChildren(...fresh.childNodes);
  }
  const status = document.getElementById("live-status");
  if (status) status.textContent = "Updated just now.";
}

function setUpLiveConversation() {
  const list = document.getElementById("conversation");
  if (!list || !list.dataset.live || !window.EventSource) return;
  const stream = new EventSource(list.dataset.live);
  let pending = null;
  const refresh = () => {  // a burst of events (a reply and its close): one refresh
    if (pending) return;
    pending = setTimeout(async () => {
      pending = null;
      try { await refreshConversation(); } catch (error) { /* the next event tries again */ }
    }, 150);
  };
  for (const type of TICKET_EVENTS) stream.addEventListener(type, refresh);
  window.addEventListener("pagehide", () => stream.close());
}

document.addEventListener("DOMContentLoaded", () => {
  setUpPresence();
  setUpLiveConversation();
});
