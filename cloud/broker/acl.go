package broker

import (
	"bytes"
	"fmt"
	"log/slog"
	"sync/atomic"

	mochi "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/packets"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/larder-lockers/larder/protocol"
)

// EdgeClientID is the MQTT client id an edge of site must use (the edge's default),
// [protocol.EdgeClientID]. Binding the id to the site stops one edge from taking over
// another's session, or the cloud's, by connecting with its client id.
func EdgeClientID(site string) string { return protocol.EdgeClientID(site) }

// MayPublish reports whether the edge of site may publish on topic: only its own
// site's edge→cloud channels.
func MayPublish(site, topic string) bool {
	s, c, err := protocol.ParseTopic(topic)
	return err == nil && s == site && c.FromEdge()
}

// MaySubscribe reports whether the edge of site may subscribe to filter (or receive a
// message on a topic): its own site's cloud→edge channels, or [protocol.SiteFilter] of
// its own site (through which it then receives only the cloud→edge channels).
// Wildcards elsewhere and shared subscriptions are refused.
func MaySubscribe(site, filter string) bool {
	if filter == protocol.SiteFilter(site) {
		return true
	}
	s, c, err := protocol.ParseTopic(filter)
	return err == nil && s == site && !c.FromEdge()
}

// authHook authenticates edges and the service account and confines each edge to
// its own site.
type authHook struct {
	mochi.HookBase
	creds           Credentials
	serviceUser     string
	servicePassword string
	log             *slog.Logger
	// srv sends the CONNACK that refuses a wrong client id (see OnConnect).
	srv *mochi.Server
	// refused counts dropped publishes (OnPublish); nil when metrics are off.
	refused prometheus.Counter
	// edgesOpen is false while edge logins are held (Config.HoldEdges, until
	// Broker.AcceptEdges).
	edgesOpen atomic.Bool
}

func (h *authHook) ID() string { return "larder-auth" }

func (h *authHook) Provides(b byte) bool {
	return b == mochi.OnConnect || b == mochi.OnConnectAuthenticate || b == mochi.OnACLCheck || b == mochi.OnPublish
}

// OnConnect refuses an edge login (a username that is a site id) whose client id is not
// [EdgeClientID] with its own reason, "identifier rejected" (CONNACK 2 on MQTT 3.1.1,
// 0x85 on MQTT 5), rather than the "not authorized" every other refusal gets: an
// installer with a misconfigured client id is otherwise told the password is wrong. The
// rule is public (asyncapi.yaml), so the distinct answer gives nothing away; it is
// decided before the password is looked at. mochi sends no CONNACK when this hook fails,
// so it sends its own.
//
// Until the broker accepts edges ([Config.HoldEdges], [Broker.AcceptEdges]) it also
// refuses every edge login with "server unavailable" (CONNACK 3, 0x88 on MQTT 5), before
// any password is looked at: the edge retries after its backoff, as after any refusal.
func (h *authHook) OnConnect(cl *mochi.Client, pk packets.Packet) error {
	user := string(pk.Connect.Username)
	if user != h.serviceUser && protocol.ValidSite(user) && !h.edgesOpen.Load() {
		if err := h.srv.SendConnack(cl, packets.ErrServerUnavailable, false, nil); err != nil {
			return fmt.Errorf("broker: hold edge %q: %w", user, err)
		}
		return packets.ErrServerUnavailable
	}
	if user == h.serviceUser || !protocol.ValidSite(user) || cl.ID == EdgeClientID(user) {
		return nil // decided by OnConnectAuthenticate
	}
	h.log.Info("broker: login refused: client id does not match site", "site", user, "client", cl.ID, "want", EdgeClientID(user))
	if err := h.srv.SendConnack(cl, packets.ErrClientIdentifierNotValid, false, nil); err != nil {
		return fmt.Errorf("broker: refuse client id %q: %w", cl.ID, err)
	}
	return packets.ErrClientIdentifierNotValid
}

// OnConnectAuthenticate admits the service account, and an edge whose username is a
// site id, whose password checks out, whose client id is [EdgeClientID] (a wrong one
// never gets here: see OnConnect) and whose Last
// Will (if any) is on a topic it may publish to: mochi does not run the ACL over wills,
// so without this an edge could have the broker publish "offline" for another site.
func (h *authHook) OnConnectAuthenticate(cl *mochi.Client, pk packets.Packet) bool {
	user := string(pk.Connect.Username)
	password := string(pk.Connect.Password)
	if user == h.serviceUser {
		ok := h.checkService(user, password)
		if !ok {
			h.log.Warn("broker: service login refused", "client", cl.ID, "remote", cl.Net.Remote)
		}
		return ok
	}
	if !protocol.ValidSite(user) {
		h.log.Info("broker: login refused: username is not a site id", "remote", cl.Net.Remote)
		return false
	}
	if cl.ID != EdgeClientID(user) { // OnConnect has refused it already; kept so this hook alone is safe
		return false
	}
	if pk.Connect.WillFlag && !MayPublish(user, pk.Connect.WillTopic) {
		h.log.Info("broker: login refused: will on a foreign topic", "site", user)
		return false
	}
	if !h.checkEdge(user, password) {
		h.log.Info("broker: login refused: bad password", "site", user, "remote", cl.Net.Remote)
		return false
	}
	return true
}

// OnACLCheck is called for every publish (write), subscribe and delivery (read). A
// publish is decided by OnPublish instead, so that a refused one is dropped rather than
// answered by disconnecting the client (see there).
func (h *authHook) OnACLCheck(cl *mochi.Client, topic string, write bool) bool {
	site, service := h.edgeSite(cl)
	switch {
	case service:
		return true
	case write:
		return protocol.ValidSite(site) // decided in OnPublish
	}
	return protocol.ValidSite(site) && MaySubscribe(site, topic)
}

// OnPublish drops a publish the edge may not make ([MayPublish]): it never reaches a
// subscriber or the retained store. MQTT 3.1.1 lets a server either acknowledge a
// refused PUBLISH as usual or close the connection (§3.3.5); mochi's own ACL refusal
// closes it, and an edge whose persistent session resent the refused message on every
// reconnect would loop forever. So the refusal is an ordinary PUBACK on MQTT 3.1.1 (as
// Mosquitto does), a PUBACK with reason "not authorized" on MQTT 5 (QoS 1), and nothing
// at QoS 0; the connection stays up. Counted in larder_broker_publishes_refused_total.
func (h *authHook) OnPublish(cl *mochi.Client, pk packets.Packet) (packets.Packet, error) {
	site, service := h.edgeSite(cl)
	if service || MayPublish(site, pk.TopicName) {
		return pk, nil
	}
	if h.refused != nil {
		h.refused.Inc()
	}
	h.log.Warn("broker: publish refused", "site", site, "topic", pk.TopicName)
	if cl.Properties.ProtocolVersion == 5 && pk.FixedHeader.Qos > 0 {
		return pk, packets.ErrNotAuthorized
	}
	return pk, packets.CodeSuccessIgnore
}

// edgeSite is the site of an authenticated edge client, or service true for the
// cloud's service account.
func (h *authHook) edgeSite(cl *mochi.Client) (site string, service bool) {
	user := cl.Properties.Username
	if bytes.Equal(user, []byte(h.serviceUser)) {
		return "", true
	}
	return string(user), false
}
