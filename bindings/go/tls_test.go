// TLS and memcached -Y authentication against real `memcached -Z` / `-Y`
// servers, with certificates made at test time (crypto/x509), each case run
// with context.Background (single-key reads take the blocking path) and with
// a cancellable ctx (every call on the event loop).
package mcrs_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	mcrs "github.com/mcrs-project/mcrs-go"
)

// pki is a private CA, certificates it signed and one from an untrusted CA,
// as PEM files in a temporary directory of the test.
type pki struct{ dir string }

func newPKI(t *testing.T) *pki {
	t.Helper()
	p := &pki{dir: t.TempDir()}
	now := time.Now()
	serial := int64(1)
	issue := func(name string, tmpl *x509.Certificate, parent *x509.Certificate, parentKey *ecdsa.PrivateKey) (*x509.Certificate, *ecdsa.PrivateKey) {
		key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		serial++
		tmpl.SerialNumber = big.NewInt(serial)
		if tmpl.NotBefore.IsZero() {
			tmpl.NotBefore, tmpl.NotAfter = now.Add(-time.Hour), now.Add(48*time.Hour)
		}
		if parent == nil { // self-signed
			parent, parentKey = tmpl, key
		}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, &key.PublicKey, parentKey)
		if err != nil {
			t.Fatal(err)
		}
		cert, err := x509.ParseCertificate(der)
		if err != nil {
			t.Fatal(err)
		}
		kder, err := x509.MarshalPKCS8PrivateKey(key)
		if err != nil {
			t.Fatal(err)
		}
		p.write(name+".pem", pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))
		p.write(name+".key", pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder}))
		return cert, key
	}
	caTmpl := func(cn string) *x509.Certificate {
		return &x509.Certificate{Subject: pkix.Name{CommonName: cn}, IsCA: true, BasicConstraintsValid: true,
			KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature}
	}
	leaf := func(expired bool) *x509.Certificate {
		c := &x509.Certificate{Subject: pkix.Name{CommonName: "memcached"}, DNSNames: []string{"localhost"},
			IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, KeyUsage: x509.KeyUsageDigitalSignature,
			BasicConstraintsValid: true}
		if expired {
			c.NotBefore = time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC)
			c.NotAfter = time.Date(2021, 1, 1, 0, 0, 0, 0, time.UTC)
		}
		return c
	}
	ca, caKey := issue("ca", caTmpl("mcrs test CA"), nil, nil)
	rogue, rogueKey := issue("rogue-ca", caTmpl("untrusted CA"), nil, nil)
	issue("server", leaf(false), ca, caKey)
	issue("expired", leaf(true), ca, caKey)
	issue("client", leaf(false), ca, caKey)
	issue("rogue", leaf(false), rogue, rogueKey)
	return p
}

func (p *pki) write(name string, b []byte) {
	if err := os.WriteFile(filepath.Join(p.dir, name), b, 0o600); err != nil {
		panic(err)
	}
}

func (p *pki) path(name string) string { return filepath.Join(p.dir, name) }

