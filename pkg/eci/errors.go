package eci

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"

	sdkerrors "github.com/aliyun/alibaba-cloud-sdk-go/sdk/errors"
)

// Class is what a caller needs to know about a failed call to decide what to
// do next. Callers branch on the class, never on error strings.
type Class int

// Error classes, from "try again" to "stop and tell the user".
const (
	// ClassUnknown is an error nobody classified; treat as transient.
	ClassUnknown Class = iota
	// ClassNotFound: the group (or other object) does not exist.
	ClassNotFound
	// ClassStockOut: no zone among the requested vSwitches has capacity.
	ClassStockOut
	// ClassThrottled: flow control; back off and retry.
	ClassThrottled
	// ClassInvalid: the request itself is wrong; retrying will not help.
	ClassInvalid
	// ClassAuth: credentials are wrong, expired or lack permission.
	ClassAuth
	// ClassTransient: server error or no response; safe to retry.
	ClassTransient
	// ClassConflict: the ClientToken was reused with other parameters, or the
	// group is in a state that does not allow the operation.
	ClassConflict
)

var classNames = map[Class]string{
	ClassUnknown:   "unknown",
	ClassNotFound:  "not-found",
	ClassStockOut:  "stock-out",
	ClassThrottled: "throttled",
	ClassInvalid:   "invalid",
	ClassAuth:      "auth",
	ClassTransient: "transient",
	ClassConflict:  "conflict",
}

// String returns the class name used in logs and metric labels.
func (c Class) String() string { return classNames[c] }

// The retry policy: who sends a failed call again, by class. Each column
// is one method below: the client's own retries, a caller's later retry
// (polls, the log follower) and the provider's create retry.
//
//	class      RetryInClient  Retryable  RetryCreate
//	throttled  yes            yes        yes
//	transient  yes            yes        yes
//	unknown    -              yes        yes
//	stock-out  -              yes        yes (unless the pod is fail-fast)
//	auth       -              -          yes
//	not-found  -              -          -
//	invalid    -              -          -
//	conflict   -              -          -

// RetryInClient reports whether the client sends the same request again
// by itself, up to Config.MaxAttempts: after a jittered backoff for a
// server error or a lost response (the published advice: retry only on
// InternalError, ServiceUnavailable or no response), after the
// operation's pause for Throttling. A stock-out is not retried here: the
// caller decides whether to try other zones or specs.
func (c Class) RetryInClient() bool { return c == ClassTransient || c == ClassThrottled }

// Retryable reports whether the same call may succeed if sent again later
// by its caller (a poll, a log follower): the cloud's state or load may
// change, but not the request.
func (c Class) Retryable() bool {
	return c == ClassThrottled || c == ClassTransient || c == ClassUnknown || c == ClassStockOut
}

// RetryCreate reports whether a pod whose CreateContainerGroup failed
// stays Pending and has its create sent again later, instead of failing:
// every Retryable class, and ClassAuth, since credentials and RAM
// permissions are fixed outside the pod. A stock-out is retried only for a
// pod that allows it (eci-fail-strategy fail-back); the provider checks
// that first.
func (c Class) RetryCreate() bool { return c.Retryable() || c == ClassAuth }

// Error is a failed ECI call.
type Error struct {
	// Action is the API operation, e.g. CreateContainerGroup.
	Action string
	// Code is the cloud's error code, or "" when no response arrived.
	Code string
	// Message is the cloud's message (or the transport error).
	Message string
	// RequestID identifies the call for the cloud's support.
	RequestID string
	// HTTPStatus is the response status, 0 when none arrived.
	HTTPStatus int
	// Class is the classification of Code/HTTPStatus.
	Class Class
	// Err is the underlying error.
	Err error
}

