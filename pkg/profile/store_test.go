package profile

import (
	"context"
	"reflect"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/record"
)

func TestStore(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	kube := controlPlane(t).Clientset()
	ns := testNamespace(t, kube)
	rec := record.NewFakeRecorder(10)
	s := NewStore(StoreOptions{Kube: kube, Recorder: rec, Namespace: ns})
	if err := s.Start(ctx); err != nil {
		t.Fatal(err)
	}
	if err := s.Start(ctx); err == nil {
		t.Error("second Start succeeded")
	}
	if _, _, ok := s.Defaults(); ok {
		t.Error("Defaults ok without a ConfigMap")
	}
	cms := kube.CoreV1().ConfigMaps(ns)
	cm := &corev1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{Name: "eci-profile", Namespace: ns},
		Data: map[string]string{"vSwitchIds": "vsw-a,vsw-b", "securityGroupId": "sg-1",
			"selectors": `[{"name":"a","objectSelector":{"matchLabels":{"x":"y"}}}]`},
	}
	// Another ConfigMap of the namespace must not be mistaken for it.
	if _, err := cms.Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "other", Namespace: ns},
		Data: map[string]string{"securityGroupId": "bad"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	ch := s.Changed()
	cm, err := cms.Create(ctx, cm, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	waitChanged(t, ch)
	vsw, sg, ok := s.Defaults()
	if !ok || !reflect.DeepEqual(vsw, []string{"vsw-a", "vsw-b"}) || sg != "sg-1" {
		t.Fatalf("Defaults = %v %q %v", vsw, sg, ok)
	}
	vsw[0] = "mutated"
	if s.Current().VSwitchIDs[0] != "vsw-a" {
		t.Error("Defaults returned the store's own slice")
	}

	// A malformed edit keeps the last good profile and says why.
	good := s.Current()
	bad := cm.DeepCopy()
	bad.Data["selectors"] = `[{"name":`
	bad.Data["securityGroupId"] = "sg-2"
	if bad, err = cms.Update(ctx, bad, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	select {
	case ev := <-rec.Events:
		if !strings.HasPrefix(ev, "Warning "+ReasonInvalidProfile) || !strings.Contains(ev, "selectors") ||
			!strings.Contains(ev, "resourceVersion "+cm.ResourceVersion+")") {
			t.Errorf("event = %q, want a Warning naming selectors and the profile kept", ev)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no event for a malformed profile")
	}
	if s.Current() != good {
		t.Errorf("malformed profile replaced the good one: %+v", s.Current())
	}

	// Fixing it applies the new version.
	ch = s.Changed()
	fixed := bad.DeepCopy()
	fixed.Data["selectors"] = `[]`
	if fixed, err = cms.Update(ctx, fixed, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitChanged(t, ch)
	if p := s.Current(); p.SecurityGroupID != "sg-2" || len(p.Selectors) != 0 || p.ResourceVersion != fixed.ResourceVersion {
		t.Errorf("fixed profile not applied: %+v", p)
	}

	// Deleting it falls back to the empty profile.
	ch = s.Changed()
	if err := cms.Delete(ctx, "eci-profile", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	waitChanged(t, ch)
	if _, _, ok := s.Defaults(); ok {
		t.Errorf("profile still in effect after delete: %+v", s.Current())
	}
	if err := s.WaitFor(ctx, func(p *Profile) bool { return p.ResourceVersion == "" }); err != nil {
		t.Error(err)
	}
	select {
	case ev := <-rec.Events:
		t.Errorf("unexpected event %q", ev)
	default:
	}
}

func TestStoreFirstVersionInvalid(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	kube := controlPlane(t).Clientset()
	ns := testNamespace(t, kube)
	if _, err := kube.CoreV1().ConfigMaps(ns).Create(ctx, &corev1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{Name: "eci-profile", Namespace: ns},
		Data:       map[string]string{"vSwitchIds": "subnet-1"},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	rec := record.NewFakeRecorder(10)
	s := NewStore(StoreOptions{Kube: kube, Recorder: rec, Namespace: ns})
	if err := s.Start(ctx); err != nil {
		t.Fatal(err)
	}
	select {
	case ev := <-rec.Events:
		if !strings.Contains(ev, "vSwitchIds") || !strings.Contains(ev, "controller defaults") {
			t.Errorf("event = %q", ev)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no event")
	}
	if _, _, ok := s.Defaults(); ok {
		t.Errorf("invalid first profile in effect: %+v", s.Current())
	}
}

func waitChanged(t *testing.T, ch <-chan struct{}) {
	t.Helper()
	select {
	case <-ch:
	case <-time.After(10 * time.Second):
		t.Fatal("profile did not change")
	}
}

// TestStoreEnableClusterIP: enableClusterIp is nil while absent, then the
// value the ConfigMap holds, as a copy.
func TestStoreEnableClusterIP(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	kube := controlPlane(t).Clientset()
	ns := testNamespace(t, kube)
	s := NewStore(StoreOptions{Kube: kube, Recorder: record.NewFakeRecorder(10), Namespace: ns})
	if err := s.Start(ctx); err != nil {
		t.Fatal(err)
	}
	if b := s.EnableClusterIP(); b != nil {
		t.Fatalf("enableClusterIp %v without a ConfigMap, want nil", *b)
	}
	ch := s.Changed()
	if _, err := kube.CoreV1().ConfigMaps(ns).Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "eci-profile", Namespace: ns},
		Data: map[string]string{KeyEnableClusterIP: "false"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitChanged(t, ch)
	b := s.EnableClusterIP()
	if b == nil || *b {
		t.Fatalf("enableClusterIp %v, want false", b)
	}
	*b = true
	if *s.Current().EnableClusterIP {
		t.Error("EnableClusterIP returned the store's own value")
	}
}
