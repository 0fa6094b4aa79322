package mcrs_test

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strconv"
	"sync"
	"testing"
	"time"

	mcrs "github.com/mcrs-project/mcrs-go"
)

// ctx is the context of the tests' calls that need no deadline.
var ctx = context.Background()

// memcachedServer is a private memcached started for a test.
type memcachedServer struct {
	Addr string // 127.0.0.1:PORT
	Port int
	cmd  *exec.Cmd
	args []string // the command line, for Restart
	once sync.Once
	done chan struct{}
}

// freePort asks the kernel for a free loopback port.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// startMemcached starts `memcached -l 127.0.0.1 -p PORT -U 0 -t 1` (and the
// extra arguments) on a free port and waits until it accepts connections. It
// retries on another port when the one picked was taken in between.
func startMemcached(extra ...string) (*memcachedServer, error) {
	bin, err := exec.LookPath("memcached")
	if err != nil {
		return nil, fmt.Errorf("memcached not found in PATH (Debian: apt-get install memcached): %w", err)
	}
	var lastErr error
	for attempt := 0; attempt < 5; attempt++ {
		port, err := freePort()
		if err != nil {
			return nil, err
		}
		args := []string{bin, "-l", "127.0.0.1", "-p", strconv.Itoa(port), "-U", "0", "-t", "1"}
		if os.Geteuid() == 0 {
			args = append(args, "-u", "root")
		}
		args = append(args, extra...)
		s := &memcachedServer{Addr: fmt.Sprintf("127.0.0.1:%d", port), Port: port, args: args}
		if err := s.spawn(); err != nil {
			return nil, err
		}
		exited := func() bool {
			select {
			case <-s.done:
				return true
			default:
				return false
			}
		}
		up := false
		deadline := time.Now().Add(5 * time.Second)
		for time.Now().Before(deadline) && !exited() {
			if c, err := net.DialTimeout("tcp", s.Addr, 100*time.Millisecond); err == nil {
				c.Close()
				// something answered, but it may be another test's server that
				// holds the port while ours exits on a failed bind: ours must
				// still be running a moment later
				time.Sleep(30 * time.Millisecond)
				up = !exited()
				break
			}
			time.Sleep(10 * time.Millisecond)
		}
		if up {
			return s, nil
		}
		if exited() {
			lastErr = fmt.Errorf("memcached on port %d exited early (port taken?)", port)
		} else {
			lastErr = fmt.Errorf("memcached on port %d did not accept connections in 5s", port)
		}
		s.Kill()
	}
	return nil, lastErr
}

// spawn runs s.args; s.done closes when the process exits.
func (s *memcachedServer) spawn() error {
	cmd := exec.Command(s.args[0], s.args[1:]...)
	cmd.Stdout = os.Stderr
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		return err
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	s.cmd, s.done, s.once = cmd, done, sync.Once{}
	return nil
}

// Restart kills the server and starts it again with the same command line
// on the same port, waiting until it accepts connections.
func (s *memcachedServer) Restart(t testing.TB) {
	t.Helper()
	s.Kill()
	if err := s.spawn(); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); {
		if c, err := net.DialTimeout("tcp", s.Addr, 100*time.Millisecond); err == nil {
			c.Close()
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("memcached did not restart on %s", s.Addr)
}

// Kill stops the server and waits for it to exit (idempotent).
func (s *memcachedServer) Kill() {
	s.once.Do(func() {
		s.cmd.Process.Kill()
		<-s.done
	})
}

// newServer starts a memcached for t, killed when t ends.
func newServer(t testing.TB, extra ...string) *memcachedServer {
	t.Helper()
	s, err := startMemcached(extra...)
	if err != nil {
		t.Fatalf("starting memcached: %v", err)
	}
	t.Cleanup(s.Kill)
	return s
}

// newClient makes a client for servers, closed when t ends.
func newClient(t testing.TB, servers []string, opts ...mcrs.Option) *mcrs.Client {
	t.Helper()
	c, err := mcrs.New(servers, opts...)
	if err != nil {
		t.Fatalf("mcrs.New(%v): %v", servers, err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// setup starts a server and a client on it that waits for replies (so that
// failures show up in tests).
func setup(t testing.TB, opts ...mcrs.Option) (*mcrs.Client, *memcachedServer) {
	t.Helper()
	s := newServer(t)
	return newClient(t, []string{s.Addr}, append([]mcrs.Option{mcrs.DefaultNoreply(false)}, opts...)...), s
}

// sharedAddr is a memcached started by TestMain for the examples.
var sharedAddr string

func TestMain(m *testing.M) {
	s, err := startMemcached()
	if err != nil {
		fmt.Fprintf(os.Stderr, "mcrs tests need memcached: %v\n", err)
		os.Exit(1)
	}
	sharedAddr = s.Addr
	code := m.Run()
	s.Kill()
	os.Exit(code)
}
