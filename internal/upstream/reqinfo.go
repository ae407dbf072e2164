package upstream

import "context"

// RequestInfo travels in the request context so that the cluster can record which endpoint
// served the request for the access log.
type RequestInfo struct {
	Endpoint string
}

type requestInfoKey struct{}

func upstreamInfoFrom(ctx context.Context) *RequestInfo {
	info, _ := ctx.Value(requestInfoKey{}).(*RequestInfo)
	return info
}

// WithRequestInfo returns ctx carrying info, for the cluster that serves the request.
func WithRequestInfo(ctx context.Context, info *RequestInfo) context.Context {
	return context.WithValue(ctx, requestInfoKey{}, info)
}
