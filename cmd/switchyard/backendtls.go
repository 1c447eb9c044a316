package main

import (
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"os"

	"github.com/switchyard-db/switchyard/config"
)

// backendTLS builds the TLS client configuration for backend b under cfg,
// or returns nil when its mode is off. Preferred and required encrypt
// without checking the certificate, as MySQL's --ssl-mode does; verify-ca
// checks the chain against the CA; verify-identity also the name
// (server_name, else the host of the address). It reads the files anew, so
// that a reload picks up renewed certificates.
func backendTLS(cfg *config.Config, b config.Backend) (*tls.Config, error) {
	t := cfg.BackendTLSFor(b)
	if t.Mode == config.BackendTLSOff {
		return nil, nil
	}
	c := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: t.ServerName}
	if c.ServerName == "" {
		host, _, err := net.SplitHostPort(b.Address)
		if err != nil {
			return nil, fmt.Errorf("backend %s: %w", b.Label(), err)
		}
		c.ServerName = host
	}
	if t.Cert != "" {
		pair, err := tls.LoadX509KeyPair(t.Cert, t.Key)
		if err != nil {
			return nil, fmt.Errorf("backend %s: load tls certificate: %w", b.Label(), err)
		}
		c.Certificates = []tls.Certificate{pair}
	}
	if !t.Mode.Verifies() {
		c.InsecureSkipVerify = true
		return c, nil
	}
	pem, err := os.ReadFile(t.CA)
	if err != nil {
		return nil, fmt.Errorf("backend %s: read tls ca: %w", b.Label(), err)
	}
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("backend %s: tls ca %s holds no PEM certificate", b.Label(), t.CA)
	}
	c.RootCAs = roots
	if t.Mode == config.BackendTLSVerifyCA {
		// crypto/tls would check the name too: check the chain alone.
		c.InsecureSkipVerify = true
		c.VerifyConnection = verifyChain(roots)
	}
	return c, nil
}

// verifyChain returns a check that the server's certificate chains to
// roots, whatever name it carries.
func verifyChain(roots *x509.CertPool) func(tls.ConnectionState) error {
	return func(cs tls.ConnectionState) error {
		if len(cs.PeerCertificates) == 0 {
			return errors.New("tls: the server sent no certificate")
		}
		opts := x509.VerifyOptions{Roots: roots, Intermediates: x509.NewCertPool()}
		for _, c := range cs.PeerCertificates[1:] {
			opts.Intermediates.AddCert(c)
		}
		_, err := cs.PeerCertificates[0].Verify(opts)
		return err
	}
}

// backendTLSFiles returns a digest of the settings and file contents of
// every backend's TLS, so that a reload can tell whether the monitor must
// reconnect: renewed certificates keep their file names.
func backendTLSFiles(cfg *config.Config) [sha256.Size]byte {
	h := sha256.New()
	for _, b := range cfg.Backends {
		t := cfg.BackendTLSFor(b)
		fmt.Fprintf(h, "%q %+v\n", b.Address, t)
		for _, name := range []string{t.CA, t.Cert, t.Key} {
			if name != "" {
				data, _ := os.ReadFile(name) // a file gone since Load shows as a change
				fmt.Fprintf(h, "%d:%s\n", len(data), data)
			}
		}
	}
	var sum [sha256.Size]byte
	h.Sum(sum[:0])
	return sum
}
