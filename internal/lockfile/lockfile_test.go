package lockfile

import (
	"bufio"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// When run with LOCKFILE_HELPER=path, the test binary takes the lock, says
// "locked" and waits for its stdin to close.
func TestMain(m *testing.M) {
	if p := os.Getenv("LOCKFILE_HELPER"); p != "" {
		l, err := TryLock(p, "helper")
		if err != nil {
			os.Stdout.WriteString("error " + err.Error() + "\n")
			os.Exit(1)
		}
		os.Stdout.WriteString("locked\n")
		_, _ = bufio.NewReader(os.Stdin).ReadString('\n')
		_ = l.Unlock()
		os.Exit(0)
	}
	os.Exit(m.Run())
}

func TestTryLockInProcess(t *testing.T) {
	p := filepath.Join(t.TempDir(), "locks", "job.lock")
	l, err := TryLock(p, "job a")
	if err != nil {
		t.Fatal(err)
	}
	_, err = TryLock(p, "job a")
	var le *LockedError
	if !errors.As(err, &le) || !errors.Is(err, ErrLocked) {
		t.Fatalf("second TryLock: got %v, want a LockedError", err)
	}
	if le.Holder == nil || le.Holder.PID != os.Getpid() || le.Holder.What != "job a" {
		t.Fatalf("holder = %+v", le.Holder)
	}
	if !strings.Contains(err.Error(), "pid ") || !strings.Contains(err.Error(), "since") {
		t.Fatalf("error does not name the holder: %v", err)
	}
	if err := l.Unlock(); err != nil {
		t.Fatal(err)
	}
	l2, err := TryLock(p, "job a")
	if err != nil {
		t.Fatalf("after unlock: %v", err)
	}
	_ = l2.Unlock()
}

func TestTryLockAcrossProcesses(t *testing.T) {
	p := filepath.Join(t.TempDir(), "x.lock")
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "LOCKFILE_HELPER="+p)
	stdin, _ := cmd.StdinPipe()
	out, _ := cmd.StdoutPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	line, _ := bufio.NewReader(out).ReadString('\n')
	if strings.TrimSpace(line) != "locked" {
		t.Fatalf("helper: %q", line)
	}
	_, err := TryLock(p, "me")
	var le *LockedError
	if !errors.As(err, &le) || le.Holder == nil || le.Holder.PID != cmd.Process.Pid {
		t.Fatalf("TryLock while another process holds it: %v", err)
	}
	_ = stdin.Close()
	if err := cmd.Wait(); err != nil {
		t.Fatal(err)
	}
	l, err := TryLock(p, "me")
	if err != nil {
		t.Fatalf("after the other process exited: %v", err)
	}
	_ = l.Unlock()
}

func TestLockReleasedWhenHolderDies(t *testing.T) {
	p := filepath.Join(t.TempDir(), "x.lock")
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "LOCKFILE_HELPER="+p)
	_, _ = cmd.StdinPipe()
	out, _ := cmd.StdoutPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	line, _ := bufio.NewReader(out).ReadString('\n')
	if strings.TrimSpace(line) != "locked" {
		t.Fatalf("helper: %q", line)
	}
	_ = cmd.Process.Kill()
	_ = cmd.Wait()
	l, err := TryLock(p, "me")
	if err != nil {
		t.Fatalf("lock of a killed holder: %v", err)
	}
	_ = l.Unlock()
}
