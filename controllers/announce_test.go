package controllers

import (
	"slices"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/events"

	"github.com/ikegate/ikegate/api/v1alpha1"
	"github.com/ikegate/ikegate/internal/testutil/gen"
)

func TestAnnounceTellsFaultsAndRecoveriesOnce(t *testing.T) {
	valid := condTrue(v1alpha1.ConditionValid, v1alpha1.ReasonReady, "references resolve and nothing conflicts")
	overlap := condFalse(v1alpha1.ConditionValid, v1alpha1.ReasonPoolOverlap, "10.3.200.0/24 overlaps pool guest")
	unused := condFalse(v1alpha1.ConditionValid, v1alpha1.ReasonPoolUnused, "the gateway has no VPNUser that may log in")
	pending := condFalse(v1alpha1.ConditionConfigApplied, v1alpha1.ReasonApplyPending, "0 of 1 gateway pods hold generation 1")
	applied := condTrue(v1alpha1.ConditionConfigApplied, v1alpha1.ReasonReady, "all 1 gateway pods hold generation 1")
	tests := []struct {
		name string
		prev []metav1.Condition
		next metav1.Condition
		want []string
	}{
		{"a fault is a Warning", nil, overlap, []string{"Warning PoolOverlap 10.3.200.0/24 overlaps pool guest"}},
		{"the same fault again is no news", []metav1.Condition{overlap}, overlap, nil},
		{"the fault fixed is told once", []metav1.Condition{overlap}, valid, []string{"Normal Ready Valid is True: references resolve and nothing conflicts"}},
		{"a pool without users yet is no Warning", nil, unused, nil},
		{"nor is a pool unused after a fault", []metav1.Condition{overlap}, unused, nil},
		{"a pool that gets its users is no news", []metav1.Condition{unused}, valid, nil},
		{"progress is no Warning", nil, pending, nil},
		{"progress done is told once", []metav1.Condition{pending}, applied, []string{"Normal Ready ConfigApplied is True: all 1 gateway pods hold generation 1"}},
		{"still True is no news", []metav1.Condition{applied}, applied, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := events.NewFakeRecorder(4)
			announce(rec, nil, gen.Pool(gen.Namespace, "staff", "10.3.200.0/24"), tt.prev, tt.next)
			close(rec.Events)
			var got []string
			for e := range rec.Events {
				got = append(got, e)
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("events %q, want %q", got, tt.want)
			}
		})
	}
}

// Two reconciles reading the same stale conditions see the same change;
// only the first tells it.
func TestAnnounceTellsAChangeSeenTwiceOnce(t *testing.T) {
	pool := gen.Pool(gen.Namespace, "staff", "10.3.200.0/24")
	pool.UID = "a-stale-cache"
	stale := []metav1.Condition{condFalse(v1alpha1.ConditionConfigApplied, v1alpha1.ReasonApplyFailed, "charon refused pool staff")}
	applied := condTrue(v1alpha1.ConditionConfigApplied, v1alpha1.ReasonReady, "all 1 gateway pods hold generation 2")
	rec := events.NewFakeRecorder(4)
	var told conditionMemory
	announce(rec, &told, pool, stale, applied)
	announce(rec, &told, pool, stale, applied)
	if n := len(rec.Events); n != 1 {
		t.Fatalf("%d events, want 1", n)
	}
	// A later fault and its fix are changes again.
	failed := stale[0]
	announce(rec, &told, pool, []metav1.Condition{applied}, failed)
	announce(rec, &told, pool, []metav1.Condition{failed}, applied)
	if n := len(rec.Events); n != 3 {
		t.Fatalf("%d events, want 3", n)
	}
}
