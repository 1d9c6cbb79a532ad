package mqtt

import "github.com/larder-lockers/larder/protocol"

// Handle exposes the paho message handler without paho, on a connection that is lost
// when lost is closed.
func (c *Client) Handle(topic string, payload []byte, lost <-chan struct{}) {
	c.handle(topic, payload, lost)
}

// Inbound exposes the worker's queue, for tests that stand in for the worker.
func (c *Client) Inbound() <-chan protocol.Message { return c.inbound }

// Backoff exposes the reconnect delay for tests.
var Backoff = backoff
