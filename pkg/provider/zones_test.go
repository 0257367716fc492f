package provider

import (
	"reflect"
	"testing"
	"time"
)

func TestZoneMemory(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	z := newZoneMemory(time.Minute)
	z.now = func() time.Time { return now }
	all := []string{"vsw-a", "vsw-b", "vsw-c"}
	steps := []struct {
		name      string
		requested string
		got       string
		advance   time.Duration
		want      []string
	}{
		{name: "no history keeps the configured order", want: all},
		{name: "landing in the third skips the first two", requested: "vsw-a,vsw-b,vsw-c", got: "vsw-c", want: []string{"vsw-c", "vsw-a", "vsw-b"}},
		{name: "landing in the first of the reordered list changes nothing", requested: "vsw-c,vsw-a,vsw-b", got: "vsw-c", want: []string{"vsw-c", "vsw-a", "vsw-b"}},
		{name: "a cooling vSwitch that has stock again is forgiven", requested: "vsw-c,vsw-a,vsw-b", got: "vsw-a", want: []string{"vsw-a", "vsw-b", "vsw-c"}},
		{name: "cool-down ends", advance: 2 * time.Minute, want: all},
	}
	for _, s := range steps {
		now = now.Add(s.advance)
		if s.requested != "" {
			z.landed(s.requested, s.got)
		}
		if got := z.order(all); !reflect.DeepEqual(got, s.want) {
			t.Errorf("%s: order = %v, want %v", s.name, got, s.want)
		}
	}
}
