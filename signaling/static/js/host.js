// The facilitator's controls: the waiting list (admit, deny, admit everyone), a menu on each
// parent's tile (mute, camera off, send to the waiting room, remove), mute everyone, lock,
// and end for everyone. Each sends a command; the room's answer changes the state.

import { ClientType } from "./protocol.js";
import { isFacilitator, state } from "./state.js";
import { el, make } from "./view.js";

let send = () => {};

/** Wire the panel's buttons once; ``sendCommand`` says a message on the room's socket. */
export function initHost(sendCommand) {
  send = sendCommand;
  el("admit-all").addEventListener("click", () => send({ type: ClientType.ADMIT_ALL }));
  el("mute-all").addEventListener("click", () => send({ type: ClientType.MUTE_ALL }));
  el("lock").addEventListener("click", () => send({ type: state.locked ? ClientType.UNLOCK : ClientType.LOCK }));
  el("end").addEventListener("click", () => {
    el("end-confirm").hidden = false;
    el("end-yes").focus();
  });
  el("end-no").addEventListener("click", () => {
    el("end-confirm").hidden = true;
    el("end").focus();
  });
  el("end-yes").addEventListener("click", () => send({ type: ClientType.END }));
}

export function renderWaiting() {
  if (!isFacilitator()) return;
  const waiting = state.waiting;
  const list = el("waiting-list");
  // Keep keyboard focus on the same person's row (or the next one) across updates.
  const focused = list.contains(document.activeElement) ? document.activeElement : null;
  const focusedPid = focused && focused.dataset.pid;
  const focusedIndex = focused ? [...list.querySelectorAll("button")].indexOf(focused) : -1;
  el("waiting-count").textContent = String(waiting.length);
  el("admit-all").disabled = waiting.length === 0;
  if (waiting.length === 0) {
    list.replaceChildren(make("li", { class: "empty", text: "Nobody is waiting." }));
  } else {
    list.replaceChildren(...waiting.map((w) => make("li", {}, [
      make("span", { class: "who", text: w.connected ? w.display_name : `${w.display_name} (reconnecting)` }),
      hostButton("Admit", `Admit ${w.display_name}`, "primary", w.participant_id, { type: ClientType.ADMIT, participant_id: w.participant_id }),
      hostButton("Deny", `Deny ${w.display_name}`, "secondary", w.participant_id, { type: ClientType.DENY, participant_id: w.participant_id }),
    ])));
  }
  if (focused) {
    const buttons = [...list.querySelectorAll("button")];
    const same = buttons.find((b) => b.dataset.pid === focusedPid && b.textContent === focused.textContent);
    const next = same || buttons[Math.min(Math.max(focusedIndex, 0), buttons.length - 1)];
    const target = next || (el("admit-all").disabled ? el("waiting-list-title") : el("admit-all"));
    target.focus();
  }
}

/** A facilitator action button that works once (a double tap sends one command). */
function hostButton(label, ariaLabel, cls, pid, command) {
  const button = make("button", { type: "button", class: cls, text: label, "aria-label": ariaLabel, "data-pid": pid });
  button.addEventListener("click", () => {
    if (button.disabled) return;
    button.disabled = true;
    for (const sibling of button.parentElement.querySelectorAll("button")) sibling.disabled = true;
    send(command);
  });
  return button;
}

/** The actions menu on a parent's tile (``li``); returns the button's wrapper. */
export function addHostMenu(li, pid) {
  const wrap = make("div", { class: "host-actions" });
  const button = make("button", { type: "button", "aria-haspopup": "true", "aria-expanded": "false", text: "⋯" });
  const menu = make("div", { class: "tile-menu", hidden: true });
  const name = () => (state.participants.get(pid) || {}).display_name || "this person";
  const close = () => {
    menu.hidden = true;
    button.setAttribute("aria-expanded", "false");
  };
  const item = (label, action, cls = "secondary") =>
    make("button", {
      type: "button", class: cls, text: label,
      onclick: () => {
        close();
        if (state.participants.has(pid)) action(); // they may have left meanwhile
        if (button.isConnected) button.focus();
      },
    });
  const fill = () => {
    menu.replaceChildren(
      item(`Mute ${name()}`, () => send({ type: ClientType.MUTE, participant_id: pid })),
      item(`Turn off ${name()}'s camera`, () => send({ type: ClientType.CAMERA_OFF, participant_id: pid })),
      item("Send to the waiting room", () => send({ type: ClientType.SEND_TO_WAITING, participant_id: pid })),
      make("button", {
        type: "button", class: "danger", text: `Remove ${name()}…`,
        onclick: () => {
          menu.replaceChildren(
            make("p", { text: `Remove ${name()} from this drop-in? They cannot come back to it.` }),
            item("Yes, remove", () => send({ type: ClientType.REMOVE, participant_id: pid }), "danger"),
            item("No", () => {}),
          );
          menu.querySelector("button").focus();
        },
      }),
    );
  };
  button.setAttribute("aria-label", `Actions for ${name()}`);
  button.addEventListener("click", () => {
    const opening = menu.hidden;
    if (opening) fill();
    menu.hidden = !opening;
    button.setAttribute("aria-expanded", String(opening));
    if (opening) menu.querySelector("button").focus();
  });
  menu.addEventListener("keydown", (event) => {
    if (event.key === "Escape") { close(); button.focus(); }
  });
  wrap.append(button);
  li.append(wrap, menu);
  return wrap;
}
