// Package client connects a configured remaphore node to NATS. It turns a
// config into transport settings ([Dial], [StreamSpec]) and holds the
// waiting side as a library ([Receiver]): one connection, one live
// consumer on a channel, one policy checker. The remaphore command and the
// load tool both use it, so what the load tool measures is what runs.
package client

import (
	"context"
	"errors"
	"log/slog"

	"github.com/remaphore/remaphore/config"
	"github.com/remaphore/remaphore/sign"
	"github.com/remaphore/remaphore/transport"
)

// StreamSpec is the stream a config describes.
func StreamSpec(c *config.Config) transport.StreamSpec {
	return transport.StreamSpec{
		Root:         c.Subject,
		Name:         c.Stream,
		Replicas:     c.Replicas,
		MaxAge:       c.Retention,
		Duplicates:   transport.DuplicateWindow(c.AllowSkew),
		MaxConsumers: c.MaxConsumers,
		MaxMsgSize:   int32(sign.MaxBody + 4096),
	}
}

// Dial connects with the config's servers, credentials and TLS files.
// With retry it keeps trying until ctx is done (receivers with -t).
func Dial(ctx context.Context, c *config.Config, retry bool, log *slog.Logger) (*transport.Conn, error) {
	return transport.Connect(ctx, transport.Options{
		Servers:     c.Servers,
		Credentials: resolve(c, c.Credentials),
		TLSCA:       resolve(c, c.TLSCA),
		TLSCert:     resolve(c, c.TLSCert),
		TLSKey:      resolve(c, c.TLSKey),
		Name:        "remaphore " + c.Destination,
		Retry:       retry,
		Logger:      log,
	})
}

func resolve(c *config.Config, p string) string {
	if p == "" {
		return ""
	}
	return c.Resolve(p)
}

// IsCredentialsError reports whether err is about the credentials file
// itself (a configuration error) rather than the network.
func IsCredentialsError(err error) bool { return errors.Is(err, transport.ErrCredentials) }
