package image

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/ecr"
	"github.com/google/go-containerregistry/pkg/authn"
)

// Keychain is what `make image-push` authenticates with: the Docker configuration
// (~/.docker/config.json, $DOCKER_CONFIG, credential helpers, `docker login`), and for
// Amazon ECR registries that it has no entry for, a token from ECR's GetAuthorizationToken
// with the default AWS credential chain (environment, shared config and SSO, container and
// instance roles).
func Keychain() authn.Keychain {
	return authn.NewMultiKeychain(authn.DefaultKeychain, &ECRKeychain{})
}

// ecrHost matches a private ECR registry: ACCOUNT.dkr.ecr[-fips].REGION.amazonaws.com[.cn].
var ecrHost = regexp.MustCompile(`^[0-9]{12}\.dkr\.ecr(-fips)?\.([a-z0-9-]+)\.amazonaws\.com(\.cn)?$`)

// ECRRegion returns the region of an ECR registry host, and whether host is one.
func ECRRegion(host string) (string, bool) {
	m := ecrHost.FindStringSubmatch(host)
	if m == nil {
		return "", false
	}
	return m[2], true
}

// ecrCallTimeout bounds the GetAuthorizationToken call.
const ecrCallTimeout = 30 * time.Second

// ECRKeychain resolves ECR registries to their authorization token and every other registry
// to authn.Anonymous (so that, last in a MultiKeychain, it changes nothing for them).
type ECRKeychain struct {
	// LoadConfig returns the AWS configuration for region; default: the SDK's default chain.
	LoadConfig func(ctx context.Context, region string) (aws.Config, error)

	mu     sync.Mutex
	tokens map[string]authn.Authenticator // by registry host
}

// Resolve implements authn.Keychain.
func (k *ECRKeychain) Resolve(r authn.Resource) (authn.Authenticator, error) {
	return k.ResolveContext(context.Background(), r)
}

// ResolveContext implements authn.ContextKeychain. A token is fetched once per registry
// (it lasts 12 hours, longer than any push).
func (k *ECRKeychain) ResolveContext(ctx context.Context, r authn.Resource) (authn.Authenticator, error) {
	host := r.RegistryStr()
	region, ok := ECRRegion(host)
	if !ok {
		return authn.Anonymous, nil
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	if a, ok := k.tokens[host]; ok {
		return a, nil
	}
	a, err := k.token(ctx, host, region)
	if err != nil {
		return nil, fmt.Errorf("ecr %s: %w", host, err)
	}
	if k.tokens == nil {
		k.tokens = map[string]authn.Authenticator{}
	}
	k.tokens[host] = a
	return a, nil
}

func (k *ECRKeychain) token(ctx context.Context, host, region string) (authn.Authenticator, error) {
	ctx, cancel := context.WithTimeout(ctx, ecrCallTimeout)
	defer cancel()
	load := k.LoadConfig
	if load == nil {
		load = func(ctx context.Context, region string) (aws.Config, error) {
			return awsconfig.LoadDefaultConfig(ctx, awsconfig.WithRegion(region))
		}
	}
	cfg, err := load(ctx, region)
	if err != nil {
		return nil, fmt.Errorf("aws config: %w", err)
	}
	out, err := ecr.NewFromConfig(cfg).GetAuthorizationToken(ctx, &ecr.GetAuthorizationTokenInput{})
	if err != nil {
		return nil, fmt.Errorf("GetAuthorizationToken: %w", err)
	}
	if len(out.AuthorizationData) == 0 || out.AuthorizationData[0].AuthorizationToken == nil {
		return nil, errors.New("GetAuthorizationToken: no authorization data")
	}
	raw, err := base64.StdEncoding.DecodeString(*out.AuthorizationData[0].AuthorizationToken)
	if err != nil {
		return nil, fmt.Errorf("GetAuthorizationToken: token: %w", err)
	}
	user, pass, ok := strings.Cut(string(raw), ":")
	if !ok {
		return nil, errors.New("GetAuthorizationToken: token is not user:password")
	}
	return authn.FromConfig(authn.AuthConfig{Username: user, Password: pass}), nil
}
