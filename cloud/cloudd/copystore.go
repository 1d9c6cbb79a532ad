package cloudd

import (
	"context"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/larder-lockers/larder/cloud/bolt"
	"github.com/larder-lockers/larder/cloud/notify"
	"github.com/larder-lockers/larder/cloud/pg"
)

// CopyStore is `larder-cloud copy-store`: it moves a fleet that started on bbolt to
// PostgreSQL. With the cloud stopped, it copies the bbolt file DATA/cloud.db (every
// bucket of the domain and the notification outbox) into an empty PostgreSQL database
// (migrated first) and verifies the copy: per bucket the key count and a SHA-256 of its
// keys and values, and the outbox's counts by state and a digest of its notices. The
// outbox stays sealed under the same notify key, which the replicas must then be
// configured with (notify_key): LARDER_CLOUD_NOTIFY_KEY, else DATA/notify.key. It
// returns the exit status: 0 when the copy verified, 2 for bad arguments, 1 otherwise.
func CopyStore(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("larder-cloud copy-store", flag.ContinueOnError)
	fs.SetOutput(stderr)
	data := fs.String("data", getenv("LARDER_CLOUD_DATA_DIR"), "the stopped cloud's data directory (holds cloud.db)")
	to := fs.String("to", getenv("LARDER_CLOUD_STORE"), "the empty PostgreSQL database: postgres://… (default $LARDER_CLOUD_STORE)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *data == "" || !strings.HasPrefix(*to, "postgres://") && !strings.HasPrefix(*to, "postgresql://") {
		fmt.Fprintln(stderr, "larder-cloud copy-store: need -data DIR and -to postgres://… (or LARDER_CLOUD_STORE)")
		return 2
	}
	if err := copyStore(ctx, *data, *to, getenv("LARDER_CLOUD_NOTIFY_KEY"), stdout); err != nil {
		fmt.Fprintln(stderr, "larder-cloud copy-store:", err)
		return 1
	}
	return 0
}

func copyStore(ctx context.Context, dataDir, url, keyHex string, out io.Writer) error {
	key, err := copyKey(dataDir, keyHex)
	if err != nil {
		return err
	}
	src, err := bolt.Open(filepath.Join(dataDir, "cloud.db"), bolt.Options{})
	if err != nil {
		return fmt.Errorf("%w (is the cloud still running?)", err)
	}
	defer src.Close()
	dst, err := pg.Open(ctx, url, pg.Options{})
	if err != nil {
		return fmt.Errorf("store %s: %w", redactStore(url), err)
	}
	defer dst.Close()
	rep, err := pg.Copy(ctx, src, dst)
	if err != nil {
		return err
	}
	for _, b := range rep.Buckets {
		fmt.Fprintf(out, "%-12s %8d keys  sha256 %s\n", b.Name, b.Keys, b.SHA256)
	}
	from, err := notify.NewBoltQueue(src, "notify", key)
	if err != nil {
		return err
	}
	q, err := notify.NewPGQueue(dst.Pool(), key)
	if err != nil {
		return err
	}
	got, err := notify.CopyToPG(ctx, from, q)
	if err != nil {
		return err
	}
	st := got.Stats
	fmt.Fprintf(out, "%-12s %8d notices (pending %d, delivered %d, dead %d, cancelled %d)  digest %s\n", "notify",
		st.Pending+st.Delivered+st.Dead+st.Cancelled, st.Pending, st.Delivered, st.Dead, st.Cancelled, got.Digest)
	fmt.Fprintf(out, "copied and verified %d keys in %s; configure every replica with store %s and this notify key\n",
		rep.Keys, rep.Elapsed.Round(1e6), redactStore(url))
	return nil
}

// copyKey is the notify key the bbolt outbox was sealed with.
func copyKey(dataDir, keyHex string) ([]byte, error) {
	if keyHex == "" {
		b, err := os.ReadFile(filepath.Join(dataDir, "notify.key"))
		if errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("no notify key: set LARDER_CLOUD_NOTIFY_KEY or keep %s", filepath.Join(dataDir, "notify.key"))
		}
		if err != nil {
			return nil, err
		}
		keyHex = strings.TrimSpace(string(b))
	}
	key, err := hex.DecodeString(keyHex)
	if err != nil || len(key) != 32 {
		return nil, errors.New("the notify key must be 64 hex characters")
	}
	return key, nil
}
