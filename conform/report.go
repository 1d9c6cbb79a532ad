package conform

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"time"
)

// Outcome is what became of one clause in a run.
type Outcome string

// Outcomes. A clause that could not be checked because one it needs failed is a FAIL
// (naming the one it needed): the kit never passes what it did not see.
const (
	Pass Outcome = "PASS"
	Fail Outcome = "FAIL"
)

// Result is the outcome of one clause.
type Result struct {
	ID      string `json:"id"`
	Section string `json:"section"`
	// Spec are the specification's clause ids the clause checks.
	Spec    []string `json:"spec,omitempty"`
	Outcome Outcome  `json:"outcome"`
	// Message says what was seen: for a FAIL, what the specification wanted and what
	// arrived instead; for a PASS, a short note of the evidence.
	Message string  `json:"message,omitempty"`
	Seconds float64 `json:"seconds"`
}

// Report is the outcome of one run, clause by clause, in the order they were checked.
type Report struct {
	Mode    Mode      `json:"mode"`
	Target  string    `json:"target"`
	Started time.Time `json:"started"`
	Results []Result  `json:"results"`
}

// Failed is the number of clauses that failed.
func (r Report) Failed() int {
	n := 0
	for _, res := range r.Results {
		if res.Outcome != Pass {
			n++
		}
	}
	return n
}

// Outcome returns the outcome of clause id, and false when the run did not check it.
func (r Report) Outcome(id string) (Result, bool) {
	for _, res := range r.Results {
		if res.ID == id {
			return res, true
		}
	}
	return Result{}, false
}

// WriteText writes one line per clause, "PASS id [spec ids] — message" or "FAIL id
// [spec ids] — message", then a summary line.
func (r Report) WriteText(w io.Writer) error {
	for _, res := range r.Results {
		line := fmt.Sprintf("%s %s", res.Outcome, res.ID)
		if len(res.Spec) > 0 {
			line += " [" + strings.Join(res.Spec, ", ") + "]"
		}
		if res.Message != "" {
			line += " — " + res.Message
		}
		if _, err := fmt.Fprintln(w, line); err != nil {
			return err
		}
	}
	_, err := fmt.Fprintf(w, "%s mode against %s: %d clauses, %d passed, %d failed\n",
		r.Mode, r.Target, len(r.Results), len(r.Results)-r.Failed(), r.Failed())
	return err
}

// WriteJSON writes the report as one indented JSON object.
func (r Report) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(r)
}
