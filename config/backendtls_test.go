package config

import (
	"testing"

	"github.com/google/go-cmp/cmp"
)

// In backends[].tls every empty field takes backend_tls's value; a set one
// wins, so one backend can name its certificate's host or turn TLS off.
func TestBackendTLSFor(t *testing.T) {
	c := &Config{BackendTLS: BackendTLS{Mode: BackendTLSVerifyIdentity, CA: "ca.pem", Cert: "c.pem", Key: "k.pem"}}
	cases := []struct {
		own, want BackendTLS
	}{
		{BackendTLS{}, c.BackendTLS},
		{BackendTLS{ServerName: "db1.internal"},
			BackendTLS{Mode: BackendTLSVerifyIdentity, CA: "ca.pem", Cert: "c.pem", Key: "k.pem", ServerName: "db1.internal"}},
		{BackendTLS{Mode: BackendTLSOff}, BackendTLS{Mode: BackendTLSOff, CA: "ca.pem", Cert: "c.pem", Key: "k.pem"}},
		{BackendTLS{Mode: BackendTLSVerifyCA, CA: "other.pem"},
			BackendTLS{Mode: BackendTLSVerifyCA, CA: "other.pem", Cert: "c.pem", Key: "k.pem"}},
	}
	for _, tc := range cases {
		got := c.BackendTLSFor(Backend{Address: "h:1", TLS: tc.own})
		if diff := cmp.Diff(tc.want, got); diff != "" {
			t.Errorf("BackendTLSFor(tls %+v) (-want +got):\n%s", tc.own, diff)
		}
	}
}

func TestMinimalBackendTLSIsOff(t *testing.T) {
	cfg := mustLoad(t, "testdata/minimal.good.yaml")
	if got := cfg.BackendTLSFor(cfg.Backends[0]); got != (BackendTLS{Mode: BackendTLSOff}) {
		t.Errorf("minimal config: backend TLS %+v, want mode off", got)
	}
}
