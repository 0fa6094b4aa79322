// Benchmarks of this binding against gomemcache (github.com/bradfitz/gomemcache),
// side by side in one process on one memcached -t 1: ops/s and CPU per op at
// 1, 8 and 64 goroutines. A module of its own, so that the mcrs package
// depends on nothing. Run (from bindings/go/bench):
//
//	go test -run XXX -bench . -benchtime 3s
//
// and see README.md for the figures and ratios.
package bench

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/bradfitz/gomemcache/memcache"
	mcrs "github.com/mcrs-project/mcrs-go"
)

const nKeys = 100

var (
	addr   string
	keys   [nKeys]string
	values [nKeys][]byte
)

func TestMain(m *testing.M) {
	cmd, a, err := startMemcached()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	addr = a
	for i := range keys {
		keys[i] = fmt.Sprintf("bench:%d", i)
		values[i] = bytes.Repeat([]byte{byte('a' + i%26)}, 100) // 100-byte values
	}
	code := m.Run()
	cmd.Process.Kill()
	cmd.Wait()
	os.Exit(code)
}

// startMemcached starts memcached -t 1 on a free loopback port.
func startMemcached() (*exec.Cmd, string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, "", err
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	args := []string{"-l", "127.0.0.1", "-p", strconv.Itoa(port), "-U", "0", "-t", "1", "-c", "4096"}
	if os.Geteuid() == 0 {
		args = append(args, "-u", "root")
	}
	cmd := exec.Command("memcached", args...)
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		return nil, "", err
	}
	a := fmt.Sprintf("127.0.0.1:%d", port)
	for i := 0; i < 500; i++ {
		if c, err := net.Dial("tcp", a); err == nil {
			c.Close()
			return cmd, a, nil
		}
		time.Sleep(10 * time.Millisecond)
	}
	cmd.Process.Kill()
	return nil, "", fmt.Errorf("memcached on %s did not start", a)
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// run does b.N calls of get spread over g goroutines and reports ops/s and
// the process's CPU time per op (user + system).
func run(b *testing.B, g int, get func(key string, want []byte) error) {
	var wg sync.WaitGroup
	errs := make(chan error, g)
	per := b.N / g
	extra := b.N % g
	b.ResetTimer()
	cpu0, t0 := cpuTime(), time.Now()
	for w := 0; w < g; w++ {
		n := per
		if w < extra {
			n++
		}
		wg.Add(1)
		go func(w, n int) {
			defer wg.Done()
			for i := 0; i < n; i++ {
				k := (w*7 + i) % nKeys
				if err := get(keys[k], values[k]); err != nil {
					errs <- err
					return
				}
			}
		}(w, n)
	}
	wg.Wait()
	elapsed, cpu := time.Since(t0), cpuTime()-cpu0
	b.StopTimer()
	close(errs)
	for err := range errs {
		b.Fatal(err)
	}
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "ops/s")
	b.ReportMetric(float64(cpu.Nanoseconds())/float64(b.N), "cpu-ns/op")
}

var goroutines = []int{1, 8, 64}

// BenchmarkGet: gets of 100-byte values, each checked, for both clients at
// each goroutine count (alternating, in one process, on one server).
func BenchmarkGet(b *testing.B) {
	ctx := context.Background()
	mc, err := mcrs.New([]string{addr})
	if err != nil {
		b.Fatal(err)
	}
	defer mc.Close()
	for i := range keys {
		if err := mc.Set(ctx, keys[i], values[i], mcrs.Noreply(false)); err != nil {
			b.Fatal(err)
		}
	}
	for _, g := range goroutines {
		b.Run(fmt.Sprintf("mcrs/g=%d", g), func(b *testing.B) {
			run(b, g, func(key string, want []byte) error {
				v, found, err := mc.GetBytes(ctx, key)
				if err != nil {
					return err
				}
				if !found || !bytes.Equal(v, want) {
					return fmt.Errorf("mcrs: %s = %q, %v", key, v, found)
				}
				return nil
			})
		})
		// the same with a per-call deadline (a cancellable ctx, as a
		// server handler has): always the event-loop path
		b.Run(fmt.Sprintf("mcrs-ctx/g=%d", g), func(b *testing.B) {
			run(b, g, func(key string, want []byte) error {
				cctx, cancel := context.WithTimeout(ctx, time.Second)
				v, found, err := mc.GetBytes(cctx, key)
				cancel()
				if err != nil {
					return err
				}
				if !found || !bytes.Equal(v, want) {
					return fmt.Errorf("mcrs: %s = %q, %v", key, v, found)
				}
				return nil
			})
		})
		b.Run(fmt.Sprintf("gomemcache/g=%d", g), func(b *testing.B) {
			gm := memcache.New(addr)
			gm.MaxIdleConns = g
			gm.Timeout = time.Second
			defer gm.Close()
			run(b, g, func(key string, want []byte) error {
				it, err := gm.Get(key)
				if err != nil {
					return fmt.Errorf("gomemcache: %s: %w", key, err)
				}
				if !bytes.Equal(it.Value, want) {
					return fmt.Errorf("gomemcache: %s = %q", key, it.Value)
				}
				return nil
			})
		})
	}
}
