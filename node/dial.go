package node

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
		// The envelope's limit, with room for the Nats-Msg-Id header
		// (the stream counts headers too).
		MaxMsgSize: int32(sign.MaxBody + 4096),
		MaxBytes:   c.MaxBytes,
		// An existing stream weaker than this one is refused.
		MinDuplicates: transport.MinDuplicateWindow(c.AllowSkew),
		Stated: map[string]bool{
			"retention": c.IsSet("retention"), "replicas": c.IsSet("replicas"),
			"max_consumers": c.IsSet("max_consumers"), "max_bytes": c.IsSet("max_bytes"),
		},
	}
}

// Dial connects with the config's servers, credentials and TLS files.
// With retry it keeps trying until ctx is done (receivers with -t).
// The credentials and TLS files are checked first (config.CheckFiles):
// missing, or open to others, is a configuration error with the config's
// file:line, before any network wait.
func Dial(ctx context.Context, c *config.Config, retry bool, log *slog.Logger) (*transport.Conn, error) {
	if err := c.CheckFiles(); err != nil {
		return nil, err
	}
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

// DialHint says what to do about a connection error of Dial with cfg: a
// server that refused the credentials, or no server reached. "" for
// other errors, and for a first attempt that the caller's timeout or a
// signal ended before any server answered (the error says which).
func DialHint(cfg *config.Config, err error) string {
	switch {
	case transport.IsRefused(err):
		creds := cfg.Resolve(cfg.Credentials)
		return "the server has no user for the seed in " + creds + " (or it expired, or was revoked): list its public key (nk -inkey " +
			creds + " -pubout) in the server's users (for a .creds file: check the user with nsc), or point credentials: in " + cfg.Path + " at this host's own file"
	case transport.IsCutShort(err):
		return ""
	case errors.Is(err, transport.ErrConnect):
		return "check that a NATS server listens at the server: lines of " + cfg.Path +
			" and that this host can reach it (address, port, firewall); a tls:// URL needs a server with TLS"
	}
	return ""
}
