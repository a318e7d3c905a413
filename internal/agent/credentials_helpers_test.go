package agent

import (
	corev1 "k8s.io/api/core/v1"

	"github.com/ikegate/ikegate/api/v1alpha1"
	"github.com/ikegate/ikegate/internal/credentials"
	"github.com/ikegate/ikegate/internal/swan"
)

// credentialsData is credentials.Data from whole Secrets, with the users'
// passwords hashed as the manager hashes them.
func credentialsData(gw *v1alpha1.VPNGateway, users []v1alpha1.VPNUser, secrets map[string]*corev1.Secret) map[string][]byte {
	values := map[string]map[string][]byte{}
	for name, s := range secrets {
		values[name] = s.Data
	}
	hashes := map[swan.SecretKeyRef][]byte{}
	for i := range users {
		for _, ref := range users[i].SecretRefs() {
			if h, ok := swan.PasswordHash(ref.Key, values[ref.Name][ref.Key]); ok {
				hashes[swan.SecretKeyRef{Name: ref.Name, Key: ref.Key}] = h
			}
		}
	}
	return credentials.Data(gw, users, nil, values, hashes)
}
