package spec

// PathNormalization is how an HTTP listener rewrites a request's path before anything looks
// at it: the readiness path, route matching, the access log and the upstream all see the
// rewritten path, so that the route chosen and the resource the upstream serves cannot
// disagree (RFC 3986 section 6; Envoy's normalize_path, merge_slashes and
// path_with_escaped_slashes_action). The zero value changes nothing.
//
// The steps run in Envoy's order: escaped slashes first, then RFC 3986 normalization, then
// merging slashes. The query string is never touched.
type PathNormalization struct {
	// Normalize applies RFC 3986 section 6.2.2: percent-encoded unreserved characters
	// (ALPHA, DIGIT, '-', '.', '_', '~') are decoded, the hex digits of the other
	// percent-encodings are upper-cased, and the dot segments "." and ".." are removed
	// (section 5.2.4), "%2E" counting as '.'. A ".." that would climb above the root, and an
	// encoded NUL, are rejected rather than repaired: no client that means well sends them.
	Normalize bool
	// MergeSlashes replaces every run of slashes with one ("//a///b" is "/a/b").
	MergeSlashes bool
	// EscapedSlashes is what happens to a path with %2F or %5C (either case).
	EscapedSlashes EscapedSlashesAction
}

// EscapedSlashesAction is what a listener does with a path holding an escaped slash (%2F) or
// backslash (%5C). The values mirror Envoy's path_with_escaped_slashes_action.
type EscapedSlashesAction int

const (
	// KeepEscapedSlashes forwards them as they are (hex upper-cased under Normalize): a
	// %2F is part of its segment, not a separator.
	KeepEscapedSlashes EscapedSlashesAction = iota
	// RejectEscapedSlashes answers 400.
	RejectEscapedSlashes
	// UnescapeAndRedirect answers 307 to the path with both unescaped to '/' (and
	// normalized), so that the client, every proxy and the upstream then see one path.
	// gRPC requests, which cannot follow a redirect, get 400.
	UnescapeAndRedirect
	// UnescapeAndForward unescapes both to '/' and forwards the request.
	UnescapeAndForward
)

func (a EscapedSlashesAction) String() string {
	switch a {
	case RejectEscapedSlashes:
		return "reject_request"
	case UnescapeAndRedirect:
		return "unescape_and_redirect"
	case UnescapeAndForward:
		return "unescape_and_forward"
	}
	return "keep_unchanged"
}
