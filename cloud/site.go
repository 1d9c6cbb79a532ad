package cloud

import (
	"cmp"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/larder-lockers/larder/cloud/assign"
	"github.com/larder-lockers/larder/protocol"
)

func loadSite(tx Tx, id string) (*Site, error) {
	var s Site
	ok, err := getJSON(tx, bSites, id, &s)
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, &Error{Code: ENotFound, Message: "no such site: " + id, Field: "site"}
	}
	return &s, nil
}

func putSite(tx Tx, s *Site) error { return putJSON(tx, bSites, s.ID, s) }

// SiteInput is the ops metadata of a site. Nil fields are left unchanged by UpdateSite.
type SiteInput struct {
	ID       string    `json:"id,omitempty"`
	Name     *string   `json:"name,omitempty"`
	Address  *string   `json:"address,omitempty"`
	Location *Location `json:"location,omitempty"`
	// TimeZone is an IANA zone name; "" returns the site to the cloud's default.
	TimeZone *string   `json:"time_zone,omitempty"`
	District *string   `json:"district,omitempty"`
	Tags     *[]string `json:"tags,omitempty"`
}

// Limits of a site's grouping fields.
const (
	maxDistrict = 100
	maxTags     = 20
	maxTag      = 40
)

func (in SiteInput) validate() error {
	if in.TimeZone != nil && *in.TimeZone != "" {
		if _, err := LoadZone(*in.TimeZone); err != nil {
			return Invalid("time_zone", "want an IANA time zone name such as Asia/Shanghai")
		}
	}
	if in.Name != nil && len(*in.Name) > 200 {
		return Invalid("name", "at most 200 characters")
	}
	if in.Address != nil && len(*in.Address) > 500 {
		return Invalid("address", "at most 500 characters")
	}
	if in.District != nil && (len(*in.District) > maxDistrict || strings.TrimSpace(*in.District) != *in.District) {
		return Invalid("district", "at most %d characters, no leading or trailing spaces", maxDistrict)
	}
	if in.Tags != nil {
		if len(*in.Tags) > maxTags {
			return Invalid("tags", "at most %d tags", maxTags)
		}
		seen := map[string]bool{}
		for _, t := range *in.Tags {
			if !validTag(t) {
				return Invalid("tags", "tag %q: want 1 to %d lower-case letters, digits, '-' or '_'", t, maxTag)
			}
			if seen[t] {
				return Invalid("tags", "tag %q given twice", t)
			}
			seen[t] = true
		}
	}
	if l := in.Location; l != nil {
		if math.IsNaN(l.Lat) || l.Lat < -90 || l.Lat > 90 {
			return Invalid("location.lat", "want a latitude between -90 and 90")
		}
		if math.IsNaN(l.Lon) || l.Lon < -180 || l.Lon > 180 {
			return Invalid("location.lon", "want a longitude between -180 and 180")
		}
	}
	return nil
}

func (in SiteInput) apply(s *Site) {
	if in.Name != nil {
		s.Name = *in.Name
	}
	if in.Address != nil {
		s.Address = *in.Address
	}
	if in.Location != nil {
		l := *in.Location
		s.Location = &l
	}
	if in.TimeZone != nil {
		s.TimeZone = *in.TimeZone
	}
	if in.District != nil {
		s.District = *in.District
	}
	if in.Tags != nil {
		s.Tags = append([]string(nil), *in.Tags...)
		sort.Strings(s.Tags)
	}
}

// LoadZone loads the IANA zone name, refusing "" and "Local" (the server's own zone,
// which differs from machine to machine): a site's times must read the same wherever
// the cloud runs. The binaries embed the zone database (time/tzdata), so names load on
// a machine without one.
func LoadZone(name string) (*time.Location, error) {
	if name == "" || name == "Local" {
		return nil, fmt.Errorf("time zone %q: want an IANA name such as Asia/Shanghai", name)
	}
	return time.LoadLocation(name)
}

// siteZone is the IANA name of st's zone: its own, else the cloud's default.
func (s *Service) siteZone(st *Site) string {
	if st != nil && st.TimeZone != "" {
		return st.TimeZone
	}
	return s.zone
}

// validTag: tags are short slugs, so that a filter matches them exactly.
func validTag(t string) bool {
	if t == "" || len(t) > maxTag {
		return false
	}
	for _, r := range t {
		if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-' || r == '_') {
			return false
		}
	}
	return true
}

