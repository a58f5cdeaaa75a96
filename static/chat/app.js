/**
 * The chat page: signing in or up, the status line, the rooms list, and one RoomView per
 * joined room (static/chat/room.js), on the protocol client (static/chat/client.js) and
 * the REST wrapper (static/chat/api.js). Built with createElement and text only.
 *
 * @module chat/app
 */

import { Api } from "./api.js";
import { ChatClient } from "./client.js";
import { RoomView } from "./room.js";
import { field, fieldMessages, h, setFieldError, srOnly } from "./ui.js";

const VIEW_KEY = "chat.view"; // sessionStorage: the rooms joined and the one in view
const ROOMS_REFRESH_MS = 60_000;

const api = new Api();
/** @type {Session|null} */
let session = null;

// --- The page's frame: brand, status line, account -------------------------------------

const statusText = h("p", { class: "status-text", role: "status" });
const retryButton = h("button", { type: "button", class: "quiet small", hidden: true,
  on: { click: () => session?.client.reconnectNow() } }, "Retry now");
const statusBar = h("div", { class: "statusbar", hidden: true },
  h("span", { class: "status-dot", "aria-hidden": "true" }), statusText, retryButton);
const brand = h("h1", { class: "brand", tabindex: "-1" },
  h("span", { class: "logo", "aria-hidden": "true" }), "Chat");
const account = h("div", { class: "account" });
const content = h("div", { class: "content" });
const toast = h("div", { class: "toast", "aria-live": "polite" });
document.getElementById("app").replaceChildren(
  h("header", { class: "topbar" }, brand, statusBar, account), content, toast);

let countdown = null;

function setStatus(text, tone) {
  if (statusText.textContent !== text) statusText.textContent = text;
  statusBar.dataset.tone = tone;
  statusBar.hidden = !text;
}

/** Renders a ChatClient status: "Connecting…", "Connected", "Reconnecting in N s", or why it stopped. */
function showStatus(status) {
  clearInterval(countdown);
  retryButton.hidden = status.state !== "reconnecting";
  if (status.state === "connecting") return setStatus("Connecting…", "busy");
  if (status.state === "connected") return setStatus("Connected", "ok");
  if (status.state === "reconnecting") {
    const why = status.code === 4009 ? "Too many connections — close another tab. "
      : navigator.onLine === false ? "Offline. " : "";
    const tick = () => {
      const seconds = Math.max(0, Math.ceil((status.at - Date.now()) / 1000));
      setStatus(`${why}Reconnecting in ${seconds} s`, "warn");
    };
    tick();
    countdown = setInterval(tick, 250);
    return;
  }
  if (status.state === "stopped") setStatus(stopReason(status), "off");
}

function stopReason({ reason, code }) {
  if (reason === "signed_out") return "Signed out";
  if (reason === "closed") return "Offline";
  if (code === 4403) return "Your account is disabled";
  if (code === 4400) return "Disconnected: the page broke the protocol (4400). Reload the page.";
  if (code === undefined) return "Cannot connect: the chat address is not valid";
  return `Disconnected (code ${code})`;
}

let toastTimer = null;
function notify(text) {
  toast.textContent = text;
  toast.classList.add("shown");
  clearTimeout(toastTimer);
  toastTimer = setTimeout(() => {
    toast.classList.remove("shown");
    toast.textContent = "";
  }, 6000);
}

// --- Signing in and up -------------------------------------------------------------------

function authErrorText(error) {
  if (error.code === "invalid_credentials") return "Wrong username or password.";
  if (error.code === "throttled") return `Too many attempts. Try again in ${error.retryAfter ?? 60} s.`;
  if (error.status === 0) return "Cannot reach the server. Check your connection and try again.";
  return error.message;
}

