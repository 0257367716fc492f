package simulator

import (
	"fmt"
	"net/http"
)

// Error codes returned by the simulator. Where the public ECI reference
// does not publish a code, the choice is made here, once, so that clients
// and tests can match on these constants.
const (
	// CodeMissingParameter: a required parameter is absent; Message names it.
	CodeMissingParameter = "MissingParameter"
	// CodeInvalidParameter: a parameter has an invalid value; Message names it.
	CodeInvalidParameter = "InvalidParameter"
	// CodeUnknownParameter: a request parameter the published API of the
	// action does not define (HTTP 400); Message names it and the action.
	// The real cloud may ignore such a parameter silently; see
	// checkPublished.
	CodeUnknownParameter = "UnknownParameter"
	// CodeInvalidAction: unknown Action (HTTP 404).
	CodeInvalidAction = "InvalidAction.NotFound"
	// CodeInvalidVersion: Version is not 2018-08-08.
	CodeInvalidVersion = "InvalidVersion"
	// CodeInvalidAccessKeyID: the AccessKeyId is not configured (HTTP 404).
	CodeInvalidAccessKeyID = "InvalidAccessKeyId.NotFound"
	// CodeSignatureDoesNotMatch: the signature v1 check failed.
	CodeSignatureDoesNotMatch = "SignatureDoesNotMatch"
	// CodeSignatureNonceUsed: a SignatureNonce was replayed within 15 minutes.
	CodeSignatureNonceUsed = "SignatureNonceUsed"
	// CodeInvalidTimestampFormat: Timestamp is not ISO 8601 UTC.
	CodeInvalidTimestampFormat = "InvalidTimeStamp.Format"
	// CodeInvalidTimestampExpired: Timestamp is too far from the wall clock.
	CodeInvalidTimestampExpired = "InvalidTimeStamp.Expired"
	// CodeUnsupportedSignatureMethod: SignatureMethod is not HMAC-SHA1.
	CodeUnsupportedSignatureMethod = "UnsupportedSignatureMethod"
	// CodeInvalidRegionID: RegionId is not the simulated region (HTTP 404).
	CodeInvalidRegionID = "InvalidRegionId.NotFound"
	// CodeInvalidZoneID: ZoneId does not exist (HTTP 404).
	CodeInvalidZoneID = "InvalidZoneId.NotFound"
	// CodeInvalidVSwitchID: a listed VSwitchId does not exist (HTTP 404).
	CodeInvalidVSwitchID = "InvalidVSwitchId.NotFound"
	// CodeVSwitchIPNotEnough: zones had stock but the vSwitches had no free IP (HTTP 403).
	CodeVSwitchIPNotEnough = "InvalidVSwitchId.IpNotEnough"
	// CodeInvalidSecurityGroupID: SecurityGroupId does not exist (HTTP 404).
	CodeInvalidSecurityGroupID = "InvalidSecurityGroupId.NotFound"
	// CodeContainerGroupNotFound: unknown ContainerGroupId (HTTP 404).
	CodeContainerGroupNotFound = "InvalidContainerGroupId.NotFound"
	// CodeContainerNotFound: unknown ContainerName in the group (HTTP 404).
	CodeContainerNotFound = "InvalidContainerName.NotFound"
	// CodeImageCacheNotFound: unknown ImageCacheId (HTTP 404).
	CodeImageCacheNotFound = "InvalidImageCacheId.NotFound"
	// CodeIncorrectStatus: the group or container is in a status that does
	// not allow the operation, e.g. restarting a Succeeded group (HTTP 403).
	CodeIncorrectStatus = "IncorrectStatus"
	// CodeNoStock: no candidate zone has enough vCPU/memory (HTTP 403).
	CodeNoStock = "OperationDenied.NoStock"
	// CodeThrottling: a per-operation rate quota is exhausted (HTTP 400).
	CodeThrottling = "Throttling.User"
	// CodeIdempotentParameterMismatch: a ClientToken was reused with other parameters.
	CodeIdempotentParameterMismatch = "IdempotentParameterMismatch"
	// CodeDryRunOperation: DryRun=true and the request would have succeeded.
	CodeDryRunOperation = "DryRunOperation"
	// CodeInternalError is the default injected fault (HTTP 500).
	CodeInternalError = "InternalError"
	// CodeServiceUnavailable can be injected as a fault (HTTP 503).
	CodeServiceUnavailable = "ServiceUnavailable"
)

// Messages fixed by the public documentation.
const (
	msgThrottling    = "Request was denied due to user flow control."
	msgInternalError = "The request processing has failed due to some unknown error, exception or failure."
)

// apiError is an OpenAPI error response.
type apiError struct {
	Status  int
	Code    string
	Message string
	// Detail, when set, is rendered as AccessDeniedDetail (Forbidden.RAM).
	Detail map[string]any
}

// Error formats the error as "Code: Message".
func (e *apiError) Error() string { return fmt.Sprintf("%s: %s", e.Code, e.Message) }

func newError(status int, code, format string, args ...any) *apiError {
	return &apiError{Status: status, Code: code, Message: fmt.Sprintf(format, args...)}
}

func errMissing(name string) *apiError {
	return newError(http.StatusBadRequest, CodeMissingParameter,
		"The input parameter %q that is mandatory for processing this request is not supplied.", name)
}

func errInvalid(name, format string, args ...any) *apiError {
	return newError(http.StatusBadRequest, CodeInvalidParameter,
		"The specified parameter %q is not valid: %s", name, fmt.Sprintf(format, args...))
}

func errGroupNotFound(id string) *apiError {
	return newError(http.StatusNotFound, CodeContainerGroupNotFound,
		"The specified ContainerGroupId %q does not exist.", id)
}

func errIncorrectStatus(format string, args ...any) *apiError {
	return newError(http.StatusForbidden, CodeIncorrectStatus, format, args...)
}

// defaultStatusForCode maps a fault code to the HTTP status the cloud uses
// for it, so that admin-injected faults only need a code.
func defaultStatusForCode(code string) int {
	switch code {
	case CodeInternalError:
		return http.StatusInternalServerError
	case CodeServiceUnavailable:
		return http.StatusServiceUnavailable
	case CodeNoStock, CodeIncorrectStatus, CodeVSwitchIPNotEnough:
		return http.StatusForbidden
	case CodeContainerGroupNotFound, CodeInvalidAction, CodeInvalidAccessKeyID,
		CodeInvalidRegionID, CodeInvalidZoneID, CodeInvalidVSwitchID,
		CodeInvalidSecurityGroupID, CodeContainerNotFound, CodeImageCacheNotFound:
		return http.StatusNotFound
	default:
		return http.StatusBadRequest
	}
}
