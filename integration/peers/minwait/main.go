// Command minwait is the floor a waiting remaphore receiver is measured
// against: connect with an nkey seed, open an ordered consumer on new
// messages of one subject, print "ready", and exit on the first message.
//
//	minwait URL SEEDFILE STREAM SUBJECT
package main

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

func main() {
	if len(os.Args) != 5 {
		fmt.Fprintln(os.Stderr, "usage: minwait URL SEEDFILE STREAM SUBJECT")
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
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cons, err := js.OrderedConsumer(ctx, os.Args[3], jetstream.OrderedConsumerConfig{
		FilterSubjects: []string{os.Args[4]}, DeliverPolicy: jetstream.DeliverNewPolicy,
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(3)
	}
	got := make(chan struct{}, 1)
	cc, err := cons.Consume(func(m jetstream.Msg) {
		select {
		case got <- struct{}{}:
		default:
		}
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(3)
	}
	defer cc.Stop()
	fmt.Println("ready")
	select {
	case <-got:
	case <-ctx.Done():
		os.Exit(1)
	}
}
