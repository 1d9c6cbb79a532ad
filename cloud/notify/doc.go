// Package notify tells grocery platforms and residents what happens to their orders:
// created, loaded (with the pickup code when the platform wants it), reminders,
// expired, compromised, picked up and the rest of the domain's notices ([Kind]).
//
// # Outbox
//
// Notifications go through a durable outbox ([Queue]: [MemQueue] for tests, [BoltQueue]
// over the cloud's bbolt file, [PGQueue] in PostgreSQL for replicas) so that a crash
// between "order loaded" and "platform told" loses nothing. [Notifier] is the domain's
// transactional port (cloud.TxNotifier): it enqueues with [TxOutbox.EnqueueTx] in the
// domain's own transaction, the store's underneath the domain's wrapper (a bbolt
// transaction from cloud/bolt, a pgx one from cloud/pg), so a notice is durable exactly
// when the change it reports is; there is no moment, not even between two commits, when
// a kill -9 loses an acknowledged notice or leaves one for a change that never
// committed (crash_test.go kills a child process to show it). Records are sealed with
// AES-GCM when the queue has a key: a pending arrival notice holds the resident's code
// and phone number.
//
// Each notification has an idempotency key, the domain's notice id plus the channel;
// enqueueing an existing key is a no-op, which makes a retried transaction harmless. A
// [Worker] takes due notifications (polling, and woken by [Worker.Wake] after each
// commit that enqueued), hands each to the [Sender] of its channel and settles it:
// delivered; retried with exponential backoff and jitter; dead-lettered after
// [WorkerConfig.MaxAttempts] or a permanent failure (ops list and requeue dead
// letters); or cancelled when there is nothing to deliver to (a platform that set no
// webhook, [ErrNoEndpoint]: nothing for ops to fix, so no dead letter).
//
// # Replicas
//
// With [PGQueue] every replica runs a worker over the same table, larder_notices
// (cloud/pg/migrations/0003_notify.sql; its columns are documented there for
// operators). Due claims what it hands out: rows locked FOR UPDATE SKIP LOCKED, marked
// claimed_by the queue's Claimer until claimed_until (the database's clock), so one
// worker at a time delivers a notification. A replica killed mid-delivery holds its
// claims until they expire ([PGQueue.ClaimTTL], default 1 minute); then another's
// worker delivers them. A settle is recorded only under the claim it was made under
// ([Result.Claim]): a worker that lost its claim cannot overwrite the outcome of the one
// that took over. A worker starts a send only while its SendTimeout fits in its claim,
// so two running workers never send the same notification at once (a process paused
// mid-send, past its claim, is the exception below).
//
// # Sent twice
//
// Delivery is at-least-once where the worker cannot know that the receiver accepted: it
// crashed (or paused longer than its claim) after the receiver's accept and before the
// outbox recorded it, or the answer was lost (a timeout, a dropped connection) and the
// attempt counts as failed. The notification is then sent again, by the next worker,
// the next start or the retry (TestPGKilledWorkerTakenOver finds at most the killed
// worker's sends in flight delivered twice). Every delivery therefore carries the
// notification id twice over for receivers to deduplicate: as the CloudEvent id and in
// the Idempotency-Key header ([IdempotencyHeader]), webhooks and SMS alike, the same on
// every retry.
//
// # Who decides when
//
// The domain decides when to notify, reminders included: its sweep sends them at 50 %
// and 90 % of the time from loading to expiry, deciding in the transaction that counts
// them on the order, so an order already picked up is never reminded and an extended
// deadline moves its reminders. cloud/cloudd wires [Notifier] as the domain's Notifier
// port; it turns each notice into a webhook and, for residents of orders whose code the
// cloud delivers, an SMS, each due at once. This package schedules nothing itself.
//
// # Webhooks
//
// [Webhook] POSTs a CloudEvents 1.0 JSON event in structured mode
// (Content-Type application/cloudevents+json; type "com.larder.order.<kind>") and signs
// it with HMAC-SHA256 under the platform's secret:
//
//	Larder-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>." + body)>
//
// Receivers check it with [Verify], which also rejects timestamps outside a tolerance
// (replays), and deduplicate by the Idempotency-Key header (= the CloudEvent id). Any
// 2xx accepts; 408, 429 and 5xx are retried (no sooner than a Retry-After in seconds
// asks); other 4xx dead-letter. Deliveries are not ordered: a
// retried "assigned" may arrive after "loaded", so receivers order by the event's time
// and the order state in its data.
//
// # SMS
//
// [SMS] sends the resident a bilingual (Chinese and English) text through a generic HTTP
// gateway (POST JSON {"to","text"}, with the Idempotency-Key header). Phone numbers and codes are never logged; only the
// "loaded" and "code_issued" notices carry the code, and a notification drops its data
// once delivered, dead-lettered or cancelled.
//
// # Moving from bbolt
//
// [CopyToPG] copies a BoltQueue into an empty PGQueue, every notification with its
// state, attempts, next try and data (dead letters included), and verifies the copy
// (counts by state, a digest of ids, states and attempts) before it commits.
//
// # Local time
//
// Every notice carries its site's time zone (time_zone, an IANA name: the site's own or
// cloudd's default_time_zone). The SMS tells deadlines in it and names it, so nobody
// takes it for their phone's time ([LocalTime]): "请于12月4日 18:30（北京时间）前取件",
// "by 4 Dec 18:30 (Beijing time)"; other zones are named by their UTC offset
// ("UTC+9"). The webhook data has time_zone and expires_local, the deadline in RFC 3339
// with the zone's offset, for platforms that tell residents themselves.
//
// # Resident link
//
// With [Notifier.PublicURL] set (cloudd's public_url), a notice that carries a code also
// carries the resident page's link, [ResidentLink] = {public URL}/r/{order}#c={code}:
// the SMS puts it after the code in both languages, and the webhook data has it as
// resident_url when the platform gets the code itself (never otherwise: the link holds
// the code). The code rides in the URL fragment, which browsers do not send to servers.
package notify