function showSignIn({ username = "", error = "", note = "" } = {}) {
  const user = field({ label: "Username", input: h("input", { name: "username", value: username,
    autocomplete: "username", autocapitalize: "none", spellcheck: "false", required: true }) });
  const pass = field({ label: "Password", input: h("input", { type: "password", name: "password",
    autocomplete: "current-password", required: true }) });
  const alert = h("p", { class: "form-alert", role: "alert" }, error);
  const submit = h("button", { type: "submit", class: "primary wide" }, "Sign in");
  const form = h("form", { class: "card auth-card", on: { submit: async (event) => {
    event.preventDefault();
    alert.textContent = "";
    submit.disabled = true;
    try {
      await api.login(user.input.value.trim(), pass.input.value);
    } catch (err) {
      submit.disabled = false;
      alert.textContent = authErrorText(err);
      return;
    }
    await startSession();
  } } },
  h("h2", {}, "Sign in"),
  note ? h("p", { class: "muted" }, note) : null,
  user.field, pass.field, alert, submit,
  h("p", { class: "switch" }, "New here? ",
    h("button", { type: "button", class: "link", on: { click: () => showRegister() } }, "Create an account")));
  content.replaceChildren(h("main", { class: "auth" }, intro(), form));
  document.title = "Sign in · Chat";
}

function showRegister() {
  const inputs = {
    username: field({ label: "Username", hint: "Letters, digits and @ . + - _", input: h("input", {
      name: "username", autocomplete: "username", autocapitalize: "none", spellcheck: "false", required: true }) }),
    email: field({ label: "Email", input: h("input", { type: "email", name: "email",
      autocomplete: "email", required: true }) }),
    password: field({ label: "Password", hint: "At least 8 characters; not a common one.",
      input: h("input", { type: "password", name: "password", autocomplete: "new-password", required: true }) }),
  };
  const alert = h("p", { class: "form-alert", role: "alert" });
  const submit = h("button", { type: "submit", class: "primary wide" }, "Create account");
  const form = h("form", { class: "card auth-card", on: { submit: async (event) => {
    event.preventDefault();
    alert.textContent = "";
    for (const input of Object.values(inputs)) setFieldError(input);
    submit.disabled = true;
    const [username, email, password] = ["username", "email", "password"].map((k) => inputs[k].input.value);
    let created;
    try {
      created = await api.register(username.trim(), email.trim(), password);
    } catch (err) {
      submit.disabled = false;
      let first = null;
      for (const [name, input] of Object.entries(inputs)) {
        setFieldError(input, fieldMessages(err, name));
        if (fieldMessages(err, name).length) first ??= input.input;
      }
      const other = fieldMessages(err, "non_field_errors");
      alert.textContent = first ? ["Please correct the highlighted fields.", ...other].join(" ") : authErrorText(err);
      first?.focus();
      return;
    }
    // Registering returns no tokens: sign in with the same credentials.
    try {
      await api.login(created.username, password);
    } catch (err) {
      showSignIn({ username: created.username, error: authErrorText(err),
        note: "If this email address already had an account, its owner has been emailed instead." });
      return;
    }
    await startSession();
  } } },
  h("h2", {}, "Create an account"),
  inputs.username.field, inputs.email.field, inputs.password.field, alert, submit,
  h("p", { class: "switch" }, "Have an account already? ",
    h("button", { type: "button", class: "link", on: { click: () => showSignIn() } }, "Back to the sign-in form")));
  content.replaceChildren(h("main", { class: "auth" }, intro(), form));
  inputs.username.input.focus();
  document.title = "Create an account · Chat";
}

function intro() {
  return h("section", { class: "intro" },
    h("p", { class: "intro-title" }, "Talk in real time."),
    h("p", { class: "muted" },
      "Rooms for everyone and private ones for your people. Messages arrive once, in order, even through a flaky connection."));
}

// --- A signed-in session ------------------------------------------------------------------

