/**
 * ChatClient: the chat's WebSocket protocol (docs/protocol.md, "JavaScript client") in one
 * dependency-free ES module. It authenticates with the `bearer.<token>` subprotocol,
 * reconnects with full-jitter backoff, refreshes its access token in-band, resumes every
 * joined room with `since` + `epoch` (filling holes over REST), and sends each message
 * exactly once with a `client_id`.
 *
 *   const chat = new ChatClient({ getAccessToken, refreshAccessToken });
 *   chat.on("message", ({ room, message }) => show(room, message));
 *   chat.connect();
 *   chat.join("lobby");
 *
 * @module chat/client
 */

const BACKOFF_BASE_MS = 500; // full jitter: random 0..min(30 s, 0.5 s * 2^attempt)
const BACKOFF_CAP_MS = 30_000;
const STABLE_AFTER_MS = 10_000; // a connection up this long resets the attempt count
const PING_EVERY_MS = 25_000; // keepalive; no frame for 45 s means the link is dead
const DEAD_AFTER_MS = 45_000;
const RETRY_FRAME_MS = 3_000; // a join or send refused with a retryable code
const RETRYABLE = new Set(["rate_limited", "unavailable", "internal"]);

/**
 * @typedef {{id: number, username: string}} User
 * @typedef {{room: string, id: number, seq: number, user: User|null, body: string,
 *            created_at: string, redacted?: boolean}} Message
 * @typedef {{state: "idle"|"connecting"|"connected"|"reconnecting"|"stopped",
 *            delay?: number, at?: number, code?: number, reason?: string}} Status
 */

export class ChatClient extends EventTarget {
  /**
   * @param {object} options
   * @param {() => (string|null)} options.getAccessToken the app's current access token.
   * @param {() => Promise<string|null>} options.refreshAccessToken refresh over REST (one
   *   at a time) and resolve the new access token; resolve null when the session is over
   *   (the client stops, "signed_out"); reject on a passing failure (it tries again).
   * @param {(path: string) => Promise<any>} [options.fetchJSON] GET a same-origin API
   *   path with the access token and resolve its JSON; default: fetch with a Bearer header.
   * @param {string} [options.url] default: ws(s)://<this page's host>/ws/chat/
   */
  constructor({ getAccessToken, refreshAccessToken, fetchJSON, url } = {}) {
    super();
    this.url = url ?? `${location.protocol === "https:" ? "wss" : "ws"}://${location.host}/ws/chat/`;
    this._token = getAccessToken;
    this._refreshCallback = refreshAccessToken;
    this._fetchJSON = fetchJSON ?? ((path) => getWithBearer(path, this._token()));
    /** @type {Map<string, {epoch: string|null, lastSeq: number, joined: boolean,
     *   filling: boolean, buffer: Message[], presence: Map<number, User>}>} */
    this._rooms = new Map();
    this._outbox = new Map(); // client_id -> {room, body}: sent, not acknowledged yet
    this._ackedSeqs = new Map(); // "room seq" -> client_id, until that message is shown
    this._ws = null;
    this._generation = 0; // bumped by every connection attempt and close
    this._attempt = 0;
    this._authFailures = 0;
    this._needsFreshToken = false;
    this._refreshing = null;
    this._timers = {};
    this._stopped = true;
    this._onOnline = () => this.reconnectNow();
    /** @type {Status} */
    this.status = { state: "idle" };
  }

  /** Listen to an event; `fn` gets the event's detail. Returns a function that unsubscribes. */
  on(type, fn) {
    const listener = (event) => fn(event.detail);
    this.addEventListener(type, listener);
    return () => this.removeEventListener(type, listener);
  }

  /** Open the connection (and keep it open until close()). */
  connect() {
    if (!this._stopped) return;
    this._stopped = false;
    globalThis.addEventListener?.("online", this._onOnline);
    this._scheduleRefresh();
    this._open();
  }

  /** While waiting to reconnect: stop waiting and try now. */
  reconnectNow() {
    if (this.status.state !== "reconnecting") return;
    clearTimeout(this._timers.reconnect);
    this._open();
  }

  /** Close for good (sign out, page teardown). Status becomes stopped, reason "closed". */
  close() {
    this._stop("closed");
  }

  /** Join a room (again after every reconnect, with `since`, until leave()). */
  join(room) {
    if (this._rooms.has(room)) return;
    this._rooms.set(room, { epoch: null, lastSeq: 0, joined: false, filling: false, buffer: [],
      presence: new Map() });
    this._sendJoin(room);
  }

