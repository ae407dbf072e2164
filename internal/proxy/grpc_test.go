package proxy

import (
	"context"
	"net"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"

	"github.com/gangway-ecs/gangway/internal/spec"
)

// TestGRPCThroughH2C proxies gRPC (HTTP/2 with response trailers, and a server stream
// whose messages must arrive as they are sent) from an h2c listener to an h2c upstream:
// grpc-go's health service, unary and streaming.
func TestGRPCThroughH2C(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	hs := health.NewServer()
	hs.SetServingStatus("app", healthpb.HealthCheckResponse_NOT_SERVING)
	gs := grpc.NewServer()
	healthpb.RegisterHealthServer(gs, hs)
	go gs.Serve(ln)
	t.Cleanup(gs.Stop)

	route := prefixRoute("grpc", "/", "grpc")
	route.Timeout = 0 // a stream
	spec := testSpec([]spec.Route{route}, []spec.Cluster{{Name: "grpc", Endpoints: []string{ln.Addr().String()}, HTTP2: true}})
	spec.Listeners[0].H2C = true
	srv := startServer(t, spec)

	cc, err := grpc.NewClient(srv.Addr("public"), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cc.Close() })
	client := healthpb.NewHealthClient(cc)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()

	resp, err := client.Check(ctx, &healthpb.HealthCheckRequest{Service: "app"})
	if err != nil || resp.Status != healthpb.HealthCheckResponse_NOT_SERVING {
		t.Fatalf("Check: %v %v", resp, err)
	}
	// An error status travels in the trailers only.
	if _, err := client.Check(ctx, &healthpb.HealthCheckRequest{Service: "unknown"}); status.Code(err) != codes.NotFound {
		t.Fatalf("Check of an unknown service: %v, want NotFound", err)
	}

	watch, err := client.Watch(ctx, &healthpb.HealthCheckRequest{Service: "app"})
	if err != nil {
		t.Fatal(err)
	}
	if m, err := watch.Recv(); err != nil || m.Status != healthpb.HealthCheckResponse_NOT_SERVING {
		t.Fatalf("first update: %v %v", m, err)
	}
	hs.SetServingStatus("app", healthpb.HealthCheckResponse_SERVING)
	if m, err := watch.Recv(); err != nil || m.Status != healthpb.HealthCheckResponse_SERVING {
		t.Fatalf("second update: %v %v", m, err)
	}
}
