// TLS and memcached -Y authentication options (mcrs_config_set_tls* and mcrs_config_set_auth).
package mcrs

/*
#include <string.h>
#include "mcrs_go.h"
*/
import "C"

import (
	"fmt"
	"strings"
	"unsafe"
)

// TLSConfig is the TLS of every connection, for the TLS option. Servers are
// verified against the system roots unless a CA is given; each address's
// host (an IP address too) is the name the certificate must hold unless
// ServerName is set. File and PEM fields of one kind are alternatives (set
// at most one); files are read when New runs.
//
// Formatting a TLSConfig with fmt (%v, %+v, %#v) redacts KeyPEM.
type TLSConfig struct {
	// CAFile is a PEM file of the CA certificates that sign the servers'
	// certificates, instead of the system roots; CAPEM is its content.
	CAFile string
	CAPEM  []byte
	// CertFile and KeyFile are the client's certificate chain and its
	// private key (PEM: PKCS#8, PKCS#1 or SEC1), for servers that demand
	// mutual TLS; CertPEM and KeyPEM their contents.
	CertFile string
	CertPEM  []byte
	KeyFile  string
	KeyPEM   []byte
	// ServerName is the DNS name or IP address the servers' certificates
	// must be valid for, and the SNI sent (default: each address's host).
	ServerName string
	// InsecureSkipVerify accepts any server certificate: the traffic is
	// encrypted but the server is not authenticated. For tests only.
	InsecureSkipVerify bool
}

// String describes the config without the private key's bytes.
func (c TLSConfig) String() string {
	var parts []string
	add := func(name, v string) {
		if v != "" {
			parts = append(parts, name+":"+v)
		}
	}
	pem := func(b []byte) string {
		if len(b) == 0 {
			return ""
		}
		return fmt.Sprintf("<%d bytes>", len(b))
	}
	add("CAFile", c.CAFile)
	add("CAPEM", pem(c.CAPEM))
	add("CertFile", c.CertFile)
	add("CertPEM", pem(c.CertPEM))
	add("KeyFile", c.KeyFile)
	if len(c.KeyPEM) > 0 {
		add("KeyPEM", "<redacted>")
	}
	add("ServerName", c.ServerName)
	if c.InsecureSkipVerify {
		add("InsecureSkipVerify", "true")
	}
	return "mcrs.TLSConfig{" + strings.Join(parts, " ") + "}"
}

// GoString is String, so that %#v redacts the private key too.
func (c TLSConfig) GoString() string { return c.String() }

// cString gives s as a C string for one call (nil, false when s has a NUL
// byte, which C would cut it at). The caller frees it.
func cString(s string) (*C.char, bool) {
	if strings.IndexByte(s, 0) >= 0 {
		return nil, false
	}
	return C.CString(s), true
}

// strSetting applies one string setting; what names it in errors, never
// quoting the value when secret.
func strSetting(b *builder, op, what, v string, set func(*C.mcrs_config, *C.char) C.enum_mcrs_status) error {
	cs, ok := cString(v)
	if !ok {
		return &Error{Status: StatusInvalidArgument, Op: op, Detail: what + " contains a NUL byte"}
	}
	defer C.free(unsafe.Pointer(cs))
	return configStatus(op, "", func(eb *errBuf) C.enum_mcrs_status {
		return C.mcrsgo_submitted(set(b.cfg, cs), eb.ptr(), eb.size())
	})
}

func pemSetting(b *builder, op string, pem []byte,
	set func(*C.mcrs_config, *C.uint8_t, C.size_t) C.enum_mcrs_status) error {
	if len(pem) == 0 {
		return &Error{Status: StatusInvalidArgument, Op: op, Detail: "empty PEM"}
	}
	p, n := bytesArg(pem)
	return configStatus(op, "", func(eb *errBuf) C.enum_mcrs_status {
		return C.mcrsgo_submitted(set(b.cfg, p, n), eb.ptr(), eb.size())
	})
}

