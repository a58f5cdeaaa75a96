/**
 * One joined room on screen: its log of messages (in seq order, each once), the composer,
 * who is here, who is typing, and (private rooms) its members. The app keeps one RoomView
 * per joined room and puts the one in view into the page; the others keep their messages,
 * scroll position and draft while out of the page.
 *
 * @module chat/room
 */

import { avatar, codePoints, field, fieldMessages, h, hueClass, setFieldError, srOnly, timeElement, uid } from "./ui.js";

const MAX_BODY = 4000; // characters (code points), as the server counts them
const TYPING_SHOWN_MS = 4000;
const TYPING_EVERY_MS = 3250; // the server keeps one per 3 s; a little margin for clocks

export class RoomView {
  /**
   * @param {object} options
   * @param {{slug: string, title: string, is_private: boolean}} options.room
   * @param {{id: number, username: string}} options.me
   * @param {import("./client.js").ChatClient} options.client
   * @param {import("./api.js").Api} options.api
   * @param {boolean} options.ownerHint the user created this room in this session
   * @param {(room: string) => void} options.onLeave
   */
  constructor({ room, me, client, api, ownerHint, onLeave }) {
    Object.assign(this, { room, me, client, api, ownerHint, onLeave });
    this.slug = room.slug;
    this.pending = new Map(); // client_id -> element, until acknowledged
    this.typists = new Map(); // username -> timer
    this.lastTypingSent = 0;
    this.typingTimer = null;
    this.hasMore = false;
    this.stickToBottom = true;
    this.element = this._render();
  }

  // --- Rendering --------------------------------------------------------------------------

  _render() {
    const titleId = uid("room-title");
    const peopleId = uid("people");
    this.olderButton = h("button", { type: "button", class: "quiet", hidden: true,
      on: { click: () => this.loadOlder() } }, "Load older");
    this.log = h("div", { class: "log", role: "log", "aria-live": "polite",
      "aria-labelledby": titleId, tabindex: "0", on: { scroll: () => this._onScroll() } });
    this.emptyNote = h("p", { class: "empty-note" }, "No messages yet. Say hello!");
    this.jumpButton = h("button", { type: "button", class: "jump", hidden: true,
      on: { click: () => this.scrollToBottom() } }, "New messages below ↓");
    this.typingLine = h("p", { class: "typing", "aria-live": "polite" });
    this.people = h("ul", { class: "people", "aria-labelledby": peopleId });
    this.membersSection = h("section", { class: "members", hidden: true });

    return h("section", { class: "room-view", "aria-labelledby": titleId },
      h("header", { class: "room-head" },
        h("div", { class: "room-heading" },
          h("h2", { id: titleId, class: "room-title" }, this.room.title),
          this.room.is_private ? h("span", { class: "tag" }, "Private") : null,
          h("span", { class: "room-slug" }, `#${this.slug}`)),
        h("button", { type: "button", class: "secondary small",
          on: { click: () => this.onLeave(this.slug) } }, "Leave room")),
      h("div", { class: "room-body" },
        h("div", { class: "conversation" },
          h("div", { class: "older" }, this.olderButton),
          h("div", { class: "log-wrap" }, this.log, this.emptyNote, this.jumpButton),
          this.typingLine,
          this._renderComposer()),
        h("aside", { class: "room-side", "aria-label": "About this room" },
          h("section", { class: "presence" },
            h("h3", { id: peopleId }, "People here"), this.people),
          this.membersSection)));
  }

  _renderComposer() {
    const id = uid("composer");
    this.textarea = h("textarea", { id, rows: "1", placeholder: `Message #${this.slug}`,
      autocomplete: "off", "aria-describedby": `${id}-hint`, enterkeyhint: "send",
      on: { keydown: (e) => this._onKey(e), input: () => this._onInput() } });
    this.counter = h("span", { class: "counter", hidden: true });
    this.composerError = h("span", { class: "composer-error" });
    return h("form", { class: "composer", on: { submit: (e) => { e.preventDefault(); this.submit(); } } },
      h("label", { for: id, class: "sr-only" }, "Message"),
      h("div", { class: "composer-row" },
        this.textarea,
        h("button", { type: "submit", class: "primary" }, "Send")),
      h("p", { class: "composer-hint", id: `${id}-hint` },
        h("span", {}, "Enter to send · Shift+Enter for a new line"), this.counter, this.composerError));
  }

