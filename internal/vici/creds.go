package vici

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/sha1" //nolint:gosec // charon names private keys by the SHA-1 of their public key
	"crypto/sha256"
	"crypto/x509"
	"encoding/asn1"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
)

// KeyID returns the identifier charon gives a private key (load-key's "id",
// get-keys): the hex SHA-1 of the public key's subjectPublicKey bits, i.e. a
// PKCS#1 RSAPublicKey, an EC point or a raw Ed25519 key. Computing it here
// lets a restarted agent see which of its keys charon already holds (and
// vicitest.Fake answer load-key as charon does).
func KeyID(keyPEM []byte) (string, error) {
	block, _ := pem.Decode(keyPEM)
	if block == nil {
		return "", errors.New("no PEM block")
	}
	var (
		key any
		err error
	)
	switch block.Type {
	case "RSA PRIVATE KEY":
		key, err = x509.ParsePKCS1PrivateKey(block.Bytes)
	case "EC PRIVATE KEY":
		key, err = x509.ParseECPrivateKey(block.Bytes)
	default:
		key, err = x509.ParsePKCS8PrivateKey(block.Bytes)
	}
	if err != nil {
		return "", fmt.Errorf("parsing %s: %w", block.Type, err)
	}
	var pub crypto.PublicKey
	switch k := key.(type) {
	case *rsa.PrivateKey:
		pub = k.Public()
	case *ecdsa.PrivateKey:
		pub = k.Public()
	case ed25519.PrivateKey:
		pub = k.Public()
	default:
		return "", fmt.Errorf("unsupported key type %T", key)
	}
	spki, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return "", err
	}
	var info struct {
		Algorithm asn1.RawValue
		PublicKey asn1.BitString
	}
	if _, err := asn1.Unmarshal(spki, &info); err != nil {
		return "", err
	}
	sum := sha1.Sum(info.PublicKey.Bytes) //nolint:gosec // identifier, not a security function
	return hex.EncodeToString(sum[:]), nil
}

// certFingerprint returns the SHA-256 of a certificate's DER encoding, given
// PEM or DER, so certificates loaded earlier can be recognised in list-certs.
// It parses the certificate so that one charon would refuse is reported here.
func certFingerprint(data []byte) (string, error) {
	der := data
	if block, _ := pem.Decode(data); block != nil {
		if block.Type != "CERTIFICATE" {
			return "", fmt.Errorf("PEM block %q is not a certificate", block.Type)
		}
		der = block.Bytes
	}
	if _, err := x509.ParseCertificate(der); err != nil {
		return "", err
	}
	sum := sha256.Sum256(der)
	return hex.EncodeToString(sum[:]), nil
}
