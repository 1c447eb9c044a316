package proxy

import (
	"bytes"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/subtle"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"

	"github.com/go-mysql-org/go-mysql/mysql"
	"github.com/switchyard-db/switchyard/router"
)

// User is an account clients log in as. Switchyard logs into backends as the
// same user, so the account must exist on every backend with the same password.
type User struct {
	Name string
	// Password is the cleartext password, when configured. With it both
	// mysql_native_password and caching_sha2_password (fast path) work.
	Password string
	// NativeHash is the mysql_native_password hash, SHA1(SHA1(password)), used
	// when Password is empty. caching_sha2_password clients then go through
	// full authentication (TLS or RSA), which reveals the password.
	NativeHash []byte
	// HasPassword is false for an account with an empty password.
	HasPassword bool
	// MaxConnections limits this user's client connections (0: no limit).
	MaxConnections int
	// Consistency overrides the routing consistency for this user (nil:
	// the default).
	Consistency *router.Consistency
}

// NewUser returns a user with a cleartext password.
func NewUser(name, password string) User {
	return User{Name: name, Password: password, HasPassword: password != ""}
}

// NewUserFromHash returns a user known only by a mysql_native_password hash
// ("*" followed by 40 hex digits, as in mysql.user).
func NewUserFromHash(name, hash string) (User, error) {
	if hash == "" {
		return User{Name: name}, nil
	}
	h, err := mysql.DecodePasswordHex(hash)
	if err != nil || len(h) != sha1.Size {
		return User{}, fmt.Errorf("user %s: password hash must be '*' and 40 hex digits", name)
	}
	return User{Name: name, NativeHash: h, HasPassword: true}, nil
}

// credential is what a session knows after authentication: enough to log
// into backends as the same user.
type credential struct {
	user     string
	password string // cleartext, when known
	stage1   []byte // SHA1(password), enough for mysql_native_password backends
}

// errAccessDenied is wrapped by every authentication failure.
var errAccessDenied = errors.New("access denied")

// auth messages of caching_sha2_password
const (
	authMoreData       = 0x01
	sha2FastAuthOK     = 0x03
	sha2PerformFull    = 0x04
	sha2RequestPubKey  = 0x02
	authSwitchRequest  = 0xfe
	nativeScrambleSize = 20
)

// authenticate runs the authentication exchange for the response r, which
// arrived with sequence id already consumed. It returns the credential to use
// for backends.
// https://dev.mysql.com/doc/dev/mysql-server/latest/page_protocol_connection_phase_authentication_methods.html
func (s *session) authenticate(r *handshakeResponse, scramble []byte) (*credential, error) {
	u, known := s.srv.user(r.user)
	plugin, data := r.plugin, r.authData
	greeted := s.srv.opts().AuthPlugin
	switch {
	case plugin != authNative && plugin != authCachingSha2:
		// Ask the client to switch to the plugin we greeted with.
		plugin = greeted
		var err error
		if data, err = s.authSwitch(plugin, scramble); err != nil {
			return nil, err
		}
	case plugin != greeted && len(data) == 0:
		// libmariadb answers with its own plugin and no data, and waits to
		// be switched to that plugin.
		var err error
		if data, err = s.authSwitch(plugin, scramble); err != nil {
			return nil, err
		}
	}
	r.authData = data // what the client answered, for "using password: YES/NO"
	if !known {
		return nil, fmt.Errorf("%w: unknown user", errAccessDenied)
	}
	if !u.HasPassword {
		if len(data) > 0 && !(len(data) == 1 && data[0] == 0) {
			return nil, fmt.Errorf("%w: wrong password", errAccessDenied)
		}
		return &credential{user: u.Name}, nil
	}
	switch plugin {
	case authNative:
		return s.authNative(u, data, scramble)
	default:
		return s.authCachingSha2(u, data, scramble, r.tls)
	}
}

