// Small DOM helpers shared by the screens. Every function takes the document it builds in,
// so node tests can hand them test/fake-dom.js instead of a browser's.

// el builds an element: attrs 'class', 'text', 'on<event>' (a listener) or any attribute
// (true means present, false/null/undefined absent); children are nodes or text.
export function el(doc, tag, attrs, ...children) {
  const n = doc.createElement(tag);
  if (attrs) {
    for (const [k, v] of Object.entries(attrs)) {
      if (v === undefined || v === null || v === false) continue;
      if (k === 'class') n.className = v;
      else if (k === 'text') n.textContent = v;
      else if (k.startsWith('on')) n.addEventListener(k.slice(2), v);
      else n.setAttribute(k, v === true ? '' : String(v));
    }
  }
  for (const c of children) {
    if (c === null || c === undefined || c === false) continue;
    n.append(c.nodeType ? c : doc.createTextNode(String(c)));
  }
  return n;
}

const ICONS = {
  door: '<svg class="icon" viewBox="0 0 24 24" aria-hidden="true" focusable="false"><path d="M5 21V3h11v18" fill="none" stroke="currentColor" stroke-width="2.2" stroke-linejoin="round"/><path d="M16 5l3 1.5V21" fill="none" stroke="currentColor" stroke-width="2.2" stroke-linejoin="round"/><circle cx="13" cy="12" r="1.3" fill="currentColor"/><path d="M2 21h20" stroke="currentColor" stroke-width="2.2" stroke-linecap="round"/></svg>',
  error: '<svg class="icon" viewBox="0 0 24 24" aria-hidden="true" focusable="false"><path d="M12 2.5 1.5 21h21z" fill="none" stroke="currentColor" stroke-width="2.2" stroke-linejoin="round"/><path d="M12 9v5.5" stroke="currentColor" stroke-width="2.4" stroke-linecap="round"/><circle cx="12" cy="17.6" r="1.4" fill="currentColor"/></svg>',
  ok: '<svg class="icon" viewBox="0 0 24 24" aria-hidden="true" focusable="false"><circle cx="12" cy="12" r="10" fill="none" stroke="currentColor" stroke-width="2.2"/><path d="m7 12.5 3.2 3.2L17 9" fill="none" stroke="currentColor" stroke-width="2.6" stroke-linecap="round" stroke-linejoin="round"/></svg>',
  info: '<svg class="icon" viewBox="0 0 24 24" aria-hidden="true" focusable="false"><circle cx="12" cy="12" r="10" fill="none" stroke="currentColor" stroke-width="2.2"/><path d="M12 11v6" stroke="currentColor" stroke-width="2.6" stroke-linecap="round"/><circle cx="12" cy="7.3" r="1.5" fill="currentColor"/></svg>'
};

export function icon(doc, name) {
  const span = doc.createElement('span');
  span.className = 'icon-wrap';
  span.innerHTML = ICONS[name];
  return span;
}
