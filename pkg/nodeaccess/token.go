package nodeaccess

import (
	"context"
	"crypto/rand"
	"fmt"
	"math/big"
	"sort"
	"strings"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
)

// Bootstrap token Secret format (k8s.io/cluster-bootstrap/token/api).
const (
	bootstrapSecretType    corev1.SecretType = "bootstrap.kubernetes.io/token"
	bootstrapSecretPrefix                    = "bootstrap-token-"
	bootstrapTokenChars                      = "0123456789abcdefghijklmnopqrstuvwxyz"
	keyTokenID                               = "token-id"
	keyTokenSecret                           = "token-secret"
	keyExpiration                            = "expiration"
	keyUsageAuthentication                   = "usage-bootstrap-authentication"
	keyUsageSigning                          = "usage-bootstrap-signing"
	keyExtraGroups                           = "auth-extra-groups"
	keyDescription                           = "description"
	// serviceAccountTokenSecret is the long-lived token Secret of
	// serviceaccount mode.
	serviceAccountTokenSecret = ServiceAccountName + "-token"
)

// Token is a credential vnodectl issued or reused.
type Token struct {
	// Value is the bearer token for the kubeconfig.
	Value string
	// Expires is zero when the token does not expire.
	Expires time.Time
	// Reused is true when an existing token was kept.
	Reused bool
	// Source names the object that holds the token, for the user.
	Source string
}

// TokenOptions select lifetimes and rotation.
type TokenOptions struct {
	// TTL is the token lifetime; 0 means no expiry (a token Secret).
	TTL time.Duration
	// Rotate issues a new token and deletes the old ones even when a valid
	// one exists.
	Rotate bool
	// Now is the clock (tests); zero means time.Now.
	Now func() time.Time
}

func (o TokenOptions) now() time.Time {
	if o.Now != nil {
		return o.Now()
	}
	return time.Now()
}

func bootstrapSelector() string {
	return LabelManagedBy + "=" + ManagedByValue + "," + LabelTokenMode + "=" + string(ModeBootstrap)
}

// EnsureBootstrapToken returns vnodectl's bootstrap token: the existing one
// when it is still valid for at least a minute and not asked to rotate,
// else a new one. Every other token Secret vnodectl made is deleted, so
// there is never more than one.
func EnsureBootstrapToken(ctx context.Context, kube kubernetes.Interface, o TokenOptions) (Token, error) {
	secrets := kube.CoreV1().Secrets(Namespace)
	list, err := secrets.List(ctx, metav1.ListOptions{LabelSelector: bootstrapSelector()})
	if err != nil {
		return Token{}, fmt.Errorf("list bootstrap token Secrets in %s: %w", Namespace, err)
	}
	// Newest first: it is the one to keep.
	items := list.Items
	sort.Slice(items, func(i, j int) bool {
		return items[j].CreationTimestamp.Before(&items[i].CreationTimestamp)
	})
	var keep *corev1.Secret
	if !o.Rotate {
		for i := range items {
			if tokenUsable(&items[i], o.now()) {
				keep = &items[i]
				break
			}
		}
	}
	var out Token
	if keep != nil {
		out = Token{Value: string(keep.Data[keyTokenID]) + "." + string(keep.Data[keyTokenSecret]), Reused: true, Source: "Secret " + Namespace + "/" + keep.Name}
		if exp, err := time.Parse(time.RFC3339, string(keep.Data[keyExpiration])); err == nil {
			out.Expires = exp
		}
	} else {
		id, err := randomString(6)
		if err != nil {
			return Token{}, err
		}
		secret, err := randomString(16)
		if err != nil {
			return Token{}, err
		}
		s := &corev1.Secret{
			ObjectMeta: metav1.ObjectMeta{
				Name: bootstrapSecretPrefix + id, Namespace: Namespace,
				Labels: map[string]string{LabelManagedBy: ManagedByValue, LabelTokenMode: string(ModeBootstrap)},
			},
			Type: bootstrapSecretType,
			StringData: map[string]string{
				keyTokenID: id, keyTokenSecret: secret,
				keyUsageAuthentication: "true", keyUsageSigning: "true",
				keyExtraGroups: BootstrapGroup,
				keyDescription: "TLS bootstrap token of ack-virtual-node virtual nodes, managed by vnodectl",
			},
		}
		if o.TTL > 0 {
			out.Expires = o.now().Add(o.TTL).UTC().Truncate(time.Second)
			s.StringData[keyExpiration] = out.Expires.Format(time.RFC3339)
		}
		if _, err := secrets.Create(ctx, s, metav1.CreateOptions{}); err != nil {
			return Token{}, fmt.Errorf("create bootstrap token Secret %s/%s: %w", Namespace, s.Name, err)
		}
		out.Value, out.Source = id+"."+secret, "Secret "+Namespace+"/"+s.Name
	}
	for i := range items {
		if keep != nil && items[i].Name == keep.Name {
			continue
		}
		if err := secrets.Delete(ctx, items[i].Name, metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
			return out, fmt.Errorf("delete old bootstrap token Secret %s/%s: %w", Namespace, items[i].Name, err)
		}
	}
	return out, nil
}

