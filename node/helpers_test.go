package node_test

import (
	"fmt"
	"strings"

	"github.com/remaphore/remaphore/config"
	"github.com/remaphore/remaphore/internal/natstest"
	"github.com/remaphore/remaphore/sign"
)

// nodeConfig is the config of node dest on the server c: it signs with
// key (any verb) and trusts peers (any verb), given as dest, key, dest,
// key...
func nodeConfig(t natstest.TB, c *natstest.Cluster, dest string, key sign.PrivateKey, peers ...any) *config.Config {
	t.Helper()
	var b strings.Builder
	fmt.Fprintf(&b, "server: %s\ncredentials: %s\ndestination: %s\n\n[ Identities ]\n%s %s [*]\n\n[ Peers ]\n",
		c.URLs()[0], c.User.SeedFile, dest, key.Public(), key.Base58())
	for i := 0; i+1 < len(peers); i += 2 {
		fmt.Fprintf(&b, "%s %s [*]\n", peers[i], peers[i+1])
	}
	cfg, err := config.Parse(dest+".conf", []byte(b.String()))
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

func newKey(t natstest.TB) sign.PrivateKey {
	t.Helper()
	k, err := sign.GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	return k
}
