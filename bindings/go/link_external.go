//go:build mcrs_external

package mcrs

// go build -tags mcrs_external: no linker flags at all; give them yourself,
// e.g. CGO_CFLAGS=-I/opt/mcrs/include CGO_LDFLAGS="-L/opt/mcrs/lib -lmcrs".