// authSwitch sends an AuthSwitchRequest and returns the client's answer.
func (s *session) authSwitch(plugin string, scramble []byte) ([]byte, error) {
	p := append([]byte{authSwitchRequest}, plugin...)
	p = append(p, 0)
	p = append(p, scramble...)
	p = append(p, 0)
	if err := s.writeClient(p); err != nil {
		return nil, err
	}
	data, err := s.client.readPacket(4096)
	if err != nil {
		return nil, fmt.Errorf("read auth switch response: %w", err)
	}
	return bytes.Clone(data), nil
}

func (s *session) authNative(u User, token, scramble []byte) (*credential, error) {
	stored := u.NativeHash
	if stored == nil {
		stored = mysql.NativePasswordHash([]byte(u.Password))
	}
	if len(token) != sha1.Size {
		return nil, fmt.Errorf("%w: wrong password", errAccessDenied)
	}
	// token = SHA1(password) XOR SHA1(scramble + SHA1(SHA1(password)))
	h := sha1.New()
	h.Write(scramble[:nativeScrambleSize])
	h.Write(stored)
	stage1 := mysql.Xor(token, h.Sum(nil))
	stage2 := sha1.Sum(stage1)
	if subtle.ConstantTimeCompare(stage2[:], stored) != 1 {
		return nil, fmt.Errorf("%w: wrong password", errAccessDenied)
	}
	return &credential{user: u.Name, password: u.Password, stage1: stage1}, nil
}

func (s *session) authCachingSha2(u User, data, scramble []byte, overTLS bool) (*credential, error) {
	if u.Password != "" {
		// Fast path: the client proves it knows SHA256(password).
		want := mysql.CalcCachingSha2Password(scramble[:nativeScrambleSize], []byte(u.Password))
		if subtle.ConstantTimeCompare(data, want) != 1 {
			return nil, fmt.Errorf("%w: wrong password", errAccessDenied)
		}
		if err := s.writeClient([]byte{authMoreData, sha2FastAuthOK}); err != nil {
			return nil, err
		}
		stage1 := sha1.Sum([]byte(u.Password))
		return &credential{user: u.Name, password: u.Password, stage1: stage1[:]}, nil
	}
	// Only a native hash is known: full authentication reveals the password.
	if err := s.writeClient([]byte{authMoreData, sha2PerformFull}); err != nil {
		return nil, err
	}
	p, err := s.client.readPacket(4096)
	if err != nil {
		return nil, fmt.Errorf("read full authentication: %w", err)
	}
	var password []byte
	switch {
	case overTLS:
		password, _, _ = cutNul(p)
	case len(p) == 1 && p[0] == sha2RequestPubKey:
		if err := s.writeClient(append([]byte{authMoreData}, s.srv.rsaPublicPEM...)); err != nil {
			return nil, err
		}
		if p, err = s.client.readPacket(4096); err != nil {
			return nil, fmt.Errorf("read encrypted password: %w", err)
		}
		fallthrough
	default:
		// The client encrypted (password + NUL) XOR scramble with our public key.
		plain, err := rsa.DecryptOAEP(sha1.New(), nil, s.srv.rsaKey, p, nil)
		if err != nil {
			return nil, fmt.Errorf("%w: cannot decrypt password (%v)", errAccessDenied, err)
		}
		for i := range plain {
			plain[i] ^= scramble[i%nativeScrambleSize]
		}
		password, _, _ = cutNul(plain)
	}
	if subtle.ConstantTimeCompare(mysql.NativePasswordHash(password), u.NativeHash) != 1 {
		return nil, fmt.Errorf("%w: wrong password", errAccessDenied)
	}
	stage1 := sha1.Sum(password)
	return &credential{user: u.Name, password: string(password), stage1: stage1[:]}, nil
}

// marshalPublicKey returns the PEM form caching_sha2_password clients expect.
func marshalPublicKey(k *rsa.PrivateKey) ([]byte, error) {
	der, err := x509.MarshalPKIXPublicKey(&k.PublicKey)
	if err != nil {
		return nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}), nil
}
