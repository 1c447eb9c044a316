package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"reflect"

	"go.yaml.in/yaml/v3"
)

// Load reads, decodes and validates the configuration file at path. Relative
// file paths inside it (tls.cert, tls.key, rsa_key, and ca, cert and key of
// backend_tls and backends[].tls) are taken relative to the file's
// directory. Problems with the content come back as Errors.
func Load(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read config: %w", err)
	}
	return parse(data, filepath.Dir(path), os.LookupEnv)
}

// Parse decodes and validates a configuration held in memory. Relative file
// paths are left as they are, so they resolve against the working directory.
// Problems come back as Errors.
func Parse(data []byte) (*Config, error) {
	return parse(data, "", os.LookupEnv)
}

// parse runs Default -> env expansion -> strict decode -> Validate. When
// expansion or decoding finds problems it returns them without validating:
// a half-decoded config would only add misleading follow-on errors.
func parse(data []byte, dir string, lookup func(string) (string, bool)) (*Config, error) {
	var doc yaml.Node
	dec := yaml.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&doc); err != nil && !errors.Is(err, io.EOF) {
		return nil, Errors{{Msg: err.Error()}}
	}
	var next yaml.Node
	switch err := dec.Decode(&next); {
	case errors.Is(err, io.EOF):
	case err != nil:
		return nil, Errors{{Msg: err.Error()}}
	default:
		return nil, Errors{{Msg: fmt.Sprintf("only one YAML document is allowed, another starts at line %d", next.Line)}}
	}

	cfg := Default()
	var errs Errors
	if doc.Kind == yaml.DocumentNode && len(doc.Content) == 1 {
		exp := expandEnv(&doc, lookup, &errs)
		d := &decoder{errs: &errs, exp: exp, budget: maxNodes}
		d.decode(doc.Content[0], reflect.ValueOf(cfg).Elem(), "")
	}
	if len(errs) > 0 {
		return nil, errs
	}
	if dir != "" {
		files := []*string{&cfg.TLS.Cert, &cfg.TLS.Key, &cfg.RSAKey, &cfg.BackendTLS.CA, &cfg.BackendTLS.Cert, &cfg.BackendTLS.Key}
		for i := range cfg.Backends {
			t := &cfg.Backends[i].TLS
			files = append(files, &t.CA, &t.Cert, &t.Key)
		}
		for _, p := range files {
			if *p != "" && !filepath.IsAbs(*p) {
				*p = filepath.Join(dir, *p)
			}
		}
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return cfg, nil
}
