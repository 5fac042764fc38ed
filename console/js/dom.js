// Building DOM without innerHTML: data (device text is untrusted) only ever becomes text nodes and attribute values.

/**
 * h('tr', { class: 'fire', onclick: fn, dataset: { id } }, 'text', childNode, [more, children])
 * Strings become text nodes; null, undefined and false are skipped.
 */
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag)
  for (const [k, v] of Object.entries(attrs ?? {})) {
    if (v === undefined || v === null || v === false) continue
    if (k.startsWith('on') && typeof v === 'function') el.addEventListener(k.slice(2), v)
    else if (k === 'dataset') Object.assign(el.dataset, v)
    else if (k === 'class') el.className = v
    else el.setAttribute(k, v === true ? '' : String(v))
  }
  append(el, children)
  return el
}

function append(el, children) {
  for (const c of children) {
    if (c === undefined || c === null || c === false) continue
    if (Array.isArray(c)) append(el, c)
    else el.append(c instanceof Node ? c : document.createTextNode(String(c)))
  }
}

/** Replace an element's content. */
export function mount(el, ...children) {
  el.replaceChildren()
  append(el, children)
}

/** A link within the console (hash routes). */
export const link = (route, text) => h('a', { href: `#${route.map(encodeURIComponent).join('/')}` }, text)
