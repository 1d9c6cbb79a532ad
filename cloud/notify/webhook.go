package notify

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// SignatureHeader carries the webhook signature.
const SignatureHeader = "Larder-Signature"

// IdempotencyHeader carries the notification id on every delivery, webhook and SMS:
// a retry of the same notification (after a timeout, or after a replica died between
// the receiver's accept and the outbox's record of it) carries the same key, so the
// receiver can deduplicate it. For webhooks it equals the CloudEvent id.
const IdempotencyHeader = "Idempotency-Key"

// CloudEventsContentType is the structured-mode content type of CloudEvents JSON.
const CloudEventsContentType = "application/cloudevents+json; charset=utf-8"

// TypePrefix prefixes every CloudEvent type Larder sends: "com.larder.order.loaded".
const TypePrefix = "com.larder.order."

// CloudEvent is a CloudEvents 1.0 event in JSON structured mode.
type CloudEvent struct {
	SpecVersion     string          `json:"specversion"`
	ID              string          `json:"id"`
	Source          string          `json:"source"`
	Type            string          `json:"type"`
	Subject         string          `json:"subject,omitempty"`
	Time            time.Time       `json:"time"`
	DataContentType string          `json:"datacontenttype"`
	Data            json.RawMessage `json:"data,omitempty"`
}

// Event builds the CloudEvent of notification n from source.
func Event(source string, n Notification) CloudEvent {
	data := n.Data
	if len(data) == 0 {
		data = json.RawMessage(`{}`)
	}
	return CloudEvent{SpecVersion: "1.0", ID: n.ID, Source: source, Type: TypePrefix + string(n.Kind),
		Subject: n.Order, Time: n.Created.UTC(), DataContentType: "application/json", Data: data}
}

// Sign returns the signature header value for body sent at t:
// "t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<unix seconds>." + body)>".
// Binding the timestamp lets receivers refuse replays of old deliveries.
func Sign(secret []byte, t time.Time, body []byte) string {
	ts := strconv.FormatInt(t.Unix(), 10)
	return "t=" + ts + ",v1=" + mac(secret, ts, body)
}

func mac(secret []byte, ts string, body []byte) string {
	m := hmac.New(sha256.New, secret)
	m.Write([]byte(ts))
	m.Write([]byte{'.'})
	m.Write(body)
	return hex.EncodeToString(m.Sum(nil))
}

// Errors of [Verify].
var (
	ErrBadSignature = errors.New("notify: webhook signature does not match")
	ErrStale        = errors.New("notify: webhook timestamp outside tolerance")
)

// Verify checks a received webhook: header is the [SignatureHeader] value, body the raw
// request body. It accepts when some v1 signature (several appear while a platform
// rotates its secret) matches and the timestamp is within tolerance of now (zero
// tolerance: 5 minutes). Receivers should also deduplicate by the CloudEvent id
// (= the Idempotency-Key header).
func Verify(secret []byte, header string, body []byte, now time.Time, tolerance time.Duration) error {
	if tolerance == 0 {
		tolerance = 5 * time.Minute
	}
	var ts string
	var sigs []string
	for _, part := range strings.Split(header, ",") {
		k, v, ok := strings.Cut(strings.TrimSpace(part), "=")
		if !ok {
			continue
		}
		switch k {
		case "t":
			ts = v
		case "v1":
			sigs = append(sigs, v)
		}
	}
	sec, err := strconv.ParseInt(ts, 10, 64)
	if err != nil || len(sigs) == 0 {
		return fmt.Errorf("%w: malformed header", ErrBadSignature)
	}
	if d := now.Sub(time.Unix(sec, 0)); d > tolerance || d < -tolerance {
		return ErrStale
	}
	want := mac(secret, ts, body)
	for _, s := range sigs {
		if hmac.Equal([]byte(s), []byte(want)) {
			return nil
		}
	}
	return ErrBadSignature
}

// Endpoint is where a platform receives webhooks.
type Endpoint struct {
	URL    string
	Secret []byte
}

