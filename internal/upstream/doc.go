// Package upstream is the data plane's upstream side: a Cluster is the running form of a
// spec.Cluster, with its endpoints (static, DNS or ECS discovery), the load balancer, active
// health checks, outlier ejection and the connection pool (an HTTP/1.1 pool of its own, or
// http.Transport for HTTP/2), and the TLS dial both the pool and TCP tunnels use. A Cluster
// gets what it needs from the data plane in a Deps value; it knows nothing of listeners,
// routes or the Server that owns it.
package upstream
