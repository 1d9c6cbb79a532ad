package conform

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/larder-lockers/larder/protocol"
)

// CloudConfig configures a run of cloud mode: the kit is an edge (a new site it creates
// and provisions over the cloud's REST API) and a platform and an operator using that
// API.
type CloudConfig struct {
	// API is the base URL of the cloud's REST API.
	API string
	// AdminKey is an API key with the admin role: it creates the site, provisions it and
	// creates the platform and ops keys the kit uses.
	AdminKey string
	// Site is the site the kit creates (default conform-{random}); it must not exist.
	Site string
	// Broker overrides the broker URL the provisioning answer gives (mqtt_url).
	Broker string
	// Timeout bounds every wait for the cloud (default 20 s); Wait is how long the kit
	// watches for something that must not happen (an ack past a gap; default 2 s).
	Timeout, Wait time.Duration
	// Select chooses the clauses to check (zero: all).
	Select Selection
	// Log receives the kit's own progress (nil: discard).
	Log *slog.Logger
}

func (c *CloudConfig) fill() error {
	if c.Site == "" {
		c.Site = "conform-" + protocol.NewID()[:10]
	}
	if c.Timeout == 0 {
		c.Timeout = 20 * time.Second
	}
	if c.Wait == 0 {
		c.Wait = 2 * time.Second
	}
	if c.Log == nil {
		c.Log = slog.New(slog.DiscardHandler)
	}
	switch {
	case c.API == "":
		return errors.New("conform: the cloud's API URL is required")
	case c.AdminKey == "":
		return errors.New("conform: an admin API key is required")
	case !protocol.ValidSite(c.Site):
		return fmt.Errorf("conform: invalid site id %q", c.Site)
	}
	return nil
}

const (
	needProvision = "cloud.provision.credentials"
	needCLogin    = "cloud.connect.login"
	needCBirth    = "cloud.birth.snapshot"
	needOrder     = "cloud.desired.reservation"
	needLoaded    = "cloud.events.ack"
)

