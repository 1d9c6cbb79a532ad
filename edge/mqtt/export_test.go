package mqtt

// Handle exposes the paho message handler without paho, for the fuzz test.
func (c *Client) Handle(topic string, payload []byte) { c.handle(topic, payload) }

// Backoff exposes the reconnect delay for tests.
var Backoff = backoff
