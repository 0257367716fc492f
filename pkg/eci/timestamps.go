package eci

import "time"

// timeLayouts are the forms of the cloud's timestamps (CreationTime,
// StartTime, ExpireDateTime…): RFC 3339 with or without fractions, and
// the minute form the API documents for some fields, 2006-01-02T15:04Z.
var timeLayouts = []string{time.RFC3339Nano, time.RFC3339, "2006-01-02T15:04Z"}

// ParseTime reads a timestamp of the cloud's answers; it is the zero time
// when s is empty or in no known form.
func ParseTime(s string) time.Time {
	if s == "" {
		return time.Time{}
	}
	for _, layout := range timeLayouts {
		if t, err := time.Parse(layout, s); err == nil {
			return t
		}
	}
	return time.Time{}
}
