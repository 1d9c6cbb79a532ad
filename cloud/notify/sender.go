package notify

import (
	"context"
	"errors"
)

// Sender delivers one notification over one channel. Implementations: [Webhook]
// (CloudEvents over HTTP, signed) and [SMS] (a generic HTTP SMS gateway).
type Sender interface {
	// Send attempts delivery once. A nil error means the receiver accepted it. An error
	// wrapping [ErrNoEndpoint] (the platform set no webhook) cancels the notification;
	// one wrapping [ErrPermanent] (e.g. HTTP 400) dead-letters it at once; any other
	// error is retried with backoff until the attempt limit.
	Send(ctx context.Context, n Notification) error
}

// ErrPermanent marks a failure that retrying cannot fix.
var ErrPermanent = errors.New("notify: permanent failure")
