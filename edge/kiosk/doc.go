// Package kiosk serves the locker bank's touchscreen: the embedded page (web/, written
// against /work/kiosk-contract.md) and its JSON API for residents (pickup, session
// status, help) and drivers (login, manifest, open, problem, return, logout), plus
// GET /healthz and GET /metrics, on the kiosk address.
//
// Handlers are plain net/http on a chi router; they speak to the domain through two
// small interfaces (Resident, Driver) that *edge.Locker implements. Domain errors carry
// a code; one table (statusOf) maps codes to HTTP statuses, and internal errors are
// logged once, here. Request bodies are limited to MaxBody bytes and decoded strictly
// as to types; codes, factors and credentials are never logged.
//
// Driver requests carry the kiosk token from /api/driver/login as
// "Authorization: Bearer <token>".
package kiosk
