package ownership

import (
	"errors"
	"fmt"
	"testing"

	"github.com/go-logr/logr"
)

// recordingSink records what reaches the underlying sink.
type recordingSink struct {
	level  int
	infos  *[]string
	errors *[]string
}

func (s recordingSink) Init(logr.RuntimeInfo)          {}
func (s recordingSink) Enabled(level int) bool         { return level <= s.level }
func (s recordingSink) WithValues(...any) logr.LogSink { return s }
func (s recordingSink) WithName(string) logr.LogSink   { return s }
func (s recordingSink) Info(level int, msg string, kv ...any) {
	*s.infos = append(*s.infos, fmt.Sprintf("%d %s %v", level, msg, kv))
}
func (s recordingSink) Error(err error, msg string, _ ...any) {
	*s.errors = append(*s.errors, msg+": "+err.Error())
}

func TestQuietDeferrals(t *testing.T) {
	tests := []struct {
		name       string
		verbosity  int
		err        error
		wantInfos  int
		wantErrors int
	}{
		{"deferral becomes V(2) info", 2, &errDeferred{"leaving it"}, 1, 0},
		{"wrapped deferral too", 2, fmt.Errorf("update: %w", &errDeferred{"leaving it"}), 1, 0},
		{"deferral hidden below V(2)", 0, &errDeferred{"leaving it"}, 0, 0},
		{"real errors stay errors", 0, errors.New("connection refused"), 0, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var infos, errs []string
			l := quietDeferrals(logr.New(recordingSink{level: tt.verbosity, infos: &infos, errors: &errs})).WithValues("k", "v").WithName("n")
			l.Error(tt.err, "Failed to update lease")
			if len(infos) != tt.wantInfos || len(errs) != tt.wantErrors {
				t.Errorf("infos %q, errors %q; want %d infos, %d errors", infos, errs, tt.wantInfos, tt.wantErrors)
			}
		})
	}
}
