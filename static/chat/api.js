/**
 * The chat's REST API (docs/protocol.md#rest-api) in a few lines of fetch.
 *
 * Tokens live in memory and in sessionStorage (this tab only, gone with it): never in
 * localStorage, a cookie or a URL. Refreshing is serialized, in this tab and (where the
 * browser has Web Locks) across tabs sharing a session, because a refresh token used twice
 * revokes the whole session.
 *
 * @module chat/api
 */

const STORAGE_KEY = "chat.tokens";

/** An error answer: `code`, `message` and `fields` from the `{"error": {...}}` envelope. */
export class ApiError extends Error {
  constructor(status, { code, message, fields } = {}, retryAfter = null) {
    super(message || `The server answered ${status}.`);
    this.name = "ApiError";
    this.status = status; // 0: the server could not be reached
    this.code = code || `http_${status}`;
    this.fields = fields ?? null; // {field: [{code, message}]} with validation_failed
    this.retryAfter = retryAfter; // seconds, with 429
  }
}

export class Api {
  /** @param {{base?: string, storage?: Storage}} [options] */
  constructor({ base = "", storage = globalThis.sessionStorage } = {}) {
    this.base = base;
    this.storage = storage;
    /** @type {{access: string, refresh: string}|null} */
    this.tokens = readTokens(storage);
    /** Called once when the session is found to be over (a refresh refused). */
    this.onSignedOut = null;
    this._refreshing = null;
    // A duplicated tab starts with a copy of this tab's tokens: when one tab rotates the
    // pair, the others holding the spent refresh token take the new pair instead.
    this._channel = globalThis.BroadcastChannel ? new BroadcastChannel("chat.tokens") : null;
    this._channel?.addEventListener("message", ({ data }) => {
      if (data?.spent && data.spent === this.tokens?.refresh) this._keep(data.pair);
    });
  }

  get signedIn() {
    return this.tokens !== null;
  }

  // --- Accounts ---------------------------------------------------------------------------

  async login(username, password) {
    const pair = await this.request("POST", "/api/auth/token/", { username, password }, false);
    this._keep(pair);
    return pair;
  }

  /** 201 {username, email}; no tokens (log in next). */
  register(username, email, password) {
    return this.request("POST", "/api/auth/register/", { username, email, password }, false);
  }

  /**
   * The session's next pair, one refresh at a time. Resolves the new access token, or null
   * when the session is over (then the tokens are forgotten); rejects when the server could
   * not be reached or failed (try again later).
   */
  refresh() {
    const spent = this.tokens?.refresh;
    this._refreshing ??= withLock("chat.refresh", () => this._refresh(spent)).finally(() => {
      this._refreshing = null;
    });
    return this._refreshing;
  }

  async _refresh(spent) {
    if (!spent || !this.tokens) return null;
    // Another tab rotated this pair (and told us) while this one waited for the lock.
    if (this.tokens.refresh !== spent) return this.tokens.access;
    let pair;
    try {
      pair = await this.request("POST", "/api/auth/token/refresh/", { refresh: spent }, false);
    } catch (error) {
      if (error.status !== 400 && error.status !== 401) throw error;
      this._forget();
      this.onSignedOut?.();
      return null;
    }
    this._keep(pair);
    this._channel?.postMessage({ spent, pair });
    await sleep(100); // let other tabs adopt the pair before the lock is released
    return pair.access;
  }

  /** End this session (or, with `everywhere`, every session of the user). Never fails. */
  async logout({ everywhere = false } = {}) {
    const refresh = this.tokens?.refresh;
    this._forget();
    if (!refresh) return;
    try {
      await this.request("POST", "/api/auth/logout/", { refresh, everywhere }, false);
    } catch {
      // The tokens are forgotten here either way; they expire on their own.
    }
  }

  me() {
    return this.request("GET", "/api/auth/me/");
  }

  // --- Rooms ------------------------------------------------------------------------------

  async rooms() {
    return (await this.request("GET", "/api/rooms/")).rooms;
  }

  createRoom({ slug, title, isPrivate = false }) {
    return this.request("POST", "/api/rooms/", { slug, title, is_private: isPrivate });
  }

  /** A page of history, oldest first: {messages, has_more}. */
  messages(slug, { before, after, limit } = {}) {
    const query = new URLSearchParams();
    if (before !== undefined) query.set("before", before);
    if (after !== undefined) query.set("after", after);
    if (limit !== undefined) query.set("limit", limit);
    const suffix = query.toString() ? `?${query}` : "";
    return this.request("GET", `/api/rooms/${encodeURIComponent(slug)}/messages/${suffix}`);
  }

  async members(slug) {
    return (await this.request("GET", `/api/rooms/${encodeURIComponent(slug)}/members/`)).members;
  }

  addMember(slug, username) {
    return this.request("POST", `/api/rooms/${encodeURIComponent(slug)}/members/`, { username });
  }

  removeMember(slug, username) {
    const path = `/api/rooms/${encodeURIComponent(slug)}/members/${encodeURIComponent(username)}/`;
    return this.request("DELETE", path);
  }

  // --- Transport --------------------------------------------------------------------------

  /**
   * fetch JSON; an error answer becomes an ApiError. With `auth`, sends the access token
   * and, when it was refused as expired, refreshes once and tries again.
   */
  async request(method, path, body = undefined, auth = true, retried = false) {
    const headers = { Accept: "application/json" };
    if (body !== undefined) headers["Content-Type"] = "application/json";
    if (auth) {
      if (!this.tokens) throw new ApiError(401, { code: "not_authenticated", message: "Sign in first." });
      headers.Authorization = `Bearer ${this.tokens.access}`;
    }
    let response;
    try {
      response = await fetch(this.base + path, {
        method,
        headers,
        body: body === undefined ? undefined : JSON.stringify(body),
        credentials: "omit",
        cache: "no-store",
      });
    } catch {
      throw new ApiError(0, { code: "network", message: "Cannot reach the server." });
    }
    if (response.status === 401 && auth && !retried && (await this.refresh())) {
      return this.request(method, path, body, auth, true);
    }
    if (response.status === 204) return null;
    const data = await response.json().catch(() => null);
    if (response.ok) return data;
    const retryAfter = Number(response.headers.get("Retry-After")) || data?.error?.retry_after || null;
    throw new ApiError(response.status, data?.error, retryAfter);
  }

  _keep(pair) {
    this.tokens = { access: pair.access, refresh: pair.refresh };
    this.storage?.setItem(STORAGE_KEY, JSON.stringify(this.tokens));
  }

  _forget() {
    this.tokens = null;
    this.storage?.removeItem(STORAGE_KEY);
  }
}

function readTokens(storage) {
  try {
    const tokens = JSON.parse(storage?.getItem(STORAGE_KEY) ?? "null");
    return tokens?.access && tokens?.refresh ? tokens : null;
  } catch {
    return null;
  }
}

function withLock(name, fn) {
  return globalThis.navigator?.locks ? navigator.locks.request(name, fn) : fn();
}

function sleep(ms) {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
