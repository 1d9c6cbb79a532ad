// Package assign is the compartment assignment policy of the cloud, in one place: which
// free compartments of a site take an order's parcels ([Plan]) and how much a compartment
// holds ([Units]). It is pure: no storage, no clock. The cloud domain feeds it the free,
// in-service compartments of a site (its index excludes every compartment with a live
// reservation) and records the picks, bumping each compartment's generation.
//
// Caveat: first-fit decreasing is not an optimal bin packing; it never splits a parcel,
// keeps the smallest compartments that fit, and is fast and predictable, which matters
// more at a courier's stop than a perfect packing.
package assign
