package config

import (
	"crypto/tls"
	"crypto/x509"
	"net"
	"os"
	"strings"
)

// validateBackendTLS checks backend_tls, then each backends[].tls that sets
// anything. A problem is reported once, at the level that caused it: a
// verify mode without a CA under backend_tls when that is where both come
// from, under backends[i].tls when the backend chose the mode.
func (c *Config) validateBackendTLS(errs *Errors) {
	modes := []BackendTLSMode{BackendTLSOff, BackendTLSPreferred, BackendTLSRequired, BackendTLSVerifyCA, BackendTLSVerifyIdentity}
	g := c.BackendTLS
	if checkEnum(errs, "backend_tls.mode", g.Mode, modes...) && g.Mode.Verifies() && g.CA == "" {
		errs.add("backend_tls.ca", "required when backend_tls.mode is %s", g.Mode)
	}
	checkBackendTLSFiles(errs, "backend_tls", g, g)
	checkServerName(errs, "backend_tls.server_name", g.ServerName)
	for i, b := range c.Backends {
		if b.TLS == (BackendTLS{}) {
			continue
		}
		p := field(index("backends", i), "tls")
		if !checkEnum(errs, field(p, "mode"), b.TLS.Mode, append([]BackendTLSMode{BackendTLSInherit}, modes...)...) {
			continue
		}
		eff := c.BackendTLSFor(b)
		if b.TLS.Mode != BackendTLSInherit && eff.Mode.Verifies() && eff.CA == "" {
			errs.add(field(p, "ca"), "required when %s is %s (backend_tls.ca is not set either)", field(p, "mode"), eff.Mode)
		}
		checkBackendTLSFiles(errs, p, b.TLS, eff)
		checkServerName(errs, field(p, "server_name"), b.TLS.ServerName)
	}
}

// checkServerName checks a name verify-identity compares with the server's
// certificate: a host name or IP address, without a port or spaces (which
// would only fail later, at every handshake).
func checkServerName(errs *Errors, path, name string) {
	if name == "" {
		return
	}
	if strings.ContainsAny(name, ": \t/") || strings.HasPrefix(name, ".") || strings.HasSuffix(name, ".") ||
		strings.Contains(name, "..") {
		if net.ParseIP(name) == nil {
			errs.add(path, "%q is not a host name (no port, spaces or empty labels)", name)
		}
	}
}

// checkBackendTLSFiles checks the files own names (those set at path) and,
// when own sets a certificate or key, that the pair in force (eff) loads.
func checkBackendTLSFiles(errs *Errors, path string, own, eff BackendTLS) {
	if own.CA != "" {
		checkCAFile(errs, field(path, "ca"), own.CA)
	}
	certOK := own.Cert == "" || checkReadable(errs, field(path, "cert"), own.Cert)
	keyOK := own.Key == "" || checkReadable(errs, field(path, "key"), own.Key)
	if own.Cert == "" && own.Key == "" || !certOK || !keyOK {
		return
	}
	switch {
	case eff.Cert == "":
		errs.add(field(path, "cert"), "required when key is set")
	case eff.Key == "":
		errs.add(field(path, "key"), "required when cert is set")
	default:
		if _, err := tls.LoadX509KeyPair(eff.Cert, eff.Key); err != nil {
			errs.add(path, "cert and key do not load as a pair: %v", err)
		}
	}
}

// checkReadable reports whether name is a readable regular file.
func checkReadable(errs *Errors, path, name string) bool {
	if problem := fileProblem(name); problem != "" {
		errs.add(path, "%s", problem)
		return false
	}
	return true
}

// checkCAFile checks that name holds at least one PEM certificate.
func checkCAFile(errs *Errors, path, name string) {
	if !checkReadable(errs, path, name) {
		return
	}
	data, err := os.ReadFile(name)
	if err != nil {
		errs.add(path, "%v", err)
		return
	}
	if !x509.NewCertPool().AppendCertsFromPEM(data) {
		errs.add(path, "no PEM certificate in %q", name)
	}
}
