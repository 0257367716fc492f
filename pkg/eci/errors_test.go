package eci

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"testing"

	sdkerrors "github.com/aliyun/alibaba-cloud-sdk-go/sdk/errors"
	"github.com/aliyun/credentials-go/credentials"
)

// TestRetryPolicy pins who retries what, for every class: the table of
// errors.go's doc comment.
func TestRetryPolicy(t *testing.T) {
	tests := []struct {
		class                                 Class
		name                                  string
		retryInClient, retryable, retryCreate bool
	}{
		{ClassThrottled, "throttled", true, true, true},
		{ClassTransient, "transient", true, true, true},
		{ClassUnknown, "unknown", false, true, true},
		{ClassStockOut, "stock-out", false, true, true},
		{ClassAuth, "auth", false, false, true},
		{ClassNotFound, "not-found", false, false, false},
		{ClassInvalid, "invalid", false, false, false},
		{ClassConflict, "conflict", false, false, false},
	}
	if len(tests) != len(classNames) {
		t.Fatalf("the table covers %d classes, the package has %d: add the new class", len(tests), len(classNames))
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.class.String(); got != tt.name {
				t.Errorf("String() = %q, want %q", got, tt.name)
			}
			if got := tt.class.RetryInClient(); got != tt.retryInClient {
				t.Errorf("RetryInClient() = %v, want %v", got, tt.retryInClient)
			}
			if got := tt.class.Retryable(); got != tt.retryable {
				t.Errorf("Retryable() = %v, want %v", got, tt.retryable)
			}
			if got := tt.class.RetryCreate(); got != tt.retryCreate {
				t.Errorf("RetryCreate() = %v, want %v", got, tt.retryCreate)
			}
			// What the client retries, a caller may retry later; what a
			// caller may retry later, a create retries.
			if tt.class.RetryInClient() && !tt.class.Retryable() || tt.class.Retryable() && !tt.class.RetryCreate() {
				t.Error("the policy is not nested: RetryInClient ⊆ Retryable ⊆ RetryCreate")
			}
		})
	}
}

func TestClassify(t *testing.T) {
	tests := []struct {
		code   string
		status int
		want   Class
	}{
		{"OperationDenied.NoStock", 403, ClassStockOut},
		{"NoStock", 400, ClassStockOut},
		{"StockExhaust", 400, ClassStockOut},
		{"Throttling.User", 400, ClassThrottled},
		{"Throttling.Api", 400, ClassThrottled},
		{"Throttling.Concurrent", 400, ClassThrottled}, // by prefix
		{"ServiceUnavailable", 503, ClassTransient},
		{"InternalError", 500, ClassTransient},
		{"UnknownError", 500, ClassTransient},
		{"InvalidAccessKeyId.NotFound", 404, ClassAuth},
		{"SignatureDoesNotMatch", 400, ClassAuth},
		{"InvalidSecurityToken.Expired", 400, ClassAuth},
		{"Forbidden.RAM", 403, ClassAuth},
		{"Forbidden.Unauthorized", 403, ClassAuth}, // by prefix
		{"NoPermission", 403, ClassAuth},
		{"IdempotentParameterMismatch", 400, ClassConflict},
		{"IncorrectStatus", 400, ClassConflict},
		{"InvalidContainerGroupId.NotFound", 404, ClassNotFound},
		{"ContainerGroup.NotFound", 400, ClassNotFound},
		{"InvalidVSwitchId.NotFound", 404, ClassInvalid},
		{"InvalidSecurityGroupId.NotFound", 404, ClassInvalid},
		{"InvalidRegionId.NotFound", 404, ClassInvalid},
		{"InvalidAction.NotFound", 404, ClassInvalid},
		{"InvalidParameter", 400, ClassInvalid},
		{"MissingContainerName", 400, ClassInvalid},
		{"OperationDenied.QuotaExceed", 403, ClassInvalid},
		{"", 0, ClassTransient},
		{"", 502, ClassTransient},
		{"", http.StatusNotFound, ClassNotFound},
		{"", http.StatusUnauthorized, ClassAuth},
		{"", http.StatusForbidden, ClassAuth},
		{"", http.StatusConflict, ClassInvalid},
		{"SomethingNew", 200, ClassUnknown},
	}
	for _, tt := range tests {
		if got := classify(tt.code, tt.status); got != tt.want {
			t.Errorf("classify(%q, %d) = %v, want %v", tt.code, tt.status, got, tt.want)
		}
	}
}