// CreateSite registers a site (admin) and draws its 32-byte site key.
func (s *Service) CreateSite(ctx context.Context, p Principal, in SiteInput) (Site, error) {
	if err := require(p, RoleAdmin); err != nil {
		return Site{}, err
	}
	if !protocol.ValidSite(in.ID) {
		return Site{}, Invalid("id", "want 1 to 64 lower-case letters, digits, '-' or '_'")
	}
	if err := in.validate(); err != nil {
		return Site{}, err
	}
	var out Site
	err := s.store.Update(ctx, func(tx Tx) error {
		if tx.Get(bSites, in.ID) != nil {
			return &Error{Code: EConflict, Field: "id", Message: "site " + in.ID + " already exists"}
		}
		key := make([]byte, 32)
		rand.Read(key)
		st := &Site{ID: in.ID, Created: s.now().UTC(), Key: key}
		in.apply(st)
		if err := putSite(tx, st); err != nil {
			return err
		}
		audit(tx, s.now(), AuditEntry{Site: st.ID, Actor: p.Subject, Role: p.Role, Action: "site_created"})
		out = *st
		return nil
	})
	return out, internal("create site", err)
}

// UpdateSite changes a site's ops metadata (ops, admin). A new name or time zone goes
// to the edge as a desired delta (the kiosk shows them).
func (s *Service) UpdateSite(ctx context.Context, p Principal, id string, in SiteInput) (Site, error) {
	if err := require(p, RoleOps, RoleAdmin); err != nil {
		return Site{}, err
	}
	if err := in.validate(); err != nil {
		return Site{}, err
	}
	var out Site
	err := s.store.Update(ctx, func(tx Tx) error {
		st, err := loadSite(tx, id)
		if err != nil {
			return err
		}
		before := *s.profile(st)
		in.apply(st)
		if *s.profile(st) != before {
			// The kiosk shows the name and tells times in the zone: the edge hears of it.
			s.publishDelta(tx, st, protocol.Desired{Site: s.profile(st)})
		}
		out = *st
		return putSite(tx, st)
	})
	return out, internal("update site", err)
}

// Provisioning is what an edge needs to join: the site key and its MQTT login. It is
// handed out once; the cloud keeps only the key (for digests) and the password's digest.
type Provisioning struct {
	Site string `json:"site"`
	// SiteKey is the site key as 64 lower-case hex characters; digests are keyed with
	// the 32 bytes they decode to, never with the characters.
	SiteKey      string `json:"site_key"`
	MQTTUsername string `json:"mqtt_username"`
	MQTTPassword string `json:"mqtt_password"`
	// MQTTClientID is the only client id the broker accepts with this login
	// (protocol.EdgeClientID).
	MQTTClientID string `json:"mqtt_client_id"`
}

// Provision hands out a site's key and a fresh MQTT password (admin), once. A site that
// must be re-provisioned (a replaced edge computer) is deleted and created again by a
// later version; v1 refuses with EAlreadyIssued.
func (s *Service) Provision(ctx context.Context, p Principal, id string) (Provisioning, error) {
	if err := require(p, RoleAdmin); err != nil {
		return Provisioning{}, err
	}
	var out Provisioning
	err := s.store.Update(ctx, func(tx Tx) error {
		st, err := loadSite(tx, id)
		if err != nil {
			return err
		}
		if st.Provisioned {
			return Errorf(EAlreadyIssued, "site %s was already provisioned; its key is handed out once", id)
		}
		pw := randomToken(24)
		st.Provisioned = true
		st.MQTTDigest = sha256Hex(pw)
		out = Provisioning{Site: id, SiteKey: hex.EncodeToString(st.Key), MQTTUsername: id, MQTTPassword: pw,
			MQTTClientID: protocol.EdgeClientID(id)}
		audit(tx, s.now(), AuditEntry{Site: id, Actor: p.Subject, Role: p.Role, Action: "site_provisioned"})
		return putSite(tx, st)
	})
	return out, internal("provision", err)
}

