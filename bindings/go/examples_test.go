package mcrs_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// TestExamplePrograms builds and runs examples/* against private servers.
func TestExamplePrograms(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the example programs; skipped with -short")
	}
	goBin := filepath.Join(runtime.GOROOT(), "bin", "go")
	if _, err := os.Stat(goBin); err != nil {
		if goBin, err = exec.LookPath("go"); err != nil {
			t.Skip("go command not found")
		}
	}
	s1, s2 := newServer(t), newServer(t)
	dir := t.TempDir()
	for _, tc := range []struct {
		name, servers string
		want          []string
	}{
		{"basic", s1.Addr, []string{"some_key = some_value"}},
		{"cluster", s1.Addr + "," + s2.Addr, []string{"some_key = some value",
			"stored 100 keys (0 failed), read back 100", s1.Addr + " holds ", s2.Addr + " holds "}},
		{"serde", s1.Addr, []string{"key = map[a:b c:d]"}},
		{"lease", s1.Addr, []string{"20 callers on a cold key: computed 1 time(s); values map[report v1:20]",
			"20 callers after invalidate: computed 1 time(s); 19 served the stale value meanwhile",
			"example:lease = report v2"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			bin := filepath.Join(dir, tc.name)
			build := exec.Command(goBin, "build", "-o", bin, "./examples/"+tc.name)
			if out, err := build.CombinedOutput(); err != nil {
				t.Fatalf("go build: %v\n%s", err, out)
			}
			run := exec.Command(bin)
			run.Env = append(os.Environ(), "MCRS_SERVERS="+tc.servers)
			out, err := run.CombinedOutput()
			if err != nil {
				t.Fatalf("%s: %v\n%s", tc.name, err, out)
			}
			for _, w := range tc.want {
				if !strings.Contains(string(out), w) {
					t.Errorf("%s output lacks %q:\n%s", tc.name, w, out)
				}
			}
		})
	}
}
