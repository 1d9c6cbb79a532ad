package http

import (
	"context"
	"time"

	"github.com/larder-lockers/larder/cloud"
)

// The interfaces below are what each group of handlers needs from the domain, declared
// here, by their consumer: a handler's dependencies show in the field it calls, and a test
// can put a fake behind one group without writing the rest. *cloud.Service satisfies every
// one of them (service_test.go checks it at compile time).

// Authenticator turns a bearer API key into the principal the domain authorises.
type Authenticator interface {
	Authenticate(ctx context.Context, key string) (cloud.Principal, error)
}

// Keys issues, lists and revokes API keys.
type Keys interface {
	CreateKey(ctx context.Context, p cloud.Principal, in cloud.KeyInput) (cloud.APIKey, string, error)
	ListKeys(ctx context.Context, p cloud.Principal) ([]cloud.APIKey, error)
	RevokeKey(ctx context.Context, p cloud.Principal, id string) error
}

// Sites reads the fleet: every site's summary, or one site in detail.
type Sites interface {
	ListSites(ctx context.Context, p cloud.Principal) ([]cloud.SiteSummary, error)
	GetSite(ctx context.Context, p cloud.Principal, id string) (cloud.SiteDetail, error)
}

// SiteAdmin creates, edits and provisions sites.
type SiteAdmin interface {
	CreateSite(ctx context.Context, p cloud.Principal, in cloud.SiteInput) (cloud.Site, error)
	UpdateSite(ctx context.Context, p cloud.Principal, id string, in cloud.SiteInput) (cloud.Site, error)
	Provision(ctx context.Context, p cloud.Principal, id string) (cloud.Provisioning, error)
}

// Commands sends an operator's command to a compartment and reads back how it went.
type Commands interface {
	OpenCompartment(ctx context.Context, p cloud.Principal, site string, n int, reason string) (cloud.CommandRecord, error)
	SetInService(ctx context.Context, p cloud.Principal, site string, n int, in bool, reason string) (cloud.CommandRecord, error)
	GetCommand(ctx context.Context, p cloud.Principal, id string) (cloud.CommandRecord, error)
}

// Drivers serves the courier: a site's manifest, a loading credential for its kiosk, and
// opening an order's compartment from the phone.
type Drivers interface {
	Manifest(ctx context.Context, p cloud.Principal, site string) ([]cloud.ManifestEntry, error)
	IssueLoadingCredential(ctx context.Context, p cloud.Principal, site string) (cloud.LoadingCredential, error)
	OpenForLoading(ctx context.Context, p cloud.Principal, order string, compartment int) (cloud.CommandRecord, error)
}

// Alarms closes an open alarm (a help request answered, a door checked).
type Alarms interface {
	ResolveAlarm(ctx context.Context, p cloud.Principal, site, id string) error
}

// AuditTrail reads the audit log.
type AuditTrail interface {
	Audit(ctx context.Context, p cloud.Principal, f cloud.AuditFilter) ([]cloud.AuditEntry, error)
}

// Reports computes the reports over orders and the audit log.
type Reports interface {
	Report(ctx context.Context, p cloud.Principal, name cloud.ReportName, f cloud.ReportFilter) (cloud.Report, error)
}

// Webhooks sets where a platform's notices are delivered.
type Webhooks interface {
	SetWebhook(ctx context.Context, p cloud.Principal, platform, url string) (cloud.WebhookSetting, error)
}

// Orders places and reads orders.
type Orders interface {
	CreateOrder(ctx context.Context, p cloud.Principal, idemKey string, req cloud.OrderRequest) (cloud.OrderReceipt, error)
	GetOrder(ctx context.Context, p cloud.Principal, id string) (cloud.Order, error)
	ListOrders(ctx context.Context, p cloud.Principal, f cloud.OrderFilter) ([]cloud.Order, error)
}

// OrderChanges changes an order after it was placed.
type OrderChanges interface {
	CancelOrder(ctx context.Context, p cloud.Principal, id, reason string) (cloud.Order, error)
	ExtendOrder(ctx context.Context, p cloud.Principal, id string, d time.Duration) (cloud.Order, error)
	ReissueCode(ctx context.Context, p cloud.Principal, id string) (cloud.OrderReceipt, error)
	RedeliverOrder(ctx context.Context, p cloud.Principal, id, idemKey string, req cloud.RedeliverRequest) (cloud.OrderReceipt, error)
}

// FleetSource is what the metrics collector reads at each scrape: the sites (as
// [cloud.System]), the service's counters and its outbound backlog.
type FleetSource interface {
	ListSites(ctx context.Context, p cloud.Principal) ([]cloud.SiteSummary, error)
	Stats() *cloud.Stats
	Pending() int
}

// Service is everything the API needs, the union of the groups above; *cloud.Service
// satisfies it. New hands each group to the handlers that use it.
type Service interface {
	Authenticator
	Keys
	Sites
	SiteAdmin
	Commands
	Drivers
	Alarms
	AuditTrail
	Reports
	Webhooks
	Orders
	OrderChanges
	FleetSource
}
