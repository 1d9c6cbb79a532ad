package daemon_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/larder-lockers/larder/internal/daemon"
)

// TestMain doubles as the child process of TestCommandStopsOnSIGTERM.
func TestMain(m *testing.M) {
	if os.Getenv("DAEMON_TEST_CHILD") == "1" {
		daemon.Command(func(ctx context.Context, args []string, getenv func(string) string, stderr io.Writer) int {
			fmt.Fprintln(stderr, "ready", getenv("DAEMON_TEST_CHILD"), strings.Join(args, " "))
			select {
			case <-ctx.Done():
				return 3
			case <-time.After(30 * time.Second):
				return 4
			}
		})
	}
	os.Exit(m.Run())
}

// TestCommandStopsOnSIGTERM: the process's arguments and environment reach exec, SIGTERM
// ends its context, and its status is the process's.
func TestCommandStopsOnSIGTERM(t *testing.T) {
	cmd := exec.Command(os.Args[0], "-test.run=^$", "-x")
	cmd.Env = append(os.Environ(), "DAEMON_TEST_CHILD=1")
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill() })
	line, err := bufio.NewReader(stderr).ReadString('\n')
	if err != nil || line != "ready 1 -test.run=^$ -x\n" {
		t.Fatalf("child said %q (%v)", line, err)
	}
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	err = cmd.Wait()
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() != 3 {
		t.Fatalf("child ended with %v, want exit status 3 (its context ended)", err)
	}
}
