package config

import (
	"testing"
	"time"
)

func TestDurationText(t *testing.T) {
	tests := []struct {
		in   string
		want time.Duration
		err  bool
	}{
		{in: "250ms", want: 250 * time.Millisecond},
		{in: "5s", want: 5 * time.Second},
		{in: "1m30s", want: 90 * time.Second},
		{in: "8h", want: 8 * time.Hour},
		{in: "0", want: 0},
		{in: "-1s", want: -time.Second}, // Validate decides per field
		{in: "250", err: true},
		{in: "soon", err: true},
		{in: "", err: true},
		{in: "5 s", err: true},
	}
	for _, tt := range tests {
		var d Duration
		err := d.UnmarshalText([]byte(tt.in))
		if (err != nil) != tt.err || (!tt.err && d.Duration() != tt.want) {
			t.Errorf("Duration.UnmarshalText(%q) = %v, %v; want %v, error %v", tt.in, d, err, tt.want, tt.err)
		}
		if err == nil {
			var back Duration
			text, _ := d.MarshalText()
			if err := back.UnmarshalText(text); err != nil || back != d {
				t.Errorf("Duration %q: MarshalText %q parses back as %v, %v", tt.in, text, back, err)
			}
		}
	}
}

func TestSizeText(t *testing.T) {
	tests := []struct {
		in   string
		want Size
		str  string
		err  bool
	}{
		{in: "64MiB", want: 64 << 20, str: "64MiB"},
		{in: "16KiB", want: 16 << 10, str: "16KiB"},
		{in: "1048576", want: 1 << 20, str: "1MiB"},
		{in: "1GiB", want: 1 << 30, str: "1GiB"},
		{in: "2TiB", want: 2 << 40, str: "2TiB"},
		{in: "1000", want: 1000, str: "1000"},
		{in: "1536B", want: 1536, str: "1536"},
		{in: "0", want: 0, str: "0"},
		{in: "64 MiB", want: 64 << 20, str: "64MiB"},
		{in: "64MB", err: true},
		{in: "64M", err: true},
		{in: "-1", err: true},
		{in: "1.5MiB", err: true},
		{in: "MiB", err: true},
		{in: "", err: true},
		{in: "9999999999TiB", err: true},
		{in: "99999999999999999999", err: true},
	}
	for _, tt := range tests {
		var s Size
		err := s.UnmarshalText([]byte(tt.in))
		if (err != nil) != tt.err || (!tt.err && s != tt.want) {
			t.Errorf("Size.UnmarshalText(%q) = %d, %v; want %d, error %v", tt.in, s, err, tt.want, tt.err)
			continue
		}
		if err == nil && s.String() != tt.str {
			t.Errorf("Size(%d).String() = %q, want %q", s, s.String(), tt.str)
		}
	}
}
