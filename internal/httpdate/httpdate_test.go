package httpdate

import (
	"net/http"
	"testing"
	"time"
)

func TestNow(t *testing.T) {
	before := time.Now().Truncate(time.Second)
	got, err := http.ParseTime(Now())
	after := time.Now()
	if err != nil {
		t.Fatal(err)
	}
	if got.Before(before) || got.After(after) {
		t.Fatalf("Now() is %v, want between %v and %v", got, before, after)
	}
	if a, b := Now(), Now(); a != b && time.Now().Unix() == before.Unix() {
		t.Fatalf("two values in the same second: %q, %q", a, b)
	}
}