// TLS turns TLS on for every connection, set up by cfg (TLSConfig{} is TLS
// verified against the system roots). A setting that cannot be used (a
// missing file, bytes without a certificate, a key that does not match the
// certificate, both a file and PEM of one kind) makes New fail with
// ErrInvalidArgument. A failed handshake or verification gives ErrTLS, and
// the error's Detail says why: unknown CA, name mismatch, expired
// certificate, handshake timeout, a peer that does not speak TLS, a server
// that demands a client certificate.
func TLS(cfg TLSConfig) Option {
	return func(b *builder) error {
		if err := configStatus("tls", "", func(eb *errBuf) C.enum_mcrs_status {
			return C.mcrsgo_submitted(C.mcrs_config_set_tls(b.cfg, C.bool(true)), eb.ptr(), eb.size())
		}); err != nil {
			return err
		}
		type pair struct {
			op, file string
			pem      []byte
			setFile  func(*C.mcrs_config, *C.char) C.enum_mcrs_status
			setPEM   func(*C.mcrs_config, *C.uint8_t, C.size_t) C.enum_mcrs_status
		}
		for _, p := range []pair{
			{"tls_ca", cfg.CAFile, cfg.CAPEM,
				func(c *C.mcrs_config, s *C.char) C.enum_mcrs_status { return C.mcrs_config_set_tls_ca_file(c, s) },
				func(c *C.mcrs_config, p *C.uint8_t, n C.size_t) C.enum_mcrs_status {
					return C.mcrs_config_set_tls_ca_pem(c, p, n)
				}},
			{"tls_cert", cfg.CertFile, cfg.CertPEM,
				func(c *C.mcrs_config, s *C.char) C.enum_mcrs_status { return C.mcrs_config_set_tls_cert_file(c, s) },
				func(c *C.mcrs_config, p *C.uint8_t, n C.size_t) C.enum_mcrs_status {
					return C.mcrs_config_set_tls_cert_pem(c, p, n)
				}},
			{"tls_key", cfg.KeyFile, cfg.KeyPEM,
				func(c *C.mcrs_config, s *C.char) C.enum_mcrs_status { return C.mcrs_config_set_tls_key_file(c, s) },
				func(c *C.mcrs_config, p *C.uint8_t, n C.size_t) C.enum_mcrs_status {
					return C.mcrs_config_set_tls_key_pem(c, p, n)
				}},
		} {
			var err error
			switch {
			case p.file != "" && p.pem != nil:
				err = &Error{Status: StatusInvalidArgument, Op: p.op,
					Detail: "both a file and PEM bytes are set; set one"}
			case p.file != "":
				err = strSetting(b, p.op+"_file", "the path", p.file, p.setFile)
			case p.pem != nil:
				err = pemSetting(b, p.op+"_pem", p.pem, p.setPEM)
			}
			if err != nil {
				return err
			}
		}
		if cfg.ServerName != "" {
			if err := strSetting(b, "tls_server_name", "the server name", cfg.ServerName,
				func(c *C.mcrs_config, s *C.char) C.enum_mcrs_status {
					return C.mcrs_config_set_tls_server_name(c, s)
				}); err != nil {
				return err
			}
		}
		return configStatus("tls_verify", "", func(eb *errBuf) C.enum_mcrs_status {
			return C.mcrsgo_submitted(C.mcrs_config_set_tls_verify(b.cfg, C.bool(!cfg.InsecureSkipVerify)),
				eb.ptr(), eb.size())
		})
	}
}

// Auth logs in as username with password on every new connection
// (memcached -Y auth file), over TLS too when it is on. A refused login
// gives ErrAuthFailed, and so does a server that demands a login when no
// Auth is given; the refusal is remembered for RetryTimeout, so calls fail
// at once without reconnecting. The password appears in no error and no
// formatted output. A username with whitespace or ':', a password with CR
// or LF, or empty ones make New fail with ErrInvalidArgument.
func Auth(username, password string) Option {
	return func(b *builder) error {
		u, ok := cString(username)
		if !ok {
			return &Error{Status: StatusInvalidArgument, Op: "auth", Detail: "the username contains a NUL byte"}
		}
		defer C.free(unsafe.Pointer(u))
		p, ok := cString(password)
		if !ok {
			return &Error{Status: StatusInvalidArgument, Op: "auth", Detail: "the password contains a NUL byte"}
		}
		defer func() {
			// the C copy of the password is wiped before it is freed
			C.memset(unsafe.Pointer(p), 0, C.size_t(len(password)))
			C.free(unsafe.Pointer(p))
		}()
		return configStatus("auth", "", func(eb *errBuf) C.enum_mcrs_status {
			return C.mcrsgo_submitted(C.mcrs_config_set_auth(b.cfg, u, p), eb.ptr(), eb.size())
		})
	}
}
