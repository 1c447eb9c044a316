package config

import (
	"encoding/json"
	"fmt"
	"os"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"go.yaml.in/yaml/v3"
)

func mustLoad(t *testing.T, path string) *Config {
	t.Helper()
	cfg, err := Load(path)
	if err != nil {
		t.Fatalf("Load(%q) = %v", path, err)
	}
	return cfg
}

func TestMinimalGetsDefaults(t *testing.T) {
	want := Default()
	want.Users = []User{{Name: "app", Password: "secret"}}
	want.Backends = []Backend{{Address: "127.0.0.1:3306", Weight: 1}}
	got := mustLoad(t, "testdata/minimal.good.yaml")
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("minimal config (-want +got):\n%s", diff)
	}
	if l := got.Backends[0].Label(); l != "127.0.0.1:3306" {
		t.Errorf("Label() = %q, want the address", l)
	}
}

func TestFull(t *testing.T) {
	want := &Config{
		Listen:        "127.0.0.1:7033",
		ServerVersion: "10.11.0-switchyard",
		AuthPlugin:    "caching_sha2_password",
		TLS:           TLS{Mode: TLSOptional, Cert: "testdata/tls/cert.pem", Key: "testdata/tls/key.pem"},
		BackendTLS: BackendTLS{Mode: BackendTLSVerifyIdentity, CA: "testdata/tls/cert.pem",
			Cert: "testdata/tls/cert.pem", Key: "testdata/tls/key.pem", ServerName: "switchyard-test"},
		RSAKey: "testdata/tls/rsa.pem",
		Users: []User{
			{Name: "app", Password: "secret", MaxConnections: 20, Consistency: ConsistencyCausal},
			{Name: "legacy", PasswordHash: "*6bb4837eb74329105ee4568dda7dc67ed2ca2ad9"},
		},
		Backends: []Backend{
			{Address: "db1.internal:3306", Weight: 0, Role: RolePrimary, Name: "db1",
				TLS: BackendTLS{Mode: BackendTLSVerifyCA, ServerName: "db1.internal"}},
			{Address: "[::1]:3307", Weight: 3, Role: RoleReplica},
		},
		Monitor: Monitor{
			User: "probe", Password: "probe-secret",
			Interval: Duration(500 * time.Millisecond), Timeout: Duration(2 * time.Second),
			MaxReplicationLag: Duration(5 * time.Second), ReadmitAfter: 1,
			Heartbeat: Heartbeat{Enabled: true, Interval: Duration(50 * time.Millisecond), Schema: "ops", Table: "hb$1"},
		},
		Routing: Routing{
			Consistency: ConsistencyEventual, SessionWindow: Duration(2 * time.Second), CausalWait: Duration(250 * time.Millisecond),
			ImplicitTransactions: ImplicitTxLazy, NoReplica: NoReplicaError, ReadFromPrimary: true,
		},
		Admin: Admin{Listen: "", Token: "admin-token", Pprof: true},
		Timeouts: Timeouts{Connect: Duration(time.Second), Handshake: Duration(3 * time.Second),
			NetRead: Duration(5 * time.Second), Backend: Duration(750 * time.Millisecond)},
		Pool:    Pool{MaxOpen: 8, MaxIdle: 8, WaitTimeout: Duration(100 * time.Millisecond), ReleaseIdle: 0},
		Limits:  Limits{MaxConnections: 1, MaxPacketSize: MiB},
		Log:     Log{Level: "debug", Format: "json", SlowStatement: Duration(1500 * time.Millisecond)},
		Digests: Digests{Max: 50},
		Failover: Failover{Mode: FailoverOff, User: "orchestrator", Password: "orchestrator-secret",
			ReplicationUser: "repl", ReplicationPassword: "repl-secret", Timeout: Duration(3 * time.Second),
			After: Duration(4 * time.Second)},
	}
	got := mustLoad(t, "testdata/full.good.yaml")
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("full config (-want +got):\n%s", diff)
	}
	// Every leaf differs from its default, so a key the decoder drops shows.
	checkAllDiffer(t, "", reflect.ValueOf(*Default()), reflect.ValueOf(*got))
}

// checkAllDiffer reports every scalar field of got that still equals def.
// Slices are skipped: Default has none.
func checkAllDiffer(t *testing.T, path string, def, got reflect.Value) {
	t.Helper()
	if def.Kind() == reflect.Struct {
		for i := 0; i < def.NumField(); i++ {
			checkAllDiffer(t, field(path, def.Type().Field(i).Name), def.Field(i), got.Field(i))
		}
		return
	}
	if def.Kind() != reflect.Slice && def.Equal(got) {
		t.Errorf("full.good.yaml leaves %s at its default %v", path, def)
	}
}

