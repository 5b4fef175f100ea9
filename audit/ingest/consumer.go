package ingest

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/remaphore/remaphore/transport"
)

// LegacyConsumer is the durable consumer name every auditor used before
// names were derived from the host and the database file. An auditor
// never touches a consumer of that name unless it created it.
const LegacyConsumer = "remaphore-audit"

// Consumer metadata keys: which auditor created a consumer. An auditor
// deletes or re-creates only a consumer whose owner tag is its database's.
const (
	metaKeyOwner = "remaphore-audit-owner"
	metaKeyHost  = "remaphore-audit-host"
	metaKeyDB    = "remaphore-audit-db"
)

// ErrConsumerTaken: the durable consumer name is used by a consumer this
// auditor did not create (another auditor's, or one made by hand).
var ErrConsumerTaken = errors.New("consumer name taken")

// DefaultConsumerName is the durable consumer of an auditor writing the
// database at dbPath on this host: "remaphore-audit-", the host name, and
// a hash of the host name and the file's absolute path. Two auditors with
// their own files, on one host or on two, get names of their own without
// any flag, and a restarted auditor gets its name back. Only letters,
// digits, '-' and '_' are used (NATS forbids '.', '*', '>', path
// separators and white space in a durable name).
func DefaultConsumerName(dbPath string) string {
	host, _ := os.Hostname()
	abs, err := filepath.Abs(dbPath)
	if err != nil {
		abs = dbPath
	}
	sum := sha256.Sum256([]byte(host + "\x00" + abs))
	h := sanitizeName(host)
	if len(h) > 32 {
		h = h[:32]
	}
	if h != "" {
		h += "-"
	}
	return LegacyConsumer + "-" + h + hex.EncodeToString(sum[:5])
}

func sanitizeName(s string) string {
	return strings.Map(func(r rune) rune {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '-', r == '_':
			return r
		}
		return '_'
	}, s)
}

// ValidConsumerName reports why name cannot be a durable consumer name,
// or nil.
func ValidConsumerName(name string) error {
	switch {
	case name == "":
		return errors.New("empty")
	case len(name) > 200:
		return errors.New("longer than 200 characters")
	case strings.ContainsAny(name, ".*>/\\ \t\r\n"):
		return errors.New("holds one of . * > / \\ or white space")
	}
	for _, r := range name {
		if r < 0x20 || r == 0x7f {
			return errors.New("holds a control character")
		}
	}
	return nil
}

// consumerMetadata tags a consumer with its owner.
func (in *ingester) consumerMetadata() map[string]string {
	host, _ := os.Hostname()
	abs, err := filepath.Abs(in.o.DB)
	if err != nil {
		abs = in.o.DB
	}
	return map[string]string{metaKeyOwner: in.owner, metaKeyHost: host, metaKeyDB: abs}
}

// taken is the error for a consumer of this name that this auditor did
// not create: whose it is, whether it looks in use, and what to do.
func (in *ingester) taken(info *jetstream.ConsumerInfo) error {
	md := info.Config.Metadata
	whose := "no owner tag: made by an older remaphore-audit (whose default name was " + LegacyConsumer + ") or by hand"
	if md[metaKeyOwner] != "" {
		whose = fmt.Sprintf("the auditor of %s on host %s", md[metaKeyDB], md[metaKeyHost])
	}
	live := "no fetch waiting on it now"
	switch {
	case info.NumWaiting > 0:
		live = "in use: a fetch is waiting on it now"
	case info.Delivered.Last != nil && time.Since(*info.Delivered.Last) < 5*time.Minute:
		live = fmt.Sprintf("in use: it delivered a message %s ago", time.Since(*info.Delivered.Last).Round(time.Second))
	}
	return fmt.Errorf("%w: consumer %s on stream %s was not created by this auditor (%s; %s): it is left as it is; "+
		"run this auditor under a name of its own with -name NAME (without -name each database file gets its own, %s), "+
		"or, if nothing uses that consumer any more, delete it (nats consumer rm %s %s) and start again",
		ErrConsumerTaken, info.Name, info.Stream, whose, live, DefaultConsumerName(in.o.DB), info.Stream, info.Name)
}

// noteLegacy logs, once at start, that a consumer under the old default
// name exists: an upgraded auditor reads through its new name from where
// its database stops, and leaves the old one (which an older auditor may
// still use) for the operator to delete.
func (in *ingester) noteLegacy(ctx context.Context) {
	if in.o.Consumer == LegacyConsumer {
		return
	}
	c, err := in.stream.Consumer(ctx, LegacyConsumer)
	if err != nil {
		return
	}
	info := c.CachedInfo()
	if info.Config.Metadata[metaKeyOwner] != "" {
		return // another auditor that chose that name itself
	}
	in.log.Warn("a consumer under the old default name exists; this auditor reads through its own consumer from where its database stops, and leaves the old one as it is: delete it once no older auditor uses it",
		"old_consumer", LegacyConsumer, "consumer", in.o.Consumer,
		"command", fmt.Sprintf("nats consumer rm %s %s", info.Stream, LegacyConsumer))
}

// noJetStream rewrites the error of a server (or an account) without
// JetStream: the same words the sender uses.
func noJetStream(conn *transport.Conn, err error) error {
	for _, cause := range []error{nats.ErrNoResponders, jetstream.ErrJetStreamNotEnabled, jetstream.ErrJetStreamNotEnabledForAccount} {
		if errors.Is(err, cause) {
			return fmt.Errorf("%w: %s has no JetStream for this account (enable jetstream in the server's config): %v",
				transport.ErrJetStream, conn.NATS().ConnectedUrlRedacted(), cause)
		}
	}
	return err
}
