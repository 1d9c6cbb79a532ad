package http

import (
	"encoding/csv"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/larder-lockers/larder/cloud"
	"github.com/larder-lockers/larder/protocol"
)

// The audit log and the reports, as JSON or, with format=csv or Accept: text/csv, as
// CSV with a header row.

// maxAuditCSV bounds a CSV export of the audit log; a filter that selects more is
// refused, so that an export is never silently cut short.
const maxAuditCSV = 10000

func (s *Server) audit(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	f := cloud.AuditFilter{Site: q.Get("site"), Reason: q.Get("reason"), Actor: q.Get("actor"),
		Credential: protocol.CredentialKind(q.Get("credential")), After: q.Get("after")}
	var err error
	if v := q.Get("compartment"); v != "" {
		if f.Compartment, err = strconv.Atoi(v); err != nil || f.Compartment < 1 {
			err = cloud.Invalid("compartment", "want a positive integer")
		}
	}
	if err == nil {
		if f.Since, err = queryTime(r, "since"); err == nil {
			if f.Until, err = queryTime(r, "until"); err == nil {
				f.Limit, err = queryLimit(r)
			}
		}
	}
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	if !wantsCSV(r) {
		entries, err := s.audits.Audit(r.Context(), principal(r), f)
		if err != nil {
			s.writeError(w, r, err)
			return
		}
		out := map[string]any{"entries": entries}
		if len(entries) > 0 && len(entries) == limitOr100(f.Limit) {
			out["next"] = entries[len(entries)-1].ID
		}
		writeJSON(w, http.StatusOK, out)
		return
	}
	// The export: every entry the filter selects, in pages of 1000, all before the first
	// byte, so that a refusal is still an error response.
	var all []cloud.AuditEntry
	f.Limit = 1000
	for {
		page, err := s.audits.Audit(r.Context(), principal(r), f)
		if err != nil {
			s.writeError(w, r, err)
			return
		}
		all = append(all, page...)
		if len(all) > maxAuditCSV {
			s.writeError(w, r, cloud.Invalid("until", "more than %d entries: narrow the filter or the time range", maxAuditCSV))
			return
		}
		if len(page) < f.Limit {
			break
		}
		f.After = page[len(page)-1].ID
	}
	cw := startCSV(w, "audit.csv")
	cw.Write([]string{"id", "time", "site", "actor", "role", "action", "compartment", "order", "reason", "credential", "command"})
	for _, e := range all {
		comp := ""
		if e.Compartment != 0 {
			comp = strconv.Itoa(e.Compartment)
		}
		cw.Write(cells(e.ID, e.Time.Format(time.RFC3339Nano), e.Site, e.Actor, string(e.Role), e.Action, comp, e.Order,
			e.Reason, string(e.Credential), e.Command))
	}
	cw.Flush()
}

func limitOr100(n int) int {
	if n <= 0 {
		return 100
	}
	return n
}

func (s *Server) report(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	f := cloud.ReportFilter{Site: q.Get("site"), Platform: q.Get("platform")}
	var err error
	if f.From, err = queryTime(r, "from"); err == nil {
		f.To, err = queryTime(r, "to")
	}
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	rep, err := s.reports.Report(r.Context(), principal(r), cloud.ReportName(chi.URLParam(r, "report")), f)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	if !wantsCSV(r) {
		writeJSON(w, http.StatusOK, rep)
		return
	}
	cw := startCSV(w, string(rep.Name)+".csv")
	cw.Write(rep.Columns)
	for _, row := range rep.Rows {
		line := make([]string, len(row))
		for i, v := range row {
			switch v := v.(type) {
			case string:
				line[i] = cell(v)
			case int:
				line[i] = strconv.Itoa(v)
			case float64:
				line[i] = strconv.FormatFloat(v, 'f', -1, 64)
			}
		}
		cw.Write(line)
	}
	cw.Flush()
}

// wantsCSV: format=csv, or no format and an Accept header naming text/csv.
func wantsCSV(r *http.Request) bool {
	if f := r.URL.Query().Get("format"); f != "" {
		return f == "csv"
	}
	return strings.Contains(r.Header.Get("Accept"), "text/csv")
}

func startCSV(w http.ResponseWriter, filename string) *csv.Writer {
	w.Header().Set("Content-Type", "text/csv; charset=utf-8")
	w.Header().Set("Content-Disposition", `attachment; filename="`+filename+`"`)
	w.WriteHeader(http.StatusOK)
	return csv.NewWriter(w) // a failed write means the client left; nothing to do
}

// cell neutralises a text cell a spreadsheet would run as a formula (one starting with
// = + - @, a tab or a carriage return) by prefixing a single quote; encoding/csv does
// the quoting of commas, quotes and line breaks.
func cell(v string) string {
	if v != "" && strings.ContainsRune("=+-@\t\r", rune(v[0])) {
		return "'" + v
	}
	return v
}

func cells(vs ...string) []string {
	for i := range vs {
		vs[i] = cell(vs[i])
	}
	return vs
}
