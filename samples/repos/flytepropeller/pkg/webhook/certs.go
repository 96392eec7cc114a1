// Package webhook serves the admission webhook that mounts secrets into task pods.
package webhook

import (
	"crypto/tls"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"path/filepath"
)

// CertDir is where the webhook's serving certificate and key are mounted.
const CertDir = "/etc/webhook/certs"

// ErrNoPEM is returned when a file holds no PEM block at all.
var ErrNoPEM = errors.New("no PEM block found")

// LoadKeyPair reads tls.crt and tls.key from dir and checks that both hold PEM data before
// handing them to the TLS stack, whose own errors do not say which file was wrong.
func LoadKeyPair(dir string) (tls.Certificate, error) {
	certPEM, err := readPEM(filepath.Join(dir, "tls.crt"), "CERTIFICATE")
	if err != nil {
		return tls.Certificate{}, err
	}
	keyPEM, err := readPEM(filepath.Join(dir, "tls.key"), "")
	if err != nil {
		return tls.Certificate{}, err
	}
	return tls.X509KeyPair(certPEM, keyPEM)
}

func readPEM(path, wantType string) ([]byte, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	if err := checkPEM(raw, wantType); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return raw, nil
}

// checkPEM verifies raw starts with a PEM block of wantType ("" accepts any type).
func checkPEM(raw []byte, wantType string) error {
	block, _ := pem.Decode(raw)
	if block == nil {
		return ErrNoPEM
	}
	if wantType != "" && block.Type != wantType {
		return fmt.Errorf("PEM block is %q, want %q", block.Type, wantType)
	}
	return nil
}
