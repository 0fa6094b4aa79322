//go:build mcrs_pkgconfig && !mcrs_external

package mcrs

// go build -tags mcrs_pkgconfig: take the compiler and linker flags from
// `pkg-config mcrs` (an installed mcrs.pc; PKG_CONFIG_PATH may point to it).

/*
#cgo pkg-config: mcrs
*/
import "C"
