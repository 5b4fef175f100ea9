package policy

import (
	"testing"
	"time"

	"github.com/remaphore/remaphore/sign"
)

// BenchmarkCheckUnknownSender is the auditor's cost per message of a
// flood from a key that is not a peer: decoding, the peer lookup and the
// refusal's detail (no signature work). "one-key" is a flood from one key
// (the detail comes from the Checker's cache after the first message);
// "fresh-keys" has a new key in every message (a miss each time, as
// before the cache).
func BenchmarkCheckUnknownSender(b *testing.B) {
	alice, mallory := key(b, 1), key(b, 3)
	rules := Rules{Audit: true, Root: "flood", Channel: "all", AllowSkew: time.Hour,
		Peers: []Peer{{Dest: "com.bench.host0", Key: alice.Public(), Verbs: AllVerbs()}}}
	seal := func(k sign.PrivateKey, i int) Input {
		e, err := sign.Seal(&sign.Message{Kind: sign.KindMsg, Root: "flood", Channel: "all", Dest: "com.bench.*",
			Verb: "deploy", UUID: "job-" + string(rune('a'+i%26)), Sent: time.Now(), Payload: []byte("release 1.2.3 to the fleet")}, k)
		if err != nil {
			b.Fatal(err)
		}
		return Input{Body: e.Body(), HeaderID: e.ID}
	}
	run := func(b *testing.B, ins []Input) {
		c, err := NewChecker(rules)
		if err != nil {
			b.Fatal(err)
		}
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			if v := c.Check(ins[i%len(ins)]); v.Reason != ReasonUnknownSender {
				b.Fatal(v.Error())
			}
			i++
		}
	}
	b.Run("one-key", func(b *testing.B) {
		run(b, []Input{seal(mallory, 0)})
	})
	b.Run("fresh-keys", func(b *testing.B) {
		var ins []Input
		for i := range 4 * maxUnknownDetails {
			ins = append(ins, seal(key(b, byte(10+i)), i))
		}
		run(b, ins)
	})
}
