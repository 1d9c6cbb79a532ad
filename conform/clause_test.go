package conform

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"regexp"
	"strings"
	"testing"
)

// TestRunnerNeedsAndSelection: a selected clause brings the clauses it needs; one whose
// need failed fails without being tried; unselected clauses are not run.
func TestRunnerNeedsAndSelection(t *testing.T) {
	list := []Clause{{ID: "x.a", Section: "A"}, {ID: "x.b", Needs: []string{"x.a"}}, {ID: "x.c", Needs: []string{"x.b"}}, {ID: "x.d"}}
	r := newRunner(ModeEdge, "t", list, Selection{Run: regexp.MustCompile(`x\.c`)})
	var tried []string
	for _, id := range []string{"x.a", "x.b", "x.c", "x.d"} {
		r.check(context.Background(), id, func(context.Context) (string, error) {
			tried = append(tried, id)
			if id == "x.b" {
				return "", errors.New("broken")
			}
			return "fine", nil
		})
	}
	if got := strings.Join(tried, ","); got != "x.a,x.b" {
		t.Errorf("tried %s, want x.a,x.b (x.c needs the failed x.b, x.d not selected)", got)
	}
	rep := *r.report
	if rep.Failed() != 2 || len(rep.Results) != 3 {
		t.Fatalf("results %+v", rep.Results)
	}
	if c, _ := rep.Outcome("x.c"); c.Outcome != Fail || !strings.Contains(c.Message, "needs x.b, which failed") {
		t.Errorf("x.c: %+v", c)
	}
	var text bytes.Buffer
	rep.WriteText(&text)
	if !strings.Contains(text.String(), "FAIL x.b — broken\n") || !strings.Contains(text.String(), "3 clauses, 1 passed, 2 failed") {
		t.Errorf("text report:\n%s", text.String())
	}
	var js bytes.Buffer
	rep.WriteJSON(&js)
	var back Report
	if err := json.Unmarshal(js.Bytes(), &back); err != nil || len(back.Results) != 3 || back.Results[0].Section != "A" {
		t.Errorf("JSON report %s: %v", js.String(), err)
	}
	s := newRunner(ModeEdge, "t", list, Selection{Skip: regexp.MustCompile(`x\.[cd]`)})
	if !s.run["x.a"] || !s.run["x.b"] || s.run["x.c"] || s.run["x.d"] {
		t.Errorf("skip selected %v", s.run)
	}
}
