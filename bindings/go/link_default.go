//go:build !mcrs_static && !mcrs_external && !mcrs_pkgconfig

package mcrs

// Default linking: the shared library built in this repository
// (cargo build --release puts it in target/release), found at run time
// through an rpath, so neither LD_LIBRARY_PATH nor an install step is needed.
// CGO_LDFLAGS="-L/other/dir" is searched before this directory. See README.md
// for the mcrs_static, mcrs_pkgconfig and mcrs_external build tags.

/*
#cgo LDFLAGS: -L${SRCDIR}/../../target/release -lmcrs -Wl,-rpath,${SRCDIR}/../../target/release
*/
import "C"
