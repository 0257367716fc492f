package provider

import (
	"testing"
	"time"
)

// TestSourceWaits: an object's event takes the pods waiting for it whose
// next attempt had not started, once; a replacement pod of the same name
// keeps its wait when the old pod's attempt ends.
func TestSourceWaits(t *testing.T) {
	var w sourceWaits
	never := func() *time.Timer { return time.AfterFunc(time.Hour, func() {}) }
	cm := sourceKey("ConfigMap", "ns", "cfg")
	w.wait("ns/a", "uid-a", cm, never())
	w.wait("ns/b", "uid-b", cm, never())
	fired := time.AfterFunc(0, func() {})
	time.Sleep(10 * time.Millisecond)
	w.wait("ns/c", "uid-c", cm, fired) // its attempt already started
	w.wait("ns/d", "uid-d", sourceKey("Secret", "ns", "cfg"), never())

	got := w.take(cm)
	if len(got) != 2 || got["ns/a"] != "uid-a" || got["ns/b"] != "uid-b" {
		t.Errorf("take = %v, want ns/a and ns/b (ns/c's timer had fired; ns/d waits for a Secret)", got)
	}
	if again := w.take(cm); len(again) != 0 {
		t.Errorf("second take = %v, want none", again)
	}
	if n := w.waiting(); n != 1 {
		t.Errorf("%d pods waiting, want 1 (ns/d)", n)
	}

	// ns/d is replaced by a pod of the same name before the old one's
	// attempt ends: the old attempt does not forget the new wait.
	w.wait("ns/d", "uid-d2", sourceKey("Secret", "ns", "cfg"), never())
	w.done("ns/d", "uid-d")
	if n := w.waiting(); n != 1 {
		t.Errorf("%d pods waiting after the old pod's attempt, want 1 (the replacement)", n)
	}
	w.done("ns/d", "uid-d2")
	if n := w.waiting(); n != 0 || len(w.byObj) != 0 {
		t.Errorf("%d pods waiting, objects %v; want none", n, w.byObj)
	}
}