// AuthenticateEdge checks an edge's MQTT login (username = site id) and returns the site.
// The broker calls it on every connect.
func (s *Service) AuthenticateEdge(ctx context.Context, username, password string) (string, bool) {
	if !protocol.ValidSite(username) {
		return "", false
	}
	ok := false
	s.store.View(ctx, func(tx Tx) error {
		st, err := loadSite(tx, username)
		if err != nil || st.MQTTDigest == "" {
			return nil
		}
		ok = protocol.DigestEqual(st.MQTTDigest, sha256Hex(password))
		return nil
	})
	return username, ok
}

// SiteKey returns a site's key, for adapters that must digest (never exposed by the API
// except through Provision).
func (s *Service) SiteKey(ctx context.Context, id string) ([]byte, error) {
	var key []byte
	err := s.store.View(ctx, func(tx Tx) error {
		st, err := loadSite(tx, id)
		if err == nil {
			key = append([]byte(nil), st.Key...)
		}
		return err
	})
	return key, err
}

// SiteSummary is one line of the fleet list.
type SiteSummary struct {
	ID           string     `json:"id"`
	Name         string     `json:"name,omitempty"`
	Address      string     `json:"address,omitempty"`
	Location     *Location  `json:"location,omitempty"`
	District     string     `json:"district,omitempty"`
	Tags         []string   `json:"tags,omitempty"`
	TimeZone     string     `json:"time_zone"` // the site's or the cloud's default
	State        FleetState `json:"state"`
	Provisioned  bool       `json:"provisioned"`
	Online       bool       `json:"online"`
	OfflineSince time.Time  `json:"offline_since,omitzero"`
	LastSeen     time.Time  `json:"last_seen,omitzero"`
	Software     string     `json:"software,omitempty"`
	// EdgeDesiredVersion is the version the edge last reported applied: from its
	// telemetry when it sends one (protocol 1.1), else from its last birth.
	DesiredVersion     uint64                 `json:"desired_version"`
	EdgeDesiredVersion uint64                 `json:"edge_desired_version"`
	Zones              []protocol.ZoneReading `json:"zones,omitempty"`
	Compartments       map[CompState]int      `json:"compartments"`
	OpenAlarms         int                    `json:"open_alarms"`
	// Problems are what is wrong with the site, worst and oldest first; Health is the
	// worst one's severity (or ok, or idle).
	Problems []Problem `json:"problems,omitempty"`
	Health   Health    `json:"health"`
	// For metrics and filters: compartments by zone and state, open alarms by kind.
	ByZone     map[protocol.Zone]map[CompState]int `json:"-"`
	AlarmKinds map[protocol.EventKind]int          `json:"-"`
	// alarmSince is the oldest open alarm of each kind.
	alarmSince map[protocol.EventKind]time.Time
}

// SiteDetail is the ops view of one site.
type SiteDetail struct {
	SiteSummary
	Boards          []protocol.BoardHealth `json:"boards,omitempty"`
	OutboxDepth     int                    `json:"outbox_depth"`
	Alarms          []Alarm                `json:"alarms"`
	CompartmentList []CompartmentView      `json:"compartment_list"`
}

// CompartmentView is a compartment as ops see it.
type CompartmentView struct {
	Number     int           `json:"number"`
	Size       protocol.Size `json:"size"`
	Zone       protocol.Zone `json:"zone"`
	HeightCM   int           `json:"height_cm"`
	State      CompState     `json:"state"`
	Generation uint64        `json:"generation"`
	Order      string        `json:"order,omitempty"`
	OOSReason  string        `json:"oos_reason,omitempty"`
}

func (s *Service) summary(tx Tx, st *Site) (SiteSummary, []Compartment, []Alarm, error) {
	comps, err := siteComps(tx, st.ID)
	if err != nil {
		return SiteSummary{}, nil, nil, err
	}
	alarms, err := siteAlarms(tx, st.ID)
	if err != nil {
		return SiteSummary{}, nil, nil, err
	}
	sum := summarize(st, comps, alarms)
	s.withLive(&sum)
	return sum, comps, alarms, nil
}

// storedSummary is the part of a site's summary the store holds (what the fleet index
// keeps).
func storedSummary(tx Tx, st *Site) (SiteSummary, error) {
	comps, err := siteComps(tx, st.ID)
	if err != nil {
		return SiteSummary{}, err
	}
	alarms, err := siteAlarms(tx, st.ID)
	if err != nil {
		return SiteSummary{}, err
	}
	return summarize(st, comps, alarms), nil
}

