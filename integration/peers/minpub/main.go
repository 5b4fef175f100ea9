// Command minpub is the floor remaphore -s is measured against: the least
// a Go program does to publish one message to JetStream and wait for the
// stream's ack (connect with an nkey seed, publish with a message id).
//
//	minpub URL SEEDFILE SUBJECT
package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

func main() {
	if len(os.Args) != 4 {
		fmt.Fprintln(os.Stderr, "usage: minpub URL SEEDFILE SUBJECT")
		os.Exit(2)
	}
	opt, err := nats.NkeyOptionFromSeed(os.Args[2])
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	nc, err := nats.Connect(os.Args[1], opt)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(3)
	}
	defer nc.Close()
	js, _ := jetstream.New(nc)
	id := make([]byte, 16)
	rand.Read(id)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := js.Publish(ctx, os.Args[3], []byte("payload"), jetstream.WithMsgID(hex.EncodeToString(id))); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(3)
	}
}