var cloudClauses = []Clause{
	{ID: needProvision, Mode: ModeCloud, Section: "Connecting",
		Text: "POST /v1/sites/{site}/provision answers once with the site key (64 lower-case hex characters), the MQTT username (the site id), a password and the client id larder-edge-{site}; a second call is refused (409)."},
	{ID: needCLogin, Mode: ModeCloud, Section: "Connecting", Needs: []string{needProvision},
		Text: "The broker accepts the provisioned login with client id larder-edge-{site}."},
	{ID: "cloud.connect.refused", Mode: ModeCloud, Section: "Connecting", Needs: []string{needProvision},
		Text: "The broker refuses the site's username with a wrong password."},
	{ID: "cloud.order.before-birth", Mode: ModeCloud, Section: "Desired state", Spec: []string{"order.before-birth"}, Needs: []string{needProvision},
		Text: "Before the site's first birth an order for it is refused (409): the cloud knows no compartment of it."},
	{ID: "cloud.presence.online", Mode: ModeCloud, Section: "Presence and birth", Needs: []string{needCLogin},
		Text: "A retained online status makes the site online (GET /v1/sites/{site})."},
	{ID: needCBirth, Mode: ModeCloud, Section: "Presence and birth", Spec: []string{"connect.snapshot"}, Needs: []string{needCLogin},
		Text: "A birth is accepted (the site lists its compartments) and answered with exactly one full desired snapshot."},
	{ID: needOrder, Mode: ModeCloud, Section: "Desired state", Needs: []string{needCBirth},
		Text: "An order placed over REST reaches the edge as a delta of version + 1 with a reservation for the order's compartments and generations."},
	{ID: "cloud.digest.code", Mode: ModeCloud, Section: "Secrets and digests", Needs: []string{needOrder},
		Text: "The reservation's code_digest is HMAC-SHA256 over larder/v1/code, 0x00, the pickup code the platform was given, keyed with the site key's 32 bytes."},
	{ID: "cloud.digest.second-factor", Mode: ModeCloud, Section: "Secrets and digests", Needs: []string{needOrder},
		Text: "Its second_factor_digest is over larder/v1/second-factor, 0x00, the order id, 0x00, the last 4 digits of the recipient's phone."},
	{ID: needLoaded, Mode: ModeCloud, Section: "Events and their acknowledgement", Spec: []string{"ack.cumulative"}, Needs: []string{needOrder},
		Text: "An event is acknowledged by an event_ack whose seq covers it, after its effect: the loaded order reads loaded over REST."},
	{ID: "cloud.events.duplicate", Mode: ModeCloud, Section: "Delivery, deduplication, sequence", Needs: []string{needLoaded},
		Text: "An event delivered again (same envelope) is acknowledged again and applied once: one door_opened in the audit log."},
	{ID: "cloud.events.gap", Mode: ModeCloud, Section: "Events and their acknowledgement", Spec: []string{"ack.cumulative"}, Needs: []string{needLoaded},
		Text: "An event after a gap is not acknowledged until the missing one arrives; then the ack covers both."},
	{ID: "cloud.commands.round-trip", Mode: ModeCloud, Section: "Commands", Spec: []string{"command.dedup"}, Needs: []string{needCBirth},
		Text: "A remote open over REST reaches the edge as an open command with the REST command's id (also its envelope id, 1.1), compartment, purpose ops and reason; the edge's QUEUED, IN_PROGRESS and SUCCEEDED acks make it SUCCEEDED over REST."},
	{ID: "cloud.commands.republish", Mode: ModeCloud, Section: "Commands", Spec: []string{"command.offline", "connect.snapshot"}, Needs: []string{needCBirth},
		Text: "A command without a final ack is published again after the edge's next birth, with the same id."},
	{ID: "cloud.events.picked-up", Mode: ModeCloud, Section: "Events and their acknowledgement", Needs: []string{needLoaded},
		Text: "A picked_up event makes the order picked_up over REST."},
	{ID: "cloud.desired.get", Mode: ModeCloud, Section: "Desired state", Needs: []string{needCBirth},
		Text: "A desired_get from an edge that is behind is answered with a full snapshot of the current version."},
	{ID: "cloud.events.reject", Mode: ModeCloud, Section: "Events and their acknowledgement", Spec: []string{"ack.reject"}, Needs: []string{needLoaded},
		Text: "A malformed event (a required field missing) does not stop the stream: the acks go on past it and name it in rejected (1.1), with its seq and an error code."},
	{ID: "cloud.envelope.seq", Mode: ModeCloud, Section: "Envelope", Spec: []string{"seq.desired", "seq.unsequenced"}, Needs: []string{needCLogin},
		Text: "Only events and desired are sequenced: a desired message's seq is its version, every other message the cloud sends (commands, event acks) carries seq 0 (1.1)."},
	{ID: "cloud.envelope.valid", Mode: ModeCloud, Section: "Envelope", Spec: []string{"version.major"}, Needs: []string{needCLogin},
		Text: "Every message the cloud published to the site is a protocol v1 envelope of the type its channel carries, with every required field."},
}

// cloudRun is one run of cloud mode.
type cloudRun struct {
	cfg   CloudConfig
	admin *api
	box   *mailbox
	cli   paho.Client
	log   *slog.Logger

	key              []byte // the site key's bytes
	password, broker string
	platform, ops    *api
	seq              uint64 // the kit's outbox sequence
	version          uint64 // the highest desired version seen
	orderID, code    string
	phone            string
	compartment      int
	generation       uint64
	comps            []protocol.Compartment
	freeA, freeB     int // compartments of the birth no order uses
}