func summarize(st *Site, comps []Compartment, alarms []Alarm) SiteSummary {
	sum := SiteSummary{ID: st.ID, Name: st.Name, Address: st.Address, Location: st.Location, District: st.District,
		Tags: st.Tags, TimeZone: st.TimeZone, Provisioned: st.Provisioned, Online: st.Online, OfflineSince: st.OfflineSince,
		LastSeen: st.LastSeen, Software: st.Software, DesiredVersion: st.DesiredVersion,
		EdgeDesiredVersion: st.EdgeDesiredVersion, Compartments: map[CompState]int{}, OpenAlarms: len(alarms),
		ByZone: map[protocol.Zone]map[CompState]int{}, AlarmKinds: map[protocol.EventKind]int{},
		alarmSince: map[protocol.EventKind]time.Time{}}
	for _, c := range comps {
		sum.Compartments[c.State()]++
		if sum.ByZone[c.Zone] == nil {
			sum.ByZone[c.Zone] = map[CompState]int{}
		}
		sum.ByZone[c.Zone][c.State()]++
	}
	for _, a := range alarms {
		sum.AlarmKinds[a.Kind]++
		if t, ok := sum.alarmSince[a.Kind]; !ok || a.Since.Before(t) {
			sum.alarmSince[a.Kind] = a.Since
		}
	}
	return sum
}

// withLive completes a stored summary with the cloud's default zone if the site has
// none and with what the edge's recent messages say (zones,
// last seen, its applied version), and derives the state and problems. It replaces the
// slices it sets and never writes into the maps, which the fleet index shares.
func (s *Service) withLive(sum *SiteSummary) {
	if sum.TimeZone == "" {
		sum.TimeZone = s.zone
	}
	live := s.Live(sum.ID)
	sum.Zones = live.Zones
	if live.LastSeen.After(sum.LastSeen) {
		sum.LastSeen = live.LastSeen
	}
	if live.DesiredVersion > 0 {
		sum.EdgeDesiredVersion = live.DesiredVersion
	}
	n := 0
	for _, c := range sum.Compartments {
		n += c
	}
	switch {
	case n > 0 && sum.Compartments[CompOutOfService] == n:
		sum.State = SiteOutOfService
	case sum.Online:
		sum.State = SiteOnline
	case !sum.Provisioned:
		sum.State = SiteUnprovisioned
	case sum.LastSeen.IsZero() && sum.OfflineSince.IsZero():
		sum.State = SiteNeverConnected
	default:
		sum.State = SiteOffline
	}
	var ps []Problem
	for kind, since := range sum.alarmSince {
		ps = append(ps, Problem{Kind: string(kind), Severity: alarmSeverity(kind), Since: since, Count: sum.AlarmKinds[kind]})
	}
	if sum.AlarmKinds[protocol.EventTempExcursion] == 0 {
		// The edge reports a zone out of range before its excursion event (which waits
		// for the zone's allowed duration): the console shows it at once.
		for _, z := range live.Zones {
			if z.Excursion {
				ps = append(ps, Problem{Kind: string(protocol.EventTempExcursion), Severity: SevCritical, Since: live.Telemetry})
				break
			}
		}
	}
	switch sum.State {
	case SiteOffline:
		ps = append(ps, Problem{Kind: ProblemOffline, Severity: SevMajor, Since: sum.OfflineSince})
	case SiteNeverConnected:
		ps = append(ps, Problem{Kind: ProblemNeverConnected, Severity: SevMinor})
	}
	slices.SortFunc(ps, func(a, b Problem) int {
		return cmp.Or(cmp.Compare(severityRank[a.Severity], severityRank[b.Severity]), a.Since.Compare(b.Since),
			cmp.Compare(a.Kind, b.Kind))
	})
	sum.Problems = ps
	switch {
	case len(ps) > 0:
		sum.Health = Health(ps[0].Severity)
	case sum.State == SiteUnprovisioned || sum.State == SiteOutOfService:
		sum.Health = HealthIdle
	default:
		sum.Health = HealthOK
	}
}

// allSites reads every site record, in id order.
func allSites(tx Tx) ([]Site, error) {
	var sites []Site
	var derr error
	tx.Scan(bSites, "", func(_ string, v []byte) bool {
		var st Site
		if derr = json.Unmarshal(v, &st); derr != nil {
			return false
		}
		sites = append(sites, st)
		return true
	})
	return sites, derr
}