  _messageElement(message) {
    const author = message.user?.username ?? null;
    const own = message.user?.id === this.me.id;
    return h("article", {
      class: `msg${own ? " own" : ""}${message.redacted ? " redacted" : ""}`,
      dataset: { seq: String(message.seq), author: String(message.user?.id ?? ""),
        time: String(Date.parse(message.created_at)) },
    },
      avatar(author),
      h("div", { class: "msg-main" },
        h("p", { class: "meta" },
          h("span", { class: `author${author ? ` ${hueClass(author)}` : " ghost"}` }, author ?? "deleted user"),
          own ? srOnly(" (you)") : null,
          " ", timeElement(message.created_at)),
        message.redacted
          ? h("p", { class: "body removed" }, "message removed")
          : h("p", { class: "body" }, message.body)));
  }

  _pendingElement(clientId, body) {
    return h("article", { class: "msg own pending", "aria-busy": "true",
      dataset: { clientId, author: String(this.me.id), time: String(Date.now()) } },
      avatar(this.me.username),
      h("div", { class: "msg-main" },
        h("p", { class: "meta" },
          h("span", { class: `author ${hueClass(this.me.username)}` }, this.me.username)),
        h("p", { class: "body" }, body),
        h("p", { class: "marker" }, "Sending…")));
  }

  // --- Events from the client -------------------------------------------------------------

  /** A `joined`: with `reset`, what is shown was another room's (or nothing): start over. */
  joined({ reset, hasMore }) {
    if (!reset) return;
    for (const el of this.log.querySelectorAll("[data-seq]")) el.remove();
    for (const el of this.log.children) this._regroup(el);
    this.hasMore = hasMore;
    this.olderButton.hidden = !hasMore;
    this.stickToBottom = true;
    this._updateEmpty();
  }

  message({ message, initial }) {
    const follow = this.stickToBottom || message.user?.id === this.me.id;
    const el = this._messageElement(message);
    const shown = this.log.querySelector(`[data-seq="${message.seq}"]`);
    if (shown) shown.replaceWith(el); // our own, acknowledged a moment ago
    else this._insertBySeq(el, message.seq);
    this._regroup(el);
    if (message.user) this._stopTyping(message.user.username);
    this._updateEmpty();
    if (follow) this.scrollToBottom();
    else if (!initial) this.jumpButton.hidden = false;
  }

  ack({ clientId, seq, shown }) {
    const el = this.pending.get(clientId);
    this.pending.delete(clientId);
    if (!el) return;
    if (shown || this.log.querySelector(`[data-seq="${seq}"]`)) return this._remove(el);
    el.classList.remove("pending");
    el.removeAttribute("aria-busy");
    delete el.dataset.clientId;
    el.dataset.seq = String(seq);
    el.querySelector(".marker")?.remove();
    const next = el.nextElementSibling;
    this._insertBySeq(el, seq);
    this._regroup(el);
    if (next) this._regroup(next);
  }

  /** A send the server refused for good (or one dropped by leaving the room). */
  sendFailed({ clientId, message, retrying }) {
    const el = this.pending.get(clientId);
    if (!el || retrying) return;
    this.pending.delete(clientId);
    el.classList.replace("pending", "failed");
    el.removeAttribute("aria-busy");
    const body = el.querySelector(".body").textContent;
    el.querySelector(".marker").textContent = `Not sent: ${message}`;
    el.querySelector(".msg-main").append(h("p", { class: "msg-actions" },
      h("button", { type: "button", class: "quiet small", on: { click: () => {
        this._remove(el);
        this.send(body);
        this.focusComposer();
      } } }, "Try again"),
      h("button", { type: "button", class: "quiet small", on: { click: () => {
        this._remove(el);
        this.focusComposer();
      } } }, "Discard")));
  }

