package eci

import (
	"context"
	"fmt"
	"strconv"
)

// ExecContainerCommand limits, checked before sending so the caller gets a
// clear ClassInvalid error instead of the cloud's InvalidParameter.
const (
	// MaxExecArgs is the most items an exec Command may have.
	MaxExecArgs = 20
	// MaxExecArgLen is the longest one Command item may be, in bytes.
	MaxExecArgLen = 256
)

// ExecContainerCommandRequest runs a command in a running container.
type ExecContainerCommandRequest struct {
	ContainerGroupId string
	ContainerName    string
	// Command is the argv, sent as one JSON array (≤ 20 items of ≤ 256 bytes).
	Command []string
	// TTY allocates a terminal; it cannot be combined with Sync.
	TTY bool
	// Stdin keeps the command's standard input open for the stream.
	Stdin bool
	// Sync runs the command at once and returns its output in
	// SyncResponse instead of a stream URL.
	Sync bool
}

// ExecContainerCommandResponse carries the stream URLs (valid 30 s, single
// use) or, with Sync, the command's output.
type ExecContainerCommandResponse struct {
	RequestId    string `json:"RequestId"`
	WebSocketUri string `json:"WebSocketUri"`
	HttpUrl      string `json:"HttpUrl"`
	SyncResponse string `json:"SyncResponse"`
}

// CheckExecCommand reports, as a ClassInvalid *Error, a command the cloud
// would refuse.
func CheckExecCommand(argv []string) error {
	msg := ""
	switch {
	case len(argv) == 0:
		msg = "Command: a command is required"
	case len(argv) > MaxExecArgs:
		msg = fmt.Sprintf("Command: %d items given, ECI takes at most %d", len(argv), MaxExecArgs)
	default:
		for i, a := range argv {
			if len(a) > MaxExecArgLen {
				msg = fmt.Sprintf("Command: item %d is %d bytes long, ECI takes at most %d per item", i+1, len(a), MaxExecArgLen)
				break
			}
		}
	}
	if msg == "" {
		return nil
	}
	return &Error{Action: "ExecContainerCommand", Class: ClassInvalid, Message: msg}
}

// ExecContainerCommand asks for an exec session. The booleans are always
// sent because the cloud's defaults differ between them (Stdin defaults to
// true, TTY and Sync to false).
func (c *Client) ExecContainerCommand(ctx context.Context, req *ExecContainerCommandRequest) (*ExecContainerCommandResponse, error) {
	if err := CheckExecCommand(req.Command); err != nil {
		return nil, err
	}
	params := map[string]string{
		"ContainerGroupId": req.ContainerGroupId,
		"ContainerName":    req.ContainerName,
		"Command":          jsonList(req.Command),
		"TTY":              strconv.FormatBool(req.TTY),
		"Stdin":            strconv.FormatBool(req.Stdin),
		"Sync":             strconv.FormatBool(req.Sync),
	}
	out := &ExecContainerCommandResponse{}
	if err := c.call(ctx, "ExecContainerCommand", params, out); err != nil {
		return nil, err
	}
	return out, nil
}
