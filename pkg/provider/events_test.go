package provider_test

import (
	"strings"
	"testing"

	"github.com/ack-virtual-node/ack-virtual-node/pkg/provider"
	"github.com/ack-virtual-node/ack-virtual-node/pkg/provider/fake"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
)

// TestStockOutWarningsAggregate: every create attempt of a pod waiting for
// stock is refused with a new request id, yet the pod shows one NoStock
// Event whose count grows, as client-go's recorder aggregates only
// identical messages; neither the Event nor the pod's status carries a
// request id (it is in the log line of each attempt).
func TestStockOutWarningsAggregate(t *testing.T) {
	e := newSMEnv(t, "vsw-a")
	e.cloud.SetStock("zone-a", false)
	pod := e.newPod("web", nil, false)
	if err := e.p.CreatePod(e.ctx, pod); err != nil {
		t.Fatalf("CreatePod: %v; a stock-out is no error of the pod spec", err)
	}
	const attempts = 5
	for i := 1; i < attempts; i++ {
		provider.RetryCreate(e.p, e.ns, "web")
	}
	if n := e.cloud.CallCount(fake.OpCreate); n < attempts {
		t.Fatalf("%d creates, want at least %d (one per attempt)", n, attempts)
	}
	var stock []corev1.Event
	eventually(t, "one NoStock event counting every attempt", func() bool {
		list, err := e.kube.CoreV1().Events(e.ns).List(e.ctx, metav1.ListOptions{
			FieldSelector: fields.OneTermEqualSelector("involvedObject.name", "web").String()})
		if err != nil {
			return false
		}
		stock = stock[:0]
		total := int32(0)
		for _, ev := range list.Items {
			if ev.Reason == "NoStock" {
				stock = append(stock, ev)
				total += max(ev.Count, 1)
			}
		}
		return total >= attempts
	})
	if len(stock) != 1 {
		var msgs []string
		for _, ev := range stock {
			msgs = append(msgs, ev.Message)
		}
		t.Fatalf("%d NoStock events, want one with a count: %q", len(stock), msgs)
	}
	if stock[0].Count < attempts || stock[0].Type != corev1.EventTypeWarning {
		t.Errorf("NoStock event: type %s, count %d; want Warning, at least %d", stock[0].Type, stock[0].Count, attempts)
	}
	if strings.Contains(stock[0].Message, "RequestId") {
		t.Errorf("NoStock event message %q carries a request id, which keeps repeats from aggregating", stock[0].Message)
	}
	if st := e.status("web"); strings.Contains(st.Message, "RequestId") || st.Phase != corev1.PodPending {
		t.Errorf("status: phase %s, message %q; want Pending with no request id", st.Phase, st.Message)
	}
}
