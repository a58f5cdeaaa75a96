/**
 * DOM helpers. Everything on the page is built with createElement and text nodes: no HTML
 * string is ever parsed, so nothing a server or a person sends can become markup. No inline
 * styles or event-handler attributes either (the page's CSP forbids both).
 *
 * @module chat/ui
 */

let lastId = 0;

/** A unique element id with a readable prefix. */
export function uid(prefix) {
  lastId += 1;
  return `${prefix}-${lastId}`;
}

/**
 * h("button", {class: "primary", type: "button", on: {click}}, "Send")
 *
 * Props: `class`, `dataset` (object), `on` (event -> listener), `value`/`checked`
 * (properties); anything else is an attribute (true: present, false/null: absent).
 * Children: nodes or strings (appended as text), nested arrays, null/false (skipped).
 */
export function h(tag, props = {}, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(props)) {
    if (value === null || value === undefined || value === false) continue;
    if (key === "class") el.className = value;
    else if (key === "dataset") Object.assign(el.dataset, value);
    else if (key === "on") for (const [type, fn] of Object.entries(value)) el.addEventListener(type, fn);
    else if (key === "value" || key === "checked") el[key] = value;
    else if (key === "style" || key.startsWith("on")) throw new Error(`h(): ${key} is not allowed`);
    else el.setAttribute(key, value === true ? "" : String(value));
  }
  el.append(...children.flat(Infinity).filter((c) => c !== null && c !== undefined && c !== false));
  return el;
}

/** Text only a screen reader reads. */
export function srOnly(text) {
  return h("span", { class: "sr-only" }, text);
}

/** A labelled form field: {field, input, error} where `field` holds label, input, hint, error. */
export function field({ label, hint, input }) {
  const id = input.id || uid("field");
  input.id = id;
  const errorEl = h("p", { class: "field-error", id: `${id}-error`, hidden: true });
  const hintEl = hint ? h("p", { class: "field-hint", id: `${id}-hint` }, hint) : null;
  input.setAttribute("aria-describedby", [hintEl?.id, errorEl.id].filter(Boolean).join(" "));
  const wrap = h("div", { class: "field" }, h("label", { for: id }, label), input, hintEl, errorEl);
  return { field: wrap, input, error: errorEl };
}

/** Show (or clear, with no messages) a field's errors. */
export function setFieldError({ input, error }, messages = []) {
  error.textContent = messages.join(" ");
  error.hidden = messages.length === 0;
  if (messages.length) input.setAttribute("aria-invalid", "true");
  else input.removeAttribute("aria-invalid");
}

/** The messages of one field in an ApiError's `fields`. */
export function fieldMessages(error, name) {
  return (error?.fields?.[name] ?? []).map((item) => item.message ?? String(item));
}

const timeFormat = new Intl.DateTimeFormat(undefined, { hour: "numeric", minute: "2-digit" });
const dayTimeFormat = new Intl.DateTimeFormat(undefined, {
  month: "short", day: "numeric", hour: "numeric", minute: "2-digit",
});
const fullFormat = new Intl.DateTimeFormat(undefined, { dateStyle: "full", timeStyle: "medium" });

/** A <time>: the local time today, the date and time otherwise; the full date as a tooltip. */
export function timeElement(iso) {
  const date = new Date(iso);
  const today = new Date().toDateString() === date.toDateString();
  return h(
    "time",
    { datetime: iso, title: fullFormat.format(date) },
    (today ? timeFormat : dayTimeFormat).format(date),
  );
}

/** A stable colour (one of 8 CSS classes) for a name. */
export function hueClass(name) {
  let hash = 0;
  for (const ch of name) hash = (hash * 31 + ch.codePointAt(0)) >>> 0;
  return `hue-${hash % 8}`;
}

/** A decorative round badge with the name's first letter. */
export function avatar(name) {
  const initial = name ? Array.from(name)[0].toUpperCase() : "?";
  return h("span", { class: `avatar ${name ? hueClass(name) : "hue-none"}`, "aria-hidden": "true" }, initial);
}

/** Characters as the server counts them: code points (an emoji is one). */
export function codePoints(text) {
  let count = 0;
  for (const _ of text) count += 1;
  return count;
}
