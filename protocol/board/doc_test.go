package board_test

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// lockBoardsDoc is the vendor-facing description of the board protocols. Its
// examples are checked here so that the page cannot drift from the codec.
const lockBoardsDoc = "../../docs/lock-boards.md"

// TestLockBoardsDoc checks that every example frame of docs/lock-boards.md (a line of a
// ```frames block: PROFILE[/POLARITY] DIRECTION MEANING => HEX) is one of the frame
// examples in testdata/, which TestFrameExamples checks against the codec, and that every
// byte string quoted elsewhere in the page is one of those frames.
func TestLockBoardsDoc(t *testing.T) {
	doc, err := os.ReadFile(lockBoardsDoc)
	if err != nil {
		t.Fatal(err)
	}
	examples, err := parseDocExamples(doc)
	if err != nil {
		t.Fatal(err)
	}
	// The page shows every command and reply kind of both profiles; far fewer
	// examples means a block lost its marker and went unchecked.
	if len(examples) < 20 {
		t.Fatalf("%s: %d checked frames, want at least 20", lockBoardsDoc, len(examples))
	}
	data := loadFrames(t)
	checked := map[string]bool{}
	for _, ex := range examples {
		checked[fmt.Sprintf("% X", ex.frame)] = true
		if !slices.ContainsFunc(data, func(d frameExample) bool { return sameFrame(d, ex) }) {
			t.Errorf("%s:%d: %q is not a frame example in testdata/", lockBoardsDoc, ex.line, ex.text)
		}
	}
	// Byte strings in running text (`02 00 30 03 35`) must be checked frames too.
	quoted := regexp.MustCompile("`((?:[0-9A-Fa-f]{2} ){3,}[0-9A-Fa-f]{2})`")
	for _, m := range quoted.FindAllSubmatch(doc, -1) {
		if q := strings.ToUpper(string(m[1])); !checked[q] {
			t.Errorf("%s quotes `%s`, which is not one of its checked frames", lockBoardsDoc, m[1])
		}
	}
}

// sameFrame reports whether a and b say the same: one codec, one meaning, one frame.
func sameFrame(a, b frameExample) bool {
	return a.codec == b.codec && bytes.Equal(a.frame, b.frame) &&
		cmp.Equal(a.cmd, b.cmd) && cmp.Equal(a.reply, b.reply)
}

func parseDocExamples(doc []byte) ([]frameExample, error) {
	var out []frameExample
	in := false
	sc := bufio.NewScanner(bytes.NewReader(doc))
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		switch {
		case line == "```frames":
			in = true
			continue
		case strings.HasPrefix(line, "```"):
			in = false
			continue
		case !in || line == "":
			continue
		}
		ex, err := parseDocLine(line)
		if err != nil {
			return nil, fmt.Errorf("%s:%d: %q: %w", lockBoardsDoc, n, line, err)
		}
		ex.line = n
		out = append(out, ex)
	}
	return out, sc.Err()
}

// parseDocLine parses PROFILE[/POLARITY] DIRECTION MEANING => HEX.
func parseDocLine(line string) (frameExample, error) {
	spec, hexs, ok := strings.Cut(line, "=>")
	if !ok {
		return frameExample{}, fmt.Errorf("no =>")
	}
	f := strings.Fields(spec)
	if len(f) < 3 {
		return frameExample{}, fmt.Errorf("want PROFILE DIRECTION KIND ...")
	}
	prof, pol, _ := strings.Cut(f[0], "/")
	ex := frameExample{Profile: prof, Polarity: pol, Direction: f[1], Meaning: strings.Join(f[2:], " "), Hex: strings.TrimSpace(hexs)}
	err := ex.parse()
	ex.text = line
	return ex, err
}
