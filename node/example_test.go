package node_test

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/remaphore/remaphore/internal/natstest"
	"github.com/remaphore/remaphore/node"
	"github.com/remaphore/remaphore/script"
)

// A request from alice that bob answers by running a script: the library
// calls behind remaphore -r on one host and remaphore SCRIPT on another.
func Example() {
	var t exampleT
	defer t.cleanup()
	nats := natstest.Start(&t) // an in-process NATS server with JetStream
	aliceKey, bobKey := newKey(&t), newKey(&t)
	alice := nodeConfig(&t, nats, "com.example.alice", aliceKey, "com.example.bob", bobKey.Public())
	bob := nodeConfig(&t, nats, "com.example.bob", bobKey, "com.example.alice", aliceKey.Public())
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	// Bob waits, and answers the first message with the script's output.
	rcv, err := node.StartReceiver(ctx, node.ReceiverOptions{Config: bob})
	if err != nil {
		t.Fatal(err)
	}
	defer rcv.Close()
	go func() {
		if v, _, err := rcv.Next(ctx); err == nil {
			rcv.Handle(ctx, script.Command{Argv: []string{"sh", "-c", `echo "healthy, asked: $REMAPHORE_MSG"`}}, v)
		}
	}()

	// Alice asks every peer matching com.example.* and waits for them.
	conn, err := node.Dial(ctx, alice, false, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	msg := node.Message{Dest: "com.example.*", Verb: "status", Payload: []byte("ready?")}
	pat, _ := msg.Check()
	env, err := node.Seal(alice, msg, true)
	if err != nil {
		t.Fatal(err)
	}
	expected, _ := node.Responders(alice, pat)
	out, err := node.Request(ctx, conn, alice, env, node.RequestOptions{Expected: expected})
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range out.Answers {
		fmt.Printf("%s answered %d: %s", a.Responder.Dest, a.ExitCode, a.Output)
	}
	fmt.Println("all answered with 0:", out.OK())
	// Output:
	// com.example.bob answered 0: healthy, asked: ready?
	// all answered with 0: true
}

// exampleT stands in for the *testing.T an Example does not have:
// natstest's failures panic, its cleanups run at the end.
type exampleT struct {
	dirs     []string
	cleanups []func()
}

func (*exampleT) Helper()                           {}
func (*exampleT) Fatal(args ...any)                 { panic(fmt.Sprint(args...)) }
func (*exampleT) Fatalf(format string, args ...any) { panic(fmt.Sprintf(format, args...)) }
func (t *exampleT) Cleanup(f func())                { t.cleanups = append(t.cleanups, f) }

func (t *exampleT) TempDir() string {
	dir, err := os.MkdirTemp("", "node-example-")
	if err != nil {
		t.Fatal(err)
	}
	t.dirs = append(t.dirs, dir)
	return dir
}

func (t *exampleT) cleanup() {
	for i := len(t.cleanups) - 1; i >= 0; i-- {
		t.cleanups[i]()
	}
	for _, d := range t.dirs {
		os.RemoveAll(d)
	}
}
