package demo

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"time"
)

// EdgeOptions start one larder-edge. The configuration (secrets included) is written to
// DataDir/config.json with mode 0600 and passed by -config: secrets never appear in ps.
type EdgeOptions struct {
	Name    string // log prefix; empty means "edge"
	Site    string
	SiteKey string // hex
	DataDir string
	// Kiosk is the kiosk/healthz address; empty picks a free port.
	Kiosk string
	// Metrics is the /metrics address (larder-edge's metrics_addr); empty picks a free
	// port.
	Metrics string
	// Broker is the MQTT URL; empty runs offline.
	Broker, BrokerUser, BrokerPassword string
	Bus                                string // the sim's pty or tcp:// address
	Profile                            string // default kerong-cu16
	Boards                             []int  // board addresses; default 0, 1
	Zones                              string
	// Thermometer is the sim's control URL (read as "sim:URL"); empty: none.
	Thermometer string
	// PollInterval and TempInterval; zero keeps the edge's defaults (500ms, 10s).
	PollInterval, TempInterval time.Duration
	LogLevel                   string // default info
	// Limits overrides zone limits, in larder-edge's config-file shape.
	Limits map[string]any
}

// Edge is a running larder-edge.
type Edge struct {
	*Proc
	Opts  EdgeOptions
	Kiosk *KioskClient
	// MetricsURL is the /metrics listener's base URL (the kiosk answers 404 for it).
	MetricsURL string
}

type edgeFile struct {
	Site           string         `json:"site"`
	SiteKey        string         `json:"site_key"`
	DataDir        string         `json:"data_dir"`
	KioskAddr      string         `json:"kiosk_addr"`
	MetricsAddr    string         `json:"metrics_addr"`
	Broker         string         `json:"broker,omitempty"`
	BrokerUsername string         `json:"broker_username,omitempty"`
	BrokerPassword string         `json:"broker_password,omitempty"`
	Bus            string         `json:"bus"`
	Profile        string         `json:"profile"`
	Boards         []int          `json:"boards"`
	Zones          string         `json:"zones,omitempty"`
	Thermometer    string         `json:"thermometer,omitempty"`
	PollInterval   string         `json:"poll_interval,omitempty"`
	TempInterval   string         `json:"temp_interval,omitempty"`
	LogLevel       string         `json:"log_level,omitempty"`
	Limits         map[string]any `json:"limits,omitempty"`
}

// StartEdge writes the edge's configuration, starts larder-edge and waits for /healthz.
func (l *Launcher) StartEdge(ctx context.Context, o EdgeOptions) (*Edge, error) {
	if o.Name == "" {
		o.Name = "edge"
	}
	if o.Profile == "" {
		o.Profile = "kerong-cu16"
	}
	if len(o.Boards) == 0 {
		o.Boards = []int{0, 1}
	}
	if o.LogLevel == "" {
		o.LogLevel = "info"
	}
	for _, a := range []*string{&o.Kiosk, &o.Metrics} {
		if *a == "" {
			free, err := FreeAddr()
			if err != nil {
				return nil, err
			}
			*a = free
		} else if err := CheckFree(*a); err != nil {
			return nil, err
		}
	}
	abs, err := filepath.Abs(o.DataDir)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(abs, 0o700); err != nil {
		return nil, fmt.Errorf("demo: edge data dir: %w", err)
	}
	f := edgeFile{Site: o.Site, SiteKey: o.SiteKey, DataDir: abs, KioskAddr: o.Kiosk, MetricsAddr: o.Metrics, Broker: o.Broker,
		BrokerUsername: o.BrokerUser, BrokerPassword: o.BrokerPassword, Bus: o.Bus, Profile: o.Profile,
		Boards: o.Boards, Zones: o.Zones, LogLevel: o.LogLevel, Limits: o.Limits}
	if o.Thermometer != "" {
		f.Thermometer = "sim:" + o.Thermometer
	}
	if o.PollInterval > 0 {
		f.PollInterval = o.PollInterval.String()
	}
	if o.TempInterval > 0 {
		f.TempInterval = o.TempInterval.String()
	}
	raw, _ := json.MarshalIndent(f, "", "  ")
	cfgPath := filepath.Join(abs, "config.json")
	if err := os.WriteFile(cfgPath, raw, 0o600); err != nil {
		return nil, fmt.Errorf("demo: edge config: %w", err)
	}
	p, err := l.Start(o.Name, "larder-edge", []string{"-config", cfgPath}, nil)
	if err != nil {
		return nil, err
	}
	e := &Edge{Proc: p, Opts: o, Kiosk: &KioskClient{URL: "http://" + o.Kiosk}, MetricsURL: "http://" + o.Metrics}
	if err := p.WaitHealthy(ctx, e.Kiosk.URL+"/healthz", 30*time.Second); err != nil {
		p.Stop()
		return nil, err
	}
	return e, nil
}

