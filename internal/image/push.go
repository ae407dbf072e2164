package image

import (
	"context"
	"fmt"
	"net/http"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

// Push uploads idx (its images, their layers and configs, then the index) to ref
// (registry/repository:tag) and returns repository@sha256:... for pinning. Credentials come
// from keychain; a nil transport is http.DefaultTransport. Registries on localhost and
// 127.0.0.1 are reached over plain HTTP, as docker does.
func Push(ctx context.Context, idx v1.ImageIndex, ref string, keychain authn.Keychain, transport http.RoundTripper) (name.Digest, error) {
	tag, err := name.NewTag(ref, name.StrictValidation)
	if err != nil {
		return name.Digest{}, fmt.Errorf("IMAGE=%s: %w (want registry/repository:tag)", ref, err)
	}
	if transport == nil {
		transport = http.DefaultTransport
	}
	if err := remote.WriteIndex(tag, idx, remote.WithContext(ctx), remote.WithAuthFromKeychain(keychain), remote.WithTransport(transport)); err != nil {
		return name.Digest{}, fmt.Errorf("push %s: %w", tag, err)
	}
	d, err := idx.Digest()
	if err != nil {
		return name.Digest{}, err
	}
	return tag.Context().Digest(d.String()), nil
}
