//go:build !linux

package sim

import (
	"errors"
	"os"
)

func openPTY() (master, slave *os.File, err error) {
	return nil, nil, errors.New("sim: pty serving is only implemented on Linux; use tcp://")
}
