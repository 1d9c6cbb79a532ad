// A tiny document for node tests: parses the real index.html into elements that do what
// the page's modules use (text, attributes, classList, dataset, hidden, value, focus,
// events with capture and bubbling, click submitting a form, simple CSS selectors). It
// is not a browser: layout, CSS and ARIA are the browser tests' job (e2e/browser).
//
// node --test runs every file in test/; loaded that way this one only exports.

const VOID = new Set(['meta', 'link', 'input', 'br', 'img', 'hr']);

class Node {
  constructor(doc) {
    this.ownerDocument = doc;
    this.parentNode = null;
    this.childNodes = [];
  }
  get textContent() {
    return this.childNodes.map((c) => c.textContent).join('');
  }
  set textContent(v) {
    for (const c of this.childNodes) c.parentNode = null;
    this.childNodes = [];
    if (v !== '' && v !== null && v !== undefined) this.append(String(v));
  }
  append(...nodes) {
    for (let n of nodes) {
      if (typeof n === 'string') n = this.ownerDocument.createTextNode(n);
      if (n.parentNode) n.parentNode.childNodes.splice(n.parentNode.childNodes.indexOf(n), 1);
      n.parentNode = this;
      this.childNodes.push(n);
    }
  }
  contains(n) {
    for (let x = n; x; x = x.parentNode) if (x === this) return true;
    return false;
  }
  get children() {
    return this.childNodes.filter((c) => c.nodeType === 1);
  }
  querySelectorAll(sel) {
    const out = [];
    const chain = parseSelector(sel);
    const walk = (n) => {
      for (const c of n.children) {
        if (matchesChain(c, chain, this)) out.push(c);
        walk(c);
      }
    };
    walk(this);
    return out;
  }
  querySelector(sel) {
    return this.querySelectorAll(sel)[0] || null;
  }
}

class Text extends Node {
  constructor(doc, data) {
    super(doc);
    this.nodeType = 3;
    this.data = data;
  }
  get textContent() {
    return this.data;
  }
  set textContent(v) {
    this.data = String(v);
  }
}

class Element extends Node {
  constructor(doc, tag) {
    super(doc);
    this.nodeType = 1;
    this.tagName = tag.toUpperCase();
    this.attrs = new Map();
    this.listeners = [];
    this.value = '';
    const el = this;
    this.classList = {
      contains: (c) => el.className.split(/\s+/).includes(c),
      add: (...cs) => { for (const c of cs) if (!el.classList.contains(c)) el.className = (el.className + ' ' + c).trim(); },
      remove: (...cs) => { el.className = el.className.split(/\s+/).filter((x) => x && !cs.includes(x)).join(' '); },
      toggle: (c, force) => {
        const on = force === undefined ? !el.classList.contains(c) : !!force;
        if (on) el.classList.add(c);
        else el.classList.remove(c);
        return on;
      }
    };
    const attrName = (p) => 'data-' + String(p).replace(/[A-Z]/g, (m) => '-' + m.toLowerCase());
    this.dataset = new Proxy({}, {
      get: (_, p) => (typeof p === 'string' && el.attrs.has(attrName(p)) ? el.attrs.get(attrName(p)) : undefined),
      set: (_, p, v) => { el.attrs.set(attrName(p), String(v)); return true; }
    });
  }
  getAttribute(name) {
    return this.attrs.has(name) ? this.attrs.get(name) : null;
  }
  setAttribute(name, v) {
    this.attrs.set(name, String(v));
    if (name === 'value') this.value = String(v);
  }
  hasAttribute(name) {
    return this.attrs.has(name);
  }
  removeAttribute(name) {
    this.attrs.delete(name);
  }
  get id() {
    return this.getAttribute('id') || '';
  }
  get className() {
    return this.getAttribute('class') || '';
  }
  set className(v) {
    this.setAttribute('class', v);
  }
  get hidden() {
    return this.hasAttribute('hidden');
  }
  set hidden(v) {
    if (v) this.setAttribute('hidden', '');
    else this.removeAttribute('hidden');
  }
  get lang() {
    return this.getAttribute('lang') || '';
  }
  set lang(v) {
    this.setAttribute('lang', v);
  }
  // innerText: the text a person sees, so hidden elements say nothing.
  get innerText() {
    if (this.hidden) return '';
    return this.childNodes.map((c) => (c.nodeType === 1 ? c.innerText : c.data)).join('');
  }
  set innerHTML(html) {
    this.textContent = '';
    parseInto(this.ownerDocument, this, html);
  }
  addEventListener(type, fn, opts) {
    const capture = opts === true || !!(opts && opts.capture);
    this.listeners.push({ type, fn, capture });
  }
  dispatchEvent(ev) {
    return dispatch(this, ev);
  }
  closest(sel) {
    const chain = parseSelector(sel);
    for (let x = this; x && x.nodeType === 1; x = x.parentNode) if (matchesChain(x, chain, null)) return x;
    return null;
  }
  focus() {
    this.ownerDocument.activeElement = this;
  }
  blur() {
    if (this.ownerDocument.activeElement === this) this.ownerDocument.activeElement = this.ownerDocument.body;
  }
  // click is a pointer's click: a button or field takes the focus, the click event
  // runs, then, for a submit button in a form, the form's submit event (unless a
  // listener prevented it).
  click() {
    if (this.tagName === 'BUTTON' || this.tagName === 'INPUT') this.focus();
    const ev = new FakeEvent('click');
    dispatch(this, ev);
    const isSubmit = this.tagName === 'BUTTON' && (this.getAttribute('type') || 'submit') === 'submit';
    const form = this.closest('form');
    if (isSubmit && form && !ev.defaultPrevented) dispatch(form, new FakeEvent('submit'));
  }
}