// RunCloud checks a cloud against the specification and returns the report. It fails
// only for a bad config.
func RunCloud(ctx context.Context, cfg CloudConfig) (Report, error) {
	if err := cfg.fill(); err != nil {
		return Report{}, err
	}
	c := &cloudRun{cfg: cfg, admin: newAPI("cloud", strings.TrimRight(cfg.API, "/"), cfg.AdminKey), box: newMailbox(cfg.Site), log: cfg.Log}
	defer func() {
		if c.cli != nil {
			c.cli.Disconnect(100)
		}
	}()
	r := newRunner(ModeCloud, cfg.API+" site "+cfg.Site, cloudClauses, cfg.Select)
	r.check(ctx, needProvision, c.checkProvision)
	r.check(ctx, needCLogin, c.checkLogin)
	r.check(ctx, "cloud.connect.refused", c.checkRefused)
	r.check(ctx, "cloud.order.before-birth", c.checkBeforeBirth)
	r.check(ctx, "cloud.presence.online", c.checkOnline)
	r.check(ctx, needCBirth, c.checkBirth)
	r.check(ctx, needOrder, c.checkReservation)
	var res protocol.Reservation
	res, _ = c.reservation()
	r.check(ctx, "cloud.digest.code", func(context.Context) (string, error) {
		if want := protocol.CodeDigest(c.key, c.code); res.CodeDigest != want {
			return "", fmt.Errorf("code_digest %s, want %s (HMAC keyed with the hex-decoded site key)", res.CodeDigest, want)
		}
		return "code digest verifies", nil
	})
	r.check(ctx, "cloud.digest.second-factor", func(context.Context) (string, error) {
		factor := c.phone[len(c.phone)-protocol.FactorDigits:]
		if want := protocol.SecondFactorDigest(c.key, c.orderID, factor); res.SecondFactorDigest != want {
			return "", fmt.Errorf("second_factor_digest %s, want %s", res.SecondFactorDigest, want)
		}
		return "second factor digest verifies", nil
	})
	r.check(ctx, needLoaded, c.checkLoaded)
	r.check(ctx, "cloud.events.duplicate", c.checkDuplicate)
	r.check(ctx, "cloud.events.gap", c.checkGap)
	r.check(ctx, "cloud.commands.round-trip", c.checkCommand)
	r.check(ctx, "cloud.commands.republish", c.checkRepublish)
	r.check(ctx, "cloud.events.picked-up", c.checkPickedUp)
	r.check(ctx, "cloud.desired.get", c.checkDesiredGet)
	// Last of the events: a cloud that wedges on a malformed event takes no others.
	r.check(ctx, "cloud.events.reject", c.checkReject)
	r.check(ctx, "cloud.envelope.seq", c.checkSeq)
	r.check(ctx, "cloud.envelope.valid", c.checkEnvelopes)
	return *r.report, nil
}

func (c *cloudRun) checkProvision(ctx context.Context) (string, error) {
	if _, err := c.admin.expect(ctx, 201, "POST", "/v1/sites", map[string]any{"id": c.cfg.Site, "name": "larder-conform"}); err != nil {
		return "", err
	}
	p, err := c.admin.expect(ctx, 200, "POST", "/v1/sites/"+c.cfg.Site+"/provision", nil)
	if err != nil {
		return "", err
	}
	var f failures
	if c.key, err = hex.DecodeString(p.str("site_key")); err != nil || len(c.key) != 32 || strings.ToLower(p.str("site_key")) != p.str("site_key") {
		f.add("site_key is not 64 lower-case hex characters (%d characters)", len(p.str("site_key")))
	}
	if u := p.str("mqtt_username"); u != c.cfg.Site {
		f.add("mqtt_username %q, want the site id %q", u, c.cfg.Site)
	}
	if c.password = p.str("mqtt_password"); c.password == "" {
		f.add("no mqtt_password")
	}
	if id := p.str("mqtt_client_id"); id != protocol.EdgeClientID(c.cfg.Site) {
		f.add("mqtt_client_id %q, want %q", id, protocol.EdgeClientID(c.cfg.Site))
	}
	if c.broker = c.cfg.Broker; c.broker == "" {
		if c.broker = p.str("mqtt_url"); c.broker == "" {
			f.add("no mqtt_url, and no broker given to the kit")
		}
	}
	if again, err := c.admin.call(ctx, "POST", "/v1/sites/"+c.cfg.Site+"/provision", nil); err != nil || again.Status != 409 {
		f.add("a second provisioning answered %d, want 409 (the secrets are handed out once)", again.Status)
	}
	c.log.Info("conform: site created and provisioned", "site", c.cfg.Site, "broker", c.broker)
	return "credentials for " + c.cfg.Site, f.err()
}

// connect logs in as the site's edge with password, as an edge does ([session.edge]:
// clean session false; [connect.sequence]: a retained offline Last Will).
func (c *cloudRun) connect(password string) (paho.Client, error) {
	will, err := protocol.Encode(protocol.Header{}, protocol.Status{Online: false, Software: "larder-conform"})
	if err != nil {
		return nil, err
	}
	o := paho.NewClientOptions().AddBroker(c.broker).SetClientID(protocol.EdgeClientID(c.cfg.Site)).
		SetUsername(c.cfg.Site).SetPassword(password).SetCleanSession(false).SetOrderMatters(false).
		SetAutoReconnect(false).SetConnectTimeout(c.cfg.Timeout).SetConnectRetry(false).
		SetBinaryWill(protocol.Topic(c.cfg.Site, protocol.ChanStatus), will, 1, true).
		SetDefaultPublishHandler(func(_ paho.Client, m paho.Message) { c.box.add(m.Topic(), m.Payload(), m.Retained(), m.Qos()) })
	cli := paho.NewClient(o)
	tok := cli.Connect()
	if !tok.WaitTimeout(c.cfg.Timeout) {
		return nil, fmt.Errorf("no CONNACK from %s within %v", c.broker, c.cfg.Timeout)
	}
	return cli, tok.Error()
}

