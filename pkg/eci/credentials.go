package eci

import (
	"errors"
	"fmt"

	sdkcreds "github.com/aliyun/alibaba-cloud-sdk-go/sdk/auth/credentials"
	"github.com/aliyun/credentials-go/credentials"
)

// credentialProvider adapts a credentials-go Credential to the SDK's
// CredentialsProvider. The SDK asks for credentials on every signed request,
// so STS tokens from RRSA/OIDC or an ECS RAM role rotate without a restart.
type credentialProvider struct {
	cred credentials.Credential
}

// GetCredentials returns the current AccessKey (and STS token, if any).
func (p credentialProvider) GetCredentials() (*sdkcreds.Credentials, error) {
	m, err := p.cred.GetCredential()
	if err != nil {
		return nil, &credentialError{fmt.Errorf("resolve Alibaba Cloud credentials: %w", err)}
	}
	out := &sdkcreds.Credentials{ProviderName: p.GetProviderName()}
	if m.AccessKeyId != nil {
		out.AccessKeyId = *m.AccessKeyId
	}
	if m.AccessKeySecret != nil {
		out.AccessKeySecret = *m.AccessKeySecret
	}
	if m.SecurityToken != nil {
		out.SecurityToken = *m.SecurityToken
	}
	if out.AccessKeyId == "" || out.AccessKeySecret == "" {
		return nil, &credentialError{errors.New("alibaba cloud credentials resolved to an empty AccessKey: set ALIBABA_CLOUD_ACCESS_KEY_ID and ALIBABA_CLOUD_ACCESS_KEY_SECRET (from the Secret kube-system/alibaba-addon-secret) or configure a RAM role")}
	}
	return out, nil
}

// GetProviderName names the credential source in the SDK's messages.
func (p credentialProvider) GetProviderName() string {
	if t := p.cred.GetType(); t != nil {
		return "credentials-go/" + *t
	}
	return "credentials-go"
}

// StaticCredential returns a credentials-go Credential for a fixed AccessKey
// pair, for tools and tests that are handed one explicitly.
func StaticCredential(id, secret string) (credentials.Credential, error) {
	typ := "access_key"
	return credentials.NewCredential(&credentials.Config{
		Type: &typ, AccessKeyId: &id, AccessKeySecret: &secret,
	})
}

// DefaultCredential returns credentials-go's default chain: environment
// (ALIBABA_CLOUD_ACCESS_KEY_ID/SECRET/SECURITY_TOKEN), OIDC/RRSA, config
// files, then the ECS instance RAM role.
func DefaultCredential() (credentials.Credential, error) {
	return credentials.NewCredential(nil)
}
