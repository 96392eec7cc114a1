package webhook

import (
	"errors"
	"testing"
)

// fakeKey is NOT a real key: the base64 below is random bytes in a PEM envelope. It only has to
// look like a key to checkPEM, which inspects the envelope, not the key material.
const fakeKey = `-----BEGIN RSA PRIVATE KEY-----
LaWr+C/Nh8Loj4dvi1arpp4ohEcImN9BISlOUEzT5gV3KmmgdOTkIvRevGZCmO7D
mcIBEvwHbiHcEfXRp1LkGMcFrW27kdAsvhUaoX9L7NCdi51bW+Hzoj6CaRtnvM5q
fqCPJtMFLqaKl+bo8CDgwMppL6g/JlyFtKHsQfAcwLB5u/w5u8wf9YYrIUhjlkB5
JNGtvz9hYgkodrnXjow6KUc6ngE+p7/wX9sej81MwiYdOwZkU46L1d5m+YYEcD39
9k+yrZthsbU0tNzEQYcYZWqfIlYzXCllQ9rC9WfO8MeAD62ZuTPhqE2dSgnpv7VD
c6xReB5Z+qISu2XtdNsWC6tQcPxZMNjzRL5wxIN124iGcWHkzdsyjczelZJ3zZEy
F7bwoupkYoeqKnvcgCmY9Q+8BfTPrzTh/xzP/b8Pa0jlICVQh+x9lJaWuyc04rNV
v5xqg4rdrM5UHrSUCG+tgQFaRzjrCvqDk0zZDida1FA5OUrqkYu1XZlE0ALdRd0q
-----END RSA PRIVATE KEY-----
`

func TestCheckPEMAcceptsAnyTypeWhenNoneIsWanted(t *testing.T) {
	if err := checkPEM([]byte(fakeKey), ""); err != nil {
		t.Fatalf("unexpected error: %v", err)
	}
}

func TestCheckPEMRejectsTheWrongType(t *testing.T) {
	err := checkPEM([]byte(fakeKey), "CERTIFICATE")
	if err == nil || err.Error() != `PEM block is "RSA PRIVATE KEY", want "CERTIFICATE"` {
		t.Fatalf("got %v", err)
	}
}

func TestCheckPEMRejectsPlainText(t *testing.T) {
	if err := checkPEM([]byte("not a pem file"), ""); !errors.Is(err, ErrNoPEM) {
		t.Fatalf("got %v, want ErrNoPEM", err)
	}
}