// ListSites is the fleet list (ops, admin).
func (s *Service) ListSites(ctx context.Context, p Principal) ([]SiteSummary, error) {
	if err := require(p, RoleOps, RoleAdmin); err != nil {
		return nil, err
	}
	return s.fleetSummaries(ctx)
}

// GetSite is the ops detail of a site (ops, admin).
func (s *Service) GetSite(ctx context.Context, p Principal, id string) (SiteDetail, error) {
	if err := require(p, RoleOps, RoleAdmin); err != nil {
		return SiteDetail{}, err
	}
	var out SiteDetail
	err := s.store.View(ctx, func(tx Tx) error {
		st, err := loadSite(tx, id)
		if err != nil {
			return err
		}
		sum, comps, alarms, err := s.summary(tx, st)
		if err != nil {
			return err
		}
		live := s.Live(id)
		out = SiteDetail{SiteSummary: sum, Boards: live.Boards, OutboxDepth: live.Outbox, Alarms: alarms}
		if out.Alarms == nil {
			out.Alarms = []Alarm{}
		}
		out.CompartmentList = []CompartmentView{}
		for _, c := range comps {
			out.CompartmentList = append(out.CompartmentList, CompartmentView{Number: c.Number, Size: c.Size, Zone: c.Zone,
				HeightCM: c.HeightCM, State: c.State(), Generation: c.Generation, Order: c.Order, OOSReason: c.OOSReason})
		}
		return nil
	})
	return out, internal("get site", err)
}

// SiteIDs lists every site id (for metrics and the fleet adapter).
func (s *Service) SiteIDs(ctx context.Context) ([]string, error) {
	var ids []string
	err := s.store.View(ctx, func(tx Tx) error {
		return tx.Scan(bSites, "", func(k string, _ []byte) bool { ids = append(ids, k); return true })
	})
	return ids, err
}

// NearbySite is a site that can hold an order another site refused.
type NearbySite struct {
	Site       string  `json:"site"`
	Name       string  `json:"name,omitempty"`
	DistanceKM float64 `json:"distance_km"`
}

// nearby finds the sites within NearbyKM of from that can hold parcels, nearest first.
// It runs only on a refusal and scans every site's record; a fleet of many thousands
// would want a geographic index (PostgreSQL with PostGIS) instead.
func (s *Service) nearby(tx Tx, from *Site, parcels []assign.Parcel, accessible bool, zones map[string]int) ([]NearbySite, error) {
	if from.Location == nil {
		return []NearbySite{}, nil
	}
	var cands []NearbySite
	var derr error
	tx.Scan(bSites, "", func(_ string, v []byte) bool {
		var st Site
		if derr = json.Unmarshal(v, &st); derr != nil {
			return false
		}
		if st.ID == from.ID || st.Location == nil {
			return true
		}
		d := Haversine(*from.Location, *st.Location)
		if d <= s.pol.NearbyKM {
			cands = append(cands, NearbySite{Site: st.ID, Name: st.Name, DistanceKM: math.Round(d*100) / 100})
		}
		return true
	})
	if derr != nil {
		return nil, derr
	}
	sort.Slice(cands, func(i, j int) bool { return cands[i].DistanceKM < cands[j].DistanceKM })
	out := []NearbySite{}
	for _, c := range cands {
		free, err := freeCandidates(tx, c.Site, zones, accessible)
		if err != nil {
			return nil, err
		}
		if _, err := assign.Plan(parcels, accessible, free); err == nil {
			out = append(out, c)
			if len(out) == s.pol.NearbyMax {
				break
			}
		}
	}
	return out, nil
}

// Haversine is the great-circle distance between a and b in kilometres.
func Haversine(a, b Location) float64 {
	const r = 6371.0
	rad := math.Pi / 180
	dLat := (b.Lat - a.Lat) * rad
	dLon := (b.Lon - a.Lon) * rad
	h := math.Sin(dLat/2)*math.Sin(dLat/2) + math.Cos(a.Lat*rad)*math.Cos(b.Lat*rad)*math.Sin(dLon/2)*math.Sin(dLon/2)
	return 2 * r * math.Asin(math.Min(1, math.Sqrt(h)))
}