async function startSession() {
  let me;
  try {
    me = await api.me();
  } catch (error) {
    if (error.status === 401 || !api.signedIn) return endSession("");
    setStatus("Cannot reach the server. Trying again…", "warn");
    setTimeout(startSession, 3000);
    return;
  }
  session?.end();
  session = new Session(me);
  account.replaceChildren(
    h("span", { class: "me" }, srOnly("Signed in as "), h("strong", {}, me.username)),
    h("button", { type: "button", class: "secondary small", on: { click: () => signOut(false) } }, "Sign out"),
    h("button", { type: "button", class: "quiet small", on: { click: () => signOut(true) } }, "Sign out everywhere"));
  content.replaceChildren(session.element);
  brand.focus();
  await session.start();
}

function endSession(status = "Signed out") {
  session?.end();
  session = null;
  account.replaceChildren();
  clearInterval(countdown);
  retryButton.hidden = true;
  setStatus(status, "off");
  sessionStorage.removeItem(VIEW_KEY);
  showSignIn();
}

async function signOut(everywhere) {
  session?.end();
  await api.logout({ everywhere });
  endSession("Signed out");
}

api.onSignedOut = () => session && endSession("Signed out");

class Session {
  constructor(me) {
    this.me = me;
    this.rooms = []; // [{slug, title, is_private}], from GET /api/rooms/
    this.views = new Map(); // slug -> RoomView, for every joined room
    this.unread = new Map(); // slug -> count, for joined rooms out of view
    this.navItems = new Map(); // slug -> {item, button, badge}
    this.created = new Set(); // rooms this session created (their owner, for sure)
    this.current = null;
    this.unseen = 0; // messages in the room in view while the tab was hidden
    this._onVisible = () => document.hidden || ((this.unseen = 0), this._updateNav());
    document.addEventListener("visibilitychange", this._onVisible);
    this.client = new ChatClient({
      getAccessToken: () => api.tokens?.access ?? null,
      refreshAccessToken: () => api.refresh(),
      fetchJSON: (path) => api.request("GET", path),
    });
    this._listen();
    this.roomList = h("ul", { class: "room-list" });
    this.noRooms = h("li", { class: "muted" }, "No rooms yet: create one.");
    this.main = h("main", { class: "main" });
    this.element = h("div", { class: "workspace" },
      h("div", { class: "sidebar" },
        h("nav", { class: "rooms-nav", "aria-label": "Rooms" }, h("h2", { class: "nav-title" }, "Rooms"), this.roomList),
        this._createRoomForm()),
      this.main);
    this._showNothing();
  }

  async start() {
    this.client.connect();
    await this.loadRooms();
    let saved = {};
    try {
      saved = JSON.parse(sessionStorage.getItem(VIEW_KEY) ?? "{}") ?? {};
    } catch { /* a fresh start */ }
    const known = new Set(this.rooms.map((r) => r.slug));
    for (const slug of saved.joined ?? []) if (known.has(slug)) this.openRoom(slug, { show: false });
    const first = this.rooms.find((r) => r.slug === "lobby") ?? this.rooms[0];
    const show = known.has(saved.current) ? saved.current : first?.slug;
    if (show) this.openRoom(show, { focus: false });
    this.timer = setInterval(() => {
      if (!document.hidden && this.client.status.state === "connected") this.loadRooms();
    }, ROOMS_REFRESH_MS);
  }

  end() {
    clearInterval(this.timer);
    document.removeEventListener("visibilitychange", this._onVisible);
    this.client.close();
    for (const view of this.views.values()) view.destroy();
    this.views.clear();
  }