  /** Leave a room; its unacknowledged sends are dropped (an "error" event each). */
  leave(room) {
    if (!this._rooms.has(room)) return;
    this._frame({ type: "leave", room, ref: `l:${room}` });
    this._forget(room, "left");
  }

  /**
   * Send a message. It stays pending until its "ack"; sent again with the same client_id
   * after a reconnect, so it is stored once; queued while offline.
   * @returns {string} the message's client_id (the "ack" and "message" events carry it).
   */
  send(room, body) {
    const clientId = randomId();
    this._outbox.set(clientId, { room, body });
    this._transmit(clientId);
    return clientId;
  }

  /** Tell the room's other members this user is typing (the server keeps 1 per 3 s). */
  typing(room) {
    if (this._rooms.get(room)?.joined) this._frame({ type: "typing", room });
  }

  // --- Connection ------------------------------------------------------------------------

  async _open() {
    const generation = ++this._generation;
    this._setStatus("connecting");
    let token = this._token();
    if (this._needsFreshToken || expiresWithin(token, 10)) {
      try {
        token = await this._refreshToken();
      } catch {
        if (generation === this._generation && !this._stopped) this._backOff(0);
        return;
      }
      if (generation !== this._generation || this._stopped) return;
      if (!token) return this._stop("signed_out");
      this._needsFreshToken = false;
    }
    let ws;
    try {
      ws = new WebSocket(this.url, ["chat.v1", `bearer.${token}`]);
    } catch (error) { // a malformed URL or token: retrying cannot help
      return this._stop("refused");
    }
    this._ws = ws;
    ws.onopen = () => {
      this._lastFrameAt = Date.now();
      this._frame({ type: "ping", ref: "hello" }); // the first reply says we are in
      for (const room of this._rooms.keys()) this._sendJoin(room);
    };
    ws.onmessage = (event) => this._onFrame(ws, event.data);
    ws.onclose = (event) => this._onClose(ws, event.code);
  }

  _onClose(ws, code) {
    if (ws !== this._ws) return;
    this._ws = null;
    this._generation++; // abandons hole fills of this connection
    clearTimeout(this._timers.stable);
    clearInterval(this._timers.ping);
    for (const state of this._rooms.values()) {
      Object.assign(state, { joined: false, filling: false, buffer: [] });
    }
    if (this._stopped) return;
    if (code >= 4400 && code <= 4499) return this._stop("refused", code);
    if (code >= 4100 && code <= 4199) {
      // Re-authenticate, then reconnect: at once the first time, then with backoff.
      this._needsFreshToken = true;
      if (++this._authFailures > 3) return this._stop("signed_out", code);
      if (this._authFailures === 1) return this._open();
    }
    this._backOff(code);
  }

  _backOff(code) {
    const delay = Math.random() * Math.min(BACKOFF_CAP_MS, BACKOFF_BASE_MS * 2 ** this._attempt);
    this._attempt = Math.min(this._attempt + 1, 16);
    this._setStatus("reconnecting", { delay, at: Date.now() + delay, code });
    clearTimeout(this._timers.reconnect);
    this._timers.reconnect = setTimeout(() => this._open(), delay);
  }

  /** Give up on a connection that stopped answering (or whose hole could not be filled). */
  _drop() {
    const ws = this._ws;
    if (!ws) return;
    this._onClose(ws, 4000);
    ws.onclose = ws.onmessage = null;
    ws.close();
  }

  _stop(reason, code) {
    const wasStopped = this._stopped;
    this._stopped = true;
    this._generation++; // abandons a connection attempt or hole fill in progress
    for (const timer of Object.values(this._timers)) {
      clearTimeout(timer);
      clearInterval(timer);
    }
    globalThis.removeEventListener?.("online", this._onOnline);
    this._ws?.close(1000);
    this._ws = null;
    if (!wasStopped || reason !== "closed") this._setStatus("stopped", { reason, code });
  }

  _connected() {
    this._setStatus("connected");
    this._authFailures = 0;
    this._timers.stable = setTimeout(() => (this._attempt = 0), STABLE_AFTER_MS);
    this._timers.ping = setInterval(() => {
      if (Date.now() - this._lastFrameAt > DEAD_AFTER_MS) this._drop();
      else this._frame({ type: "ping", ref: "keepalive" });
    }, PING_EVERY_MS);
  }

  // --- Access token ----------------------------------------------------------------------