func (c *cloudRun) checkLogin(ctx context.Context) (string, error) {
	cli, err := c.connect(c.password)
	if err != nil {
		return "", fmt.Errorf("login refused: %w", err)
	}
	c.cli = cli
	for _, ch := range []protocol.Channel{protocol.ChanDesired, protocol.ChanCommands, protocol.ChanEventAck} {
		tok := cli.Subscribe(protocol.Topic(c.cfg.Site, ch), ch.QoS(), nil)
		if !tok.WaitTimeout(c.cfg.Timeout) || tok.Error() != nil {
			return "", fmt.Errorf("subscribe %s: %v", ch, tok.Error())
		}
	}
	return "logged in as " + protocol.EdgeClientID(c.cfg.Site), nil
}

func (c *cloudRun) checkRefused(ctx context.Context) (string, error) {
	cli, err := c.connect(c.password + "-wrong")
	if err == nil {
		cli.Disconnect(0)
		return "", errors.New("a wrong password was accepted")
	}
	// The refused login must not have taken over the kit's session.
	if c.cli != nil && !c.cli.IsConnectionOpen() {
		return "", errors.New("a refused login with the site's client id disconnected the edge's session")
	}
	return "wrong password refused: " + err.Error(), nil
}

// publish sends body on ch with the given sequence and returns the bytes.
func (c *cloudRun) publish(ch protocol.Channel, seq uint64, body protocol.Body) ([]byte, error) {
	raw, err := protocol.Encode(protocol.Header{Seq: seq}, body)
	if err != nil {
		return nil, err
	}
	return raw, c.publishRaw(ch, raw)
}

func (c *cloudRun) publishRaw(ch protocol.Channel, raw []byte) error {
	tok := c.cli.Publish(protocol.Topic(c.cfg.Site, ch), ch.QoS(), ch.Retained(), raw)
	if !tok.WaitTimeout(c.cfg.Timeout) {
		return fmt.Errorf("publish %s: no PUBACK within %v", ch, c.cfg.Timeout)
	}
	return tok.Error()
}

// event publishes ev with the kit's next outbox sequence.
func (c *cloudRun) event(ev protocol.Event) ([]byte, uint64, error) {
	c.seq++
	raw, err := c.publish(protocol.ChanEvents, c.seq, ev)
	return raw, c.seq, err
}

// waitAck waits for an event_ack of at least seq after mark.
func (c *cloudRun) waitAck(ctx context.Context, mark int, seq uint64) error {
	_, err := c.box.wait(ctx, c.cfg.Timeout, mark, fmt.Sprintf("event_ack of seq %d", seq), func(m []received) bool {
		return maxAck(m) >= seq
	})
	return err
}

func maxAck(msgs []received) uint64 {
	var hi uint64
	for _, m := range on(msgs, protocol.ChanEventAck) {
		hi = max(hi, m.Msg.Body.(protocol.EventAck).Seq)
	}
	return hi
}

// site reads the site over REST.
func (c *cloudRun) site(ctx context.Context) (answer, error) {
	return c.admin.expect(ctx, 200, "GET", "/v1/sites/"+c.cfg.Site, nil)
}

func (c *cloudRun) checkOnline(ctx context.Context) (string, error) {
	if _, err := c.publish(protocol.ChanStatus, 0, protocol.Status{Online: true, Software: "larder-conform"}); err != nil {
		return "", err
	}
	err := poll(ctx, c.cfg.Timeout, func() error {
		s, err := c.site(ctx)
		if err != nil {
			return err
		}
		if s.Body["online"] != true {
			return fmt.Errorf("site %s not online over REST within %v of an online status", c.cfg.Site, c.cfg.Timeout)
		}
		return nil
	})
	return "online over REST", err
}

