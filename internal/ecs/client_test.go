package ecs

import (
	"context"
	"errors"
	"net"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
)

// Which credential failures end a command at once: no source at all, or a configured source
// that answers with an error; not a configured source that cannot be reached for a moment.
func TestCredentialsCheck(t *testing.T) {
	refused := &net.OpError{Op: "dial", Net: "tcp", Err: errors.New("connection refused")}
	expired := errors.New("the SSO session has expired or is invalid")
	for _, tc := range []struct {
		name      string
		imdsOnly  bool
		err       error
		transient bool
		says      string
	}{
		{"nothing configured", true, refused, false, `Unable to locate credentials. You can configure credentials by running "aws configure".`},
		{"task credentials endpoint unreachable", false, refused, true, "connection refused"},
		{"expired SSO session", false, expired, false, "Unable to load credentials: the SSO session has expired"},
	} {
		c := credentialsCheck{aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) {
			return aws.Credentials{}, tc.err
		}), tc.imdsOnly}
		_, err := c.Retrieve(context.Background())
		if got := Transient(err); got != tc.transient {
			t.Errorf("%s: Transient = %v, want %v (%v)", tc.name, got, tc.transient, err)
		}
		if got := Explain(err).Error(); !strings.Contains(got, tc.says) {
			t.Errorf("%s: %q does not say %q", tc.name, got, tc.says)
		}
	}
}