func (e *Error) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "eci %s failed", e.Action)
	if e.Code != "" {
		fmt.Fprintf(&b, ": %s", e.Code)
	}
	if e.Message != "" {
		fmt.Fprintf(&b, ": %s", e.Message)
	}
	if e.RequestID != "" {
		fmt.Fprintf(&b, " (RequestId %s)", e.RequestID)
	}
	if permissionCodes[e.Code] {
		fmt.Fprintf(&b, ": %s", PolicyFix(e.Action))
	}
	return b.String()
}

// StableText is err's text without the request id of the ECI call it
// wraps (see Error): the same failure repeated gives the same text, so the
// Events that show it aggregate into one with a count, and a pod status
// that shows it does not change with every attempt. The request id
// belongs in a log line (RequestIDOf).
func StableText(err error) string {
	s := err.Error()
	var e *Error
	if errors.As(err, &e) && e.RequestID != "" {
		s = strings.ReplaceAll(s, " (RequestId "+e.RequestID+")", "")
	}
	return s
}

// RequestIDOf is the request id of the ECI call err wraps, "" if none.
func RequestIDOf(err error) string {
	var e *Error
	if errors.As(err, &e) {
		return e.RequestID
	}
	return ""
}

// permissionCodes are the answers that refuse one action by RAM policy:
// the AccessKey is valid and the cloud reachable, but the identity's
// policy lacks the action. They are ClassAuth (a create is retried later,
// as a policy is fixed outside the pod; nothing else retries them), and
// PermissionDenied tells them from a refused AccessKey.
var permissionCodes = map[string]bool{
	"Forbidden.RAM": true,
	"NoPermission":  true,
}

// PermissionDenied reports whether err is the cloud refusing one action by
// the RAM policy of the AccessKey (Forbidden.RAM), and which action.
func PermissionDenied(err error) (action string, ok bool) {
	var e *Error
	if errors.As(err, &e) && permissionCodes[e.Code] {
		return e.Action, true
	}
	return "", false
}

// KeyRefused reports whether err is the cloud refusing the AccessKey
// itself, whatever the action: unknown or disabled key, wrong secret,
// expired STS token, or credentials that cannot be resolved at all.
func KeyRefused(err error) bool {
	if ClassOf(err) != ClassAuth {
		return false
	}
	_, perm := PermissionDenied(err)
	return !perm
}

// NoAnswer reports whether err is a call that got no answer from the
// cloud at all (connection refused, DNS, timeout) or a server-side
// failure (5xx): the endpoint is unreachable or unavailable.
func NoAnswer(err error) bool {
	var e *Error
	if !errors.As(err, &e) || e.Class != ClassTransient {
		return false
	}
	// A call its caller gave up on says nothing about the cloud.
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return false
	}
	return e.HTTPStatus == 0 || e.HTTPStatus >= 500
}

// PolicyFix is the advice for an action the RAM policy refused.
func PolicyFix(action string) string {
	return fmt.Sprintf(`the RAM policy of the AccessKey does not allow "eci:%s": add it to the policy's Action list `+
		"(`vnodectl doctor` lists every action the controller needs) or grant AliyunECIFullAccess", action)
}

// Unwrap returns the underlying error.
func (e *Error) Unwrap() error { return e.Err }

// ClassOf returns the class of err, ClassUnknown when err is not an ECI error.
func ClassOf(err error) Class {
	var e *Error
	if errors.As(err, &e) {
		return e.Class
	}
	return ClassUnknown
}

// IsNotFound reports whether err says the object does not exist.
func IsNotFound(err error) bool { return err != nil && ClassOf(err) == ClassNotFound }

// credentialError is a failure to resolve the AccessKey before a request
// could be signed (the credentials chain failed, or gave an empty key).
// toError classes it ClassAuth.
type credentialError struct{ err error }

func (e *credentialError) Error() string { return e.err.Error() }
func (e *credentialError) Unwrap() error { return e.err }

