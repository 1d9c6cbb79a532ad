package sim

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
)

// Control serves the control API (see the package doc) for one world.
type Control struct {
	w   *World
	bus *Bus // may be nil (GET /v1/bus then 404s)
	// run starts a scenario in the background; nil refuses POST /v1/scenario.
	run func(Scenario)
	log *slog.Logger
	mux *http.ServeMux
}

// NewControl returns the control API handler. bus and run may be nil.
func NewControl(w *World, bus *Bus, run func(Scenario), log *slog.Logger) *Control {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	c := &Control{w: w, bus: bus, run: run, log: log, mux: http.NewServeMux()}
	m := c.mux
	m.HandleFunc("GET /v1/state", c.state)
	m.HandleFunc("GET /v1/zones", c.zones)
	m.HandleFunc("GET /v1/zones/{name}", c.zone)
	m.HandleFunc("GET /v1/bus", c.busInfo)
	m.HandleFunc("POST /v1/compartments/{n}/{do}", c.compartment)
	m.HandleFunc("POST /v1/world", c.world)
	m.HandleFunc("POST /v1/power", c.power)
	m.HandleFunc("POST /v1/faults", c.fault)
	m.HandleFunc("DELETE /v1/faults", c.clearFaults)
	m.HandleFunc("POST /v1/scenario", c.scenario)
	m.HandleFunc("/", func(rw http.ResponseWriter, r *http.Request) {
		writeErr(rw, http.StatusNotFound, fmt.Sprintf("no route %s %s", r.Method, r.URL.Path))
	})
	return c
}

func (c *Control) ServeHTTP(rw http.ResponseWriter, r *http.Request) { c.mux.ServeHTTP(rw, r) }

type errorBody struct {
	Error string `json:"error"`
}

func writeJSON(rw http.ResponseWriter, status int, v any) {
	rw.Header().Set("Content-Type", "application/json")
	rw.WriteHeader(status)
	_ = json.NewEncoder(rw).Encode(v) // the client went away: nothing to do
}

func writeErr(rw http.ResponseWriter, status int, msg string) {
	writeJSON(rw, status, errorBody{Error: msg})
}

// fail maps world errors to statuses, once, here.
func (c *Control) fail(rw http.ResponseWriter, err error) {
	status := http.StatusInternalServerError
	switch {
	case errors.Is(err, ErrInvalid):
		status = http.StatusBadRequest
	case errors.Is(err, ErrNotFound):
		status = http.StatusNotFound
	case errors.Is(err, ErrConflict):
		status = http.StatusConflict
	default:
		c.log.Error("control", "err", err)
	}
	writeErr(rw, status, err.Error())
}

// decode reads an optional JSON body into v (an empty body leaves v as is).
func decode(r *http.Request, v any) error {
	body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	if err != nil {
		return fmt.Errorf("read body: %v: %w", err, ErrInvalid)
	}
	if len(body) == 0 {
		return nil
	}
	if err := json.Unmarshal(body, v); err != nil {
		return fmt.Errorf("body: %v: %w", err, ErrInvalid)
	}
	return nil
}

// apply performs a and logs it: the control API is how tests and the demo
// change the world, and the log tells what they did.
func (c *Control) apply(a Action) error {
	err := c.w.Apply(a)
	if err == nil {
		args := []any{"do", a.Do}
		if a.Compartment != 0 {
			args = append(args, "compartment", a.Compartment)
		}
		if a.Fault != nil {
			args = append(args, "fault", a.Fault.Kind, "off", a.Fault.Off)
		}
		c.log.Info("control action", args...)
	}
	return err
}

func (c *Control) state(rw http.ResponseWriter, r *http.Request) {
	writeJSON(rw, http.StatusOK, c.w.Snapshot())
}

func (c *Control) zones(rw http.ResponseWriter, r *http.Request) {
	writeJSON(rw, http.StatusOK, c.w.Zones())
}

func (c *Control) zone(rw http.ResponseWriter, r *http.Request) {
	for _, z := range c.w.Zones() {
		if z.Name == r.PathValue("name") {
			writeJSON(rw, http.StatusOK, z)
			return
		}
	}
	writeErr(rw, http.StatusNotFound, fmt.Sprintf("no zone %q on this bus", r.PathValue("name")))
}

func (c *Control) busInfo(rw http.ResponseWriter, r *http.Request) {
	if c.bus == nil {
		writeErr(rw, http.StatusNotFound, "no bus")
		return
	}
	writeJSON(rw, http.StatusOK, c.bus.Info())
}

func (c *Control) compartment(rw http.ResponseWriter, r *http.Request) {
	n, err := strconv.Atoi(r.PathValue("n"))
	if err != nil {
		writeErr(rw, http.StatusBadRequest, fmt.Sprintf("compartment %q is not a number", r.PathValue("n")))
		return
	}
	var body struct {
		Force bool `json:"force"`
		Items int  `json:"items"`
	}
	if err := decode(r, &body); err != nil {
		c.fail(rw, err)
		return
	}
	a := Action{Do: r.PathValue("do"), Compartment: n, Force: body.Force, Items: body.Items}
	switch a.Do {
	case DoOpen, DoClose, DoPut, DoTake:
	default:
		writeErr(rw, http.StatusNotFound, fmt.Sprintf("no compartment action %q (open, close, put, take)", a.Do))
		return
	}
	if err := c.apply(a); err != nil {
		c.fail(rw, err)
		return
	}
	writeJSON(rw, http.StatusOK, c.w.Snapshot().Compartments[n-1])
}

func (c *Control) world(rw http.ResponseWriter, r *http.Request) {
	var body struct {
		OutsideC *float64 `json:"outside_c"`
	}
	if err := decode(r, &body); err != nil {
		c.fail(rw, err)
		return
	}
	if err := c.apply(Action{Do: DoOutside, OutsideC: body.OutsideC}); err != nil {
		c.fail(rw, err)
		return
	}
	writeJSON(rw, http.StatusOK, c.w.Snapshot())
}

func (c *Control) power(rw http.ResponseWriter, r *http.Request) {
	var body struct {
		On *bool `json:"on"`
	}
	if err := decode(r, &body); err != nil {
		c.fail(rw, err)
		return
	}
	if err := c.apply(Action{Do: DoPower, On: body.On}); err != nil {
		c.fail(rw, err)
		return
	}
	writeJSON(rw, http.StatusOK, c.w.Snapshot())
}

func (c *Control) fault(rw http.ResponseWriter, r *http.Request) {
	var f *Fault
	if err := decode(r, &f); err != nil {
		c.fail(rw, err)
		return
	}
	if err := c.apply(Action{Do: DoFault, Fault: f}); err != nil {
		c.fail(rw, err)
		return
	}
	writeJSON(rw, http.StatusOK, c.w.Snapshot())
}

func (c *Control) clearFaults(rw http.ResponseWriter, r *http.Request) {
	c.w.ClearFaults()
	c.log.Info("control action", "do", DoClearFaults)
	writeJSON(rw, http.StatusOK, c.w.Snapshot())
}

func (c *Control) scenario(rw http.ResponseWriter, r *http.Request) {
	if c.run == nil {
		writeErr(rw, http.StatusNotFound, "scenarios are not enabled")
		return
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	if err != nil {
		writeErr(rw, http.StatusBadRequest, err.Error())
		return
	}
	s, err := ParseScenario(body)
	if err != nil {
		c.fail(rw, err)
		return
	}
	c.run(s)
	writeJSON(rw, http.StatusAccepted, map[string]int{"actions": len(s.Actions)})
}
