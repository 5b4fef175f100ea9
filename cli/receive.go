package cli

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/remaphore/remaphore/node"
	"github.com/remaphore/remaphore/policy"
	"github.com/remaphore/remaphore/script"
)

// receive waits for matching messages, runs the script for each, answers
// requests, and returns the exit code.
func (r *runner) receive(ctx context.Context) (int, error) {
	o := r.o
	once := o.once || o.uuid != "" // -u implies -o
	verbs, err := r.verbFilter()
	if err != nil {
		return 0, err
	}
	sender, err := r.pubkeyFlag()
	if err != nil {
		return 0, err
	}
	cmd := script.Command{Argv: o.args, Stdout: r.stdout, Stderr: r.stderr}
	if o.json {
		// stdout is one JSON object per line: a script's output there
		// would break every parser, and a script echoing a payload
		// could forge an object. It goes to stderr, still visible.
		cmd.Stdout = r.stderr
	}
	// Before anything is consumed: a script that cannot run would use up
	// the message it was waiting for.
	if cmd, err = cmd.Resolved(); err != nil {
		return 0, usageErr(script.Hint(err), "%v", err)
	}
	if err := r.loadConfig(); err != nil {
		return 0, err
	}
	dest := r.cfg.Destination
	if o.dest != "" {
		if err := policy.ValidateName(o.dest); err != nil {
			return 0, usageErr("a receiver's -D is a plain destination name like com.crypto.us.left", "-D: %v", err)
		}
		dest = o.dest
	}
	if o.pubkeySet {
		if _, ok := r.cfg.Peer(sender); !ok {
			return 0, usageErr("-p must name one of the [ Peers ] in "+r.cfg.Path, "-p %s is not a configured peer: no message from it would be accepted", sender)
		}
	}
	var barrier *node.Barrier
	if o.barrier != "" {
		// Before connecting: a barrier that can never complete is a
		// mistake on the command line or in the config.
		if barrier, err = r.newBarrier(verbs, sender); err != nil {
			return 0, err
		}
	}
	ro := node.ReceiverOptions{
		Config: r.cfg, Channel: o.channel, Since: o.since, Logger: r.log,
		Filters: policy.Rules{Destination: dest, AnyDestination: o.anyDest, UUID: o.uuid, Verbs: verbs, Sender: sender},
	}
	if len(r.cfg.Peers) == 0 {
		r.log.Warn("the config has no [ Peers ]: no message can be accepted", "config", r.cfg.Path)
	}
	rcv, err := node.StartReceiver(ctx, ro)
	if errors.Is(err, node.ErrRules) {
		return 0, usageErr("", "%v", err)
	}
	if err != nil {
		// The error says why it gave up (the context's cause: -t ran
		// out, or a signal) once; Main turns a signal into its code.
		return 0, r.dialErr(err)
	}
	defer rcv.Close()
	r.log.Info("ready", "channel", o.channel, "destination", dest, "any_destination", o.anyDest, "uuid", o.uuid, "verbs", o.verbs)
	if barrier != nil {
		return r.waitBarrier(ctx, rcv, cmd, barrier)
	}

	received := 0
	for {
		v, d, err := rcv.Next(ctx)
		if err != nil {
			if sig := signalOf(ctx); sig != nil {
				return 0, sig
			}
			if received > 0 {
				return ExitOK, nil
			}
			r.log.Info("timeout, nothing received")
			return ExitTimeout, nil
		}
		received++
		accepted := time.Now()
		env := v.Env
		r.log.Info("accepted", "id", env.ID, "seq", d.Seq, "sender", env.Sender, "peer", v.Peer.Dest, "verb", env.Verb, "uuid", env.UUID, "request", env.Request)
		if o.json {
			if err := r.messageJSON(v, d, rcv.Destination(), o.anyDest); err != nil {
				return 0, err
			}
		}
		if ok, err := r.splayWait(ctx); !ok {
			if err != nil {
				return 0, err
			}
			if once {
				return ExitTimeout, nil
			}
			return ExitOK, nil // -t ended a run that received before
		}
		code := 0
		if len(cmd.Argv) > 0 || env.Request {
			if code, err = rcv.Handle(ctx, cmd, v); err != nil {
				return 0, err
			}
		}
		rcv.Receipt(ctx, v, accepted, len(cmd.Argv) > 0, code)
		if once {
			if code != 0 {
				fmt.Fprintf(r.stderr, "remaphore: script %s exited %d\n", cmd.Argv[0], code)
				return ExitScript, nil
			}
			return ExitOK, nil
		}
	}
}
