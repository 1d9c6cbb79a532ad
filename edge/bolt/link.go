package bolt

import "github.com/larder-lockers/larder/edge"

// kLink (bucket meta) is the record of the link to the cloud.
var kLink = []byte("link")

func (t *txn) Link() (edge.Link, error) {
	k, _, err := get[edge.Link](t.b(bMeta), kLink)
	return k, err
}

func (t *txn) PutLink(k edge.Link) error { return put(t.b(bMeta), kLink, k) }