// Endpoints resolves a platform id to its webhook endpoint. [ServiceEndpoints] does it
// over the domain's platform records.
type Endpoints interface {
	// Endpoint returns the platform's endpoint, or an error wrapping [ErrNoEndpoint]
	// when the platform has not set up webhooks (the notice is then cancelled, not
	// dead-lettered: there is nothing for ops to fix).
	Endpoint(ctx context.Context, platform string) (Endpoint, error)
}

// ErrNoEndpoint: the platform receives no webhooks.
var ErrNoEndpoint = errors.New("notify: platform has no webhook endpoint")

// StaticEndpoints maps platform ids to endpoints (tests, single-platform deployments).
type StaticEndpoints map[string]Endpoint

// Endpoint implements [Endpoints].
func (s StaticEndpoints) Endpoint(_ context.Context, platform string) (Endpoint, error) {
	e, ok := s[platform]
	if !ok {
		return Endpoint{}, ErrNoEndpoint
	}
	return e, nil
}

// Webhook is the [Sender] of [ChannelWebhook]: a signed CloudEvent POSTed to the
// platform's endpoint.
type Webhook struct {
	Endpoints Endpoints
	// Source is the CloudEvents source (default "urn:larder:cloud").
	Source string
	// Client (nil: a client with a 10 s timeout). Redirects are not followed: a
	// signed delivery goes where the platform registered, nowhere else.
	Client *http.Client
	// Now is the clock for signatures (nil: time.Now).
	Now func() time.Time
}

// Send implements [Sender].
func (w *Webhook) Send(ctx context.Context, n Notification) error {
	ep, err := w.Endpoints.Endpoint(ctx, n.Target)
	if err != nil {
		return err
	}
	source := w.Source
	if source == "" {
		source = "urn:larder:cloud"
	}
	body, err := json.Marshal(Event(source, n))
	if err != nil {
		return fmt.Errorf("%w: encode: %v", ErrPermanent, err)
	}
	now := time.Now
	if w.Now != nil {
		now = w.Now
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, ep.URL, bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("%w: request: %v", ErrPermanent, err)
	}
	req.Header.Set("Content-Type", CloudEventsContentType)
	req.Header.Set("User-Agent", "larder-cloud")
	req.Header.Set(SignatureHeader, Sign(ep.Secret, now(), body))
	req.Header.Set(IdempotencyHeader, n.ID)
	return postResult(w.client(), req)
}

func (w *Webhook) client() *http.Client {
	if w.Client != nil {
		return w.Client
	}
	return defaultClient
}

var defaultClient = &http.Client{
	Timeout:       10 * time.Second,
	CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
}

// postResult sends req and classifies the answer: 2xx delivered; 408, 429 and 5xx (and
// network errors) retried; any other status permanent. Errors name the status only,
// never the body (which might echo a phone number).
func postResult(c *http.Client, req *http.Request) error {
	resp, err := c.Do(req)
	if err != nil {
		// The URL may carry an API key in its query: report the cause without it.
		var ue *url.Error
		if errors.As(err, &ue) {
			if ue.Timeout() {
				return errors.New("timeout")
			}
			return fmt.Errorf("%s: %v", ue.Op, ue.Err)
		}
		return err
	}
	io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	switch s := resp.StatusCode; {
	case s >= 200 && s < 300:
		return nil
	case s == http.StatusRequestTimeout || s == http.StatusTooManyRequests || s >= 500:
		err := fmt.Errorf("HTTP %d", s)
		if secs, perr := strconv.Atoi(resp.Header.Get("Retry-After")); perr == nil && secs > 0 {
			return &RetryAfterError{After: time.Duration(secs) * time.Second, Err: err}
		}
		return err
	default:
		return fmt.Errorf("%w: HTTP %d", ErrPermanent, s)
	}
}

// RetryAfterError is a retryable failure whose receiver asked (with Retry-After, in
// seconds) not to be called again before After. The worker waits at least that long,
// and at most its MaxBackoff.
type RetryAfterError struct {
	After time.Duration
	Err   error
}

func (e *RetryAfterError) Error() string { return fmt.Sprintf("%v (retry after %s)", e.Err, e.After) }
func (e *RetryAfterError) Unwrap() error { return e.Err }
