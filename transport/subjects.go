package transport

import (
	"fmt"
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
}

func (s StreamSpec) name() string {
	if s.Name != "" {
		return s.Name
	}
	return StreamName(s.Root)
}

// DuplicateWindow is the smallest duplicate window for allow_skew: a
// captured message re-published within the window is dropped by the
// stream; after it the skew check refuses it.
func DuplicateWindow(allowSkew time.Duration) time.Duration {
	return max(2*allowSkew+time.Minute, 2*time.Minute)
}
