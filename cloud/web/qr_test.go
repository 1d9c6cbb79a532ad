package web_test

import (
	"encoding/json"
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// qrScript runs assets/qr.js in node and writes, for each text of argv[2] (JSON), the
// symbol as a PGM image (4 pixels a module, 4-module quiet zone) into directory argv[3],
// printing each version.
const qrScript = `
const fs = require('fs');
require(process.argv[1]);
const texts = JSON.parse(process.argv[2]);
const versions = texts.map((t, i) => {
  const m = LarderQR.matrix(t);
  const s = 4, q = 4, n = (m.length + 2 * q) * s;
  const rows = [];
  for (let y = 0; y < n; y++) {
    const row = [];
    for (let x = 0; x < n; x++) {
      const my = Math.floor(y / s) - q, mx = Math.floor(x / s) - q;
      row.push(my >= 0 && mx >= 0 && my < m.length && mx < m.length && m[my][mx] ? 0 : 1);
    }
    rows.push(row.join(' '));
  }
  fs.writeFileSync(process.argv[3] + '/' + i + '.pgm', 'P2\n' + n + ' ' + n + '\n1\n' + rows.join('\n') + '\n');
  return LarderQR.codewords(t).version;
});
console.log(JSON.stringify(versions));
`

// TestQREncoder draws symbols with the pages' encoder (assets/qr.js, no browser needed)
// and reads them back with zbar, an independent decoder (Debian's zbar-tools, installed
// by make setup): digits in numeric mode, the resident page's payloads in byte mode up
// to the longest one (a 64-character site id: version 7, the first with version
// information), UTF-8 text, and long texts up to version 40, so that every table row,
// block split and alignment grid the payloads use is exercised.
func TestQREncoder(t *testing.T) {
	node, err := exec.LookPath("node")
	if err != nil {
		t.Fatal("node is not installed: run make setup")
	}
	zbar, err := exec.LookPath("zbarimg")
	if err != nil {
		t.Fatal("zbarimg is not installed (Debian's zbar-tools): run make setup")
	}
	longest := "larder:v1:" + strings.Repeat("s", 64) + ":12345678:1778000400:b1f61844d910e220e904"
	cases := []struct {
		text    string
		version int // 0: not checked
	}{
		{"01234567", 1},
		{"4711081523", 1}, // a driver's loading credential
		{"larder:v1:court-1:20261125", 0},
		{"larder:v1:courtyard-1:20261125:1778000400:b1f61844d910e220e904", 4},
		{longest, 7},
		{"取菜柜 pickup ✓", 0},
		{strings.Repeat("7", 300), 0},
		{strings.Repeat("larder:v1:", 20), 0},
		{strings.Repeat("x", 500), 0},
		{strings.Repeat("q", 1200), 0},
		{strings.Repeat("z", 2331), 40}, // the most bytes version 40-M holds
	}
	if len(longest) != 115 {
		t.Fatalf("the longest payload is %d characters, the comments say 115", len(longest))
	}
	texts := make([]string, len(cases))
	for i, c := range cases {
		texts[i] = c.text
	}
	arg, _ := json.Marshal(texts)
	dir := t.TempDir()
	script, _ := filepath.Abs(filepath.Join("assets", "qr.js"))
	out, err := exec.Command(node, "-e", qrScript, script, string(arg), dir).CombinedOutput()
	if err != nil {
		t.Fatalf("node: %v\n%s", err, out)
	}
	var versions []int
	if err := json.Unmarshal(out, &versions); err != nil || len(versions) != len(cases) {
		t.Fatalf("node printed %q (%v)", out, err)
	}
	for i, c := range cases {
		if c.version != 0 && versions[i] != c.version {
			t.Errorf("%.30q… (%d bytes): version %d, want %d", c.text, len(c.text), versions[i], c.version)
		}
		got, err := exec.Command(zbar, "-q", "--raw", filepath.Join(dir, fmt.Sprint(i)+".pgm")).Output()
		if text := strings.TrimSuffix(string(got), "\n"); err != nil || text != c.text {
			t.Errorf("zbarimg read %.40q (%v) from the version %d symbol of %.40q", text, err, versions[i], c.text)
		}
	}
	if _, err := exec.Command(node, "-e", `require(process.argv[1]); LarderQR.codewords('z'.repeat(2332))`, script).CombinedOutput(); err == nil {
		t.Error("2,332 bytes, more than version 40-M holds, were encoded")
	}
}
