package eci

import (
	"testing"
	"time"
)

// TestParseTime: every form the cloud answers with, and nothing for
// anything else.
func TestParseTime(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want time.Time
	}{
		{"2026-12-01T10:20:30Z", time.Date(2026, 12, 1, 10, 20, 30, 0, time.UTC)},
		{"2026-12-01T10:20:30.5Z", time.Date(2026, 12, 1, 10, 20, 30, 5e8, time.UTC)},
		{"2026-12-01T10:20Z", time.Date(2026, 12, 1, 10, 20, 0, 0, time.UTC)},
		{"2026-12-01T18:20:30+08:00", time.Date(2026, 12, 1, 10, 20, 30, 0, time.UTC)},
		{"", time.Time{}},
		{"yesterday", time.Time{}},
		{"2026-12-01", time.Time{}},
	} {
		if got := ParseTime(tc.in); !got.Equal(tc.want) {
			t.Errorf("ParseTime(%q) = %v, want %v", tc.in, got, tc.want)
		}
	}
}