  _listen() {
    const c = this.client;
    c.on("status", (status) => {
      if (session !== this) return;
      showStatus(status);
      if (status.state === "connected") this.loadRooms();
      if (status.state === "stopped" && status.reason === "signed_out") endSession("Signed out");
      if (status.state === "stopped" && status.code === 4403) this._explain4403();
    });
    c.on("joined", (d) => this.views.get(d.room)?.joined(d));
    c.on("message", (d) => {
      this.views.get(d.room)?.message(d);
      const mine = d.message.user?.id === this.me.id;
      if (d.initial || mine) return;
      if (d.room !== this.current && this.views.has(d.room)) {
        this.unread.set(d.room, (this.unread.get(d.room) ?? 0) + 1);
        this._updateNav();
      } else if (document.hidden) {
        this.unseen += 1;
        this._updateNav();
      }
    });
    c.on("ack", (d) => this.views.get(d.room)?.ack(d));
    c.on("presence", (d) => this.views.get(d.room)?.setPresence(d.users));
    c.on("typing", (d) => this.views.get(d.room)?.typing(d.user));
    c.on("left", (d) => this._onLeft(d));
    c.on("error", (d) => {
      if (d.clientId) this.views.get(d.room)?.sendFailed(d);
    });
  }

  async _explain4403() {
    // 4403 is also an origin refused; the account check tells the two apart.
    try {
      await api.request("GET", "/api/auth/me/", undefined, true, true); // no refresh on 401
      setStatus("The server refused the connection (4403)", "off");
    } catch {
      /* "Your account is disabled" stands */
    }
  }

  // --- Rooms list --------------------------------------------------------------------------

  async loadRooms() {
    try {
      this.rooms = await api.rooms();
    } catch {
      return; // the list stays as it was; the next connect or minute tries again
    }
    if (session !== this) return;
    const items = this.rooms.map((room) => {
      let entry = this.navItems.get(room.slug);
      if (!entry) {
        const badge = h("span", { class: "badge", hidden: true });
        const name = h("span", { class: "room-name" });
        const button = h("button", { type: "button", class: "room-button",
          on: { click: () => this.openRoom(room.slug) } }, h("span", { class: "dot", "aria-hidden": "true" }), name, badge);
        entry = { item: h("li", {}, button), button, badge, name };
        this.navItems.set(room.slug, entry);
      }
      entry.name.replaceChildren(room.title);
      if (room.is_private) entry.name.append(h("span", { class: "tag" }, "private"));
      return entry.item;
    });
    for (const slug of this.navItems.keys()) {
      if (!this.rooms.some((r) => r.slug === slug)) this.navItems.delete(slug);
    }
    if (!items.length) items.push(this.noRooms);
    // Never move an item that stays (moving a focused button would blur it): drop the gone,
    // then slot the new ones in before their successor.
    for (const item of [...this.roomList.children]) if (!items.includes(item)) item.remove();
    let next = null;
    for (const item of items.toReversed()) {
      if (item.parentNode !== this.roomList) this.roomList.insertBefore(item, next);
      next = item;
    }
    this._updateNav();
  }

  _updateNav() {
    let total = this.unseen;
    for (const [slug, { button, badge }] of this.navItems) {
      const count = this.unread.get(slug) ?? 0;
      total += count;
      badge.hidden = count === 0;
      if (count) badge.replaceChildren(String(count), srOnly(" unread"));
      else badge.replaceChildren();
      button.classList.toggle("joined", this.views.has(slug));
      if (slug === this.current) button.setAttribute("aria-current", "true");
      else button.removeAttribute("aria-current");
    }
    const room = this.rooms.find((r) => r.slug === this.current);
    document.title = `${total ? `(${total}) ` : ""}${room ? `${room.title} · ` : ""}Chat`;
  }

