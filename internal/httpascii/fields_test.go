package httpascii

import "testing"

func TestReadForwarded(t *testing.T) {
	f := ReadForwarded("content-type: text/plain\r\nConnection: A, b ,\tC\r\nCONNECTION: d,e,f\r\n" +
		"Content-Encoding:\r\nContent-Encoding: gzip\r\nX-Kept: 1\r\nDATE: now\r\n")
	if !f.HasType || f.Encoded || !f.HasDate {
		t.Fatalf("HasType %v Encoded %v HasDate %v, want true false true", f.HasType, f.Encoded, f.HasDate)
	}
	for _, name := range []string{"a", "B", "c", "D", "e", "F", "connection", "Keep-Alive", "TE", "trailer",
		"Transfer-Encoding", "Upgrade", "Proxy-Connection", "proxy-authenticate", "Proxy-Authorization"} {
		if !f.Skip(name) {
			t.Errorf("%q forwarded", name)
		}
	}
	for _, name := range []string{"X-Kept", "Content-Type", "Content-Length", "Date", "ab", "Connections", "T"} {
		if f.Skip(name) {
			t.Errorf("%q not forwarded", name)
		}
	}
	if f := ReadForwarded("Content-Encoding: br\r\nContent-Encoding:\r\n"); !f.Encoded || f.HasType || f.HasDate {
		t.Fatalf("%+v: want Encoded only", f)
	}
}

func TestCutField(t *testing.T) {
	name, value, rest := CutField("A: b:c \r\nD: e\r\n")
	if name != "A" || value != " b:c " || rest != "D: e\r\n" {
		t.Fatalf("%q %q %q", name, value, rest)
	}
}