// codeClasses lists the codes whose class cannot be told from the HTTP status
// or a generic suffix. Keep every code-to-class decision here.
var codeClasses = map[string]Class{
	"OperationDenied.NoStock":         ClassStockOut,
	"NoStock":                         ClassStockOut,
	"StockExhaust":                    ClassStockOut,
	"Throttling":                      ClassThrottled,
	"Throttling.User":                 ClassThrottled,
	"Throttling.Api":                  ClassThrottled,
	"ServiceUnavailable":              ClassTransient,
	"InternalError":                   ClassTransient,
	"UnknownError":                    ClassTransient,
	"InvalidAccessKeyId.NotFound":     ClassAuth,
	"InvalidAccessKeyId":              ClassAuth,
	"SignatureDoesNotMatch":           ClassAuth,
	"InvalidSecurityToken.Expired":    ClassAuth,
	"Forbidden.RAM":                   ClassAuth,
	"NoPermission":                    ClassAuth,
	"IdempotentParameterMismatch":     ClassConflict,
	"IncorrectStatus":                 ClassConflict,
	"InvalidVSwitchId.NotFound":       ClassInvalid,
	"InvalidSecurityGroupId.NotFound": ClassInvalid,
	"InvalidRegionId.NotFound":        ClassInvalid,
	"InvalidAction.NotFound":          ClassInvalid,
	// DeleteImageCache/DescribeImageCaches of a cache that is gone.
	"InvalidImageCacheId.NotFound": ClassNotFound,
}

// classify decides the class of a cloud error code with its HTTP status.
func classify(code string, status int) Class {
	if c, ok := codeClasses[code]; ok {
		return c
	}
	switch {
	case strings.HasPrefix(code, "Throttling"):
		return ClassThrottled
	case strings.HasPrefix(code, "Forbidden"):
		return ClassAuth
	case strings.HasSuffix(code, ".NotFound") && strings.Contains(code, "ContainerGroup"):
		return ClassNotFound
	case strings.HasSuffix(code, ".NotFound") || strings.HasPrefix(code, "Invalid") ||
		strings.HasPrefix(code, "Missing") || strings.HasPrefix(code, "OperationDenied"):
		return ClassInvalid
	case code == "" && status == 0:
		return ClassTransient
	case status >= 500:
		return ClassTransient
	case status == http.StatusNotFound:
		return ClassNotFound
	case status == http.StatusUnauthorized || status == http.StatusForbidden:
		return ClassAuth
	case status >= 400:
		return ClassInvalid
	}
	return ClassUnknown
}

// AnswerError is the error the client returns when the cloud answers action
// with an HTTP status and an error body (code, message, request id),
// classified exactly as the client classifies the cloud's answers. Fakes of
// the cloud build their errors with it, so code under test branches on
// them as on real answers.
func AnswerError(action string, status int, code, message, requestID string) *Error {
	body, _ := json.Marshal(map[string]string{"RequestId": requestID, "Code": code, "Message": message})
	return toError(action, sdkerrors.NewServerError(status, string(body), ""))
}

// NoAnswerError is the error the client returns when a call of action got
// no answer (cause: the transport's error). The cloud may or may not have
// acted on the call.
func NoAnswerError(action string, cause error) *Error { return toError(action, cause) }

// toError converts the SDK's error types into a classified *Error.
func toError(action string, err error) *Error {
	var se *sdkerrors.ServerError
	if errors.As(err, &se) {
		return &Error{
			Action: action, Code: se.ErrorCode(), Message: se.Message(), RequestID: se.RequestId(),
			HTTPStatus: se.HttpStatus(), Class: classify(se.ErrorCode(), se.HttpStatus()), Err: err,
		}
	}
	// Credentials that cannot be resolved are an auth problem; anything
	// else (the SDK's client errors: timeouts, connections) got no answer.
	var ce *credentialError
	if errors.As(err, &ce) {
		return &Error{Action: action, Message: err.Error(), Class: ClassAuth, Err: err}
	}
	return &Error{Action: action, Message: err.Error(), Class: ClassTransient, Err: err}
}
