/*
 * A small QR code encoder for digit strings (numeric mode, error correction level M,
 * versions 1 and 2: up to 63 digits), drawn as inline SVG. The driver page shows the
 * loading credential as a QR code because the kiosk's scanner types what it reads into
 * the credential field. Follows ISO/IEC 18004; the structure mirrors Project Nayuki's
 * reference encoder. No dependencies; exposes globalThis.LarderQR.
 */
(function (root) {
  'use strict';

  // Versions 1 and 2 at level M: data and error-correction codewords (one block each).
  const VERSIONS = [null, { data: 16, ec: 10 }, { data: 28, ec: 16 }];

  // GF(256) multiplication modulo x^8 + x^4 + x^3 + x^2 + 1.
  function mul(x, y) {
    let z = 0;
    for (let i = 7; i >= 0; i--) {
      z = (z << 1) ^ ((z >>> 7) * 0x11d);
      z ^= ((y >>> i) & 1) * x;
    }
    return z & 0xff;
  }

  function rsDivisor(n) {
    const d = new Array(n).fill(0);
    d[n - 1] = 1;
    let r = 1;
    for (let i = 0; i < n; i++) {
      for (let j = 0; j < n; j++) {
        d[j] = mul(d[j], r);
        if (j + 1 < n) d[j] ^= d[j + 1];
      }
      r = mul(r, 0x02);
    }
    return d;
  }

  function rsRemainder(data, n) {
    const div = rsDivisor(n);
    const out = new Array(n).fill(0);
    for (const b of data) {
      const f = b ^ out.shift();
      out.push(0);
      for (let i = 0; i < n; i++) out[i] ^= mul(div[i], f);
    }
    return out;
  }

  // codewords returns the version and the data + EC codewords of a digit string.
  function codewords(digits) {
    if (!/^[0-9]+$/.test(digits)) throw new Error('qr: digits only');
    const bits = [];
    const put = (v, n) => { for (let i = n - 1; i >= 0; i--) bits.push((v >>> i) & 1); };
    put(1, 4); // numeric mode
    put(digits.length, 10);
    for (let i = 0; i < digits.length; i += 3) {
      const g = digits.slice(i, i + 3);
      put(Number(g), g.length * 3 + 1);
    }
    const version = bits.length <= VERSIONS[1].data * 8 ? 1 : 2;
    const cap = VERSIONS[version].data * 8;
    if (bits.length > cap) throw new Error('qr: too long');
    put(0, Math.min(4, cap - bits.length));
    while (bits.length % 8) bits.push(0);
    const data = [];
    for (let i = 0; i < bits.length; i += 8) data.push(parseInt(bits.slice(i, i + 8).join(''), 2));
    for (let pad = 0xec; data.length < VERSIONS[version].data; pad ^= 0xec ^ 0x11) data.push(pad);
    return { version, codewords: data.concat(rsRemainder(data, VERSIONS[version].ec)) };
  }

  const MASKS = [
    (x, y) => (x + y) % 2 === 0,
    (x, y) => y % 2 === 0,
    (x) => x % 3 === 0,
    (x, y) => (x + y) % 3 === 0,
    (x, y) => (Math.floor(x / 3) + Math.floor(y / 2)) % 2 === 0,
    (x, y) => ((x * y) % 2) + ((x * y) % 3) === 0,
    (x, y) => (((x * y) % 2) + ((x * y) % 3)) % 2 === 0,
    (x, y) => (((x + y) % 2) + ((x * y) % 3)) % 2 === 0,
  ];

  // matrix returns the modules (true = dark) of the QR code of digits, [row][column].
  function matrix(digits) {
    const { version, codewords: cw } = codewords(digits);
    const size = 17 + 4 * version;
    const dark = Array.from({ length: size }, () => new Array(size).fill(false));
    const fixed = Array.from({ length: size }, () => new Array(size).fill(false));
    const set = (x, y, d) => { dark[y][x] = d; fixed[y][x] = true; };

    for (let i = 0; i < size; i++) { set(6, i, i % 2 === 0); set(i, 6, i % 2 === 0); }
    for (const [cx, cy] of [[3, 3], [size - 4, 3], [3, size - 4]]) {
      for (let dy = -4; dy <= 4; dy++) {
        for (let dx = -4; dx <= 4; dx++) {
          const x = cx + dx; const y = cy + dy;
          const dist = Math.max(Math.abs(dx), Math.abs(dy));
          if (x >= 0 && x < size && y >= 0 && y < size) set(x, y, dist !== 2 && dist !== 4);
        }
      }
    }
    if (version === 2) {
      for (let dy = -2; dy <= 2; dy++) {
        for (let dx = -2; dx <= 2; dx++) set(18 + dx, 18 + dy, Math.max(Math.abs(dx), Math.abs(dy)) !== 1);
      }
    }
    const format = (mask) => {
      const data = (0 << 3) | mask; // level M is 00
      let rem = data;
      for (let i = 0; i < 10; i++) rem = (rem << 1) ^ ((rem >>> 9) * 0x537);
      const bits = ((data << 10) | rem) ^ 0x5412;
      const bit = (i) => ((bits >>> i) & 1) === 1;
      for (let i = 0; i <= 5; i++) set(8, i, bit(i));
      set(8, 7, bit(6)); set(8, 8, bit(7)); set(7, 8, bit(8));
      for (let i = 9; i < 15; i++) set(14 - i, 8, bit(i));
      for (let i = 0; i < 8; i++) set(size - 1 - i, 8, bit(i));
      for (let i = 8; i < 15; i++) set(8, size - 15 + i, bit(i));
      set(8, size - 8, true); // the dark module
    };
    format(0); // reserve the format areas before placing data

    let i = 0;
    for (let right = size - 1; right >= 1; right -= 2) {
      if (right === 6) right = 5;
      for (let vert = 0; vert < size; vert++) {
        for (let j = 0; j < 2; j++) {
          const x = right - j;
          const y = ((right + 1) & 2) === 0 ? size - 1 - vert : vert;
          if (!fixed[y][x] && i < cw.length * 8) {
            dark[y][x] = ((cw[i >>> 3] >>> (7 - (i & 7))) & 1) === 1;
            i++;
          }
        }
      }
    }

    const apply = (m) => {
      for (let y = 0; y < size; y++) for (let x = 0; x < size; x++) if (!fixed[y][x] && MASKS[m](x, y)) dark[y][x] = !dark[y][x];
    };
    let best = 0; let bestScore = Infinity;
    for (let m = 0; m < 8; m++) {
      apply(m); format(m);
      const s = penalty(dark);
      if (s < bestScore) { best = m; bestScore = s; }
      apply(m); // XOR again undoes it
    }
    apply(best); format(best);
    return dark;
  }

  // penalty scores a masked matrix by the four rules of the standard.
  function penalty(m) {
    const n = m.length;
    let score = 0;
    const lines = [];
    for (let i = 0; i < n; i++) { lines.push(m[i]); lines.push(m.map((row) => row[i])); }
    for (const line of lines) {
      let run = 1;
      for (let i = 1; i <= n; i++) {
        if (i < n && line[i] === line[i - 1]) { run++; continue; }
        if (run >= 5) score += 3 + run - 5;
        run = 1;
      }
      const s = line.map((d) => (d ? '1' : '0')).join('');
      for (const p of ['10111010000', '00001011101']) for (let k = s.indexOf(p); k >= 0; k = s.indexOf(p, k + 1)) score += 40;
    }
    let dark = 0;
    for (let y = 0; y < n; y++) {
      for (let x = 0; x < n; x++) {
        if (m[y][x]) dark++;
        if (x + 1 < n && y + 1 < n && m[y][x] === m[y][x + 1] && m[y][x] === m[y + 1][x] && m[y][x] === m[y + 1][x + 1]) score += 3;
      }
    }
    return score + 10 * (Math.ceil(Math.abs(dark * 20 - n * n * 10) / (n * n)) - 1);
  }

  // svg draws digits as an SVG element with a 4-module quiet zone, labelled for
  // assistive technology.
  function svg(digits, label) {
    const m = matrix(digits);
    const n = m.length + 8;
    const NS = 'http://www.w3.org/2000/svg';
    const el = document.createElementNS(NS, 'svg');
    el.setAttribute('viewBox', `0 0 ${n} ${n}`);
    el.setAttribute('class', 'qr');
    el.setAttribute('role', 'img');
    el.setAttribute('aria-label', label);
    el.setAttribute('shape-rendering', 'crispEdges');
    const bg = document.createElementNS(NS, 'rect');
    bg.setAttribute('width', n); bg.setAttribute('height', n); bg.setAttribute('fill', '#fff');
    let d = '';
    m.forEach((row, y) => row.forEach((on, x) => { if (on) d += `M${x + 4} ${y + 4}h1v1h-1z`; }));
    const path = document.createElementNS(NS, 'path');
    path.setAttribute('d', d);
    path.setAttribute('fill', '#000');
    el.append(bg, path);
    return el;
  }

  root.LarderQR = { codewords, matrix, svg };
})(globalThis);
