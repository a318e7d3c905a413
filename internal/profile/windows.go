package profile

import (
	"encoding/base64"
	"fmt"
	"strings"
)

// windows is what Set-VpnConnectionIPsecConfiguration takes (the
// VpnClient module's enums): EncryptionMethod, IntegrityCheckMethod and
// DHGroup for the IKE_SA, CipherTransformConstants,
// AuthenticationTransformConstants and PfsGroup for ESP. Windows has no
// SHA-512, no Curve25519 and no P-521; DES, 3DES, MD5, SHA-1 and groups 1
// and 2 it has are insecure, and Group24 (MODP 2048 with a 256-bit
// subgroup) is no group strongSwan offers here.
var windows = dialect{
	name: "Windows",
	ikeEnc: []term{
		{"aes256gcm16", "GCMAES256"}, {"aes128gcm16", "GCMAES128"},
		{"aes256", "AES256"}, {"aes192", "AES192"}, {"aes128", "AES128"},
	},
	hash:  []term{{"sha256", "SHA256"}, {"sha384", "SHA384"}},
	ikeDH: []term{{"ecp256", "ECP256"}, {"ecp384", "ECP384"}, {"modp2048", "Group14"}},
	espEnc: []term{
		{"aes256gcm16", "GCMAES256"}, {"aes192gcm16", "GCMAES192"}, {"aes128gcm16", "GCMAES128"},
		{"aes256", "AES256"}, {"aes192", "AES192"}, {"aes128", "AES128"},
	},
	// With GCM the authentication transform is the cipher itself.
	espInteg: []term{{"", ""}, {"sha256", "SHA256128"}},
	pfs:      []term{{"ecp256", "ECP256"}, {"ecp384", "ECP384"}, {"modp2048", "PFS2048"}},
	// PfsGroup follows the pool: a group when it has one, None without.
	pfsGroups: func(d dialect, p PFS) []*term {
		switch p {
		case PFSNone:
			return []*term{nil}
		case PFSOptional:
			return d.groups(true)
		default:
			return d.groups(false)
		}
	},
}

