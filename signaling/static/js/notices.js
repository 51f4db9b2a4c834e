// Every calm message the page shows in place of the call: the link's state (too early, with
// a countdown; ended or cancelled, with the next drop-in; removed; no place), a link that does
// not work, and why a call ended (by its close code, protocol.CloseCode).

import { CloseCode, EndReason } from "./protocol.js";
import { state, viewShown } from "./state.js";
import { el, make, show } from "./view.js";

export function notice(title, text, actions = [], extra = {}) {
  el("notice-title").textContent = title;
  el("notice-text").textContent = text;
  const next = state.info && state.info.next_session;
  el("notice-next").hidden = !(extra.next && next);
  if (extra.next && next) {
    el("notice-next-title").textContent = next.title;
    el("notice-next-when").textContent = `${next.when} (${state.info.timezone})`;
  }
  el("notice-countdown").hidden = !extra.countdown;
  el("notice-actions").replaceChildren(...actions);
  document.body.classList.remove("in-room");
  viewShown("notice");
  show("notice-view", "notice-title");
}

export function reloadButton(label) {
  return make("button", { type: "button", class: "primary", text: label, onclick: () => location.reload() });
}

function linkButton(label, href, primary = false) {
  return make("a", { class: primary ? "button primary" : "button", href, text: label });
}

const myDropins = () => linkButton("My drop-ins", state.info.page_url);

function ended(title, text = "Thank you for coming.") {
  const info = state.info;
  const actions = [];
  if (info && info.next_session) {
    actions.push(linkButton("Add the drop-ins to my calendar", info.feed_url.replace(/^https?:/, "webcal:"), true));
  }
  if (info) actions.push(linkButton("My drop-ins", info.page_url));
  notice(title, text, actions, { next: true });
}

/** The info endpoint could not be reached. */
export function unreachable() {
  notice("We could not reach the drop-in", "Check your internet connection, then try again.", [reloadButton("Try again")]);
}

export function linkProblem(status, code) {
  if (status === 410 || code === "link_expired") {
    return notice("This link has expired", "Links stop working a while after their drop-in. Your newest invitation has a fresh one, or ask the organizer of your group.");
  }
  return notice("This link does not work", "Please check that you copied the whole link from your invitation, or ask the organizer of your group for a new one.");
}

/** The link's state (GET /j/{token}/info ``status``) when it is neither open nor too early. */
export function linkNotice(status) {
  switch (status) {
    case "ended":
      return ended("This drop-in has ended");
    case "cancelled":
      return ended("This drop-in was cancelled", "The organizer cancelled it. Nothing else changes for you.");
    case "removed":
      return notice("You cannot join this drop-in",
        "A facilitator asked you to leave this drop-in. If you think this was a mistake, please contact the organizer of your group.",
        [myDropins()]);
    default:
      return notice("You do not have a place in this drop-in",
        "Your booking may have been cancelled. You can book another drop-in from your page.",
        [myDropins()]);
  }
}

/** Too early: a countdown to the opening; ``onOpen`` runs when it reaches zero. */
export function tooEarly(onOpen) {
  const info = state.info;
  const opens = new Date(info.opens_at);
  const at = new Intl.DateTimeFormat(undefined, { hour: "2-digit", minute: "2-digit", timeZone: info.timezone }).format(opens);
  notice("It is a little early",
    `${info.title}: ${info.when}. The room opens 15 minutes before the start, at ${at} (${info.timezone}). This page will open it by itself.`,
    [], { countdown: true });
  const started = performance.now();
  const total = info.seconds_until_open;
  const counter = el("notice-countdown");
  const tick = () => {
    const left = Math.max(0, Math.ceil(total - (performance.now() - started) / 1000));
    const h = Math.floor(left / 3600);
    const m = Math.floor((left % 3600) / 60);
    const s = left % 60;
    counter.textContent = h > 0 ? `Opens in ${h} h ${m} min` : `Opens in ${m}:${String(s).padStart(2, "0")}`;
    if (left <= 0) {
      clearInterval(timer);
      onOpen();
    }
  };
  const timer = setInterval(tick, 1000);
  tick();
}

const WHY_ENDED = {
  [EndReason.ENDED_BY_FACILITATOR]: "The facilitator has ended the drop-in. Thank you for coming.",
  [EndReason.FACILITATOR_LOST]: "The facilitator could not come back, so the drop-in has ended. We are sorry.",
  [EndReason.TIME_UP]: "The drop-in's time is up. Thank you for coming.",
};

/**
 * Why the call ended, by the socket's close ``code`` (and the last error or failed token
 * exchange, ``err``). False when only the link's info can tell (the page asks it again).
 */
export function closedNotice(code, err) {
  const again = () => reloadButton("Join again");
  switch (code) {
    case CloseCode.NORMAL:
      ended("You have left the drop-in", "You can join again while it is still on.");
      return true;
    case CloseCode.REMOVED:
      notice("You have been removed from this drop-in",
        "A facilitator asked you to leave this drop-in. If you think this was a mistake, please contact the organizer of your group.");
      return true;
    case CloseCode.DENIED:
      notice("The facilitator could not let you in this time",
        "You can ask again. If this keeps happening, please contact the organizer of your group.", [reloadButton("Ask again")]);
      return true;
    case CloseCode.REPLACED:
      notice("You joined from another window",
        "This drop-in is open in another tab or on another device, so this window has stepped aside.", [reloadButton("Use this window instead")]);
      return true;
    case CloseCode.ROOM_ENDED:
      // The organizer cancelled or moved the session: the link's page says what is true now
      // (cancelled, or too early with a countdown to the new time).
      if (state.endReason === EndReason.CANCELLED || state.endReason === EndReason.RESCHEDULED) return false;
      ended("This drop-in has ended", WHY_ENDED[state.endReason] || "Thank you for coming.");
      return true;
    case CloseCode.ROOM_LOCKED:
      notice("The room is locked", "The facilitator has closed the room to new arrivals for now. You can try again in a little while.", [reloadButton("Try again")]);
      return true;
    case CloseCode.ROOM_FULL:
      notice("This drop-in is full", "Every place in the room is taken.", [myDropins()]);
      return true;
    case CloseCode.NO_SUCH_ROOM:
      return false; // the info endpoint says what the room's state is now
    case CloseCode.INVALID_TOKEN:
      if (err && err.status) return false;
      notice("We could not connect you", "The drop-in did not answer. Check your internet connection, then try again.", [again()]);
      return true;
    default:
      notice("We lost the connection", "Your internet connection dropped for too long. You can join again.", [again()]);
      return true;
  }
}
