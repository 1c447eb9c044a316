package config

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// Duration is a time.Duration written as a Go duration string: "250ms",
// "5s", "1m30s", "8h". A bare number other than 0 is rejected because its
// unit would be a guess. Whether negative or zero values are allowed is up to
// Validate, per field.
type Duration time.Duration

// Duration returns d as a time.Duration.
func (d Duration) Duration() time.Duration { return time.Duration(d) }

// String formats d like time.Duration does ("1m30s"), which parses back.
func (d Duration) String() string { return time.Duration(d).String() }

// MarshalText encodes d as its String form, for YAML and JSON alike.
func (d Duration) MarshalText() ([]byte, error) { return []byte(d.String()), nil }

// UnmarshalText parses a duration string.
func (d *Duration) UnmarshalText(text []byte) error {
	s := string(text)
	v, err := time.ParseDuration(s)
	if err != nil {
		if isDigits(s) {
			return fmt.Errorf("invalid duration %q: missing unit (write e.g. \"250ms\" or \"5s\")", s)
		}
		return fmt.Errorf("invalid duration %q (write e.g. \"250ms\", \"5s\" or \"1m30s\")", s)
	}
	*d = Duration(v)
	return nil
}

// UnmarshalYAML accepts a scalar duration string.
func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind != yaml.ScalarNode {
		return fmt.Errorf("expected a duration, got %s", kindName(n))
	}
	return d.UnmarshalText([]byte(n.Value))
}

// Size is a byte count written as a plain number of bytes ("1048576") or with
// a binary unit: "B", "KiB", "MiB", "GiB", "TiB" ("64MiB"). Decimal units
// such as "MB" are rejected because MySQL users read "M" as 2^20 and others
// read it as 10^6.
type Size int64

// Size units.
const (
	B   Size = 1
	KiB Size = 1 << 10
	MiB Size = 1 << 20
	GiB Size = 1 << 30
	TiB Size = 1 << 40
)

var sizeUnits = []struct {
	name string
	size Size
}{{"TiB", TiB}, {"GiB", GiB}, {"MiB", MiB}, {"KiB", KiB}, {"B", B}}

// String formats s with the largest unit that divides it exactly.
func (s Size) String() string {
	if s == 0 {
		return "0"
	}
	for _, u := range sizeUnits {
		if s%u.size == 0 && u.size > B {
			return strconv.FormatInt(int64(s/u.size), 10) + u.name
		}
	}
	return strconv.FormatInt(int64(s), 10)
}

// MarshalText encodes s as its String form, for YAML and JSON alike.
func (s Size) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// UnmarshalText parses a size such as "64MiB" or "1048576".
func (s *Size) UnmarshalText(text []byte) error {
	str := string(text)
	bad := fmt.Errorf("invalid size %q (write bytes, or a number with B, KiB, MiB, GiB or TiB, e.g. \"64MiB\")", str)
	num := strings.TrimRight(str, "BKMGTi")
	unit := strings.TrimSpace(str[len(num):])
	num = strings.TrimSpace(num)
	if !isDigits(num) {
		return bad
	}
	mult := Size(0)
	if unit == "" {
		mult = B
	}
	for _, u := range sizeUnits {
		if unit == u.name {
			mult = u.size
		}
	}
	if mult == 0 {
		return bad
	}
	n, err := strconv.ParseInt(num, 10, 64)
	if err != nil || n > math.MaxInt64/int64(mult) {
		return fmt.Errorf("size %q is too large", str)
	}
	*s = Size(n) * mult
	return nil
}

// UnmarshalYAML accepts a scalar size.
func (s *Size) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind != yaml.ScalarNode {
		return fmt.Errorf("expected a size, got %s", kindName(n))
	}
	return s.UnmarshalText([]byte(n.Value))
}

// isDigits reports whether s is a non-empty run of ASCII digits.
func isDigits(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}