// Windows builds a PowerShell script, to be run as administrator, that
// trusts the gateway's CA machine-wide, (re)creates the connection for all
// users with its routes and DNS suffix, and sets the IPsec policy the
// gateway accepts.
func Windows(in Input) ([]byte, error) {
	if err := Check(in, FormatWindows); err != nil {
		return nil, err
	}
	c, err := windows.choose(in)
	if err != nil {
		return nil, err
	}
	var b strings.Builder
	w := func(format string, args ...any) { fmt.Fprintf(&b, format+"\n", args...) }
	w("# IKEv2 VPN to %s for %s, from ikegate (gateway %s/%s).", in.Dial, in.Identity, in.Namespace, in.Gateway)
	w("# Run in an elevated PowerShell: powershell -ExecutionPolicy Bypass -File <this file>")
	w("#Requires -RunAsAdministrator")
	w("$ErrorActionPreference = 'Stop'")
	w("$name = %s", psQuote(in.Name()))
	w("")
	w("# The CA that issued the gateway's certificate.")
	w("$ca = Join-Path $env:TEMP %s", psQuote("ikegate-"+in.Namespace+"-"+in.Gateway+"-ca.cer"))
	w("[IO.File]::WriteAllBytes($ca, [Convert]::FromBase64String(%s))", psQuote(base64.StdEncoding.EncodeToString(firstDER(in.CAPEM))))
	w("Import-Certificate -FilePath $ca -CertStoreLocation 'Cert:\\LocalMachine\\Root' | Out-Null")
	w("Remove-Item $ca")
	if len(in.PKCS12) > 0 {
		w("")
		w("# The user's certificate and key.")
		w("$p12 = Join-Path $env:TEMP %s", psQuote("ikegate-"+in.User+".p12"))
		w("[IO.File]::WriteAllBytes($p12, [Convert]::FromBase64String(%s))", psQuote(base64.StdEncoding.EncodeToString(in.PKCS12)))
		if in.PKCS12Password != "" {
			w("$p12Password = ConvertTo-SecureString -String %s -AsPlainText -Force", psQuote(in.PKCS12Password))
		} else {
			w("$p12Password = Read-Host -AsSecureString -Prompt 'Password of the certificate file'")
		}
		w("Import-PfxCertificate -FilePath $p12 -CertStoreLocation 'Cert:\\LocalMachine\\My' -Password $p12Password | Out-Null")
		w("Remove-Item $p12")
	}
	w("")
	w("if (Get-VpnConnection -AllUserConnection -Name $name -ErrorAction SilentlyContinue) {")
	w("    Remove-VpnConnection -AllUserConnection -Name $name -Force")
	w("}")
	add := []string{"Add-VpnConnection -AllUserConnection -Name $name", "-ServerAddress " + psQuote(in.Dial), "-TunnelType Ikev2", "-EncryptionLevel Required"}
	switch in.Auth {
	case AuthEAP:
		w("$eap = New-EapConfiguration")
		add = append(add, "-AuthenticationMethod Eap", "-EapConfigXmlStream $eap.EapConfigXmlStream")
	case AuthEAPTLS:
		w("$eap = New-EapConfiguration -Tls -UserCertificate")
		add = append(add, "-AuthenticationMethod Eap", "-EapConfigXmlStream $eap.EapConfigXmlStream")
	case AuthCertificate:
		add = append(add, "-AuthenticationMethod MachineCertificate")
	}
	if in.FullTunnel {
		add = append(add, "-SplitTunneling:$false")
	} else {
		add = append(add, "-SplitTunneling:$true")
	}
	if d := dnsSuffix(in); d != "" {
		add = append(add, "-DnsSuffix "+psQuote(d))
	}
	add = append(add, "-RememberCredential", "-Force")
	w("%s", strings.Join(add, " `\n    "))
	for _, n := range in.LocalNetworks {
		w("Add-VpnConnectionRoute -AllUserConnection -ConnectionName $name -DestinationPrefix %s", psQuote(n.String()))
	}
	pfs := "None"
	if c.esp.pfs != nil {
		pfs = c.esp.pfs.value
	}
	auth := c.esp.integ.value
	if c.esp.aead {
		auth = c.esp.enc.value
	}
	w("")
	w("# Proposes IKE %s and ESP %s, which the gateway accepts.", c.ike.token, c.esp.token)
	w("Set-VpnConnectionIPsecConfiguration -AllUserConnection -ConnectionName $name `")
	w("    -EncryptionMethod %s -IntegrityCheckMethod %s -DHGroup %s `", c.ike.enc.value, c.ike.hash.value, c.ike.dh.value)
	w("    -CipherTransformConstants %s -AuthenticationTransformConstants %s -PfsGroup %s `", c.esp.enc.value, auth, pfs)
	w("    -Force")
	w("Write-Host ('Connection {0} is ready; connect as {1}.' -f $name, %s)", psQuote(in.Identity))
	return []byte(b.String()), nil
}

// dnsSuffix is the domain Windows appends to single-label names.
func dnsSuffix(in Input) string {
	if in.DefaultDomain != "" {
		return in.DefaultDomain
	}
	if len(in.DNSDomains) > 0 {
		return in.DNSDomains[0]
	}
	return ""
}

// psQuote makes s a PowerShell verbatim string: single quotes, each single
// quote (including the typographic ones PowerShell also ends strings with)
// doubled.
func psQuote(s string) string {
	r := strings.NewReplacer("'", "''", "\u2018", "\u2018\u2018", "\u2019", "\u2019\u2019", "\u201a", "\u201a\u201a", "\u201b", "\u201b\u201b")
	return "'" + r.Replace(s) + "'"
}

func firstDER(data []byte) []byte {
	der, _ := firstCertDER(data)
	return der
}