  _createRoomForm() {
    const slug = field({ label: "Room name", hint: "Lowercase letters, digits and hyphens, like book-club.",
      input: h("input", { name: "slug", required: true, maxlength: "50", autocapitalize: "none",
        spellcheck: "false", autocomplete: "off", pattern: "[a-z0-9][a-z0-9\\-]{0,49}" }) });
    const title = field({ label: "Title", input: h("input", { name: "title", required: true, maxlength: "100", autocomplete: "off" }) });
    const isPrivate = h("input", { type: "checkbox", id: "new-room-private", name: "is_private" });
    const alert = h("p", { class: "form-alert", role: "alert" });
    const submit = h("button", { type: "submit", class: "primary" }, "Create room");
    const form = h("form", { class: "create-room", on: { submit: async (event) => {
      event.preventDefault();
      alert.textContent = "";
      setFieldError(slug);
      setFieldError(title);
      submit.disabled = true;
      try {
        const room = await api.createRoom({ slug: slug.input.value.trim(), title: title.input.value.trim(),
          isPrivate: isPrivate.checked });
        this.created.add(room.slug);
        form.reset();
        await this.loadRooms();
        this.openRoom(room.slug);
      } catch (error) {
        setFieldError(slug, fieldMessages(error, "slug"));
        setFieldError(title, fieldMessages(error, "title"));
        const other = [...fieldMessages(error, "is_private"), ...fieldMessages(error, "non_field_errors")];
        alert.textContent = error.fields ? other.join(" ") : error.message;
        (error.fields?.slug ? slug.input : error.fields?.title ? title.input : null)?.focus();
      } finally {
        submit.disabled = false;
      }
    } } },
    slug.field, title.field,
    h("div", { class: "check" }, isPrivate, h("label", { for: isPrivate.id }, "Private"),
      h("span", { class: "field-hint" }, "members only")),
    alert, submit);
    const details = h("details", { class: "create-details" }, h("summary", {}, "New room"), form);
    details.open = matchMedia("(min-width: 48rem)").matches;
    return details;
  }

  // --- Rooms in view -----------------------------------------------------------------------

  /** Join the room if needed; with `show`, put it in view. */
  openRoom(slug, { show = true, focus = true } = {}) {
    const room = this.rooms.find((r) => r.slug === slug) ?? { slug, title: slug, is_private: false };
    if (!this.views.has(slug)) {
      this.views.set(slug, new RoomView({ room, me: this.me, client: this.client, api,
        ownerHint: this.created.has(slug), onLeave: (s) => this.leaveRoom(s) }));
      this.client.join(slug);
    }
    if (show) this._show(slug, focus);
    this._save();
    this._updateNav();
  }

  _show(slug, focus) {
    const view = this.views.get(slug);
    this.views.get(this.current)?.detaching();
    this.current = slug;
    this.unread.delete(slug);
    this.main.replaceChildren(view.element);
    view.attached();
    view.refreshMembers();
    if (focus) view.focusComposer();
  }

  leaveRoom(slug) {
    this.client.leave(slug); // the "left" event does the rest
  }

  _onLeft({ room, reason }) {
    const view = this.views.get(room);
    if (!view) return;
    view.destroy();
    this.views.delete(room);
    this.unread.delete(room);
    const title = view.room.title;
    const why = {
      left: `You left “${title}”.`,
      room_deleted: `“${title}” was deleted.`,
      membership_revoked: `You were removed from “${title}”.`,
      forbidden: `“${title}” is for its members only.`,
      not_found: `There is no room “${title}” any more.`,
      too_many_rooms: "You are in too many rooms: leave one first.",
    }[reason] ?? `You are no longer in “${title}” (${reason}).`;
    if (room === this.current) {
      this.current = null;
      this._showNothing(why);
    } else {
      notify(why);
    }
    if (reason !== "left") this.loadRooms();
    this._save();
    this._updateNav();
  }

  _showNothing(why = "") {
    this.main.replaceChildren(h("section", { class: "nothing" },
      why ? h("p", { class: "notice" }, why) : null,
      h("h2", {}, "No room open"),
      h("p", { class: "muted" }, "Pick a room from the list to join it, or create one.")));
  }

  _save() {
    const state = { joined: [...this.views.keys()], current: this.current };
    sessionStorage.setItem(VIEW_KEY, JSON.stringify(state));
  }
}

// --- Start -----------------------------------------------------------------------------------

if (api.signedIn) startSession();
else showSignIn();
