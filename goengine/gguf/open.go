package gguf

import (
	"fmt"
	"math"
	"os"
)

// mmap maps a file read-only; a variable so that tests can make it fail.
var mmap = mmapFile

// Open reads the GGUF file at path and checks its container structure, as
// Parse does. The file is memory-mapped read-only where the platform allows
// it, and read into memory otherwise (or if mapping fails). Call Close to
// release it. While a file is mapped, it must not be truncated or rewritten
// in place (replace it by renaming instead): reading a mapped page past a
// shrunken end crashes the process. Every error is a *FormatError, wrapping the underlying error
// for I/O failures.
func Open(path string) (*File, error) {
	file, err := os.Open(path)
	if err != nil {
		return nil, &FormatError{Path: path, Msg: err.Error(), Err: err}
	}
	defer file.Close()
	info, err := file.Stat()
	if err != nil {
		return nil, &FormatError{Path: path, Msg: err.Error(), Err: err}
	}
	if !info.Mode().IsRegular() {
		return nil, errorf(path, "", "not a regular file (%s)", info.Mode().Type())
	}
	size := info.Size()
	if size > math.MaxInt {
		return nil, errorf(path, "", "file of %d bytes is too large for this platform", size)
	}
	var data []byte
	var unmap func() error
	if size > 0 {
		data, unmap, err = mmap(file, int(size))
	}
	if size == 0 || err != nil {
		// No mapping (unsupported platform, or a file system that refuses
		// it): read the file instead.
		data, unmap = nil, nil
		if data, err = os.ReadFile(path); err != nil {
			return nil, &FormatError{Path: path, Msg: fmt.Sprintf("read: %v", err), Err: err}
		}
	}
	f, err := Parse(data, path)
	if err != nil {
		if unmap != nil {
			unmap()
		}
		return nil, err
	}
	f.unmap = unmap
	return f, nil
}
