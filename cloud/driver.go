package cloud

import (
	"context"
	"time"

	"github.com/larder-lockers/larder/protocol"
)

// Drivers: what a driver needs at a site's kiosk (a loading credential), what to load
// and take back there (the manifest), and remote opening of an order's compartment for
// loading. Loading itself is a fact the edge reports (EventLoaded, see edge.go).

// LoadingCredential is a driver's credential for a site's kiosk, shown once.
type LoadingCredential struct {
	ID         string    `json:"id"`
	Site       string    `json:"site"`
	Credential string    `json:"credential"`
	ExpiresAt  time.Time `json:"expires_at"`
}

// IssueLoadingCredential gives a driver a time-limited credential for a site's kiosk
// (driver). It is 10 random digits (typed at the kiosk), stored and sent to the edge
// only as protocol.CredentialDigest.
func (s *Service) IssueLoadingCredential(ctx context.Context, p Principal, site string) (LoadingCredential, error) {
	if err := require(p, RoleDriver); err != nil {
		return LoadingCredential{}, err
	}
	var out LoadingCredential
	err := s.store.Update(ctx, func(tx Tx) error {
		st, err := loadSite(tx, site)
		if err != nil {
			return err
		}
		plain := newDigits(5) + newDigits(5)
		c := Credential{Site: site, LoadingCredential: protocol.LoadingCredential{ID: newID("cred_"),
			Digest: protocol.CredentialDigest(st.Key, plain), Driver: p.Subject, ExpiresAt: s.now().Add(s.pol.CredentialTTL).UTC()}}
		if err := putJSON(tx, bCreds, site+"/"+c.ID, c); err != nil {
			return err
		}
		s.publishDelta(tx, st, protocol.Desired{Credentials: []protocol.LoadingCredential{c.LoadingCredential}})
		audit(tx, s.now(), AuditEntry{Site: site, Actor: p.Subject, Role: p.Role, Action: "loading_credential_issued", Credential: protocol.CredDriver})
		out = LoadingCredential{ID: c.ID, Site: site, Credential: plain, ExpiresAt: c.ExpiresAt}
		return putSite(tx, st)
	})
	return out, internal("issue credential", err)
}

// ManifestEntry is one order a driver handles at a site: no personal data.
type ManifestEntry struct {
	Order      string        `json:"order"`
	ExternalID string        `json:"external_id"`
	State      OrderState    `json:"state"`
	Zone       protocol.Zone `json:"zone"`
	Accessible bool          `json:"accessible,omitempty"`
	Parcels    []Parcel      `json:"parcels"`
	Slots      []Slot        `json:"slots"`
	Window     Window        `json:"window"`
	ExpiresAt  time.Time     `json:"expires_at"`
	// TimeZone is the IANA name of the site's zone, in which the driver page tells times.
	TimeZone string `json:"time_zone"`
}

// Manifest lists what a driver loads (assigned) and takes back (expired, compromised)
// at a site (driver, ops, admin).
func (s *Service) Manifest(ctx context.Context, p Principal, site string) ([]ManifestEntry, error) {
	if err := require(p, RoleDriver, RoleOps, RoleAdmin); err != nil {
		return nil, err
	}
	out := []ManifestEntry{}
	err := s.store.View(ctx, func(tx Tx) error {
		st, err := loadSite(tx, site)
		if err != nil {
			return err
		}
		orders, err := siteOrders(tx, site, true)
		if err != nil {
			return err
		}
		for _, o := range orders {
			if o.State == StateLoaded {
				continue
			}
			out = append(out, ManifestEntry{Order: o.ID, ExternalID: o.ExternalID, State: o.State, Zone: o.Zone,
				Accessible: o.Accessible, Parcels: o.Parcels, Slots: o.Slots, Window: o.Window, ExpiresAt: o.ExpiresAt,
				TimeZone: s.siteZone(st)})
		}
		return nil
	})
	return out, internal("manifest", err)
}

// OpenForLoading asks the edge to open one of an order's compartments for a driver
// (driver). The command carries the slot's generation, so a stale one is refused.
func (s *Service) OpenForLoading(ctx context.Context, p Principal, orderID string, compartment int) (CommandRecord, error) {
	if err := require(p, RoleDriver); err != nil {
		return CommandRecord{}, err
	}
	var rec CommandRecord
	err := s.store.Update(ctx, func(tx Tx) error {
		o, err := loadOrder(tx, orderID)
		if err != nil {
			return err
		}
		if o.State != StateAssigned {
			return Errorf(EConflict, "an order in state %s is not loaded", o.State)
		}
		var slot *Slot
		for i := range o.Slots {
			if o.Slots[i].Compartment == compartment {
				slot = &o.Slots[i]
			}
		}
		if slot == nil {
			return &Error{Code: EInvalid, Field: "compartment", Message: "the order does not hold this compartment"}
		}
		rec, err = s.command(tx, o.Site, protocol.Command{Kind: protocol.CmdOpen, Compartment: compartment,
			Purpose: protocol.PurposeLoading, Order: o.ID, Generation: slot.Generation, Actor: p.Subject})
		if err != nil {
			return err
		}
		audit(tx, s.now(), AuditEntry{Site: o.Site, Actor: p.Subject, Role: p.Role, Action: "remote_open_loading",
			Compartment: compartment, Order: o.ID, Credential: protocol.CredDriver, Command: rec.Command.ID})
		return nil
	})
	return rec, internal("open for loading", err)
}