// failingCredential is a credentials chain that cannot give a key (an STS
// refresh that fails).
type failingCredential struct{ credentials.Credential }

func (failingCredential) GetCredential() (*credentials.CredentialModel, error) {
	return nil, errors.New("refresh STS token: connection refused")
}
func (failingCredential) GetType() *string { s := "oidc_role_arn"; return &s }

// emptyCredential resolves to no AccessKey at all.
type emptyCredential struct{ credentials.Credential }

func (emptyCredential) GetCredential() (*credentials.CredentialModel, error) {
	return &credentials.CredentialModel{}, nil
}
func (emptyCredential) GetType() *string { return nil }

func TestToError(t *testing.T) {
	tests := []struct {
		name      string
		err       error
		wantClass Class
		wantCode  string
	}{
		{"server error", sdkerrors.NewServerError(400, `{"Code":"Throttling.User","Message":"Request was denied due to user flow control.","RequestId":"r-1"}`, ""),
			ClassThrottled, "Throttling.User"},
		{"server error without a code", sdkerrors.NewServerError(503, `<html>bad gateway</html>`, ""), ClassTransient, ""},
		{"SDK timeout", sdkerrors.NewClientError(sdkerrors.TimeoutErrorCode, "read timeout", nil), ClassTransient, ""},
		// The SDK's client errors say nothing about credentials even when
		// their message names them: only our credentialError does.
		{"SDK client error mentioning credentials", sdkerrors.NewClientError("SDK.Other", "no credentials here", nil), ClassTransient, ""},
		{"credentials unavailable", &credentialError{errors.New("resolve Alibaba Cloud credentials: boom")}, ClassAuth, ""},
		{"credentials unavailable, wrapped", fmt.Errorf("sign: %w", &credentialError{errors.New("empty AccessKey")}), ClassAuth, ""},
		{"connection refused", errors.New("dial tcp 127.0.0.1:1: connect: connection refused"), ClassTransient, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := toError("DescribeContainerGroups", tt.err)
			if e.Class != tt.wantClass || e.Code != tt.wantCode || e.Action != "DescribeContainerGroups" || !errors.Is(e, tt.err) {
				t.Errorf("toError = %+v, want class %v code %q wrapping the cause", e, tt.wantClass, tt.wantCode)
			}
		})
	}
}

// TestCredentialFailureIsAuth sends calls whose credentials cannot be
// resolved: they fail as ClassAuth before reaching the network (the
// endpoint is a closed port) and are not retried by the client.
func TestCredentialFailureIsAuth(t *testing.T) {
	for _, cred := range []credentials.Credential{failingCredential{}, emptyCredential{}} {
		c, err := NewClient(Config{RegionId: "cn-hangzhou", Endpoint: "http://127.0.0.1:1", Credential: cred})
		if err != nil {
			t.Fatal(err)
		}
		err = c.DeleteContainerGroup(context.Background(), "eci-x")
		var e *Error
		if !errors.As(err, &e) || e.Class != ClassAuth {
			t.Fatalf("%T: %v (class %v), want ClassAuth", cred, err, ClassOf(err))
		}
		if e.Class.RetryInClient() || !e.Class.RetryCreate() {
			t.Errorf("a credentials failure is retried in the client or not retried by the create")
		}
	}
}

// TestStableText: the same failure answered with two request ids gives one
// text (so its Events aggregate), wrapped or not, and the id stays
// available for the log line.
func TestStableText(t *testing.T) {
	mk := func(id string) error {
		return &Error{Action: "CreateContainerGroup", Code: "OperationDenied.NoStock", Message: "out of stock", RequestID: id, Class: ClassStockOut}
	}
	a, b := mk("REQ-1"), fmt.Errorf("attempt 2: %w", mk("REQ-2"))
	if got, want := StableText(a), "eci CreateContainerGroup failed: OperationDenied.NoStock: out of stock"; got != want {
		t.Errorf("StableText = %q, want %q", got, want)
	}
	if got := StableText(b); got != "attempt 2: "+StableText(a) {
		t.Errorf("StableText of a wrapped error = %q; want the wrapper's text with no request id", got)
	}
	if RequestIDOf(b) != "REQ-2" || RequestIDOf(errors.New("plain")) != "" {
		t.Errorf("RequestIDOf = %q, %q; want REQ-2 and empty", RequestIDOf(b), RequestIDOf(errors.New("plain")))
	}
	if got := StableText(errors.New("plain (RequestId x)")); got != "plain (RequestId x)" {
		t.Errorf("StableText changed an error that is no ECI answer: %q", got)
	}
}