func TestEnvGood(t *testing.T) {
	setTestEnv(t)
	cfg := mustLoad(t, "testdata/env.good.yaml")
	wantUsers := []User{
		{Name: "app", Password: "from-env"},
		{Name: "dollar", Password: "pa$word-${SWITCHYARD_TEST_UNSET}-$5"},
		{Name: "empty-default", Password: "x"},
	}
	if diff := cmp.Diff(wantUsers, cfg.Users); diff != "" {
		t.Errorf("users (-want +got):\n%s", diff)
	}
	if b := cfg.Backends[0]; b.Address != "127.0.0.1:3306" || b.Weight != 7 {
		t.Errorf("backend = %+v, want defaults 127.0.0.1:3306 weight 7", b)
	}
	if cfg.Limits.MaxPacketSize != 16*KiB {
		t.Errorf("max_packet_size = %v, want 16KiB", cfg.Limits.MaxPacketSize)
	}

	// Now with every variable set; an empty one takes the default.
	t.Setenv("SWITCHYARD_TEST_USER", "")
	t.Setenv("SWITCHYARD_TEST_HOST", "db.example")
	t.Setenv("SWITCHYARD_TEST_PORT", "4000")
	t.Setenv("SWITCHYARD_TEST_WEIGHT", "0")
	t.Setenv("SWITCHYARD_TEST_SIZE", "1GiB")
	cfg = mustLoad(t, "testdata/env.good.yaml")
	if cfg.Users[0].Name != "app" {
		t.Errorf("users[0].name = %q, want the default for an empty variable", cfg.Users[0].Name)
	}
	if b := cfg.Backends[0]; b.Address != "db.example:4000" || b.Weight != 0 {
		t.Errorf("backend = %+v, want db.example:4000 weight 0", b)
	}
	if cfg.Limits.MaxPacketSize != GiB {
		t.Errorf("max_packet_size = %v, want 1GiB", cfg.Limits.MaxPacketSize)
	}
}