  /**
   * Refresh before the token expires: 60 s before, or at 80% of a short lifetime. A token
   * just refreshed counts from now (whatever this machine's clock says of its `iat`).
   */
  _scheduleRefresh(fresh = false) {
    clearTimeout(this._timers.refresh);
    const claims = jwtClaims(this._token());
    if (!claims?.exp || this._stopped) return;
    const issued = claims.iat ?? claims.exp - 300;
    const lead = Math.max(claims.exp - issued - 60, 0.8 * (claims.exp - issued)) * 1000;
    const delay = (fresh ? 0 : issued * 1000 - Date.now()) + lead;
    this._timers.refresh = setTimeout(() => this._refreshInBand(), Math.min(Math.max(0, delay), 2 ** 31 - 1));
  }

  async _refreshInBand() {
    let token;
    try {
      token = await this._refreshToken();
    } catch {
      clearTimeout(this._timers.refresh);
      this._timers.refresh = setTimeout(() => this._refreshInBand(), 15_000);
      return;
    }
    if (this._stopped) return;
    if (!token) return this._stop("signed_out");
    this._frame({ type: "refresh", token, ref: "refresh" });
  }

  /** One refresh at a time: a refresh token used twice revokes the whole session. */
  _refreshToken() {
    const settle = () => (this._refreshing = null);
    this._refreshing ??= Promise.resolve()
      .then(() => this._refreshCallback())
      .then((token) => {
        settle();
        if (token) this._scheduleRefresh(true);
        return token;
      }, (error) => {
        settle();
        throw error;
      });
    return this._refreshing;
  }

  // --- Frames in -------------------------------------------------------------------------

  _onFrame(ws, data) {
    if (ws !== this._ws) return;
    this._lastFrameAt = Date.now();
    const frame = JSON.parse(data);
    if (this.status.state !== "connected") this._connected();
    const state = this._rooms.get(frame.room);
    switch (frame.type) {
      case "joined":
        return state && this._onJoined(frame, state);
      case "message":
        if (state?.filling) state.buffer.push(frame);
        else if (state) this._deliver(state, frame, false);
        return;
      case "ack":
        return this._onAck(frame);
      case "left":
        if (frame.reason && state) this._forget(frame.room, frame.reason);
        return;
      case "presence":
        if (!state) return;
        if (frame.event === "join") state.presence.set(frame.user.id, frame.user);
        else state.presence.delete(frame.user.id);
        return this._emitPresence(frame.room, state, frame);
      case "typing":
        return state && this._emit("typing", { room: frame.room, user: frame.user });
      case "error":
        return this._onError(frame);
    }
  }

  /** See docs/protocol.md#resuming: append, fill the hole over REST, or start over. */
  async _onJoined(frame, state) {
    const { room, history } = frame;
    const generation = this._generation;
    // The same room (same epoch, not behind us): continue from lastSeq; else start over.
    const continues = state.epoch === frame.epoch && frame.seq >= state.lastSeq;
    if (!continues) state.lastSeq = 0;
    state.epoch = frame.epoch;
    state.joined = true;
    state.presence = new Map(frame.presence.map((user) => [user.id, user]));
    this._emit("joined", { room, reset: !continues, hasMore: frame.has_more, seq: frame.seq });
    this._emitPresence(room, state);
    if (continues && !frame.recovered) {
      state.filling = true; // live messages wait in state.buffer meanwhile
      try {
        await this._fill(room, state, history.length ? history[0].seq : frame.seq + 1);
      } catch (error) {
        if (generation !== this._generation) return;
        this._emit("error", { code: "fill_failed", message: String(error.message ?? error), room });
        return this._drop(); // reconnect and resume again
      }
      if (generation !== this._generation || this._rooms.get(room) !== state) return;
      state.filling = false;
    }
    for (const message of history) this._deliver(state, message, !continues);
    for (const message of state.buffer.splice(0)) this._deliver(state, message, false);
    for (const [clientId, entry] of this._outbox) if (entry.room === room) this._transmit(clientId);
  }

  /** REST pages forward from lastSeq until they meet `until` (the first seq shown next). */
  async _fill(room, state, until) {
    const generation = this._generation;
    let after = state.lastSeq;
    while (after + 1 < until) {
      const path = `/api/rooms/${encodeURIComponent(room)}/messages/?after=${after}&limit=100`;
      const page = await this._fetchJSON(path);
      if (generation !== this._generation || this._rooms.get(room) !== state) return;
      for (const message of page.messages) this._deliver(state, { ...message, room }, false);
      if (!page.has_more || !page.messages.length) return;
      after = page.messages[page.messages.length - 1].seq;
    }
  }

