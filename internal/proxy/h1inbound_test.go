package proxy

import (
	"bufio"
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/gangway-ecs/gangway/internal/spec"
)

// The inbound HTTP/1 findings, through a real listener to a real upstream.
func TestInboundHTTP1Framing(t *testing.T) {
	a := startBackend(t, "a")
	srv := startServer(t, testSpec([]spec.Route{prefixRoute("app", "/", "app")}, []spec.Cluster{{Name: "app", Endpoints: []string{a.addr}}}))

	// readAnswers reads n responses within a second each: none waits for a timeout.
	readAnswers := func(t *testing.T, req string, n int) (*bufio.Reader, []*http.Response) {
		t.Helper()
		c := rawConn(t, srv.Addr("public"))
		io.WriteString(c, req)
		br := bufio.NewReader(c)
		var out []*http.Response
		for range n {
			c.SetReadDeadline(time.Now().Add(time.Second))
			resp, err := http.ReadResponse(br, nil)
			if err != nil {
				t.Fatalf("response %d: %v", len(out)+1, err)
			}
			io.ReadAll(resp.Body)
			out = append(out, resp)
		}
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		return br, out
	}

	t.Run("chunked spelled with a Kelvin sign is 501", func(t *testing.T) {
		before := a.hits.Load()
		br, resps := readAnswers(t, "POST /kelvin HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chun\u212Aed\r\n\r\n5\r\nhello\r\n0\r\n\r\n", 1)
		if resps[0].StatusCode != http.StatusNotImplemented {
			t.Fatalf("status %d, want 501", resps[0].StatusCode)
		}
		if _, err := br.ReadByte(); err == nil {
			t.Fatal("the connection stayed open")
		}
		if a.hits.Load() != before || a.saw("/kelvin") {
			t.Fatal("the request reached the upstream")
		}
	})
	t.Run("empty lines before request lines are ignored", func(t *testing.T) {
		_, resps := readAnswers(t, "\r\nGET /e1 HTTP/1.1\r\nHost: x\r\n\r\n"+
			"POST /e2 HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello\r\n"+
			"\nGET /e3 HTTP/1.1\r\nHost: x\r\n\r\n", 3)
		for i, resp := range resps {
			if resp.StatusCode != 200 {
				t.Fatalf("response %d: status %d", i+1, resp.StatusCode)
			}
		}
		for _, p := range []string{"/e1", "/e2", "/e3"} {
			if !a.saw(p) {
				t.Fatalf("%s did not reach the upstream", p)
			}
		}
	})
	t.Run("the framing is checked after OPTIONS * asking to upgrade", func(t *testing.T) {
		counter := srv.metrics.rejected.WithLabelValues("public", "content_length_and_transfer_encoding")
		before := testutil.ToFloat64(counter)
		br, resps := readAnswers(t, "OPTIONS * HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n"+
			"POST /after-options HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 2)
		if resps[0].StatusCode != 200 || resps[1].StatusCode != 400 {
			t.Fatalf("statuses %d, %d; want 200, 400", resps[0].StatusCode, resps[1].StatusCode)
		}
		if _, err := br.ReadByte(); err == nil {
			t.Fatal("the connection stayed open")
		}
		if got := testutil.ToFloat64(counter) - before; got != 1 {
			t.Fatalf("%v rejections counted, want 1: the checks did not see the request", got)
		}
	})
}
