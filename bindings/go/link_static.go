//go:build mcrs_static && !mcrs_external && !mcrs_pkgconfig

package mcrs

// go build -tags mcrs_static: link target/release/libmcrs.a into the Go
// binary, which then needs no libmcrs.so at run time. The system libraries
// are those `cargo rustc -- --print native-static-libs` lists.

/*
#cgo LDFLAGS: ${SRCDIR}/../../target/release/libmcrs.a -lgcc_s -lutil -lrt -lpthread -lm -ldl
*/
import "C"
