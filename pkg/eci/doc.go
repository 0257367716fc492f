// Package eci is the project's client for the Elastic Container Instance
// OpenAPI (RPC style, product Eci, version 2018-08-08).
//
// The SDK's generated services/eci package is stale and sends wrong
// parameters (probe junk on every container, DefaultModel instead of
// DefaultMode, no ScheduleStrategy, no DescribeContainerGroupStatus), so this
// package keeps its own request and response types and sends them through the
// SDK core (sdk.Client + requests.CommonRequest), which signs requests with
// signature v1. The same client talks to the real endpoint
// (eci.<region>.aliyuncs.com over HTTPS) or to the project's simulator.
//
// Every error returned by the client is an *Error carrying a Class, decided in
// one place (errors.go: classify for the cloud's codes, toError for the SDK's
// error types); callers branch on the class, never on strings.
// The retry policy is in errors.go too: Class.RetryInClient (the client sends
// the request again), Class.Retryable (a caller may call again later) and
// Class.RetryCreate (a pod's create is tried again).
package eci
