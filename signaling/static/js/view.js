// Small DOM helpers. Text always goes in as text (names come from other people).

export const el = (id) => document.getElementById(id);

/**
 * Create an element. ``attrs.text`` sets textContent, ``on*`` functions become listeners,
 * booleans set or drop the attribute, anything else becomes an attribute.
 */
export function make(tag, attrs = {}, children = []) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (key === "text") node.textContent = value;
    else if (key.startsWith("on") && typeof value === "function") node.addEventListener(key.slice(2), value);
    else if (value === true) node.setAttribute(key, "");
    else if (value === false || value === null || value === undefined) continue;
    else node.setAttribute(key, String(value));
  }
  if (attrs.selected === true) node.selected = true;
  node.append(...children);
  return node;
}

const VIEWS = ["loading-view", "notice-view", "prejoin-view", "waiting-view", "room-view"];

/** Show one view, hide the others, and move focus to its heading for screen readers. */
export function show(id, headingId) {
  for (const view of VIEWS) el(view).hidden = view !== id;
  const heading = headingId ? el(headingId) : null;
  if (heading) heading.focus({ preventScroll: false });
}

let clearTimer = null;

/** Say something to screen readers (polite), or urgently (an alert). */
export function announce(text, urgent = false) {
  const region = el(urgent ? "alerter" : "announcer");
  // Clearing first makes a repeated message be read again.
  region.textContent = "";
  setTimeout(() => { region.textContent = text; }, 50);
  clearTimeout(clearTimer);
  clearTimer = setTimeout(() => { el("announcer").textContent = ""; el("alerter").textContent = ""; }, 8000);
}

export function initials(name) {
  const words = String(name || "").trim().split(/\s+/).filter(Boolean);
  const letters = words.slice(0, 2).map((w) => Array.from(w)[0].toUpperCase());
  return letters.join("") || "?";
}

// Constant icon markup (never built from data).
const svg = (path) =>
  `<svg viewBox="0 0 24 24" fill="none" stroke="currentColor" stroke-width="2" stroke-linecap="round" stroke-linejoin="round" aria-hidden="true" focusable="false">${path}</svg>`;

export const ICONS = {
  mic: svg('<rect x="9" y="3" width="6" height="11" rx="3"/><path d="M5 11a7 7 0 0 0 14 0M12 18v3"/>'),
  micOff: svg('<path d="M3 3l18 18M9 9v2a3 3 0 0 0 5.1 2.1M15 10V6a3 3 0 0 0-5.7-1.3M19 11a7 7 0 0 1-1.2 3.9M5 11a7 7 0 0 0 10.5 6.1M12 18v3"/>'),
  camera: svg('<rect x="3" y="6" width="13" height="12" rx="2"/><path d="M16 10l5-3v10l-5-3z"/>'),
  cameraOff: svg('<path d="M3 3l18 18M16 16H5a2 2 0 0 1-2-2V8a2 2 0 0 1 2-2h1M10 6h4a2 2 0 0 1 2 2v4l5-3v10"/>'),
  hand: svg('<path d="M8 13V5.5a1.5 1.5 0 0 1 3 0V12M11 11V4a1.5 1.5 0 0 1 3 0v7M14 11V5.5a1.5 1.5 0 0 1 3 0V14a7 7 0 0 1-7 7h-.5a6 6 0 0 1-4.8-2.4L3 15.5a1.5 1.5 0 0 1 2.3-1.9L8 16"/>'),
  leave: svg('<path d="M10 17l5-5-5-5M15 12H3M14 3h5a2 2 0 0 1 2 2v14a2 2 0 0 1-2 2h-5"/>'),
};
