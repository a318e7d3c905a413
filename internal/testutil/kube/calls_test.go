package kube

import (
	"net/http"
	"net/http/httptest"
	"testing"
)

func TestParseCall(t *testing.T) {
	tests := []struct {
		method, url string
		want        Call
		ok          bool
	}{
		{"GET", "/api/v1/namespaces/vpn/secrets/jimp", Call{"get", "", "secrets", "vpn"}, true},
		{"GET", "/api/v1/namespaces/vpn/secrets", Call{"list", "", "secrets", "vpn"}, true},
		{"GET", "/api/v1/secrets?watch=true", Call{"watch", "", "secrets", ""}, true},
		{"GET", "/api/v1/nodes", Call{"list", "", "nodes", ""}, true},
		{"GET", "/api/v1/namespaces/vpn", Call{"get", "", "namespaces", ""}, true},
		{"PUT", "/api/v1/namespaces/vpn/finalize", Call{"update", "", "namespaces/finalize", ""}, true},
		{"PATCH", "/apis/ikegate.io/v1alpha1/namespaces/vpn/vpngateways/vpn/status", Call{"patch", "ikegate.io", "vpngateways/status", "vpn"}, true},
		{"POST", "/apis/events.k8s.io/v1/namespaces/vpn/events", Call{"create", "events.k8s.io", "events", "vpn"}, true},
		{"DELETE", "/apis/cert-manager.io/v1/namespaces/vpn/certificates/vpn-ca", Call{"delete", "cert-manager.io", "certificates", "vpn"}, true},
		{"DELETE", "/apis/cert-manager.io/v1/namespaces/vpn/certificates", Call{"deletecollection", "cert-manager.io", "certificates", "vpn"}, true},
		{"GET", "/apis", Call{}, false},
		{"GET", "/api/v1", Call{}, false},
		{"GET", "/healthz", Call{}, false},
	}
	for _, tc := range tests {
		got, ok := parseCall(httptest.NewRequest(tc.method, tc.url, nil))
		if got != tc.want || ok != tc.ok {
			t.Errorf("%s %s: %+v %v, want %+v %v", tc.method, tc.url, got, ok, tc.want, tc.ok)
		}
	}
}

func TestApplyAndStreamingListImplyTheirFallbacks(t *testing.T) {
	log := &CallLog{calls: map[Call]struct{}{}}
	apply := httptest.NewRequest(http.MethodPatch, "/api/v1/namespaces/vpn/configmaps/vpn-charon?fieldManager=ikegate", nil)
	apply.Header.Set("Content-Type", "application/apply-patch+yaml")
	log.add(apply)
	status := httptest.NewRequest(http.MethodPatch, "/apis/ikegate.io/v1alpha1/namespaces/vpn/vpnusers/jimp/status", nil)
	status.Header.Set("Content-Type", "application/apply-patch+yaml")
	log.add(status)
	log.add(httptest.NewRequest(http.MethodGet, "/api/v1/secrets?watch=true&sendInitialEvents=true&resourceVersionMatch=NotOlderThan", nil))
	want := []Call{
		{"create", "", "configmaps", "vpn"}, {"patch", "", "configmaps", "vpn"},
		{"list", "", "secrets", ""}, {"watch", "", "secrets", ""},
		{"patch", "ikegate.io", "vpnusers/status", "vpn"},
	}
	got := log.Calls()
	if len(got) != len(want) {
		t.Fatalf("calls %v, want %v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("call %d: %+v, want %+v", i, got[i], want[i])
		}
	}
}
