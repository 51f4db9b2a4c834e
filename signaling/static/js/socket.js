// The room WebSocket (protocol 1, docs/signaling.md): hello, messages in and out, and
// reconnecting by itself within the server's grace window.

import { ClientType, CloseCode, PROTOCOL_VERSION, ServerType } from "./protocol.js";

// Standard close codes the browser reports itself (RFC 6455): no close frame came (the
// network), and a frame too big for the other side.
const ABNORMAL = 1006;
const MESSAGE_TOO_BIG = 1009;
// Closes after which reconnecting would not help: the page shows why instead.
const FINAL = new Set([
  CloseCode.NORMAL,
  MESSAGE_TOO_BIG,
  CloseCode.BAD_MESSAGE,
  CloseCode.REMOVED,
  CloseCode.NO_SUCH_ROOM,
  CloseCode.DENIED,
  CloseCode.REPLACED,
  CloseCode.ROOM_ENDED,
  CloseCode.TOO_LARGE,
  CloseCode.ROOM_LOCKED,
  CloseCode.ROOM_FULL,
]);
const BACKOFF = [250, 500, 1000, 2000, 3000, 5000];

export class RoomSocket {
  /**
   * @param {object} opts
   * @param {() => Promise<{token: string, ws_url: string}>} opts.exchange  fresh room token
   * @param {() => string} opts.displayName
   * @param {(msg: object) => void} opts.onMessage
   * @param {(state: "connecting"|"open"|"reconnecting") => void} opts.onState
   * @param {(code: number, lastError: object|null) => void} opts.onEnd  closed for good
   */
  constructor(opts) {
    this.opts = opts;
    this.ws = null;
    this.token = null;
    this.wsUrl = null;
    this.grace = 30;
    this.lastError = null;
    this.droppedAt = null;
    this.attempt = 0;
    this.ended = false;
    this.timer = null;
  }

  async start() {
    const { token, ws_url: wsUrl } = await this.opts.exchange();
    this.token = token;
    this.wsUrl = wsUrl;
    this.open();
  }

  open() {
    if (this.ended) return;
    this.opts.onState(this.droppedAt === null ? "connecting" : "reconnecting");
    const ws = new WebSocket(this.wsUrl);
    this.ws = ws;
    ws.onopen = () => {
      if (this.ended) return; // left while connecting: say nothing, it is being closed
      this.send({ type: ClientType.HELLO, protocol: PROTOCOL_VERSION, token: this.token, display_name: this.opts.displayName() });
    };
    ws.onmessage = (event) => {
      if (this.ended) return; // after leave(): nothing more reaches the page
      let msg;
      try { msg = JSON.parse(event.data); } catch { return; }
      if (msg.type === ServerType.WELCOME) {
        this.grace = msg.reconnect_grace;
        this.droppedAt = null;
        this.attempt = 0;
        this.opts.onState("open");
      } else if (msg.type === ServerType.TOKEN_REFRESH) {
        this.token = msg.token;
        return;
      } else if (msg.type === ServerType.ERROR) {
        this.lastError = msg;
      }
      this.opts.onMessage(msg);
    };
    ws.onclose = (event) => this.closed(ws, event.code);
  }

  closed(ws, code) {
    if (ws !== this.ws || this.ended) return;
    this.ws = null;
    if (FINAL.has(code)) {
      this.finish(code);
      return;
    }
    const now = performance.now();
    if (this.droppedAt === null) this.droppedAt = now;
    // Keep trying while the server still holds our place (plus a little for slow networks).
    if (now - this.droppedAt > (this.grace + 5) * 1000) {
      this.finish(code);
      return;
    }
    this.opts.onState("reconnecting");
    const delay = BACKOFF[Math.min(this.attempt, BACKOFF.length - 1)];
    this.attempt += 1;
    this.timer = setTimeout(async () => {
      if (code === CloseCode.INVALID_TOKEN) {
        // The room token expired while we were away: the join link gets a new one.
        try {
          await this.start();
        } catch (err) {
          if (err && err.final) {
            this.ended = true;
            this.opts.onEnd(CloseCode.INVALID_TOKEN, err);
          } else {
            this.closed(null, CloseCode.INVALID_TOKEN); // the network again: keep trying within the window
          }
        }
        return;
      }
      this.open();
    }, code === ABNORMAL && this.attempt === 1 ? 0 : delay);
  }

  finish(code) {
    this.ended = true;
    clearTimeout(this.timer);
    this.opts.onEnd(code, this.lastError);
  }

  /**
   * The server said this is the end (removed, denied, room ended): act on the message itself,
   * so a close frame lost on the way cannot turn it into a reconnect. ``code`` null: the page
   * handles it itself.
   */
  finishWith(code) {
    if (this.ended) return;
    const ws = this.ws;
    this.ws = null;
    if (ws) ws.close(CloseCode.NORMAL);
    if (code === null) {
      this.ended = true;
      clearTimeout(this.timer);
    } else {
      this.finish(code);
    }
  }

  send(msg) {
    if (this.ws && this.ws.readyState === WebSocket.OPEN) this.ws.send(JSON.stringify(msg));
  }

  /**
   * Leave on purpose: tell the server (no grace window) and stop. The caller also says it by
   * the join link, which works while reconnecting or on a half-open socket.
   */
  leave() {
    this.send({ type: ClientType.LEAVE });
    this.ended = true;
    clearTimeout(this.timer);
    const ws = this.ws;
    if (!ws) return;
    if (ws.readyState === WebSocket.CONNECTING) ws.close(CloseCode.NORMAL); // it would only say hello
    else setTimeout(() => ws.close(CloseCode.NORMAL), 300); // let the leave go out first
  }
}