  setPresence(users) {
    const sorted = [...users].sort((a, b) => a.username.localeCompare(b.username));
    this.people.replaceChildren(...sorted.map((user) => h("li", {},
      avatar(user.username),
      h("span", { class: "person-name" }, user.username),
      user.id === this.me.id ? h("span", { class: "you" }, "(you)") : null)));
  }

  typing(user) {
    if (user.id === this.me.id) return;
    clearTimeout(this.typists.get(user.username));
    this.typists.set(user.username, setTimeout(() => this._stopTyping(user.username), TYPING_SHOWN_MS));
    this._renderTyping();
  }

  // --- Doing things -----------------------------------------------------------------------

  submit() {
    const body = this.textarea.value;
    this.composerError.textContent = "";
    if (!body.trim()) return;
    if (codePoints(body) > MAX_BODY) {
      this.composerError.textContent = `Too long: at most ${MAX_BODY} characters.`;
      return;
    }
    this.send(body);
    this.textarea.value = "";
    this._onInput();
  }

  send(body) {
    const clientId = this.client.send(this.slug, body);
    const el = this._pendingElement(clientId, body);
    this.pending.set(clientId, el);
    this.log.append(el);
    this._regroup(el);
    this._updateEmpty();
    this.scrollToBottom();
  }

  async loadOlder() {
    const first = this.log.querySelector("[data-seq]");
    if (!first) return;
    this.olderButton.disabled = true;
    try {
      const page = await this.api.messages(this.slug, { before: first.dataset.seq });
      const height = this.log.scrollHeight;
      const older = page.messages.filter((m) => !this.log.querySelector(`[data-seq="${m.seq}"]`));
      const elements = older.map((m) => this._messageElement(m));
      this.log.prepend(...elements);
      for (const el of [...elements, this.log.children[elements.length]]) if (el) this._regroup(el);
      this.log.scrollTop += this.log.scrollHeight - height; // keep what was in view in place
      this.hasMore = page.has_more;
      this.olderButton.hidden = !page.has_more;
    } catch (error) {
      this.composerError.textContent = `Could not load older messages: ${error.message}`;
    } finally {
      this.olderButton.disabled = false;
    }
  }

  /** Private rooms: who belongs, and for the owner, adding and removing members. */
  async refreshMembers() {
    if (!this.room.is_private) return;
    let members = null;
    try {
      members = await this.api.members(this.slug);
    } catch (error) {
      if (error.status !== 404 || !this.ownerHint) return void (this.membersSection.hidden = true);
    }
    const isOwner = members
      ? members.some((m) => m.role === "owner" && m.username.toLowerCase() === this.me.username.toLowerCase())
      : this.ownerHint;
    const headingId = uid("members");
    const list = members && h("ul", { class: "member-list", "aria-labelledby": headingId },
      members.map((member) => {
        const nameId = uid("member");
        return h("li", {},
          h("span", { id: nameId, class: "person-name" }, member.username),
          member.role === "owner" ? h("span", { class: "tag" }, "owner") : null,
          isOwner && member.role !== "owner"
            ? h("button", { type: "button", class: "quiet small", "aria-describedby": nameId,
              on: { click: () => this._removeMember(member.username) } }, "Remove")
            : null);
      }));
    this.membersSection.replaceChildren(
      ...[h("h3", { id: headingId }, "Members"), list, isOwner && this._addMemberForm()].filter(Boolean));
    this.membersSection.hidden = false;
  }

  _addMemberForm() {
    const add = field({ label: "Add member", input: h("input", { type: "text", autocomplete: "off",
      autocapitalize: "none", spellcheck: "false", required: true }) });
    const form = h("form", { class: "add-member", on: { submit: async (event) => {
      event.preventDefault();
      const username = add.input.value.trim();
      if (!username) return;
      setFieldError(add);
      try {
        await this.api.addMember(this.slug, username);
        await this.refreshMembers();
        this.membersSection.querySelector(".add-member input")?.focus();
      } catch (error) {
        setFieldError(add, fieldMessages(error, "username").length
          ? fieldMessages(error, "username") : [error.message]);
      }
    } } }, add.field, h("button", { type: "submit", class: "secondary small" }, "Add"));
    return form;
  }

