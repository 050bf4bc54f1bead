/*
 * Building the DOM under a CSP that allows 'self' only: elements come from createElement and
 * textContent, never from HTML strings; styles from style.css (element.style is only set from
 * script, which the CSP allows).
 */

export const byId = (id) => document.getElementById(id);

/** createElement with props: class, text, data-* / other attributes, on<event> handlers. */
export function h(tag, props, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(props ?? {})) {
    if (v == null || v === false) continue;
    if (k === "class") node.className = v;
    else if (k === "text") node.textContent = v;
    else if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
    else node.setAttribute(k, v === true ? "" : String(v));
  }
  for (const c of children.flat()) if (c != null) node.append(c instanceof Node ? c : String(c));
  return node;
}

/** Writes only a changed text (a write costs a layout, even when equal). */
export function setText(node, text) {
  if (node.textContent !== text) node.textContent = text;
}

/** A table row with one cell across `span` columns that says why the table is empty. */
export function emptyRow(span, text) {
  return h("tr", null, h("td", { class: "empty", colspan: span, text }));
}

/** A CSS custom property of the document, as style.css sets it for the current colour scheme. */
export function cssVar(name) {
  return getComputedStyle(document.documentElement).getPropertyValue(name).trim();
}

/** Problems the page can live with (a fetch that failed) are shown, not thrown; null hides the notice. */
export function showNotice(message) {
  const el = byId("notice");
  el.hidden = !message;
  setText(el, message ?? "");
}
