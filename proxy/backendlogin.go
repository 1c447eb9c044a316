package proxy

import (
	"context"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/x509"
	"encoding/binary"
	"encoding/pem"
	"fmt"
	"os"
	"strconv"

	"github.com/go-mysql-org/go-mysql/mysql"
)

// baseBackendCaps are always requested from backends.
const baseBackendCaps = mysql.CLIENT_LONG_PASSWORD | mysql.CLIENT_LONG_FLAG | mysql.CLIENT_CONNECT_WITH_DB |
	mysql.CLIENT_PROTOCOL_41 | mysql.CLIENT_TRANSACTIONS | mysql.CLIENT_SECURE_CONNECTION |
	mysql.CLIENT_PLUGIN_AUTH | mysql.CLIENT_PLUGIN_AUTH_LENENC_CLIENT_DATA | mysql.CLIENT_CONNECT_ATTRS

// greeting is the part of the server's HandshakeV10 we use.
type greeting struct {
	version  string
	threadID uint32
	caps     uint32
	scramble []byte
	plugin   string
}

func parseGreeting(p []byte) (*greeting, error) {
	if len(p) > 0 && p[0] == 0xff {
		return nil, parseErr(p)
	}
	if len(p) < 1 || p[0] != 10 {
		return nil, fmt.Errorf("%w: not a protocol 10 greeting", errBackendProtocol)
	}
	version, rest, ok := cutNul(p[1:])
	if !ok || len(rest) < 4+8+1+2 {
		return nil, fmt.Errorf("%w: short greeting", errBackendProtocol)
	}
	g := &greeting{version: string(version), threadID: binary.LittleEndian.Uint32(rest)}
	g.scramble = append(g.scramble, rest[4:12]...)
	g.caps = uint32(binary.LittleEndian.Uint16(rest[13:]))
	rest = rest[15:]
	if len(rest) < 1+2+2+1+10 {
		return g, nil
	}
	g.caps |= uint32(binary.LittleEndian.Uint16(rest[3:])) << 16
	authLen := int(rest[5])
	rest = rest[16:]
	if g.caps&mysql.CLIENT_SECURE_CONNECTION != 0 {
		n := max(13, authLen-8)
		if len(rest) < n {
			return nil, fmt.Errorf("%w: short scramble", errBackendProtocol)
		}
		part2 := rest[:n]
		if part2[len(part2)-1] == 0 {
			part2 = part2[:len(part2)-1]
		}
		g.scramble = append(g.scramble, part2...)
		rest = rest[n:]
	}
	if g.caps&mysql.CLIENT_PLUGIN_AUTH != 0 {
		plugin, _, _ := cutNul(rest)
		g.plugin = string(plugin)
	}
	return g, nil
}

// login performs the client side of the connection phase, over TLS when
// tlsc is not nil and the server offers it (see BackendTLS).
// https://dev.mysql.com/doc/dev/mysql-server/latest/page_protocol_connection_phase.html
func (bc *backendConn) login(ctx context.Context, key poolKey, cred *credential, db string, tlsc *BackendTLS) error {
	bc.seq = 0
	p, err := bc.readPacket(1 << 16)
	if err != nil {
		return fmt.Errorf("read greeting: %w", err)
	}
	g, err := parseGreeting(p)
	if err != nil {
		return err
	}
	bc.threadID, bc.version = g.threadID, g.version
	caps := (baseBackendCaps | key.caps&backendCapsMask) & (g.caps | mysql.CLIENT_LONG_PASSWORD)
	if db == "" {
		caps &^= mysql.CLIENT_CONNECT_WITH_DB
	}
	if tlsc != nil {
		switch {
		case g.caps&mysql.CLIENT_SSL != 0:
			caps |= mysql.CLIENT_SSL
			if err := bc.startTLS(ctx, tlsc.Config, caps, key.collation); err != nil {
				return err
			}
		case !tlsc.Preferred:
			return errNoBackendTLS
		}
	}
	bc.caps = caps
	plugin := g.plugin
	if plugin == "" {
		plugin = authNative
	}
	authData, err := scrambleFor(plugin, g.scramble, cred)
	if err != nil {
		return err
	}
	out := binary.LittleEndian.AppendUint32(nil, caps)
	out = binary.LittleEndian.AppendUint32(out, 1<<30)
	out = append(out, key.collation)
	out = append(out, make([]byte, 23)...)
	out = append(out, cred.user...)
	out = append(out, 0)
	out = mysql.AppendLengthEncodedInteger(out, uint64(len(authData)))
	out = append(out, authData...)
	if db != "" {
		out = append(out, db...)
		out = append(out, 0)
	}
	out = append(out, plugin...)
	out = append(out, 0)
	if caps&mysql.CLIENT_CONNECT_ATTRS != 0 {
		out = append(out, backendAttributes...)
	}
	if err := bc.writePacket(out); err != nil {
		return err
	}
	if err := bc.flush(); err != nil {
		return err
	}
	return bc.authResult(plugin, g.scramble, cred)
}