func (p *pki) read(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(p.path(name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// serverArgs are memcached -Z's arguments with the certificate which
// ("server", "expired", "rogue").
func (p *pki) serverArgs(which string, more ...string) []string {
	return append([]string{"-Z", "-o", "ssl_chain_cert=" + p.path(which+".pem"),
		"-o", "ssl_key=" + p.path(which+".key")}, more...)
}

// verified is the TLS config verified by the test CA.
func (p *pki) verified() mcrs.TLSConfig { return mcrs.TLSConfig{CAFile: p.path("ca.pem")} }

// tlsClient is a client of addr that waits for replies, with short timeouts.
func tlsClient(t *testing.T, addr string, opts ...mcrs.Option) *mcrs.Client {
	t.Helper()
	return newClient(t, []string{addr}, append([]mcrs.Option{mcrs.DefaultNoreply(false),
		mcrs.ConnectTimeout(time.Second), mcrs.Timeout(time.Second)}, opts...)...)
}

// eachCtx runs f with context.Background and with a cancellable ctx.
func eachCtx(t *testing.T, f func(t *testing.T, ctx context.Context)) {
	t.Helper()
	t.Run("Background", func(t *testing.T) { f(t, context.Background()) })
	t.Run("Cancellable", func(t *testing.T) {
		x, cancel := context.WithCancel(context.Background())
		defer cancel()
		f(t, x)
	})
}

var tlsKeyN int

// tlsRoundtrip writes and reads back over c, with a value of many TLS
// records and a multi-get. The first call is a read, so that with
// context.Background it makes the first handshake on the blocking path.
func tlsRoundtrip(t *testing.T, ctx context.Context, c *mcrs.Client) {
	t.Helper()
	tlsKeyN++
	key := fmt.Sprintf("tls_%d_%d", os.Getpid(), tlsKeyN)
	if _, found, err := c.Get(ctx, key); err != nil || found {
		t.Fatalf("first Get: found %v, %v", found, err)
	}
	if err := c.Set(ctx, key, "over tls"); err != nil {
		t.Fatalf("Set: %v", err)
	}
	if v, found, err := c.Get(ctx, key); err != nil || !found || v != "over tls" {
		t.Fatalf("Get = %v, %v, %v", v, found, err)
	}
	big := strings.Repeat("x", 300_000)
	if err := c.Set(ctx, key+"_big", big); err != nil {
		t.Fatalf("Set big: %v", err)
	}
	if v, _, err := c.Get(ctx, key+"_big"); err != nil || v != big {
		t.Fatalf("Get big: %d bytes, %v", len(fmt.Sprint(v)), err)
	}
	got, err := c.GetMany(ctx, []string{key, key + "_missing", key + "_big"})
	if err != nil || len(got) != 2 || got[key] != "over tls" {
		t.Fatalf("GetMany: %d values, %v", len(got), err)
	}
}

// callErr is the error of a Get on c, which must come within `within`.
func callErr(t *testing.T, ctx context.Context, c *mcrs.Client, within time.Duration) *mcrs.Error {
	t.Helper()
	start := time.Now()
	_, _, err := c.Get(ctx, "k")
	if took := time.Since(start); took > within {
		t.Fatalf("the refusal took %v (%v)", took, err)
	}
	var e *mcrs.Error
	if !errors.As(err, &e) {
		t.Fatalf("Get: %v (%T), want an *mcrs.Error", err, err)
	}
	return e
}

// wantTLSError checks that a Get on c fails quickly with ErrTLS and a
// detail holding one of want.
func wantTLSError(t *testing.T, ctx context.Context, c *mcrs.Client, want ...string) {
	t.Helper()
	e := callErr(t, ctx, c, 3*time.Second)
	if !errors.Is(e, mcrs.ErrTLS) {
		t.Fatalf("Get: %v, want ErrTLS", e)
	}
	for _, w := range want {
		if strings.Contains(e.Detail, w) {
			return
		}
	}
	t.Fatalf("TLS error %q names none of %q", e.Error(), want)
}

func TestTLSVerifiedByIPAndByName(t *testing.T) {
	p := newPKI(t)
	s := newServer(t, p.serverArgs("server")...)
	eachCtx(t, func(t *testing.T, ctx context.Context) {
		tlsRoundtrip(t, ctx, tlsClient(t, s.Addr, mcrs.TLS(p.verified())))
		tlsRoundtrip(t, ctx, tlsClient(t, fmt.Sprintf("localhost:%d", s.Port), mcrs.TLS(p.verified())))
		// an explicit server name the certificate holds, the CA as PEM bytes
		tlsRoundtrip(t, ctx, tlsClient(t, s.Addr, mcrs.TLS(mcrs.TLSConfig{
			CAPEM: p.read(t, "ca.pem"), ServerName: "localhost"})))
	})
}

func TestTLSUntrustedCA(t *testing.T) {
	p := newPKI(t)
	s := newServer(t, p.serverArgs("rogue")...)
	eachCtx(t, func(t *testing.T, ctx context.Context) {
		wantTLSError(t, ctx, tlsClient(t, s.Addr, mcrs.TLS(p.verified())), "unknown CA")
	})
}

func TestTLSNameMismatch(t *testing.T) {
	p := newPKI(t)
	s := newServer(t, p.serverArgs("server")...)
	eachCtx(t, func(t *testing.T, ctx context.Context) {
		cfg := p.verified()
		cfg.ServerName = "cache.example.com"
		wantTLSError(t, ctx, tlsClient(t, s.Addr, mcrs.TLS(cfg)), "name mismatch")
	})
}

func TestTLSExpiredCertificate(t *testing.T) {
	p := newPKI(t)
	s := newServer(t, p.serverArgs("expired")...)
	eachCtx(t, func(t *testing.T, ctx context.Context) {
		wantTLSError(t, ctx, tlsClient(t, s.Addr, mcrs.TLS(p.verified())), "expired")
	})
}

func TestTLSPrivateCAWithOnlySystemRoots(t *testing.T) {
	p := newPKI(t)
	s := newServer(t, p.serverArgs("server")...)
	eachCtx(t, func(t *testing.T, ctx context.Context) {
		wantTLSError(t, ctx, tlsClient(t, s.Addr, mcrs.TLS(mcrs.TLSConfig{})), "unknown CA")
	})
}

func TestTLSClientAgainstPlaintextServer(t *testing.T) {
	p := newPKI(t)
	s := newServer(t)
	eachCtx(t, func(t *testing.T, ctx context.Context) {
		wantTLSError(t, ctx, tlsClient(t, s.Addr, mcrs.TLS(p.verified())), "does not speak TLS", "handshake timeout")
	})
}

func TestPlaintextClientAgainstTLSServer(t *testing.T) {
	p := newPKI(t)
	s := newServer(t, p.serverArgs("server")...)
	eachCtx(t, func(t *testing.T, ctx context.Context) {
		e := callErr(t, ctx, tlsClient(t, s.Addr, mcrs.Timeout(500*time.Millisecond)), 2*time.Second)
		// memcached drops a connection whose first bytes are not TLS
		if !errors.Is(e, mcrs.ErrUnexpectedClose) {
			t.Fatalf("Get: %v, want ErrUnexpectedClose", e)
		}
	})
}

func TestTLSMutual(t *testing.T) {
	p := newPKI(t)
	s := newServer(t, p.serverArgs("server", "-o", "ssl_verify_mode=2", "-o", "ssl_ca_cert="+p.path("ca.pem"))...)
	eachCtx(t, func(t *testing.T, ctx context.Context) {
		without := tlsClient(t, s.Addr, mcrs.TLS(p.verified()))
		wantTLSError(t, ctx, without, "client certificate")
		cfg := p.verified()
		cfg.CertFile, cfg.KeyFile = p.path("client.pem"), p.path("client.key")
		tlsRoundtrip(t, ctx, tlsClient(t, s.Addr, mcrs.TLS(cfg)))
		// PEM bytes instead of files
		tlsRoundtrip(t, ctx, tlsClient(t, s.Addr, mcrs.TLS(mcrs.TLSConfig{CAPEM: p.read(t, "ca.pem"),
			CertPEM: p.read(t, "client.pem"), KeyPEM: p.read(t, "client.key")})))
		// the refusal is remembered: later calls fail at once
		start := time.Now()
		for i := 0; i < 20; i++ {
			wantTLSError(t, ctx, without, "client certificate")
		}
		if took := time.Since(start); took > time.Second {
			t.Fatalf("20 refused calls took %v", took)
		}
	})
}

func TestTLSVerificationOff(t *testing.T) {
	p := newPKI(t)
	s := newServer(t, p.serverArgs("rogue")...)
	eachCtx(t, func(t *testing.T, ctx context.Context) {
		tlsRoundtrip(t, ctx, tlsClient(t, s.Addr, mcrs.TLS(mcrs.TLSConfig{InsecureSkipVerify: true})))
	})
}

func TestTLSServerKilledAndRestarted(t *testing.T) {
	p := newPKI(t)
	s := newServer(t, p.serverArgs("server")...)
	eachCtx(t, func(t *testing.T, ctx context.Context) {
		c := tlsClient(t, s.Addr, mcrs.TLS(p.verified()))
		if err := c.Set(ctx, "a", "1"); err != nil {
			t.Fatal(err)
		}
		s.Kill()
		if _, _, err := c.Get(ctx, "a"); err == nil {
			t.Fatal("Get from a killed server succeeded")
		}
		s.Restart(t)
		// the stale connection is dropped and a new handshake made
		var err error
		for deadline := time.Now().Add(3 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
			var found bool
			if _, found, err = c.Get(ctx, "a"); err == nil {
				if found {
					t.Fatal("a survived the restart")
				}
				break
			}
		}
		if err != nil {
			t.Fatalf("after the restart: %v", err)
		}
		if err := c.Set(ctx, "a", "2"); err != nil {
			t.Fatal(err)
		}
		if v, _, err := c.Get(ctx, "a"); err != nil || v != "2" {
			t.Fatalf("Get = %v, %v", v, err)
		}
	})
}

// authServer is a memcached -Y with the users alice:secret and bob:hunter2
// (and more arguments).
func authServer(t *testing.T, more ...string) *memcachedServer {
	t.Helper()
	f := filepath.Join(t.TempDir(), "auth")
	if err := os.WriteFile(f, []byte("alice:secret\nbob:hunter2\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return newServer(t, append([]string{"-Y", f}, more...)...)
}

func TestAuth(t *testing.T) {
	s := authServer(t)
	eachCtx(t, func(t *testing.T, ctx context.Context) {
		tlsRoundtrip(t, ctx, tlsClient(t, s.Addr, mcrs.Auth("alice", "secret")))
		bob := tlsClient(t, s.Addr, mcrs.Auth("bob", "hunter2"))
		if _, _, err := bob.Get(ctx, "k"); err != nil {
			t.Fatal(err)
		}

		opt := mcrs.Auth("alice", "wrong-password")
		wrong := tlsClient(t, s.Addr, opt)
		start := time.Now()
		for i := 0; i < 20; i++ {
			e := callErr(t, ctx, wrong, time.Second)
			if !errors.Is(e, mcrs.ErrAuthFailed) {
				t.Fatalf("Get: %v, want ErrAuthFailed", e)
			}
			if !strings.Contains(e.Detail, "alice") {
				t.Fatalf("the detail does not name the user: %q", e.Detail)
			}
			if strings.Contains(e.Error(), "wrong-password") {
				t.Fatalf("the password leaked: %q", e.Error())
			}
		}
		if took := time.Since(start); took > time.Second {
			t.Fatalf("20 refused calls took %v (a retry storm?)", took)
		}
		for _, f := range []string{"%v", "%+v", "%#v"} {
			if out := fmt.Sprintf(f+" "+f, opt, wrong); strings.Contains(out, "wrong-password") {
				t.Fatalf("the password shows in %s output: %s", f, out)
			}
		}
		if err := wrong.Set(ctx, "k", "v"); !errors.Is(err, mcrs.ErrAuthFailed) {
			t.Fatalf("Set with a wrong password: %v", err)
		}

		e := callErr(t, ctx, tlsClient(t, s.Addr), 2*time.Second)
		if !errors.Is(e, mcrs.ErrAuthFailed) || !strings.Contains(e.Detail, "requires authentication") {
			t.Fatalf("Get without a login: %v, want ErrAuthFailed (requires authentication)", e)
		}
	})
}

func TestAuthOverTLS(t *testing.T) {
	p := newPKI(t)
	f := filepath.Join(t.TempDir(), "auth")
	if err := os.WriteFile(f, []byte("alice:secret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	s := newServer(t, p.serverArgs("server", "-Y", f)...)
	eachCtx(t, func(t *testing.T, ctx context.Context) {
		tlsRoundtrip(t, ctx, tlsClient(t, s.Addr, mcrs.TLS(p.verified()), mcrs.Auth("alice", "secret")))
		e := callErr(t, ctx, tlsClient(t, s.Addr, mcrs.TLS(p.verified()), mcrs.Auth("alice", "nope")), 2*time.Second)
		if !errors.Is(e, mcrs.ErrAuthFailed) || strings.Contains(e.Error(), "nope") {
			t.Fatalf("wrong password over TLS: %v", e)
		}
		e = callErr(t, ctx, tlsClient(t, s.Addr, mcrs.TLS(p.verified())), 2*time.Second)
		if !errors.Is(e, mcrs.ErrAuthFailed) {
			t.Fatalf("no login over TLS: %v", e)
		}
	})
}

func TestTLSAndAuthBadSettings(t *testing.T) {
	p := newPKI(t)
	bad := map[string]mcrs.Option{
		"missing CA file":   mcrs.TLS(mcrs.TLSConfig{CAFile: "/nonexistent/ca.pem"}),
		"CA not PEM":        mcrs.TLS(mcrs.TLSConfig{CAPEM: []byte("not pem")}),
		"empty CA PEM":      mcrs.TLS(mcrs.TLSConfig{CAPEM: []byte{}}),
		"CA file and PEM":   mcrs.TLS(mcrs.TLSConfig{CAFile: p.path("ca.pem"), CAPEM: p.read(t, "ca.pem")}),
		"key is a cert":     mcrs.TLS(mcrs.TLSConfig{CertFile: p.path("client.pem"), KeyFile: p.path("ca.pem")}),
		"key of another":    mcrs.TLS(mcrs.TLSConfig{CertFile: p.path("client.pem"), KeyFile: p.path("server.key")}),
		"cert without key":  mcrs.TLS(mcrs.TLSConfig{CertFile: p.path("client.pem")}),
		"bad server name":   mcrs.TLS(mcrs.TLSConfig{ServerName: "no spaces allowed"}),
		"NUL in a path":     mcrs.TLS(mcrs.TLSConfig{CAFile: "ca\x00.pem"}),
		"user with a space": mcrs.Auth("a user", "pw"),
		"user with a colon": mcrs.Auth("a:b", "pw"),
		"empty user":        mcrs.Auth("", "pw"),
		"empty password":    mcrs.Auth("u", ""),
		"CRLF in password":  mcrs.Auth("u", "p\r\nw0rd"),
		"NUL in password":   mcrs.Auth("u", "p\x00w0rd"),
	}
	for name, opt := range bad {
		t.Run(name, func(t *testing.T) {
			c, err := mcrs.New([]string{"127.0.0.1:1"}, opt)
			if err == nil {
				c.Close()
				t.Fatal("New succeeded")
			}
			if !errors.Is(err, mcrs.ErrInvalidArgument) {
				t.Fatalf("New: %v, want ErrInvalidArgument", err)
			}
			if strings.Contains(err.Error(), "w0rd") {
				t.Fatalf("the password leaked: %v", err)
			}
		})
	}
}

func TestTLSConfigFormatRedactsTheKey(t *testing.T) {
	cfg := mcrs.TLSConfig{CAPEM: []byte("ca bytes"), KeyPEM: []byte("-----BEGIN PRIVATE KEY----- s3cr3t"),
		ServerName: "cache.example.com"}
	for _, f := range []string{"%v", "%+v", "%#v", "%s"} {
		out := fmt.Sprintf(f, cfg)
		if strings.Contains(out, "s3cr3t") || strings.Contains(out, "PRIVATE KEY") {
			t.Fatalf("%s shows the private key: %s", f, out)
		}
		if !strings.Contains(out, "cache.example.com") || !strings.Contains(out, "KeyPEM:<redacted>") {
			t.Fatalf("%s: %s", f, out)
		}
	}
	if out := fmt.Sprintf("%+v", &cfg); strings.Contains(out, "s3cr3t") {
		t.Fatalf("%%+v of a pointer shows the private key: %s", out)
	}
}