// Restart starts the same edge again (after Stop or Kill), on the same data directory.
func (l *Launcher) Restart(ctx context.Context, e *Edge) (*Edge, error) {
	return l.StartEdge(ctx, e.Opts)
}

// KioskClient speaks the kiosk's JSON API (see the kiosk contract) as a resident or a
// driver would through the kiosk page.
type KioskClient struct {
	URL string
}

// Door is a door in a kiosk answer.
type Door struct {
	Number  int    `json:"number"`
	State   string `json:"state"`
	Empty   bool   `json:"empty"`
	WhereEN string `json:"where_en"`
}

// PickupResult is a successful POST /api/pickup.
type PickupResult struct {
	Session     string `json:"session"`
	OrderRef    string `json:"order_ref"`
	Doors       []Door `json:"doors"`
	Compromised bool   `json:"compromised"`
}

// Pickup types a code and the last four digits of the phone number.
func (k *KioskClient) Pickup(ctx context.Context, code, factor string) (PickupResult, error) {
	var out PickupResult
	err := doJSON(ctx, "POST", k.URL+"/api/pickup", "", map[string]string{"code": code, "factor": factor}, &out)
	return out, err
}

// SessionDone reports whether the pickup session has ended (every door shut and empty).
func (k *KioskClient) SessionDone(ctx context.Context, session string) (bool, error) {
	var out struct {
		Done bool `json:"done"`
	}
	err := doJSON(ctx, "GET", k.URL+"/api/sessions/"+session, "", nil, &out)
	return out.Done, err
}

// DriverLogin exchanges a loading credential for a kiosk session token.
func (k *KioskClient) DriverLogin(ctx context.Context, credential string) (string, error) {
	var out struct {
		Token string `json:"token"`
	}
	err := doJSON(ctx, "POST", k.URL+"/api/driver/login", "", map[string]string{"credential": credential}, &out)
	return out.Token, err
}

// ManifestOrder is one order of the kiosk's driver manifest.
type ManifestOrder struct {
	Order string `json:"order"`
	Zone  string `json:"zone"`
	State string `json:"state"`
	Doors []Door `json:"doors"`
}

// Manifest lists what the driver loads and takes back at this locker bank.
func (k *KioskClient) Manifest(ctx context.Context, token string) ([]ManifestOrder, error) {
	var out struct {
		Orders []ManifestOrder `json:"orders"`
	}
	err := doJSON(ctx, "GET", k.URL+"/api/driver/manifest", token, nil, &out)
	return out.Orders, err
}

// DriverOpen opens one of an order's compartments for loading.
func (k *KioskClient) DriverOpen(ctx context.Context, token, order string, compartment int) (Door, error) {
	var out struct {
		Door Door `json:"door"`
	}
	err := doJSON(ctx, "POST", k.URL+"/api/driver/open", token, map[string]any{"order": order, "compartment": compartment}, &out)
	return out.Door, err
}

// DriverReturn opens an expired order's doors so the driver can take it back.
func (k *KioskClient) DriverReturn(ctx context.Context, token, order string) ([]Door, error) {
	var out struct {
		Doors []Door `json:"doors"`
	}
	err := doJSON(ctx, "POST", k.URL+"/api/driver/return", token, map[string]any{"order": order}, &out)
	return out.Doors, err
}