func (c *cloudRun) checkBirth(ctx context.Context) (string, error) {
	for n := 1; n <= 12; n++ {
		z, size := protocol.ZoneChilled, protocol.SizeM
		if n > 8 {
			z, size = protocol.ZoneFrozen, protocol.SizeS
		}
		c.comps = append(c.comps, protocol.Compartment{Number: n, Size: size, Zone: z, HeightCM: 20 + 40*((n-1)%4), Board: 0, Lock: n})
	}
	c.freeA, c.freeB = 11, 12
	mark := c.box.len()
	if _, err := c.publish(protocol.ChanBirth, 0, c.birth()); err != nil {
		return "", err
	}
	msgs, err := c.box.wait(ctx, c.cfg.Timeout, mark, "full desired snapshot after the birth", func(m []received) bool {
		_, ok := first(m, protocol.ChanDesired, func(r received) bool { return r.Msg.Body.(protocol.Desired).Full })
		return ok
	})
	if err != nil {
		return "", err
	}
	s, _ := first(msgs, protocol.ChanDesired, func(r received) bool { return r.Msg.Body.(protocol.Desired).Full })
	c.version = s.Msg.Body.(protocol.Desired).Version
	time.Sleep(c.cfg.Wait)
	snaps := 0
	for _, m := range on(c.box.all()[mark:], protocol.ChanDesired) {
		if m.Msg.Body.(protocol.Desired).Full {
			snaps++
		}
	}
	if snaps != 1 {
		return "", fmt.Errorf("%d full snapshots answered one birth, want exactly one", snaps)
	}
	err = poll(ctx, c.cfg.Timeout, func() error {
		site, err := c.site(ctx)
		if err != nil {
			return err
		}
		if list, _ := site.Body["compartment_list"].([]any); len(list) != len(c.comps) {
			return fmt.Errorf("the site lists %d compartments over REST, the birth %d", len(list), len(c.comps))
		}
		return nil
	})
	return fmt.Sprintf("snapshot version %d", c.version), err
}

// birth is the kit's birth: its compartments, and the events it has written.
func (c *cloudRun) birth() protocol.Birth {
	return protocol.Birth{Protocol: protocol.Revision, Software: "larder-conform", DesiredVersion: c.version,
		Boards: []protocol.Board{{Address: 0, Profile: "kerong-cu16", Locks: 12}}, Compartments: c.comps, OutboxHighWater: c.seq}
}

// newKey creates an API key of role and returns a client using it.
func (c *cloudRun) newKey(ctx context.Context, role, subject string) (*api, error) {
	k, err := c.admin.expect(ctx, 201, "POST", "/v1/keys", map[string]string{"role": role, "subject": subject})
	if err != nil {
		return nil, err
	}
	return newAPI("cloud", c.admin.base, k.str("key")), nil
}

// placeOrder places an order of one small chilled parcel whose code the platform
// receives, and expects status want.
func (c *cloudRun) placeOrder(ctx context.Context, want int) (answer, error) {
	if c.platform == nil {
		var err error
		if c.platform, err = c.newKey(ctx, "platform", "conform-"+protocol.NewID()[:8]); err != nil {
			return answer{}, err
		}
	}
	c.phone = "+86138" + digits(8)
	now := time.Now().UTC()
	ext := "conform-" + protocol.NewID()[:12]
	return c.platform.expect(ctx, want, "POST", "/v1/orders", map[string]any{"external_id": ext, "site": c.cfg.Site,
		"recipient": map[string]any{"phone": c.phone}, "parcels": []map[string]any{{"size": "S", "zone": "chilled"}},
		"window":        map[string]any{"start": now.Format(time.RFC3339), "end": now.Add(2 * time.Hour).Format(time.RFC3339)},
		"code_delivery": "platform"}, "Idempotency-Key", ext)
}

func (c *cloudRun) checkBeforeBirth(ctx context.Context) (string, error) {
	if _, err := c.placeOrder(ctx, 409); err != nil {
		return "", err
	}
	return "order refused before the birth", nil
}

