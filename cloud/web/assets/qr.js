/*
 * A small QR code encoder, drawn as inline SVG: error correction level M, versions 1 to
 * 40, numeric mode for a string of digits and byte mode (UTF-8) for anything else. The
 * driver page shows the loading credential (digits) as a QR code, and the resident page the
 * order's QR payload (larder:v1:{site}:{code}:{expires}:{tag}, at most 115 characters:
 * version 7), because the kiosk's scanner types what it reads. Follows ISO/IEC 18004; the
 * structure mirrors Project Nayuki's reference encoder. No dependencies; exposes
 * globalThis.LarderQR.
 */
(function (root) {
  'use strict';

  // Level M, by version (index 0 unused): error-correction codewords per block, and the
  // number of blocks (ISO/IEC 18004 table 9).
  const EC_PER_BLOCK = [0, 10, 16, 26, 18, 24, 16, 18, 22, 22, 26, 30, 22, 22, 24, 24, 28, 28, 26, 26, 26,
    26, 28, 28, 28, 28, 28, 28, 28, 28, 28, 28, 28, 28, 28, 28, 28, 28, 28, 28, 28];
  const BLOCKS = [0, 1, 1, 1, 2, 2, 4, 4, 4, 5, 5, 5, 8, 9, 9, 10, 10, 11, 13, 14, 16,
    17, 17, 18, 20, 21, 23, 25, 26, 28, 29, 31, 33, 35, 37, 38, 40, 43, 45, 47, 49];

  // rawModules is the number of modules of a version that hold codewords: all but the
  // function patterns (finders, timing, alignment, format and version information).
  function rawModules(v) {
    let n = (16 * v + 128) * v + 64;
    if (v >= 2) {
      const a = Math.floor(v / 7) + 2;
      n -= (25 * a - 10) * a - 55;
      if (v >= 7) n -= 36;
    }
    return n;
  }
  const dataCodewords = (v) => Math.floor(rawModules(v) / 8) - EC_PER_BLOCK[v] * BLOCKS[v];

  // alignment is the row and column centres of the alignment patterns of a version.
  function alignment(v) {
    if (v === 1) return [];
    const n = Math.floor(v / 7) + 2;
    const step = Math.floor((v * 8 + n * 3 + 5) / (n * 4 - 4)) * 2;
    const out = [6];
    for (let pos = v * 4 + 10; out.length < n; pos -= step) out.splice(1, 0, pos);
    return out;
  }

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

  // segment is the mode, character count and data bits of text: numeric for digits,
  // otherwise byte mode over its UTF-8 bytes. countBits(v) is the width of the count.
  function segment(text) {
    const bits = [];
    const put = (v, n) => { for (let i = n - 1; i >= 0; i--) bits.push((v >>> i) & 1); };
    if (/^[0-9]*$/.test(text)) {
      for (let i = 0; i < text.length; i += 3) {
        const g = text.slice(i, i + 3);
        put(Number(g), g.length * 3 + 1);
      }
      return { mode: 1, count: text.length, bits, countBits: (v) => (v < 10 ? 10 : v < 27 ? 12 : 14) };
    }
    const bytes = new TextEncoder().encode(text);
    for (const b of bytes) put(b, 8);
    return { mode: 4, count: bytes.length, bits, countBits: (v) => (v < 10 ? 8 : 16) };
  }

  // codewords returns the smallest version that holds text at level M and its codewords:
  // the data codewords split into blocks, each block's error correction, interleaved.
  function codewords(text) {
    const seg = segment(String(text));
    let version = 0;
    for (let v = 1; v <= 40; v++) {
      const need = 4 + seg.countBits(v) + seg.bits.length;
      if (seg.count < 2 ** seg.countBits(v) && need <= dataCodewords(v) * 8) { version = v; break; }
    }
    if (!version) throw new Error('qr: too long');
    const cap = dataCodewords(version) * 8;
    const bits = [];
    const put = (v, n) => { for (let i = n - 1; i >= 0; i--) bits.push((v >>> i) & 1); };
    put(seg.mode, 4);
    put(seg.count, seg.countBits(version));
    bits.push(...seg.bits);
    put(0, Math.min(4, cap - bits.length)); // terminator
    while (bits.length % 8) bits.push(0);
    const data = [];
    for (let i = 0; i < bits.length; i += 8) data.push(parseInt(bits.slice(i, i + 8).join(''), 2));
    for (let pad = 0xec; data.length < cap / 8; pad ^= 0xec ^ 0x11) data.push(pad);

    // Blocks: the first ones are one data codeword shorter when the codewords do not
    // divide evenly; interleave data column by column, then error correction.
    const nb = BLOCKS[version];
    const ec = EC_PER_BLOCK[version];
    const raw = Math.floor(rawModules(version) / 8);
    const short = nb - (raw % nb);
    const shortLen = Math.floor(raw / nb) - ec; // data codewords of a short block
    const blocks = [];
    for (let i = 0, k = 0; i < nb; i++) {
      const d = data.slice(k, k + shortLen + (i < short ? 0 : 1));
      k += d.length;
      blocks.push({ d, e: rsRemainder(d, ec) });
    }
    const out = [];
    for (let i = 0; i <= shortLen; i++) for (const b of blocks) if (i < b.d.length) out.push(b.d[i]);
    for (let i = 0; i < ec; i++) for (const b of blocks) out.push(b.e[i]);
    return { version, codewords: out };
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

  // matrix returns the modules (true = dark) of the QR code of text, [row][column].
  function matrix(text) {
    const { version, codewords: cw } = codewords(text);
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
    const al = alignment(version);
    for (let i = 0; i < al.length; i++) {
      for (let j = 0; j < al.length; j++) {
        // Not where a finder is: the three corners other than bottom right.
        if ((i === 0 && j === 0) || (i === 0 && j === al.length - 1) || (i === al.length - 1 && j === 0)) continue;
        for (let dy = -2; dy <= 2; dy++) {
          for (let dx = -2; dx <= 2; dx++) set(al[i] + dx, al[j] + dy, Math.max(Math.abs(dx), Math.abs(dy)) !== 1);
        }
      }
    }
    if (version >= 7) {
      // Version information: 6 bits of version and 12 of BCH code, in two 6×3 blocks.
      let rem = version;
      for (let i = 0; i < 12; i++) rem = (rem << 1) ^ ((rem >>> 11) * 0x1f25);
      const bits = (version << 12) | rem;
      for (let i = 0; i < 18; i++) {
        const d = ((bits >>> i) & 1) === 1;
        const a = size - 11 + (i % 3); const b = Math.floor(i / 3);
        set(a, b, d); set(b, a, d);
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

  // svg draws text as an SVG element with a 4-module quiet zone, labelled for
  // assistive technology.
  function svg(text, label) {
    const m = matrix(text);
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
