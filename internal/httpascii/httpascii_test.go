package httpascii

import (
	"strings"
	"testing"
)

func TestEqualFold(t *testing.T) {
	for _, tc := range []struct {
		s, t string
		want bool
	}{
		{"chunked", "chunked", true},
		{"CHUNKED", "chunked", true},
		{"ChUnKeD", "cHuNkEd", true},
		{"chun\u212Aed", "chunked", false}, // Kelvin sign: strings.EqualFold says true
		{"\u017Fec-websocket-key", "sec-websocket-key", false},
		{"chunked ", "chunked", false},
		{"", "", true},
		{"@", "`", false}, // 0x40 and 0x60 differ by the case bit but are not letters
		{"[", "{", false},
	} {
		if got := EqualFold(tc.s, tc.t); got != tc.want {
			t.Errorf("EqualFold(%q, %q) = %v, want %v", tc.s, tc.t, got, tc.want)
		}
		if got := EqualFold(tc.t, tc.s); got != tc.want {
			t.Errorf("EqualFold(%q, %q) = %v, want %v", tc.t, tc.s, got, tc.want)
		}
	}
	// The difference that matters, so that this test stays about it.
	if !strings.EqualFold("chun\u212Aed", "chunked") {
		t.Fatal("strings.EqualFold no longer folds the Kelvin sign")
	}
}

func TestLower(t *testing.T) {
	for in, want := range map[string]string{
		"Example.COM":  "example.com",
		"example.com":  "example.com",
		"\u212A.com":   "\u212A.com", // strings.ToLower makes it "k.com"
		"X-\u0130D":    "x-\u0130d",
		"[::1]:80":     "[::1]:80",
		"@[`{":         "@[`{",
		"":             "",
		"ALLUPPER-123": "allupper-123",
	} {
		if got := Lower(in); got != want {
			t.Errorf("Lower(%q) = %q, want %q", in, got, want)
		}
	}
	if n := testing.AllocsPerRun(100, func() { Lower("already.lower") }); n != 0 {
		t.Errorf("Lower of a lower-case string allocates %v times", n)
	}
}