func (c *cloudRun) checkReservation(ctx context.Context) (string, error) {
	mark := c.box.len()
	rc, err := c.placeOrder(ctx, 201)
	if err != nil {
		return "", err
	}
	o, _ := rc.Body["order"].(map[string]any)
	pk, _ := rc.Body["pickup"].(map[string]any)
	c.orderID, _ = o["id"].(string)
	c.code, _ = pk["code"].(string)
	slots, _ := o["slots"].([]any)
	if c.orderID == "" || c.code == "" || len(slots) != 1 {
		return "", fmt.Errorf("order answer lacks the id, the code or one slot: %s", rc.Raw)
	}
	slot, _ := slots[0].(map[string]any)
	comp, _ := slot["compartment"].(float64)
	gen, _ := slot["generation"].(float64)
	c.compartment, c.generation = int(comp), uint64(gen)
	msgs, err := c.box.wait(ctx, c.cfg.Timeout, mark, "desired delta with the order's reservation", func(m []received) bool {
		_, ok := first(m, protocol.ChanDesired, func(r received) bool { _, ok := reservationOf(r, c.orderID); return ok })
		return ok
	})
	if err != nil {
		return "", err
	}
	d, _ := first(msgs, protocol.ChanDesired, func(r received) bool { _, ok := reservationOf(r, c.orderID); return ok })
	desired := d.Msg.Body.(protocol.Desired)
	res, _ := reservationOf(d, c.orderID)
	var f failures
	if desired.Full {
		f.add("the reservation came in a full snapshot, not a delta")
	}
	if desired.Version != c.version+1 {
		f.add("delta version %d, want %d (one more than the snapshot)", desired.Version, c.version+1)
	}
	c.version = max(c.version, desired.Version)
	if len(res.Slots) != 1 || res.Slots[0].Compartment != c.compartment || res.Slots[0].Generation != c.generation {
		f.add("reservation slots %+v, REST says compartment %d generation %d", res.Slots, c.compartment, c.generation)
	}
	return fmt.Sprintf("delta %d reserves %d", desired.Version, c.compartment), f.err()
}

func reservationOf(r received, order string) (protocol.Reservation, bool) {
	d, _ := r.Msg.Body.(protocol.Desired)
	for _, res := range d.Reservations {
		if res.Order == order {
			return res, true
		}
	}
	return protocol.Reservation{}, false
}

// reservation returns the reservation of the kit's order as the cloud sent it.
func (c *cloudRun) reservation() (protocol.Reservation, bool) {
	for _, m := range on(c.box.all(), protocol.ChanDesired) {
		if res, ok := reservationOf(m, c.orderID); ok {
			return res, true
		}
	}
	return protocol.Reservation{}, false
}

// orderState polls the order over REST until it is in state want.
func (c *cloudRun) orderState(ctx context.Context, want string) error {
	return poll(ctx, c.cfg.Timeout, func() error {
		o, err := c.platform.expect(ctx, 200, "GET", "/v1/orders/"+c.orderID, nil)
		if err != nil {
			return err
		}
		if got := o.str("state"); got != want {
			return fmt.Errorf("order %s is %s over REST, want %s", c.orderID, got, want)
		}
		return nil
	})
}

func (c *cloudRun) checkLoaded(ctx context.Context) (string, error) {
	mark := c.box.len()
	_, seq, err := c.event(protocol.Event{Kind: protocol.EventLoaded, Credential: protocol.CredDriver, Order: c.orderID,
		Compartment: c.compartment, Generation: c.generation})
	if err != nil {
		return "", err
	}
	if err := c.waitAck(ctx, mark, seq); err != nil {
		return "", err
	}
	return fmt.Sprintf("ack %d; order loaded", seq), c.orderState(ctx, "loaded")
}

// audits counts the audit entries of action at compartment n of the site.
func (c *cloudRun) audits(ctx context.Context, action string, n int) (int, error) {
	a, err := c.admin.expect(ctx, 200, "GET", "/v1/audit?site="+c.cfg.Site+"&limit=1000", nil)
	if err != nil {
		return 0, err
	}
	entries, _ := a.Body["entries"].([]any)
	count := 0
	for _, e := range entries {
		m, _ := e.(map[string]any)
		if m["action"] == action && m["compartment"] == float64(n) {
			count++
		}
	}
	return count, nil
}

func (c *cloudRun) checkDuplicate(ctx context.Context) (string, error) {
	raw, seq, err := c.event(protocol.Event{Kind: protocol.EventDoorOpened, Credential: protocol.CredOpsLocal, Compartment: c.freeA,
		Reason: "conformance check"})
	if err != nil {
		return "", err
	}
	if err := c.waitAck(ctx, 0, seq); err != nil {
		return "", err
	}
	mark := c.box.len()
	for range 2 {
		if err := c.publishRaw(protocol.ChanEvents, raw); err != nil {
			return "", err
		}
	}
	if err := c.waitAck(ctx, mark, seq); err != nil {
		return "", fmt.Errorf("the redelivery was not acknowledged: %w", err)
	}
	var n int
	err = poll(ctx, c.cfg.Wait, func() error {
		var err error
		if n, err = c.audits(ctx, "door_opened", c.freeA); err != nil {
			return err
		}
		if n == 0 {
			return errors.New("no door_opened in the audit log")
		}
		return nil
	})
	if err != nil {
		return "", err
	}
	if n != 1 {
		return "", fmt.Errorf("event %d delivered 3 times is in the audit log %d times, want once", seq, n)
	}
	return "acknowledged again, applied once", nil
}

