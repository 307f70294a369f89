//go:build !(linux || darwin || freebsd || netbsd || openbsd || dragonfly)

package gguf

import (
	"errors"
	"os"
)

// mmapFile is not supported on this platform; Open reads the file instead.
func mmapFile(file *os.File, size int) ([]byte, func() error, error) {
	return nil, nil, errors.ErrUnsupported
}
