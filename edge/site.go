package edge

import "github.com/larder-lockers/larder/protocol"

// SiteProfile is the site as residents know it, its name and time zone, as the cloud's
// desired state last described it (ApplyDesired stores it). It is zero until the cloud
// has: a new edge, or a cloud older than the field; the kiosk then names the site by
// its id.
func (l *Locker) SiteProfile() (protocol.SiteProfile, error) {
	var p protocol.SiteProfile
	err := l.cfg.Store.View(func(tx Tx) error {
		var err error
		p, err = tx.SiteProfile()
		return err
	})
	return p, wrap("site profile", err)
}
