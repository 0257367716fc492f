package fake

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ack-virtual-node/ack-virtual-node/pkg/eci"
	sdkerrors "github.com/aliyun/alibaba-cloud-sdk-go/sdk/errors"
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
// and message: an *eci.Error built from the SDK's ServerError the way
// pkg/eci/client.go builds it, whose Class is the one pkg/eci gives that
// code and status. The class is learnt once per code and status by sending
// one call of a real eci.Client to a local server that answers that way,
// so the provider branches on these errors exactly as on the cloud's.
func APIError(op string, status int, code, message string) *eci.Error {
	body, _ := json.Marshal(map[string]string{"RequestId": newRequestID(), "Code": code, "Message": message})
	se, ok := sdkerrors.NewServerError(status, string(body), "").(*sdkerrors.ServerError)
	if !ok {
		panic("fake: the SDK's NewServerError no longer returns *errors.ServerError")
	}
	return &eci.Error{
		Action: op, Code: se.ErrorCode(), Message: se.Message(), RequestID: se.RequestId(),
		HTTPStatus: se.HttpStatus(), Class: learnClass(code, status), Err: se,
	}
}

// NoResponse is a call to op whose answer never arrived (connection reset,
// timeout): what the real client returns for a transport failure. The
// cloud may or may not have acted on the call.
func NoResponse(op string) *eci.Error {
	proto := learn("", 0)
	e := *proto
	e.Action = op
	return &e
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

// learnt holds, per code and status, the error a real eci.Client returned.
var learnt sync.Map // learnKey -> *eci.Error

type learnKey struct {
	code   string
	status int
}

func learnClass(code string, status int) eci.Class { return learn(code, status).Class }

// learn returns the error a real eci.Client returns when a call is
// answered with status and code, or gets no answer at all (status 0):
// pkg/eci classifies errors in unexported code, and asking it is the only
// way to stay in step with it.
func learn(code string, status int) *eci.Error {
	k := learnKey{code, status}
	if v, ok := learnt.Load(k); ok {
		return v.(*eci.Error)
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if status == 0 {
			// Drop the connection without an answer.
			if hj, ok := w.(http.Hijacker); ok {
				if conn, _, err := hj.Hijack(); err == nil {
					_ = conn.Close()
					return
				}
			}
			panic(http.ErrAbortHandler)
		}
		w.Header().Set("Content-Type", "application/json;charset=utf-8")
		w.WriteHeader(status)
		_ = json.NewEncoder(w).Encode(map[string]string{"RequestId": "FAKE-LEARN", "Code": code, "Message": "learning the class of " + code})
	}))
	defer srv.Close()
	cred, err := eci.StaticCredential("fake-access-key-id", "fake-access-key-secret")
	if err != nil {
		panic("fake: static credential: " + err.Error())
	}
	client, err := eci.NewClient(eci.Config{
		RegionId: "fake-region", Endpoint: srv.URL, Credential: cred, Timeout: 10 * time.Second,
		MaxAttempts: 1, Concurrency: 1, Limits: map[string]eci.Limit{OpDelete: {}},
		ThrottleBackoff: time.Nanosecond, MaxThrottleBackoff: time.Nanosecond,
	})
	if err != nil {
		panic("fake: eci client for learning error classes: " + err.Error())
	}
	err = client.DeleteContainerGroup(context.Background(), "eci-learn")
	var e *eci.Error
	if !errors.As(err, &e) {
		panic(fmt.Sprintf("fake: the eci client answered %v to code %q status %d, not an *eci.Error", err, code, status))
	}
	v, _ := learnt.LoadOrStore(k, e)
	return v.(*eci.Error)
}
