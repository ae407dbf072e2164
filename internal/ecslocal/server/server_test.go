package server

import (
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
)

// The errors a client sees for what the server cannot dispatch, checked on the wire.
func TestDispatchErrors(t *testing.T) {
	srv := httptest.NewServer(New(struct{}{}, struct{}{}, slog.New(slog.DiscardHandler)))
	defer srv.Close()
	post := func(contentType, target, body string) (int, string) {
		t.Helper()
		req, _ := http.NewRequest(http.MethodPost, srv.URL, strings.NewReader(body))
		req.Header.Set("Content-Type", contentType)
		if target != "" {
			req.Header.Set("X-Amz-Target", target)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	form := func(v url.Values) string { return v.Encode() }
	for _, c := range []struct {
		name, contentType, target, body string
		want                            []string
	}{
		{"ECS operation not implemented", "application/x-amz-json-1.1", ecsTargetPrefix + "CreateCapacityProvider", "{}",
			[]string{`"__type":"UnsupportedFeatureException"`, "CreateCapacityProvider"}},
		{"not an ECS operation", "application/x-amz-json-1.1", ecsTargetPrefix + "LaunchRocket", "{}",
			[]string{`"__type":"UnknownOperationException"`, "LaunchRocket"}},
		{"another service's target", "application/x-amz-json-1.1", "AmazonSQS.SendMessage", "{}",
			[]string{`"__type":"UnknownOperationException"`}},
		{"ELB operation not implemented", "application/x-www-form-urlencoded", "", form(url.Values{"Action": {"DescribeSSLPolicies"}, "Version": {elbVersion}}),
			[]string{"<Code>OperationNotPermitted</Code>", "DescribeSSLPolicies", "<Type>Sender</Type>"}},
		{"not an ELB action", "application/x-www-form-urlencoded", "", form(url.Values{"Action": {"LaunchRocket"}, "Version": {elbVersion}}),
			[]string{"<Code>InvalidAction</Code>"}},
		{"another API version", "application/x-www-form-urlencoded", "", form(url.Values{"Action": {"DescribeLoadBalancers"}, "Version": {"2012-06-01"}}),
			[]string{"<Code>InvalidAction</Code>", "2012-06-01"}},
	} {
		status, body := post(c.contentType, c.target, c.body)
		if status != http.StatusBadRequest {
			t.Errorf("%s: status %d, want 400", c.name, status)
		}
		for _, w := range c.want {
			if !strings.Contains(body, w) {
				t.Errorf("%s: body %s does not contain %s", c.name, body, w)
			}
		}
	}
}
