package demo

import (
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"sync"
	"time"

	"github.com/larder-lockers/larder/cloud/notify"
)

// Inbox stands in for the world outside the cloud during the demo: the SMS gateway that
// would text residents (POST /sms {"to","text"}) and the grocery platform's webhook
// endpoint (POST /webhook, signed CloudEvents). It shows each message on Out, with the
// phone number masked, and appends it to a log file (0600: texts carry pickup codes, as
// a resident's phone screen does).
type Inbox struct {
	Addr string

	out io.Writer
	srv *http.Server
	ln  net.Listener

	mu     sync.Mutex // guards secret, file and out writes
	secret []byte
	file   *os.File
}

// StartInbox listens on addr and logs to logPath.
func StartInbox(addr, logPath string, out io.Writer) (*Inbox, error) {
	f, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return nil, fmt.Errorf("demo: inbox log: %w", err)
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("demo: inbox: %w", err)
	}
	in := &Inbox{Addr: ln.Addr().String(), out: out, ln: ln, file: f}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /sms", in.sms)
	mux.HandleFunc("POST /webhook", in.webhook)
	in.srv = &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go in.srv.Serve(ln)
	return in, nil
}

// SMSURL is the gateway URL for larder-cloud.
func (in *Inbox) SMSURL() string { return "http://" + in.Addr + "/sms" }

// WebhookURL is the platform's endpoint to register.
func (in *Inbox) WebhookURL() string { return "http://" + in.Addr + "/webhook" }

// SetSecret sets the webhook signing secret (hex, as the cloud hands it out).
func (in *Inbox) SetSecret(h string) {
	b, _ := hex.DecodeString(h)
	in.mu.Lock()
	in.secret = b
	in.mu.Unlock()
}

// Close stops listening.
func (in *Inbox) Close() error {
	in.srv.Close()
	in.mu.Lock()
	defer in.mu.Unlock()
	return in.file.Close()
}

func (in *Inbox) show(line string) {
	in.mu.Lock()
	defer in.mu.Unlock()
	fmt.Fprintf(in.file, "%s %s\n", time.Now().Format(time.RFC3339), line)
	fmt.Fprintf(in.out, "larder-demo: %s\n", line)
}

func mask(phone string) string {
	if len(phone) <= 4 {
		return "****"
	}
	return "****" + phone[len(phone)-4:]
}

func (in *Inbox) sms(w http.ResponseWriter, r *http.Request) {
	var m struct {
		To   string `json:"to"`
		Text string `json:"text"`
	}
	if err := json.NewDecoder(io.LimitReader(r.Body, 64<<10)).Decode(&m); err != nil {
		http.Error(w, "want JSON {to, text}", http.StatusBadRequest)
		return
	}
	in.show(fmt.Sprintf("SMS to %s: %s", mask(m.To), m.Text))
}

func (in *Inbox) webhook(w http.ResponseWriter, r *http.Request) {
	raw, err := io.ReadAll(io.LimitReader(r.Body, 256<<10))
	if err != nil {
		http.Error(w, "read", http.StatusBadRequest)
		return
	}
	var e struct {
		Type    string `json:"type"`
		Subject string `json:"subject"`
	}
	if err := json.Unmarshal(raw, &e); err != nil {
		http.Error(w, "want a CloudEvent", http.StatusBadRequest)
		return
	}
	in.mu.Lock()
	secret := in.secret
	in.mu.Unlock()
	sig := "signature ok"
	if err := notify.Verify(secret, r.Header.Get("Larder-Signature"), raw, time.Now(), 0); err != nil {
		sig = "BAD SIGNATURE: " + err.Error()
	}
	in.show(fmt.Sprintf("platform webhook %s for %s (%s)", e.Type, e.Subject, sig))
	w.WriteHeader(http.StatusNoContent)
}