  /** Show a message once: anything at or below the highest seq shown is a repeat. */
  _deliver(state, message, initial) {
    if (message.seq <= state.lastSeq) return;
    state.lastSeq = message.seq;
    const key = `${message.room} ${message.seq}`;
    const clientId = this._ackedSeqs.get(key);
    this._ackedSeqs.delete(key);
    this._emit("message", { room: message.room, message, clientId, initial });
  }

  _onAck(frame) {
    const clientId = frame.ref?.startsWith("s:") ? frame.ref.slice(2) : null;
    const entry = this._outbox.get(clientId);
    if (!entry) return;
    this._outbox.delete(clientId);
    const shown = frame.seq <= (this._rooms.get(entry.room)?.lastSeq ?? 0);
    if (!shown) this._ackedSeqs.set(`${entry.room} ${frame.seq}`, clientId);
    this._emit("ack", { room: entry.room, clientId, id: frame.id, seq: frame.seq, shown });
  }

  _onError(frame) {
    const ref = frame.ref ?? "";
    const detail = { code: frame.code, message: frame.message, retrying: false };
    const retry = RETRYABLE.has(frame.code);
    if (ref.startsWith("s:") && this._outbox.has(ref.slice(2))) {
      const clientId = ref.slice(2);
      Object.assign(detail, { clientId, room: this._outbox.get(clientId).room, retrying: retry });
      if (retry) setTimeout(() => this._transmit(clientId), RETRY_FRAME_MS);
      else this._outbox.delete(clientId);
    } else if (ref.startsWith("j:") && this._rooms.has(ref.slice(2))) {
      const room = ref.slice(2);
      Object.assign(detail, { room, retrying: retry });
      if (retry) setTimeout(() => this._sendJoin(room), RETRY_FRAME_MS);
      else this._forget(room, frame.code);
    }
    this._emit("error", detail);
  }

  // --- Frames out ------------------------------------------------------------------------

  _frame(frame) {
    if (this._ws?.readyState !== WebSocket.OPEN) return false;
    this._ws.send(JSON.stringify(frame));
    return true;
  }

  _sendJoin(room) {
    const state = this._rooms.get(room);
    if (!state || state.joined) return;
    const frame = { type: "join", room, ref: `j:${room}` };
    if (state.epoch !== null) Object.assign(frame, { since: state.lastSeq, epoch: state.epoch });
    this._frame(frame);
  }

  _transmit(clientId) {
    const entry = this._outbox.get(clientId);
    if (!entry || !this._rooms.get(entry.room)?.joined) return; // sent once joined
    const { room, body } = entry;
    this._frame({ type: "send", room, body, client_id: clientId, ref: `s:${clientId}` });
  }

  // --- Helpers ---------------------------------------------------------------------------

  _forget(room, reason) {
    this._rooms.delete(room);
    for (const [clientId, entry] of this._outbox) {
      if (entry.room !== room) continue;
      this._outbox.delete(clientId);
      this._emit("error", { code: "not_joined", message: "Left the room before it was sent.",
        room, clientId, retrying: false });
    }
    this._emit("left", { room, reason });
  }

  _emitPresence(room, state, frame) {
    const users = [...state.presence.values()];
    this._emit("presence", { room, users, event: frame?.event ?? null, user: frame?.user ?? null });
  }

  _setStatus(state, extra = {}) {
    this.status = { state, ...extra };
    this._emit("status", this.status);
  }

  _emit(type, detail) {
    this.dispatchEvent(new CustomEvent(type, { detail }));
  }
}

/** The claims of a JWT (its payload is base64url JSON), or null. */
export function jwtClaims(token) {
  try {
    const payload = token.split(".")[1].replace(/-/g, "+").replace(/_/g, "/");
    return JSON.parse(atob(payload.padEnd(Math.ceil(payload.length / 4) * 4, "=")));
  } catch {
    return null;
  }
}

function expiresWithin(token, seconds) {
  const exp = jwtClaims(token)?.exp;
  return !exp || exp * 1000 - Date.now() < seconds * 1000;
}

async function getWithBearer(path, token) {
  const response = await fetch(path, { headers: { Authorization: `Bearer ${token}` } });
  if (!response.ok) throw new Error(`GET ${path} answered ${response.status}`);
  return response.json();
}

/** A UUID v4 (crypto.randomUUID needs a secure context; getRandomValues does not). */
function randomId() {
  if (globalThis.crypto?.randomUUID) return crypto.randomUUID();
  const b = crypto.getRandomValues(new Uint8Array(16));
  b[6] = (b[6] & 0x0f) | 0x40;
  b[8] = (b[8] & 0x3f) | 0x80;
  const hex = [...b].map((x) => x.toString(16).padStart(2, "0")).join("");
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}