func TestAnchors(t *testing.T) {
	cfg := mustLoad(t, "testdata/anchors.good.yaml")
	wantUsers := []User{
		{Name: "app", Password: "secret", MaxConnections: 5},
		{Name: "app2", Password: "secret", MaxConnections: 5},
	}
	wantBackends := []Backend{
		{Address: "127.0.0.1:3306", Weight: 2},
		{Address: "127.0.0.1:3307", Weight: 9, Role: RoleReplica},
	}
	if diff := cmp.Diff(wantUsers, cfg.Users); diff != "" {
		t.Errorf("users (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(wantBackends, cfg.Backends); diff != "" {
		t.Errorf("backends (-want +got):\n%s", diff)
	}
	if cfg.Monitor.Heartbeat.Interval != Duration(300*time.Millisecond) {
		t.Errorf("heartbeat.interval = %v, want the aliased 300ms", cfg.Monitor.Heartbeat.Interval)
	}
}

// Merge keys can make a small document expand exponentially; decoding must
// stop at its node budget instead of running for hours.
func TestAliasExpansionIsBounded(t *testing.T) {
	var b strings.Builder
	b.WriteString("backends:\n  - &b0 {address: \"db:1\"}\n")
	for i := 1; i <= 8; i++ {
		refs := strings.Repeat(fmt.Sprintf("*b%d, ", i-1), 10)
		fmt.Fprintf(&b, "  - &b%d {<<: [%s]}\n", i, strings.TrimSuffix(refs, ", "))
	}
	_, err := Parse([]byte(b.String()))
	want := "document is too large or uses too many aliases (more than 100000 nodes)"
	if err == nil || err.Error() != want {
		t.Errorf("Parse(alias bomb) = %v, want %q", err, want)
	}
}

func TestExampleLoads(t *testing.T) {
	for _, name := range []string{"APP_PASSWORD", "MONITOR_PASSWORD", "PRIMARY_ADDR", "ADMIN_TOKEN"} {
		unsetEnv(t, name)
	}
	cfg := mustLoad(t, "switchyard.example.yaml")
	if cfg.Users[0].Password != "app-secret" {
		t.Errorf("users[0].password = %q, want the ${APP_PASSWORD:-app-secret} default", cfg.Users[0].Password)
	}
	t.Setenv("APP_PASSWORD", "from-env")
	if cfg := mustLoad(t, "switchyard.example.yaml"); cfg.Users[0].Password != "from-env" {
		t.Errorf("users[0].password = %q, want $APP_PASSWORD", cfg.Users[0].Password)
	}
}

// The example must show every key of the schema.
func TestExampleDocumentsEveryKey(t *testing.T) {
	data, err := os.ReadFile("switchyard.example.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		t.Fatal(err)
	}
	checkKeys(t, "", reflect.TypeOf(Config{}), doc.Content[0])
}

// checkKeys reports every field of typ that none of nodes (the example's
// values at path) sets.
func checkKeys(t *testing.T, path string, typ reflect.Type, nodes ...*yaml.Node) {
	t.Helper()
	switch typ.Kind() {
	case reflect.Slice:
		var elems []*yaml.Node
		for _, n := range nodes {
			elems = append(elems, n.Content...)
		}
		if len(elems) == 0 {
			t.Errorf("example: %s should be a non-empty sequence", path)
			return
		}
		checkKeys(t, path+"[]", typ.Elem(), elems...)
	case reflect.Struct:
		for name, i := range structFields(typ) {
			var vals []*yaml.Node
			for _, n := range nodes {
				for j := 0; j+1 < len(n.Content); j += 2 {
					if n.Content[j].Value == name {
						vals = append(vals, n.Content[j+1])
					}
				}
			}
			if len(vals) == 0 {
				t.Errorf("example: %s is missing", field(path, name))
				continue
			}
			checkKeys(t, field(path, name), typ.Field(i).Type, vals...)
		}
	}
}

// A loaded config marshals to YAML that loads back to the same config, and
// to JSON with readable durations and sizes. (Values holding "$" followed by
// "{" or "$" would need escaping to round-trip; none of these do.)
func TestRoundTrip(t *testing.T) {
	setTestEnv(t)
	for _, file := range []string{"switchyard.example.yaml", "testdata/full.good.yaml", "testdata/anchors.good.yaml"} {
		cfg := mustLoad(t, file)
		out, err := yaml.Marshal(cfg)
		if err != nil {
			t.Fatalf("yaml.Marshal(%s): %v", file, err)
		}
		again, err := Parse(out)
		if err != nil {
			t.Fatalf("Parse(Marshal(%s)) = %v\n%s", file, err, out)
		}
		if diff := cmp.Diff(cfg, again); diff != "" {
			t.Errorf("%s: round trip (-loaded +reparsed):\n%s", file, diff)
		}
	}
	js, err := json.Marshal(mustLoad(t, "switchyard.example.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`"interval":"250ms"`, `"max_packet_size":"64MiB"`, `"server_version":""`} {
		if !strings.Contains(string(js), want) {
			t.Errorf("JSON lacks %s:\n%s", want, js)
		}
	}
}

func TestRedacted(t *testing.T) {
	cfg := mustLoad(t, "testdata/full.good.yaml")
	r := cfg.Redacted()
	if r.Users[0].Password != redacted || r.Users[1].PasswordHash != redacted ||
		r.Monitor.Password != redacted || r.Admin.Token != redacted ||
		r.Failover.Password != redacted || r.Failover.ReplicationPassword != redacted {
		t.Errorf("Redacted() left a secret: %+v %+v %+v %+v", r.Users, r.Monitor, r.Admin, r.Failover)
	}
	if r.Users[1].Password != "" {
		t.Errorf("Redacted() filled an empty password: %q", r.Users[1].Password)
	}
	// Apart from the secrets, the copy is equal.
	back := *r
	back.Users = []User{cfg.Users[0], cfg.Users[1]}
	back.Monitor.Password, back.Admin.Token = cfg.Monitor.Password, cfg.Admin.Token
	back.Failover.Password, back.Failover.ReplicationPassword = cfg.Failover.Password, cfg.Failover.ReplicationPassword
	if diff := cmp.Diff(cfg, &back); diff != "" {
		t.Errorf("Redacted() changed more than secrets (-orig +redacted):\n%s", diff)
	}
	// The copy is deep: the original keeps its secrets and slices.
	r.Users[0].Name, r.Backends[0].Name = "changed", "changed"
	if cfg.Users[0].Password != "secret" || cfg.Users[0].Name != "app" || cfg.Backends[0].Name != "db1" {
		t.Errorf("Redacted() shares state with the original: %+v %+v", cfg.Users[0], cfg.Backends[0])
	}
	js, err := json.Marshal(cfg.Redacted())
	if err != nil {
		t.Fatal(err)
	}
	for _, secret := range []string{"secret", "admin-token", "6bb4837e"} {
		if strings.Contains(string(js), secret) {
			t.Errorf("redacted JSON contains %q:\n%s", secret, js)
		}
	}
}

func TestParseResolvesNoPaths(t *testing.T) {
	cfg, err := Parse([]byte("users: [{name: a, password: b}]\nbackends: [{address: \"h:1\"}]\nrsa_key: testdata/tls/rsa.pem\n"))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.RSAKey != "testdata/tls/rsa.pem" {
		t.Errorf("rsa_key = %q, want it unchanged", cfg.RSAKey)
	}
}

func TestErrorsFormat(t *testing.T) {
	errs := Errors{{Path: "backends[1].address", Msg: "missing port"}, {Msg: "yaml: bad"}}
	want := "backends[1].address: missing port\nyaml: bad"
	if errs.Error() != want {
		t.Errorf("Error() = %q, want %q", errs.Error(), want)
	}
	if err := Default().Validate(); err == nil {
		t.Error("Default().Validate() = nil, want errors for missing users and backends")
	}
}
