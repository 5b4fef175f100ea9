package transport

import (
	"fmt"
	"net/url"
	"strings"
	"time"
)

// DefaultChannel is the channel used without -S.
const DefaultChannel = "all"

// MsgSubject is the subject messages of a channel travel on.
func MsgSubject(root, channel string) string { return root + ".msg." + channel }

// ReplySubject is the subject replies to request id travel on.
func ReplySubject(root, id string) string { return root + ".reply." + id }

// StreamName derives a stream name from a subject root: upper-cased, with
// the characters NATS forbids in stream names replaced by '_'.
func StreamName(root string) string {
	return strings.Map(func(r rune) rune {
		switch {
		case r == '.' || r == '*' || r == '>' || r == '/' || r == '\\' || r <= ' ' || r == 0x7f:
			return '_'
		}
		return r
	}, strings.ToUpper(root))
}

// ValidateChannel checks a channel name (-S): one subject token.
func ValidateChannel(ch string) error {
	if ch == "" {
		return fmt.Errorf("empty channel name")
	}
	if len(ch) > 128 {
		return fmt.Errorf("channel name is %d bytes, limit 128", len(ch))
	}
	if strings.ContainsAny(ch, ".*> \t\r\n") {
		return fmt.Errorf("channel %q holds '.', '*', '>' or white space; use one plain word like deploys", ch)
	}
	return nil
}

// StreamSpec is what a process needs to find or create the stream.
type StreamSpec struct {
	Root         string
	Name         string // "" = StreamName(Root)
	Replicas     int
	MaxAge       time.Duration
	Duplicates   time.Duration
	MaxConsumers int
	MaxMsgSize   int32
	MaxBytes     int64 // 0: no byte limit (tests); the config's default is 1 GiB
	// MinDuplicates, when set, makes EnsureStream refuse an existing stream
	// weaker than this spec (ErrStreamWeak): a duplicate window shorter
	// than MinDuplicates, no message size limit or one above MaxMsgSize, or
	// a mirror of another stream. Settings that only differ (MaxAge,
	// Replicas, MaxConsumers, MaxBytes) are logged once at WARN. Zero:
	// only the subjects are checked (the auditor's package tests).
	MinDuplicates time.Duration
	// Stated lists the config keys the operator wrote (retention,
	// replicas, max_consumers, max_bytes): only those are compared with an
	// existing stream's settings, so that hosts left at the defaults do not
	// warn on every start about a stream made by a host that set them.
	// nil compares all four.
	Stated map[string]bool
}

func (s StreamSpec) name() string {
	if s.Name != "" {
		return s.Name
	}
	return StreamName(s.Root)
}

// DuplicateWindow is the duplicate window remaphore creates a stream
// with for allow_skew: a captured message re-published within the window
// is dropped by the stream; after it the skew check refuses it.
func DuplicateWindow(allowSkew time.Duration) time.Duration {
	return max(MinDuplicateWindow(allowSkew), 2*time.Minute)
}

// MinDuplicateWindow is the shortest duplicate window an existing stream
// may have for allow_skew (DESIGN: at least 2*allow_skew + 1m): a copy
// re-published later than allow_skew after the original is refused as
// stale, one within it is dropped by the stream, with a minute of margin
// for the time a publish takes.
func MinDuplicateWindow(allowSkew time.Duration) time.Duration {
	return 2*allowSkew + time.Minute
}

// RedactURL hides the user information of a server URL, for errors and
// logs: user:xxxxx@ for a user and password (as nats.go shows it),
// xxxxx@ for a user part alone, which NATS takes as a token. Text that is
// not a URL but holds an @ is hidden whole.
func RedactURL(s string) string {
	u, err := url.Parse(s)
	if err != nil || u.User == nil {
		if strings.Contains(s, "@") { // host:port forms parse as opaque URLs
			return "(a server address with credentials)"
		}
		return s
	}
	if _, ok := u.User.Password(); ok {
		u.User = url.UserPassword(u.User.Username(), "xxxxx")
	} else {
		u.User = url.User("xxxxx")
	}
	return u.String()
}

// RedactURLs joins the redacted forms of servers with ", ".
func RedactURLs(servers []string) string {
	out := make([]string, len(servers))
	for i, s := range servers {
		out[i] = RedactURL(s)
	}
	return strings.Join(out, ", ")
}

// ReceiptSubject is the subject receipts of message id travel on (config
// receipts: true). Receivers read only MsgSubject, so they never see one;
// the stream captures <root>.> and the auditor records them.
func ReceiptSubject(root, id string) string { return root + ".receipt." + id }
