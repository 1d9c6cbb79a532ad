package cloud

import (
	"context"
	"encoding/hex"
	"net/url"
	"strings"
	"time"
)

// Platform is a grocery platform's record: where its webhooks go and the secret they
// are signed with (HMAC, see cloud/notify). The secret must be usable to sign, so it
// rests in the store in clear, like the site keys (encryption at rest is out of scope);
// it leaves the cloud once, when set.
type Platform struct {
	ID         string    `json:"id"`
	WebhookURL string    `json:"webhook_url"`
	Secret     []byte    `json:"secret"`
	Updated    time.Time `json:"updated"`
}

// WebhookSetting is the answer to SetWebhook: the secret is shown once.
type WebhookSetting struct {
	Platform string `json:"platform"`
	URL      string `json:"url"`
	// Secret is the hex HMAC key the platform verifies signatures with.
	Secret string `json:"secret"`
}

// SetWebhook sets where a platform's webhooks go and draws a new signing secret
// (admin, or the platform itself). The URL must be absolute http(s); note that the cloud
// will POST to whatever host it names, so deployments that care about SSRF restrict
// egress.
func (s *Service) SetWebhook(ctx context.Context, p Principal, platform, rawURL string) (WebhookSetting, error) {
	if p.Role != RoleAdmin && !(p.Role == RolePlatform && p.Subject == platform) {
		return WebhookSetting{}, Errorf(EForbidden, "only an admin or the platform itself may set its webhook")
	}
	if platform == "" || len(platform) > 64 || !validSubject(platform) {
		return WebhookSetting{}, Invalid("platform", "not a valid platform id")
	}
	u, err := url.Parse(rawURL)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || len(rawURL) > 2000 {
		return WebhookSetting{}, Invalid("url", "want an absolute http or https URL")
	}
	secret := randomToken(32)
	key, _ := hex.DecodeString(secret)
	rec := Platform{ID: platform, WebhookURL: rawURL, Secret: key, Updated: s.now().UTC()}
	err = s.store.Update(ctx, func(tx Tx) error {
		audit(tx, s.now(), AuditEntry{Actor: p.Subject, Role: p.Role, Action: "webhook_set:" + platform})
		return putJSON(tx, bPlatforms, platform, rec)
	})
	if err != nil {
		return WebhookSetting{}, internal("set webhook", err)
	}
	return WebhookSetting{Platform: platform, URL: rawURL, Secret: secret}, nil
}

// Webhook returns a platform's webhook URL and secret, for the webhook sender; ENotFound
// when the platform has none.
func (s *Service) Webhook(ctx context.Context, platform string) (string, []byte, error) {
	var rec Platform
	err := s.store.View(ctx, func(tx Tx) error {
		ok, err := getJSON(tx, bPlatforms, platform, &rec)
		if err == nil && !ok {
			err = &Error{Code: ENotFound, Message: "platform " + strings.TrimSpace(platform) + " has no webhook"}
		}
		return err
	})
	return rec.WebhookURL, rec.Secret, err
}