// tokenUsable reports whether a bootstrap token Secret authenticates for at
// least another minute with the group vnode-approver's RBAC expects.
func tokenUsable(s *corev1.Secret, now time.Time) bool {
	if s.Type != bootstrapSecretType || len(s.Data[keyTokenID]) != 6 || len(s.Data[keyTokenSecret]) != 16 ||
		string(s.Data[keyUsageAuthentication]) != "true" || !strings.Contains(string(s.Data[keyExtraGroups]), BootstrapGroup) ||
		s.Name != bootstrapSecretPrefix+string(s.Data[keyTokenID]) {
		return false
	}
	if exp := string(s.Data[keyExpiration]); exp != "" {
		t, err := time.Parse(time.RFC3339, exp)
		if err != nil || t.Before(now.Add(time.Minute)) {
			return false
		}
	}
	return true
}

func randomString(n int) (string, error) {
	b := make([]byte, n)
	for i := range b {
		v, err := rand.Int(rand.Reader, big.NewInt(int64(len(bootstrapTokenChars))))
		if err != nil {
			return "", fmt.Errorf("random token: %w", err)
		}
		b[i] = bootstrapTokenChars[v.Int64()]
	}
	return string(b), nil
}

// EnsureServiceAccountToken creates (or keeps) the ServiceAccount
// kube-system/vnode and returns a token for it. With TTL 0 the token is a
// long-lived token Secret (kubernetes.io/service-account-token), kept
// across runs unless Rotate deletes and recreates it; with a TTL it is a
// TokenRequest, which the apiserver may cap (--service-account-max-token-
// expiration): the returned Expires is what was granted. Neither rotates
// by itself.
func EnsureServiceAccountToken(ctx context.Context, kube kubernetes.Interface, o TokenOptions) (Token, error) {
	sas := kube.CoreV1().ServiceAccounts(Namespace)
	_, err := sas.Create(ctx, &corev1.ServiceAccount{
		ObjectMeta: metav1.ObjectMeta{Name: ServiceAccountName, Namespace: Namespace, Labels: managedLabels()},
	}, metav1.CreateOptions{})
	if err != nil && !apierrors.IsAlreadyExists(err) {
		return Token{}, fmt.Errorf("create ServiceAccount %s/%s: %w", Namespace, ServiceAccountName, err)
	}
	secrets := kube.CoreV1().Secrets(Namespace)
	if o.TTL > 0 {
		// A TokenRequest replaces any long-lived token vnodectl made before.
		if err := secrets.Delete(ctx, serviceAccountTokenSecret, metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
			return Token{}, fmt.Errorf("delete old token Secret %s/%s: %w", Namespace, serviceAccountTokenSecret, err)
		}
		secs := int64(o.TTL / time.Second)
		tr, err := sas.CreateToken(ctx, ServiceAccountName, &authenticationv1.TokenRequest{
			Spec: authenticationv1.TokenRequestSpec{ExpirationSeconds: &secs},
		}, metav1.CreateOptions{})
		if err != nil {
			return Token{}, fmt.Errorf("request a token for ServiceAccount %s/%s: %w", Namespace, ServiceAccountName, err)
		}
		return Token{Value: tr.Status.Token, Expires: tr.Status.ExpirationTimestamp.Time, Source: "TokenRequest for ServiceAccount " + Namespace + "/" + ServiceAccountName}, nil
	}
	if o.Rotate {
		if err := secrets.Delete(ctx, serviceAccountTokenSecret, metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
			return Token{}, fmt.Errorf("delete token Secret %s/%s to rotate it: %w", Namespace, serviceAccountTokenSecret, err)
		}
		// The Secret carries the old token until it is really gone.
		if err := wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, 30*time.Second, true, func(ctx context.Context) (bool, error) {
			_, err := secrets.Get(ctx, serviceAccountTokenSecret, metav1.GetOptions{})
			return apierrors.IsNotFound(err), nil
		}); err != nil {
			return Token{}, fmt.Errorf("token Secret %s/%s was not deleted: %w", Namespace, serviceAccountTokenSecret, err)
		}
	}
	reused := true
	_, err = secrets.Create(ctx, &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{
			Name: serviceAccountTokenSecret, Namespace: Namespace,
			Labels:      map[string]string{LabelManagedBy: ManagedByValue, LabelTokenMode: string(ModeServiceAccount)},
			Annotations: map[string]string{corev1.ServiceAccountNameKey: ServiceAccountName},
		},
		Type: corev1.SecretTypeServiceAccountToken,
	}, metav1.CreateOptions{})
	switch {
	case err == nil:
		reused = false
	case !apierrors.IsAlreadyExists(err):
		return Token{}, fmt.Errorf("create token Secret %s/%s: %w", Namespace, serviceAccountTokenSecret, err)
	}
	// kube-controller-manager's token controller fills the token in.
	var token string
	err = wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, 60*time.Second, true, func(ctx context.Context) (bool, error) {
		s, err := secrets.Get(ctx, serviceAccountTokenSecret, metav1.GetOptions{})
		if err != nil {
			return false, nil
		}
		token = string(s.Data[corev1.ServiceAccountTokenKey])
		return token != "", nil
	})
	if err != nil {
		return Token{}, fmt.Errorf("token Secret %s/%s got no token within 60s (is kube-controller-manager running with --service-account-private-key-file?): %w", Namespace, serviceAccountTokenSecret, err)
	}
	return Token{Value: token, Reused: reused, Source: "Secret " + Namespace + "/" + serviceAccountTokenSecret}, nil
}
