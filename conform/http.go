package conform

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"time"
)

// api is a JSON-over-HTTP client of one base URL: the edge's kiosk API, the simulator's
// control API or the cloud's REST API.
type api struct {
	name  string // for messages: "kiosk", "sim", "cloud"
	base  string
	token string // Authorization: Bearer, when set
	http  *http.Client
}

func newAPI(name, base, token string) *api {
	return &api{name: name, base: base, token: token, http: &http.Client{Timeout: 45 * time.Second}}
}

// answer is a decoded JSON response.
type answer struct {
	Status int
	Body   map[string]any
	Raw    []byte
}

func (a answer) str(key string) string { s, _ := a.Body[key].(string); return s }

// call sends body (nil: none) as JSON and decodes the answer; headers are pairs.
func (a *api) call(ctx context.Context, method, path string, body any, headers ...string) (answer, error) {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return answer{}, err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, a.base+path, rd)
	if err != nil {
		return answer{}, fmt.Errorf("%s %s %s: %w", a.name, method, path, err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if a.token != "" {
		req.Header.Set("Authorization", "Bearer "+a.token)
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	res, err := a.http.Do(req)
	if err != nil {
		return answer{}, fmt.Errorf("%s %s %s: %w", a.name, method, path, err)
	}
	defer res.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(res.Body, 4<<20))
	if err != nil {
		return answer{}, fmt.Errorf("%s %s %s: %w", a.name, method, path, err)
	}
	out := answer{Status: res.StatusCode, Raw: raw}
	_ = json.Unmarshal(raw, &out.Body) // not every answer is an object; Raw keeps it
	return out, nil
}

// expect is call that fails unless the status is want.
func (a *api) expect(ctx context.Context, want int, method, path string, body any, headers ...string) (answer, error) {
	ans, err := a.call(ctx, method, path, body, headers...)
	if err != nil {
		return ans, err
	}
	if ans.Status != want {
		return ans, fmt.Errorf("%s %s %s: status %d, want %d: %s", a.name, method, path, ans.Status, want, bytes.TrimSpace(ans.Raw))
	}
	return ans, nil
}

// poll calls f every 50 ms until it returns nil or timeout passes; it returns f's last
// error.
func poll(ctx context.Context, timeout time.Duration, f func() error) error {
	deadline := time.Now().Add(timeout)
	for {
		err := f()
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return err
		}
		select {
		case <-ctx.Done():
		case <-time.After(50 * time.Millisecond):
		}
	}
}