class Document extends Node {
  constructor() {
    super(null);
    this.ownerDocument = this;
    this.nodeType = 9;
    this.listeners = [];
    this.title = '';
    this.readyState = 'complete';
    this.activeElement = null;
  }
  createElement(tag) {
    return new Element(this, tag.toLowerCase());
  }
  createTextNode(s) {
    return new Text(this, String(s));
  }
  get documentElement() {
    return this.children[0];
  }
  get body() {
    return this.querySelector('body');
  }
  addEventListener(type, fn, opts) {
    Element.prototype.addEventListener.call(this, type, fn, opts);
  }
  dispatchEvent(ev) {
    return dispatch(this, ev);
  }
}

export class FakeEvent {
  constructor(type, init) {
    Object.assign(this, { key: '', ctrlKey: false, metaKey: false, altKey: false }, init || {});
    this.type = type;
    this.defaultPrevented = false;
    this.target = null;
  }
  preventDefault() {
    this.defaultPrevented = true;
  }
}

// dispatch runs capture listeners from the document down, then the target's and bubbling
// ones up to the document: the order a browser uses.
function dispatch(target, ev) {
  ev.target = target;
  const path = [];
  for (let x = target; x; x = x.parentNode) path.push(x);
  const run = (node, capture) => {
    for (const l of node.listeners.slice()) {
      if (l.type === ev.type && l.capture === capture) l.fn.call(node, ev);
    }
  };
  for (let i = path.length - 1; i > 0; i--) run(path[i], true);
  run(target, true);
  run(target, false);
  for (let i = 1; i < path.length; i++) run(path[i], false);
  return !ev.defaultPrevented;
}

// Selectors: descendant chains of compounds like `button[data-key="1"]`, `#id`,
// `.screen[data-screen="x"] h1`. Nothing else is needed by the page.
function parseSelector(sel) {
  return sel.trim().split(/\s+/).map((part) => {
    const c = { tag: null, id: null, classes: [], attrs: [] };
    const re = /([a-zA-Z][\w-]*)|#([\w-]+)|\.([\w-]+)|\[([\w-]+)(?:="([^"]*)")?\]/y;
    while (re.lastIndex < part.length) {
      const m = re.exec(part);
      if (!m) throw new Error('fake-dom: unsupported selector ' + sel);
      if (m[1]) c.tag = m[1].toUpperCase();
      else if (m[2]) c.id = m[2];
      else if (m[3]) c.classes.push(m[3]);
      else c.attrs.push([m[4], m[5]]);
    }
    return c;
  });
}

function matches(el, c) {
  if (c.tag && el.tagName !== c.tag) return false;
  if (c.id && el.id !== c.id) return false;
  for (const cls of c.classes) if (!el.classList.contains(cls)) return false;
  for (const [name, v] of c.attrs) {
    if (!el.hasAttribute(name)) return false;
    if (v !== undefined && el.getAttribute(name) !== v) return false;
  }
  return true;
}

function matchesChain(el, chain, scope) {
  if (!matches(el, chain[chain.length - 1])) return false;
  let i = chain.length - 2;
  for (let x = el.parentNode; i >= 0 && x && x !== scope && x.nodeType === 1; x = x.parentNode) {
    if (matches(x, chain[i])) i--;
  }
  return i < 0;
}

const TOKEN = /<!--[\s\S]*?-->|<!doctype[^>]*>|<\/([a-zA-Z][\w-]*)\s*>|<([a-zA-Z][\w-]*)((?:\s+[^\s=>/]+(?:\s*=\s*(?:"[^"]*"|'[^']*'|[^\s>]+))?)*)\s*(\/?)>|([^<]+)/gi;
const ATTR = /([^\s=]+)(?:\s*=\s*(?:"([^"]*)"|'([^']*)'|([^\s>]+)))?/g;
const decode = (s) => s.replace(/&lt;/g, '<').replace(/&gt;/g, '>').replace(/&quot;/g, '"').replace(/&#39;/g, "'").replace(/&amp;/g, '&');

function parseInto(doc, root, html) {
  const stack = [root];
  for (const m of html.matchAll(TOKEN)) {
    const top = stack[stack.length - 1];
    if (m[5] !== undefined) {
      top.append(doc.createTextNode(decode(m[5])));
    } else if (m[2]) {
      const el = doc.createElement(m[2]);
      for (const a of (m[3] || '').matchAll(ATTR)) el.setAttribute(a[1], decode(a[2] ?? a[3] ?? a[4] ?? ''));
      top.append(el);
      if (!m[4] && !VOID.has(m[2].toLowerCase())) stack.push(el);
    } else if (m[1]) {
      const tag = m[1].toUpperCase();
      for (let i = stack.length - 1; i > 0; i--) {
        if (stack[i].tagName === tag) {
          stack.length = i;
          break;
        }
      }
    }
  }
}

export function parseDocument(html) {
  const doc = new Document();
  parseInto(doc, doc, html);
  doc.activeElement = doc.body;
  return doc;
}
