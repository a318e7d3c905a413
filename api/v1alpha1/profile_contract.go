package v1alpha1

// The contract between the manager, which writes each VPNUser's profile
// Secret (status.profileSecretName), and `kubectl ikegate profile`, which
// reads it: the key of each profile format, named as --format names them.
const (
	ProfileKeyApple          = "profile.mobileconfig"
	ProfileKeyWindows        = "profile.ps1"
	ProfileKeyAndroid        = "profile.sswan"
	ProfileKeyNetworkManager = "networkmanager.sh"
	ProfileKeySwanctl        = "swanctl.conf"
	// ProfileKeyCA is the CA the profiles trust for the gateway's certificate.
	ProfileKeyCA = "ca.crt"
	// ProfileKeyPKCS12 is the user's issued client certificate and key
	// (certificate.issue), with its password under ProfileKeyPKCS12Password.
	// The user's own password is never in the Secret.
	ProfileKeyPKCS12         = "client.p12"
	ProfileKeyPKCS12Password = "client.p12.password"
)

// ProfileSecretKey is the profile Secret's key of a format ("apple",
// "windows", "android", "networkmanager", "swanctl").
func ProfileSecretKey(format string) (string, bool) {
	k, ok := map[string]string{
		"apple":          ProfileKeyApple,
		"windows":        ProfileKeyWindows,
		"android":        ProfileKeyAndroid,
		"networkmanager": ProfileKeyNetworkManager,
		"swanctl":        ProfileKeySwanctl,
	}[format]
	return k, ok
}
