package simulator

import (
	"bufio"
	"crypto/sha1" //nolint:gosec // mandated by RFC 6455 for the accept key
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
)

// A minimal RFC 6455 server: just enough for exec streams. The module
// graph has no WebSocket library with a go.sum entry, and the protocol
// subset needed here (handshake, masked client frames, fragmentation,
// ping/pong/close) is small.

const wsGUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

// WebSocket opcodes.
const (
	wsContinuation byte = 0x0
	wsText         byte = 0x1
	wsBinary       byte = 0x2
	wsClose        byte = 0x8
	wsPing         byte = 0x9
	wsPong         byte = 0xA
)

// wsMaxMessage bounds a client message.
const wsMaxMessage = 1 << 20

// wsAcceptKey computes Sec-WebSocket-Accept for a client key.
func wsAcceptKey(key string) string {
	h := sha1.New() //nolint:gosec // see import
	h.Write([]byte(key + wsGUID))
	return base64.StdEncoding.EncodeToString(h.Sum(nil))
}

func headerHasToken(h http.Header, name, token string) bool {
	for _, v := range h.Values(name) {
		for _, part := range strings.Split(v, ",") {
			if strings.EqualFold(strings.TrimSpace(part), token) {
				return true
			}
		}
	}
	return false
}

// wsConn is a server-side WebSocket connection.
type wsConn struct {
	c   net.Conn
	br  *bufio.Reader
	wmu sync.Mutex
}

// wsAccept performs the server handshake and hijacks the connection.
func wsAccept(w http.ResponseWriter, r *http.Request) (*wsConn, error) {
	if r.Method != http.MethodGet || !headerHasToken(r.Header, "Connection", "upgrade") ||
		!headerHasToken(r.Header, "Upgrade", "websocket") {
		http.Error(w, "websocket upgrade required", http.StatusBadRequest)
		return nil, errors.New("not a websocket upgrade")
	}
	if r.Header.Get("Sec-WebSocket-Version") != "13" {
		w.Header().Set("Sec-WebSocket-Version", "13")
		http.Error(w, "unsupported websocket version", http.StatusUpgradeRequired)
		return nil, errors.New("unsupported websocket version")
	}
	key := r.Header.Get("Sec-WebSocket-Key")
	if key == "" {
		http.Error(w, "missing Sec-WebSocket-Key", http.StatusBadRequest)
		return nil, errors.New("missing key")
	}
	hj, ok := w.(http.Hijacker)
	if !ok {
		http.Error(w, "connection cannot be hijacked", http.StatusInternalServerError)
		return nil, errors.New("not hijackable")
	}
	conn, brw, err := hj.Hijack()
	if err != nil {
		return nil, err
	}
	resp := "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
		"Sec-WebSocket-Accept: " + wsAcceptKey(key) + "\r\n\r\n"
	if _, err := conn.Write([]byte(resp)); err != nil {
		_ = conn.Close()
		return nil, err
	}
	return &wsConn{c: conn, br: brw.Reader}, nil
}

// writeWSFrame writes one final frame; clients must mask, servers must not.
func writeWSFrame(w io.Writer, op byte, payload []byte, mask bool, key [4]byte) error {
	hdr := make([]byte, 0, 14)
	hdr = append(hdr, 0x80|op)
	mbit := byte(0)
	if mask {
		mbit = 0x80
	}
	switch n := len(payload); {
	case n < 126:
		hdr = append(hdr, mbit|byte(n))
	case n <= 0xFFFF:
		hdr = append(hdr, mbit|126, byte(n>>8), byte(n))
	default:
		hdr = append(hdr, mbit|127)
		hdr = binary.BigEndian.AppendUint64(hdr, uint64(n))
	}
	data := payload
	if mask {
		hdr = append(hdr, key[:]...)
		data = make([]byte, len(payload))
		for i := range payload {
			data[i] = payload[i] ^ key[i%4]
		}
	}
	if _, err := w.Write(append(hdr, data...)); err != nil {
		return err
	}
	return nil
}

// readWSFrame reads one frame and unmasks it.
func readWSFrame(r *bufio.Reader) (fin bool, op byte, payload []byte, err error) {
	var h [2]byte
	if _, err = io.ReadFull(r, h[:]); err != nil {
		return
	}
	fin, op = h[0]&0x80 != 0, h[0]&0x0F
	masked := h[1]&0x80 != 0
	n := uint64(h[1] & 0x7F)
	switch n {
	case 126:
		var b [2]byte
		if _, err = io.ReadFull(r, b[:]); err != nil {
			return
		}
		n = uint64(binary.BigEndian.Uint16(b[:]))
	case 127:
		var b [8]byte
		if _, err = io.ReadFull(r, b[:]); err != nil {
			return
		}
		n = binary.BigEndian.Uint64(b[:])
	}
	if n > wsMaxMessage {
		err = fmt.Errorf("websocket frame of %d bytes is too large", n)
		return
	}
	var key [4]byte
	if masked {
		if _, err = io.ReadFull(r, key[:]); err != nil {
			return
		}
	}
	payload = make([]byte, n)
	if _, err = io.ReadFull(r, payload); err != nil {
		return
	}
	if masked {
		for i := range payload {
			payload[i] ^= key[i%4]
		}
	}
	return
}

// write sends a data frame (binary) or control frame.
func (c *wsConn) write(op byte, payload []byte) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	return writeWSFrame(c.c, op, payload, false, [4]byte{})
}

// closeWith sends a close frame with a status code and reason.
func (c *wsConn) closeWith(code uint16, reason string) {
	payload := binary.BigEndian.AppendUint16(nil, code)
	if len(reason) > 120 {
		reason = reason[:120]
	}
	_ = c.write(wsClose, append(payload, reason...))
}

// readMessage returns the next data message with the opcode of its first
// frame (wsText or wsBinary), answering pings and returning io.EOF when
// the peer closes.
func (c *wsConn) readMessage() (byte, []byte, error) {
	var msg []byte
	var first byte
	for {
		fin, op, payload, err := readWSFrame(c.br)
		if err != nil {
			return 0, nil, err
		}
		switch op {
		case wsPing:
			_ = c.write(wsPong, payload)
			continue
		case wsPong:
			continue
		case wsClose:
			_ = c.write(wsClose, payload)
			return 0, nil, io.EOF
		case wsText, wsBinary, wsContinuation:
			if op != wsContinuation {
				first = op
			}
			msg = append(msg, payload...)
			if len(msg) > wsMaxMessage {
				return 0, nil, errors.New("websocket message too large")
			}
			if fin {
				return first, msg, nil
			}
		default:
			return 0, nil, fmt.Errorf("unknown websocket opcode %d", op)
		}
	}
}
