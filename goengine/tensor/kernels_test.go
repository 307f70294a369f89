package tensor

import (
	"strings"
	"testing"
)

// atEachKernelLevel runs test once per kernel level as the subtest
// "kernels=LEVEL", skipping, with the reason, the levels this CPU or build
// lacks. The subtests run one after another: the level is process-wide.
func atEachKernelLevel(t *testing.T, test func(t *testing.T)) {
	t.Helper()
	for _, level := range KernelLevels() {
		t.Run("kernels="+level, func(t *testing.T) {
			restore, err := SetKernels(level)
			if err != nil {
				t.Skip(err)
			}
			defer restore()
			test(t)
		})
	}
}

func TestSetKernels(t *testing.T) {
	before := Kernels()
	ran := 0
	for _, level := range KernelLevels() {
		restore, err := SetKernels(level)
		if faster(level, cpuKernels()) {
			if err == nil || !strings.Contains(err.Error(), "runs at most "+cpuKernels()) {
				t.Errorf("SetKernels(%q) above this CPU's %s: error %v", level, cpuKernels(), err)
			}
			continue
		}
		if err != nil {
			t.Fatalf("SetKernels(%q): %v", level, err)
		}
		ran++
		if got := Kernels(); got != level {
			t.Errorf("after SetKernels(%q), Kernels() = %q", level, got)
		}
		restore()
		if got := Kernels(); got != before {
			t.Errorf("after restoring from %s, Kernels() = %q, want %q", level, got, before)
		}
	}
	if ran == 0 {
		t.Error("no kernel level ran: generic always should")
	}
	for _, level := range []string{"avx3", "AVX2", ""} {
		if _, err := SetKernels(level); err == nil || !strings.Contains(err.Error(), "expected avx512, avx2 or generic") {
			t.Errorf("SetKernels(%q): error %v", level, err)
		}
	}
	if Kernels() != before {
		t.Errorf("a failed SetKernels changed the level: %q, want %q", Kernels(), before)
	}
}

func TestKernelsFromEnv(t *testing.T) {
	best := cpuKernels()
	cases := []struct{ value, want, err string }{
		{"", best, ""},
		{"generic", "generic", ""},
		{"avx512", best, ""}, // a cap: never above what the CPU runs
		{"avx3", best, `GOENGINE_KERNELS="avx3": expected avx512, avx2 or generic`},
		{"AVX2", best, `GOENGINE_KERNELS="AVX2": expected avx512, avx2 or generic`},
	}
	if best != "generic" {
		cases = append(cases, struct{ value, want, err string }{"avx2", "avx2", ""})
	}
	for _, c := range cases {
		level, err := kernelsFromEnv(c.value)
		if level != c.want || (err == nil) != (c.err == "") || err != nil && err.Error() != c.err {
			t.Errorf("GOENGINE_KERNELS=%q: level %q, error %v; want %q, error %q", c.value, level, err, c.want, c.err)
		}
	}
}

// TestKernelsFollowTheEnvironment: UseKernelsFromEnv sets the level that
// GOENGINE_KERNELS asks for, and refuses a value that names no level.
func TestKernelsFollowTheEnvironment(t *testing.T) {
	defer useKernels(Kernels())
	for _, value := range []string{"generic", "", "avx3", "avx2"} {
		t.Setenv("GOENGINE_KERNELS", value)
		want, wantErr := kernelsFromEnv(value)
		err := UseKernelsFromEnv()
		if (err == nil) != (wantErr == nil) || Kernels() != want {
			t.Errorf("GOENGINE_KERNELS=%q: level %q, error %v; want %q, error %v", value, Kernels(), err, want, wantErr)
		}
	}
}