// authResult follows the server's answers until OK or ERR.
func (bc *backendConn) authResult(plugin string, scramble []byte, cred *credential) error {
	for {
		p, err := bc.readPacket(1 << 16)
		if err != nil {
			return fmt.Errorf("read auth result: %w", err)
		}
		if len(p) == 0 {
			return fmt.Errorf("%w: empty auth packet", errBackendProtocol)
		}
		var reply []byte
		switch p[0] {
		case 0x00:
			if len(p) >= 5 {
				_, _, n := lenEncInt(p[1:])
				_, _, m := lenEncInt(p[1+n:])
				if i := 1 + n + m; len(p) >= i+2 {
					bc.status = binary.LittleEndian.Uint16(p[i:])
				}
			}
			return nil
		case 0xff:
			return parseErr(p)
		case authSwitchRequest:
			name, rest, _ := cutNul(p[1:])
			plugin = string(name)
			scramble = bytes20(rest)
			if reply, err = scrambleFor(plugin, scramble, cred); err != nil {
				return err
			}
		case authMoreData:
			if plugin != authCachingSha2 || len(p) < 2 {
				return fmt.Errorf("%w: auth-more-data for %s", errBackendProtocol, plugin)
			}
			switch p[1] {
			case sha2FastAuthOK:
				continue
			case sha2PerformFull:
				// The server's cache lacks the account (a restart or
				// FLUSH PRIVILEGES empties it): it needs the password.
				bc.fullAuth = true
				if cred.password == "" {
					return newSQLError(mysql.ER_ACCESS_DENIED_ERROR,
						"the server wants caching_sha2_password full authentication for %s, but only a password hash is configured", cred.user)
				}
				if bc.overTLS {
					// TLS protects it: cleartext, NUL-terminated, as
					// MySQL's own clients send it.
					reply = append([]byte(cred.password), 0)
				} else {
					reply = []byte{sha2RequestPubKey}
				}
			default:
				// The server sent its public key (PEM).
				block, _ := pem.Decode(p[1:])
				if block == nil {
					return fmt.Errorf("%w: bad public key", errBackendProtocol)
				}
				pub, err := x509.ParsePKIXPublicKey(block.Bytes)
				if err != nil {
					return fmt.Errorf("parse backend public key: %w", err)
				}
				rsaPub, ok := pub.(*rsa.PublicKey)
				if !ok {
					return fmt.Errorf("%w: public key is not RSA", errBackendProtocol)
				}
				if reply, err = mysql.EncryptPassword(cred.password, scramble, rsaPub); err != nil {
					return fmt.Errorf("encrypt password for backend: %w", err)
				}
			}
		default:
			return fmt.Errorf("%w: 0x%02x during authentication", errBackendProtocol, p[0])
		}
		if err := bc.writePacket(reply); err != nil {
			return err
		}
		if err := bc.flush(); err != nil {
			return err
		}
	}
}

// bytes20 returns the scramble in an auth switch request (NUL-terminated).
func bytes20(b []byte) []byte {
	if n := len(b); n > 0 && b[n-1] == 0 {
		b = b[:n-1]
	}
	return append([]byte(nil), b...)
}

// scrambleFor computes the first auth response for plugin.
func scrambleFor(plugin string, scramble []byte, cred *credential) ([]byte, error) {
	switch plugin {
	case authNative:
		if cred.stage1 == nil {
			return nil, nil
		}
		// SHA1(password) XOR SHA1(scramble + SHA1(SHA1(password)))
		stage2 := sha1.Sum(cred.stage1)
		h := sha1.New()
		h.Write(scramble[:min(len(scramble), nativeScrambleSize)])
		h.Write(stage2[:])
		return mysql.Xor(h.Sum(nil), cred.stage1), nil
	case authCachingSha2:
		if cred.stage1 == nil {
			return nil, nil
		}
		if cred.password == "" {
			return nil, newSQLError(mysql.ER_ACCESS_DENIED_ERROR,
				"the server asks for caching_sha2_password for %s, but only a mysql_native_password hash is configured", cred.user)
		}
		return mysql.CalcCachingSha2Password(scramble[:min(len(scramble), nativeScrambleSize)], []byte(cred.password)), nil
	case "client_ed25519":
		if cred.password == "" {
			return nil, newSQLError(mysql.ER_ACCESS_DENIED_ERROR,
				"the server asks for ed25519 for %s, but only a password hash is configured", cred.user)
		}
		return mysql.CalcEd25519Password(scramble, cred.password)
	default:
		return nil, newSQLError(mysql.ER_NOT_SUPPORTED_AUTH_MODE,
			"its authentication plugin %q is not supported by Switchyard", plugin)
	}
}

// backendAttributes are the connection attributes of every backend
// connection, encoded for the handshake response: they name Switchyard in the
// server's performance_schema.session_connect_attrs. Clients' own attributes
// are not forwarded (see SessionInfo).
var backendAttributes = encodeAttributes([]Attribute{
	{"_client_name", "switchyard"},
	{"program_name", "switchyard"},
	{"_pid", strconv.Itoa(os.Getpid())},
})

func encodeAttributes(attrs []Attribute) []byte {
	var b []byte
	for _, a := range attrs {
		b = mysql.AppendLengthEncodedInteger(b, uint64(len(a.Name)))
		b = append(b, a.Name...)
		b = mysql.AppendLengthEncodedInteger(b, uint64(len(a.Value)))
		b = append(b, a.Value...)
	}
	return append(mysql.AppendLengthEncodedInteger(nil, uint64(len(b))), b...)
}
