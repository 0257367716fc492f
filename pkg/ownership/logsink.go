package ownership

import (
	"errors"

	"github.com/go-logr/logr"
)

// quietDeferrals returns logger with one change: client-go's leader election
// logs every refused Lease write as an error, and a replica leaving a free
// Lease to its peers (errDeferred) is load sharing working, not a failure.
// Those are logged at V(2) instead, with the reason.
func quietDeferrals(logger logr.Logger) logr.Logger {
	sink := logger.GetSink()
	if sink == nil {
		return logger
	}
	return logger.WithSink(deferralSink{sink})
}

type deferralSink struct{ logr.LogSink }

// Error logs deferrals at V(2) and everything else as it was.
func (s deferralSink) Error(err error, msg string, kv ...any) {
	sink := s.LogSink
	if cd, ok := sink.(logr.CallDepthLogSink); ok {
		sink = cd.WithCallDepth(1) // this method is one more frame
	}
	var d *errDeferred
	if errors.As(err, &d) {
		if sink.Enabled(2) {
			sink.Info(2, msg, append(kv, "deferred", d.msg)...)
		}
		return
	}
	sink.Error(err, msg, kv...)
}

// WithValues keeps the wrapper around the derived sink.
func (s deferralSink) WithValues(kv ...any) logr.LogSink {
	return deferralSink{s.LogSink.WithValues(kv...)}
}

// WithName keeps the wrapper around the derived sink.
func (s deferralSink) WithName(name string) logr.LogSink {
	return deferralSink{s.LogSink.WithName(name)}
}

// WithCallDepth passes call depth on, so file:line stays the caller's.
func (s deferralSink) WithCallDepth(depth int) logr.LogSink {
	if cd, ok := s.LogSink.(logr.CallDepthLogSink); ok {
		return deferralSink{cd.WithCallDepth(depth)}
	}
	return s
}