func (c *cloudRun) checkGap(ctx context.Context) (string, error) {
	c.seq += 2
	missing, late := c.seq-1, c.seq
	mark := c.box.len()
	if _, err := c.publish(protocol.ChanEvents, late, protocol.Event{Kind: protocol.EventDoorClosed, Credential: protocol.CredNone, Compartment: c.freeA}); err != nil {
		return "", err
	}
	time.Sleep(c.cfg.Wait)
	if hi := maxAck(c.box.all()[mark:]); hi >= missing {
		return "", fmt.Errorf("event_ack %d with seq %d never sent: the ack covers a gap", hi, missing)
	}
	if _, err := c.publish(protocol.ChanEvents, missing, protocol.Event{Kind: protocol.EventDoorOpened, Credential: protocol.CredOpsLocal,
		Compartment: c.freeB, Reason: "conformance check"}); err != nil {
		return "", err
	}
	if err := c.waitAck(ctx, mark, late); err != nil {
		return "", err
	}
	return fmt.Sprintf("no ack past %d until it came; then ack %d", missing-1, late), nil
}

func (c *cloudRun) checkReject(ctx context.Context) (string, error) {
	c.seq++
	bad := c.seq
	raw := fmt.Appendf(nil, `{"v":1,"id":%q,"seq":%d,"ts":%q,"type":"event","body":{"kind":"picked_up","credential":"pickup_code"}}`,
		protocol.NewID(), bad, time.Now().UTC().Format(time.RFC3339Nano))
	mark := c.box.len()
	if err := c.publishRaw(protocol.ChanEvents, raw); err != nil {
		return "", err
	}
	_, next, err := c.event(protocol.Event{Kind: protocol.EventDoorClosed, Credential: protocol.CredNone, Compartment: c.freeB})
	if err != nil {
		return "", err
	}
	if err := c.waitAck(ctx, mark, next); err != nil {
		return "", fmt.Errorf("a picked_up without its order (seq %d) stopped the stream: %w", bad, err)
	}
	for _, m := range on(c.box.all()[mark:], protocol.ChanEventAck) {
		for _, r := range m.Msg.Body.(protocol.EventAck).Rejected {
			if r.Seq == bad {
				return fmt.Sprintf("acknowledged past malformed %d, rejected as %s (%s)", bad, r.Error, r.Field), nil
			}
		}
	}
	return "", fmt.Errorf("acknowledged past malformed %d, but no event_ack names it in rejected", bad)
}

func (c *cloudRun) checkCommand(ctx context.Context) (string, error) {
	var err error
	if c.ops, err = c.newKey(ctx, "ops", "larder-conform"); err != nil {
		return "", err
	}
	mark := c.box.len()
	n := c.freeA
	rc, err := c.ops.expect(ctx, 202, "POST", fmt.Sprintf("/v1/sites/%s/compartments/%d/open", c.cfg.Site, n), map[string]string{"reason": "conformance check"})
	if err != nil {
		return "", err
	}
	id := rc.str("id")
	msgs, err := c.box.wait(ctx, c.cfg.Timeout, mark, "command "+id, func(m []received) bool {
		_, ok := first(m, protocol.ChanCommands, func(r received) bool { return r.Msg.Body.(protocol.Command).ID == id })
		return ok
	})
	if err != nil {
		return "", err
	}
	cm, _ := first(msgs, protocol.ChanCommands, func(r received) bool { return r.Msg.Body.(protocol.Command).ID == id })
	cmd := cm.Msg.Body.(protocol.Command)
	var f failures
	if cmd.Kind != protocol.CmdOpen || cmd.Compartment != n || cmd.Purpose != protocol.PurposeOps || cmd.Reason != "conformance check" {
		f.add("command %+v, want an ops open of %d with the reason", cmd, n)
	}
	if cm.Msg.ID != id {
		f.add("envelope id %s, want the command id %s", cm.Msg.ID, id)
	}
	if err := c.carryOut(id, n); err != nil {
		return "", err
	}
	err = poll(ctx, c.cfg.Timeout, func() error {
		got, err := c.ops.expect(ctx, 200, "GET", "/v1/commands/"+id, nil)
		if err != nil {
			return err
		}
		if s := got.str("state"); s != string(protocol.StateSucceeded) {
			return fmt.Errorf("command %s is %s over REST after the SUCCEEDED ack, want SUCCEEDED", id, s)
		}
		return nil
	})
	if err != nil {
		f.add("%v", err)
	}
	return "command " + id + " SUCCEEDED over REST", f.err()
}

