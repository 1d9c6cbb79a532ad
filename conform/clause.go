package conform

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"time"
)

// Mode says which side of the contract is under test.
type Mode string

// The two modes.
const (
	// ModeEdge plays the broker and the cloud toward an edge under test.
	ModeEdge Mode = "edge"
	// ModeCloud plays an edge toward a cloud under test.
	ModeCloud Mode = "cloud"
)

// Clause is one checked statement of the specification.
type Clause struct {
	// ID is stable, mode.topic.name: "edge.commands.dedupe".
	ID   string
	Mode Mode
	// Section is the heading of protocol/asyncapi.yaml (or the OpenAPI operation) the
	// clause comes from.
	Section string
	// Spec lists the ids of the specification's own clauses this one checks (the
	// bracketed ids of asyncapi.yaml, such as "command.dedup"); empty where the
	// requirement is prose of the section without an id.
	Spec []string
	// Text is what the clause requires, in the specification's words.
	Text string
	// Needs lists the clauses whose work this one builds on (a reservation must be
	// loaded before it can be picked up); they run first, and when one fails, this one
	// fails without being tried.
	Needs []string
}

// Clauses lists every clause of both modes, in the order a run checks them.
func Clauses() []Clause { return append(append([]Clause(nil), edgeClauses...), cloudClauses...) }

// errSkipped marks a clause not tried because one it needs failed.
var errSkipped = errors.New("not checked")

// runner runs the selected clauses of one mode in order and collects their results.
type runner struct {
	report  *Report
	clauses map[string]Clause
	run     map[string]bool // selected, or needed by a selected clause
	failed  map[string]bool
}

// Selection chooses clauses by id, like go test's -run and -skip.
type Selection struct {
	// Run, when set, selects only the clauses whose id it matches.
	Run *regexp.Regexp
	// Skip, when set, leaves out the clauses whose id it matches.
	Skip *regexp.Regexp
}

func (s Selection) selects(id string) bool {
	return (s.Run == nil || s.Run.MatchString(id)) && (s.Skip == nil || !s.Skip.MatchString(id))
}

// newRunner checks the clauses of list that sel selects, and the clauses they need.
func newRunner(mode Mode, target string, list []Clause, sel Selection) *runner {
	r := &runner{report: &Report{Mode: mode, Target: target, Started: time.Now().UTC()},
		clauses: map[string]Clause{}, run: map[string]bool{}, failed: map[string]bool{}}
	for _, c := range list {
		r.clauses[c.ID] = c
	}
	var mark func(id string)
	mark = func(id string) {
		if r.run[id] {
			return
		}
		r.run[id] = true
		for _, n := range r.clauses[id].Needs {
			mark(n)
		}
	}
	for _, c := range list {
		if sel.selects(c.ID) {
			mark(c.ID)
		}
	}
	return r
}

// check runs clause id's check f, unless the clause is not selected; a clause whose
// needs failed fails at once. f returns the note for a PASS, or the failure.
func (r *runner) check(ctx context.Context, id string, f func(ctx context.Context) (string, error)) {
	c, ok := r.clauses[id]
	if !ok {
		panic("conform: unknown clause " + id)
	}
	if !r.run[id] {
		return
	}
	start := time.Now()
	res := Result{ID: id, Section: c.Section, Spec: c.Spec}
	var msg string
	var err error
	for _, n := range c.Needs {
		if r.failed[n] {
			err = fmt.Errorf("%w: needs %s, which failed", errSkipped, n)
			break
		}
	}
	if err == nil {
		if ctx.Err() != nil {
			err = fmt.Errorf("%w: the run was stopped", errSkipped)
		} else {
			msg, err = f(ctx)
		}
	}
	res.Seconds = time.Since(start).Seconds()
	if err != nil {
		res.Outcome, res.Message = Fail, err.Error()
		r.failed[id] = true
	} else {
		res.Outcome, res.Message = Pass, msg
	}
	r.report.Results = append(r.report.Results, res)
}

// failures joins several findings of one clause into one error.
type failures []string

func (f *failures) add(format string, args ...any) { *f = append(*f, fmt.Sprintf(format, args...)) }

func (f failures) err() error {
	if len(f) == 0 {
		return nil
	}
	return errors.New(strings.Join(f, "; "))
}
