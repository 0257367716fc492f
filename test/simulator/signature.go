package simulator

import (
	"crypto/hmac"
	"crypto/sha1" //nolint:gosec // signature v1 is HMAC-SHA1 by definition
	"encoding/base64"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"time"
)

// nonceWindow is how long a SignatureNonce is remembered; the cloud rejects
// replays within this window.
const nonceWindow = 15 * time.Minute

// percentEncode is the RPC-style percent encoding: RFC 3986 unreserved
// characters stay, everything else is %XX. url.QueryEscape is close but
// encodes space as '+', leaves '*' and encodes '~'.
func percentEncode(s string) string {
	e := url.QueryEscape(s)
	e = strings.ReplaceAll(e, "+", "%20")
	e = strings.ReplaceAll(e, "*", "%2A")
	e = strings.ReplaceAll(e, "%7E", "~")
	return e
}

// StringToSign builds the signature v1 string to sign for an RPC request:
// METHOD&%2F&percentEncode(sorted "k=v" pairs joined by '&'), where each k
// and v is itself percent-encoded. params must not contain Signature.
func StringToSign(method string, params map[string]string) string {
	keys := make([]string, 0, len(params))
	for k := range params {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	for i, k := range keys {
		if i > 0 {
			b.WriteByte('&')
		}
		b.WriteString(percentEncode(k))
		b.WriteByte('=')
		b.WriteString(percentEncode(params[k]))
	}
	return strings.ToUpper(method) + "&" + percentEncode("/") + "&" + percentEncode(b.String())
}

// ComputeSignature signs stringToSign with HMAC-SHA1 keyed by
// accessKeySecret+"&" and returns it base64-encoded, as the SDK does.
func ComputeSignature(stringToSign, accessKeySecret string) string {
	mac := hmac.New(sha1.New, []byte(accessKeySecret+"&"))
	mac.Write([]byte(stringToSign))
	return base64.StdEncoding.EncodeToString(mac.Sum(nil))
}

// verifySignature checks the common signature parameters of a request.
// params holds every query and form parameter; the caller has already
// checked that Action and Version are present. It must be called with
// s.mu held because it records nonces.
func (s *Simulator) verifySignature(method string, params map[string]string) *apiError {
	for _, name := range []string{"AccessKeyId", "Signature", "SignatureNonce", "Timestamp", "SignatureMethod", "SignatureVersion"} {
		if params[name] == "" {
			return errMissing(name)
		}
	}
	if params["SignatureMethod"] != "HMAC-SHA1" {
		return newError(http.StatusBadRequest, CodeUnsupportedSignatureMethod,
			"The specified SignatureMethod %q is not supported; use HMAC-SHA1.", params["SignatureMethod"])
	}
	if params["SignatureVersion"] != "1.0" {
		return errInvalid("SignatureVersion", "only 1.0 is supported")
	}
	ts, err := time.Parse("2006-01-02T15:04:05Z", params["Timestamp"])
	if err != nil {
		return newError(http.StatusBadRequest, CodeInvalidTimestampFormat,
			"The specified Timestamp %q is not in the ISO 8601 format yyyy-MM-ddTHH:mm:ssZ.", params["Timestamp"])
	}
	secret, ok := s.cfg.AccessKeys[params["AccessKeyId"]]
	if !ok {
		return newError(http.StatusNotFound, CodeInvalidAccessKeyID, "Specified access key is not found.")
	}
	signed := make(map[string]string, len(params))
	for k, v := range params {
		if k != "Signature" {
			signed[k] = v
		}
	}
	sts := StringToSign(method, signed)
	want := ComputeSignature(sts, secret)
	if !hmac.Equal([]byte(want), []byte(params["Signature"])) {
		return newError(http.StatusBadRequest, CodeSignatureDoesNotMatch,
			"Specified signature is not matched with our calculation. server string to sign is:%s", sts)
	}
	// Skew and replay are checked after the signature so that an attacker
	// without the secret learns nothing from them, as in the cloud.
	wall := time.Now()
	if s.cfg.MaxClockSkew > 0 {
		if d := wall.Sub(ts); d > s.cfg.MaxClockSkew || d < -s.cfg.MaxClockSkew {
			return newError(http.StatusBadRequest, CodeInvalidTimestampExpired,
				"Specified time stamp or date value is expired.")
		}
	}
	nonce := params["AccessKeyId"] + "\x00" + params["SignatureNonce"]
	if seen, ok := s.nonces[nonce]; ok && wall.Sub(seen) < nonceWindow {
		return newError(http.StatusBadRequest, CodeSignatureNonceUsed,
			"Specified signature nonce was used already.")
	}
	s.nonces[nonce] = wall
	if len(s.nonces) > 100000 || wall.Sub(s.noncesPruned) > time.Minute {
		for k, t := range s.nonces {
			if wall.Sub(t) >= nonceWindow {
				delete(s.nonces, k)
			}
		}
		s.noncesPruned = wall
	}
	return nil
}