// carryOut plays the edge opening compartment n for command id: QUEUED, IN_PROGRESS,
// the door_opened event, SUCCEEDED.
func (c *cloudRun) carryOut(id string, n int) error {
	for _, s := range []protocol.CommandState{protocol.StateQueued, protocol.StateInProgress} {
		if _, err := c.publish(protocol.ChanCommandAck, 0, protocol.CommandAck{CommandID: id, State: s}); err != nil {
			return err
		}
	}
	if _, _, err := c.event(protocol.Event{Kind: protocol.EventDoorOpened, Credential: protocol.CredOpsRemote, Compartment: n, Reason: "conformance check"}); err != nil {
		return err
	}
	_, err := c.publish(protocol.ChanCommandAck, 0, protocol.CommandAck{CommandID: id, State: protocol.StateSucceeded})
	return err
}

func (c *cloudRun) checkRepublish(ctx context.Context) (string, error) {
	n := c.freeB
	mark := c.box.len()
	rc, err := c.ops.expect(ctx, 202, "POST", fmt.Sprintf("/v1/sites/%s/compartments/%d/open", c.cfg.Site, n), map[string]string{"reason": "conformance check"})
	if err != nil {
		return "", err
	}
	id := rc.str("id")
	isCmd := func(r received) bool { return r.Msg.Body.(protocol.Command).ID == id }
	if _, err := c.box.wait(ctx, c.cfg.Timeout, mark, "command "+id, func(m []received) bool { _, ok := first(m, protocol.ChanCommands, isCmd); return ok }); err != nil {
		return "", err
	}
	// No ack: the edge "restarts" and is born again.
	mark = c.box.len()
	if _, err := c.publish(protocol.ChanBirth, 0, c.birth()); err != nil {
		return "", err
	}
	if _, err := c.box.wait(ctx, c.cfg.Timeout, mark, "command "+id+" again after the birth", func(m []received) bool { _, ok := first(m, protocol.ChanCommands, isCmd); return ok }); err != nil {
		return "", err
	}
	if err := c.carryOut(id, n); err != nil {
		return "", err
	}
	return "command " + id + " published again after the birth", nil
}

func (c *cloudRun) checkPickedUp(ctx context.Context) (string, error) {
	mark := c.box.len()
	_, seq, err := c.event(protocol.Event{Kind: protocol.EventPickedUp, Credential: protocol.CredPickup, Order: c.orderID})
	if err != nil {
		return "", err
	}
	if err := c.waitAck(ctx, mark, seq); err != nil {
		return "", err
	}
	return "order picked_up", c.orderState(ctx, "picked_up")
}

func (c *cloudRun) checkDesiredGet(ctx context.Context) (string, error) {
	mark := c.box.len()
	if _, err := c.publish(protocol.ChanDesiredGet, 0, protocol.DesiredGet{Have: 0, Reason: "conformance check"}); err != nil {
		return "", err
	}
	msgs, err := c.box.wait(ctx, c.cfg.Timeout, mark, "full snapshot answering a desired_get", func(m []received) bool {
		_, ok := first(m, protocol.ChanDesired, func(r received) bool { return r.Msg.Body.(protocol.Desired).Full })
		return ok
	})
	if err != nil {
		return "", err
	}
	s, _ := first(msgs, protocol.ChanDesired, func(r received) bool { return r.Msg.Body.(protocol.Desired).Full })
	if v := s.Msg.Body.(protocol.Desired).Version; v < c.version {
		return "", fmt.Errorf("snapshot version %d, older than delta %d already sent", v, c.version)
	}
	return "snapshot answered", nil
}

// checkSeq checks the envelope seq of every message the cloud sent: desired carries its
// version, the other channels 0.
func (c *cloudRun) checkSeq(context.Context) (string, error) {
	return checkSeqs(c.box.all())
}

func (c *cloudRun) checkEnvelopes(context.Context) (string, error) {
	var f failures
	msgs := c.box.all()
	for _, r := range msgs {
		if r.Err != nil {
			f.add("%s: %v", r.Channel, r.Err)
		}
	}
	if len(f) > 3 {
		f = append(f[:3], fmt.Sprintf("and %d more", len(f)-3))
	}
	return fmt.Sprintf("%d messages decode", len(msgs)), f.err()
}