  async _removeMember(username) {
    try {
      await this.api.removeMember(this.slug, username);
    } catch (error) {
      this.composerError.textContent = `Could not remove ${username}: ${error.message}`;
    }
    await this.refreshMembers();
    this.membersSection.querySelector(".add-member input")?.focus();
  }

  // --- Page plumbing ----------------------------------------------------------------------

  /** Called after the view was put into the page. */
  attached() {
    if (this.stickToBottom) this.scrollToBottom();
    else this.log.scrollTop = this.savedScroll ?? 0;
  }

  detaching() {
    this.savedScroll = this.log.scrollTop;
  }

  focusComposer() {
    this.textarea.focus();
  }

  destroy() {
    clearTimeout(this.typingTimer);
    for (const timer of this.typists.values()) clearTimeout(timer);
    this.typists.clear();
  }

  scrollToBottom() {
    this.log.scrollTop = this.log.scrollHeight;
    this.stickToBottom = true;
    this.jumpButton.hidden = true;
  }

  _onScroll() {
    const { scrollHeight, scrollTop, clientHeight } = this.log;
    if (!this.log.isConnected || clientHeight === 0) return;
    this.stickToBottom = scrollHeight - scrollTop - clientHeight < 40;
    if (this.stickToBottom) this.jumpButton.hidden = true;
  }

  _onKey(event) {
    if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
      event.preventDefault();
      this.submit();
    } else if (event.key === "Escape") {
      this.scrollToBottom(); // back to the newest messages
    }
  }

  _onInput() {
    const text = this.textarea.value;
    this.textarea.rows = Math.min(6, text.split("\n").length);
    const length = codePoints(text);
    this.counter.hidden = length < MAX_BODY - 500;
    this.counter.textContent = `${length} / ${MAX_BODY}`;
    this.counter.classList.toggle("over", length > MAX_BODY);
    if (text.trim()) this._typing();
  }

  /** A typing frame at most every 3 s while the person types, the last one a bit late. */
  _typing() {
    this.lastInput = Date.now();
    const wait = this.lastTypingSent + TYPING_EVERY_MS - Date.now();
    if (wait <= 0) {
      this.lastTypingSent = Date.now();
      this.client.typing(this.slug);
    } else {
      this.typingTimer ??= setTimeout(() => {
        this.typingTimer = null;
        if (this.textarea.value.trim() && Date.now() - this.lastInput < TYPING_EVERY_MS) this._typing();
      }, wait);
    }
  }

  _insertBySeq(el, seq) {
    // Pending messages (no seq yet) stay last; walk back past them and any later seq.
    let before = null;
    for (let node = this.log.lastElementChild; node; node = node.previousElementSibling) {
      if (node !== el && node.dataset.seq && Number(node.dataset.seq) < seq) break;
      if (node !== el) before = node;
    }
    this.log.insertBefore(el, before);
  }

  /** Consecutive messages of one author within 5 minutes show their name and avatar once. */
  _regroup(el) {
    el.classList.toggle("cont", this._continues(el));
    const next = el.nextElementSibling;
    next?.classList.toggle("cont", this._continues(next));
  }

  _continues(el) {
    const prev = el.previousElementSibling;
    return !!prev && el.dataset.author !== "" && prev.dataset.author === el.dataset.author
      && Math.abs(Number(el.dataset.time) - Number(prev.dataset.time)) < 5 * 60_000;
  }

  _remove(el) {
    const next = el.nextElementSibling;
    el.remove();
    if (next) this._regroup(next);
    this._updateEmpty();
  }

  _stopTyping(username) {
    if (!this.typists.has(username)) return;
    clearTimeout(this.typists.get(username));
    this.typists.delete(username);
    this._renderTyping();
  }

  _renderTyping() {
    const names = [...this.typists.keys()];
    this.typingLine.textContent =
      names.length === 0 ? "" :
      names.length === 1 ? `${names[0]} is typing…` :
      names.length === 2 ? `${names[0]} and ${names[1]} are typing…` :
      "Several people are typing…";
  }

  _updateEmpty() {
    this.emptyNote.hidden = this.log.childElementCount > 0;
  }
}
