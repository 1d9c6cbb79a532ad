package conform_test

import (
	"bytes"
	"context"
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/larder-lockers/larder/conform"
)

// TestDocListsEveryClause: docs/conformance.md lists every clause with its section and
// its text, in the kit's order, and nothing else.
func TestDocListsEveryClause(t *testing.T) {
	doc, err := os.ReadFile("../docs/conformance.md")
	if err != nil {
		t.Fatal(err)
	}
	row := regexp.MustCompile("(?m)^\\| `((?:edge|cloud)\\.[^`]+)` \\| ([^|]+) \\| ([^|]*) \\| (.+) \\|$")
	var got []string
	for _, m := range row.FindAllStringSubmatch(string(doc), -1) {
		got = append(got, strings.Join(m[1:], " | "))
	}
	var want []string
	for _, c := range conform.Clauses() {
		want = append(want, strings.Join([]string{c.ID, c.Section, specIDs(c.Spec), c.Text}, " | "))
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("docs/conformance.md clause tables differ from conform.Clauses():\n got:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// specIDs is how the doc writes a clause's specification ids: [a], [b].
func specIDs(ids []string) string {
	var out []string
	for _, id := range ids {
		out = append(out, "["+id+"]")
	}
	return strings.Join(out, ", ")
}

// TestClauseSectionsInSpec: every section a clause names is a heading of
// protocol/asyncapi.yaml, and every specification clause id it names is one there.
func TestClauseSectionsInSpec(t *testing.T) {
	spec, err := os.ReadFile("../protocol/asyncapi.yaml")
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range conform.Clauses() {
		if !bytes.Contains(spec, []byte("## "+c.Section+"\n")) {
			t.Errorf("%s: section %q is not a heading of asyncapi.yaml", c.ID, c.Section)
		}
		for _, id := range c.Spec {
			if !bytes.Contains(spec, []byte("**["+id+"]**")) {
				t.Errorf("%s: clause [%s] is not in asyncapi.yaml", c.ID, id)
			}
		}
	}
}

func TestExecUsage(t *testing.T) {
	for _, tc := range []struct {
		args []string
		code int
		out  string
	}{
		{[]string{"-list", "-mode", "cloud"}, 0, "cloud.events.gap"},
		{[]string{"-h"}, 0, ""},
		{[]string{"-mode", "fridge"}, 2, ""},
		{[]string{"-mode", "edge", "-run", "("}, 2, ""},
		{[]string{"-mode", "edge", "-site", "yard-1"}, 2, ""},     // no key, no password, no kiosk
		{[]string{"-mode", "cloud", "-cloud", "http://x"}, 2, ""}, // no admin key
		{[]string{"-mode", "cloud", "extra"}, 2, ""},
	} {
		var out, errb bytes.Buffer
		code := conform.Exec(context.Background(), tc.args, func(string) string { return "" }, &out, &errb)
		if code != tc.code || !strings.Contains(out.String(), tc.out) {
			t.Errorf("%v: exit %d (%s%s), want %d with %q", tc.args, code, out.String(), errb.String(), tc.code, tc.out)
		}
	}
	var out bytes.Buffer
	conform.Exec(context.Background(), []string{"-list", "-mode", "edge"}, func(string) string { return "" }, &out, &out)
	if strings.Contains(out.String(), "cloud.") {
		t.Errorf("-list -mode edge lists cloud clauses:\n%s", out.String())
	}
}
