package fake

import (
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync/atomic"

	"github.com/ack-virtual-node/ack-virtual-node/pkg/eci"
)

// Error codes the fake answers with, as the ECI OpenAPI (and the simulator
// in test/simulator, which documents each) spells them.
const (
	CodeNoStock                     = "OperationDenied.NoStock"
	CodeThrottling                  = "Throttling.User"
	CodeIdempotentParameterMismatch = "IdempotentParameterMismatch"
	CodeInvalidParameter            = "InvalidParameter"
	CodeMissingParameter            = "MissingParameter"
	CodeInternalError               = "InternalError"
	CodeServiceUnavailable          = "ServiceUnavailable"
	CodeContainerGroupNotFound      = "InvalidContainerGroupId.NotFound"
	CodeContainerNotFound           = "InvalidContainerName.NotFound"
	CodeVSwitchNotFound             = "InvalidVSwitchId.NotFound"
	CodeIncorrectStatus             = "IncorrectStatus"
)

// APIError returns the error the real eci.Client returns when the cloud
// answers operation op with HTTP status and an error body carrying code
// and message (eci.AnswerError: classified by pkg/eci itself), so the
// provider branches on these errors exactly as on the cloud's.
func APIError(op string, status int, code, message string) *eci.Error {
	return eci.AnswerError(op, status, code, message, newRequestID())
}

// NoResponse is a call to op whose answer never arrived (connection reset,
// timeout): what the real client returns for a transport failure. The
// cloud may or may not have acted on the call.
func NoResponse(op string) *eci.Error {
	return eci.NoAnswerError(op, errors.New("read tcp: connection reset by peer (fake: the answer was lost)"))
}

// NoStock is the stock-out answer to a create: no zone among the requested
// vSwitches has capacity (HTTP 403).
func NoStock(op string, zones ...string) *eci.Error {
	return APIError(op, http.StatusForbidden, CodeNoStock,
		"The resource is out of stock in the specified zones; try other zones or other specifications. Zones tried: "+strings.Join(zones, ", ")+".")
}

// Throttled is the flow-control answer (Throttling.User, HTTP 400).
func Throttled(op string) *eci.Error {
	return APIError(op, http.StatusBadRequest, CodeThrottling, "Request was denied due to user flow control.")
}

// InternalError is a server error (HTTP 500).
func InternalError(op string) *eci.Error {
	return APIError(op, http.StatusInternalServerError, CodeInternalError,
		"The request processing has failed due to some unknown error, exception or failure.")
}

// ServiceUnavailable is a server error (HTTP 503).
func ServiceUnavailable(op string) *eci.Error {
	return APIError(op, http.StatusServiceUnavailable, CodeServiceUnavailable, "The request has failed due to a temporary failure of the server.")
}

// IdempotentParameterMismatch is the answer to a create whose ClientToken
// an earlier create used with other parameters (HTTP 400).
func IdempotentParameterMismatch() *eci.Error {
	return APIError(OpCreate, http.StatusBadRequest, CodeIdempotentParameterMismatch,
		"The request uses the same client token as a previous, but non-identical request.")
}

// InvalidParameter says parameter name has an invalid value (HTTP 400).
func InvalidParameter(op, name, why string) *eci.Error {
	return APIError(op, http.StatusBadRequest, CodeInvalidParameter,
		fmt.Sprintf("The specified parameter %q is not valid: %s", name, why))
}

// MissingParameter says a required parameter is absent (HTTP 400).
func MissingParameter(op, name string) *eci.Error {
	return APIError(op, http.StatusBadRequest, CodeMissingParameter,
		fmt.Sprintf("The input parameter %q that is mandatory for processing this request is not supplied.", name))
}

// GroupNotFound says container group id does not exist (HTTP 404).
func GroupNotFound(op, id string) *eci.Error {
	return APIError(op, http.StatusNotFound, CodeContainerGroupNotFound,
		fmt.Sprintf("The specified ContainerGroupId %q does not exist.", id))
}

// IncorrectStatus says the group's status does not allow op (HTTP 403).
func IncorrectStatus(op, message string) *eci.Error {
	return APIError(op, http.StatusForbidden, CodeIncorrectStatus, message)
}

var requestSeq atomic.Int64

func newRequestID() string {
	return fmt.Sprintf("FAKE-%012d", requestSeq.Add(1))
}
