package demo

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Launcher starts the built binaries (larder-cloud, larder-edge, larder-sim) as child
// processes, the way they run in a deployment. Each child's stdout and stderr go, line by
// line and prefixed with its name, to Console (when set) and to LogDir/NAME.log (when set).
//
// Children run in their own process group, so a Ctrl-C at the terminal reaches only the
// launcher's process, which then stops them in the order it chooses (Stop, StopAll). On
// Linux a child also gets SIGTERM if the launcher dies without stopping it.
type Launcher struct {
	// BinDir holds the binaries; empty means "bin".
	BinDir string
	// LogDir receives NAME.log per child (appended); empty: no files.
	LogDir string
	// Console receives "[name] line" for every child's output line; nil: not shown.
	Console io.Writer
	// StopTimeout is how long Stop waits after SIGTERM before SIGKILL; zero means 10 s.
	StopTimeout time.Duration

	mu    sync.Mutex // guards procs and Console writes
	procs []*Proc
}

// Proc is one running child.
type Proc struct {
	Name string
	Cmd  *exec.Cmd

	l      *Launcher
	done   chan struct{} // closed when the process has exited and its output is drained
	err    error         // Wait's error, set before done closes
	logf   *os.File
	lineMu sync.Mutex
	tail   []string            // last lines of output, for error messages
	watch  []func(string) bool // line watchers; each returns false to stop watching
	wg     sync.WaitGroup      // output copiers
}

// Bin returns the path of a binary in BinDir.
func (l *Launcher) Bin(name string) string {
	dir := l.BinDir
	if dir == "" {
		dir = "bin"
	}
	return filepath.Join(dir, name)
}

// Start runs bin/NAME with args and extra environment (appended to os.Environ). name is
// the log prefix and file name; binary is the executable's name in BinDir.
func (l *Launcher) Start(name, binary string, args, env []string) (*Proc, error) {
	path := l.Bin(binary)
	if _, err := os.Stat(path); err != nil {
		return nil, fmt.Errorf("demo: %s: %w (run `make build` first)", path, err)
	}
	p := &Proc{Name: name, l: l, done: make(chan struct{})}
	if l.LogDir != "" {
		if err := os.MkdirAll(l.LogDir, 0o755); err != nil {
			return nil, fmt.Errorf("demo: log dir: %w", err)
		}
		f, err := os.OpenFile(filepath.Join(l.LogDir, name+".log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
		if err != nil {
			return nil, fmt.Errorf("demo: log file: %w", err)
		}
		p.logf = f
		fmt.Fprintf(f, "---- %s started %s\n", name, time.Now().Format(time.RFC3339))
	}
	cmd := exec.Command(path, args...)
	cmd.Env = append(os.Environ(), env...)
	cmd.SysProcAttr = sysProcAttr()
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	stderr, err := cmd.StderrPipe()
	if err != nil {
		return nil, err
	}
	p.Cmd = cmd
	if err := cmd.Start(); err != nil {
		if p.logf != nil {
			p.logf.Close()
		}
		return nil, fmt.Errorf("demo: start %s: %w", name, err)
	}
	p.wg.Add(2)
	go p.copy(stdout)
	go p.copy(stderr)
	go func() {
		p.wg.Wait() // pipes first: Wait closes them
		p.err = cmd.Wait()
		if p.logf != nil {
			fmt.Fprintf(p.logf, "---- %s exited: %v\n", name, exitText(p.err))
			p.logf.Close()
		}
		close(p.done)
	}()
	l.mu.Lock()
	l.procs = append(l.procs, p)
	l.mu.Unlock()
	return p, nil
}

func exitText(err error) string {
	if err == nil {
		return "status 0"
	}
	return err.Error()
}

const tailLines = 30

func (p *Proc) copy(r io.Reader) {
	defer p.wg.Done()
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		p.lineMu.Lock()
		p.tail = append(p.tail, line)
		if len(p.tail) > tailLines {
			p.tail = p.tail[len(p.tail)-tailLines:]
		}
		kept := p.watch[:0]
		for _, w := range p.watch {
			if w(line) {
				kept = append(kept, w)
			}
		}
		p.watch = kept
		if p.logf != nil {
			fmt.Fprintln(p.logf, line)
		}
		p.lineMu.Unlock()
		if p.l.Console != nil {
			p.l.mu.Lock()
			fmt.Fprintf(p.l.Console, "[%s] %s\n", p.Name, line)
			p.l.mu.Unlock()
		}
	}
}

// Watch calls f with every later output line until f returns false.
func (p *Proc) Watch(f func(line string) bool) {
	p.lineMu.Lock()
	defer p.lineMu.Unlock()
	p.watch = append(p.watch, f)
}

// Tail returns the last lines the child wrote (both streams), for error messages.
func (p *Proc) Tail() string {
	p.lineMu.Lock()
	defer p.lineMu.Unlock()
	return strings.Join(p.tail, "\n")
}

// Done is closed once the child has exited.
func (p *Proc) Done() <-chan struct{} { return p.done }

// Err is the child's exit error, valid after Done.
func (p *Proc) Err() error { <-p.done; return p.err }

// Exited reports whether the child has exited.
func (p *Proc) Exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// Signal sends sig to the child (not to its group's other members).
func (p *Proc) Signal(sig os.Signal) error {
	if p.Exited() {
		return nil
	}
	return p.Cmd.Process.Signal(sig)
}

// Kill ends the child with SIGKILL and waits for it, like a power cut of its computer.
func (p *Proc) Kill() {
	_ = p.Signal(syscall.SIGKILL)
	<-p.done
}

// Stop asks the child to end (SIGTERM), waits up to the launcher's StopTimeout, then
// kills it. It returns the child's exit error unless that is just the signal's.
func (p *Proc) Stop() error {
	t := p.l.StopTimeout
	if t <= 0 {
		t = 10 * time.Second
	}
	if !p.Exited() {
		_ = p.Cmd.Process.Signal(syscall.SIGTERM)
	}
	select {
	case <-p.done:
	case <-time.After(t):
		_ = p.Cmd.Process.Signal(syscall.SIGKILL)
		<-p.done
		return fmt.Errorf("demo: %s did not stop within %s: killed", p.Name, t)
	}
	var ee *exec.ExitError
	if errors.As(p.err, &ee) {
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() && ws.Signal() == syscall.SIGTERM {
			return nil
		}
	}
	if p.err != nil {
		return fmt.Errorf("demo: %s: %w", p.Name, p.err)
	}
	return nil
}

// StopAll stops every child still running, the last started first, and forgets them.
func (l *Launcher) StopAll() error {
	l.mu.Lock()
	procs := l.procs
	l.procs = nil
	l.mu.Unlock()
	var errs []error
	for i := len(procs) - 1; i >= 0; i-- {
		if err := procs[i].Stop(); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// WaitLine waits until the child prints a line for which match returns a non-empty
// string, and returns it. It fails when the child exits first or the timeout passes.
func (p *Proc) WaitLine(ctx context.Context, timeout time.Duration, what string, match func(line string) string) (string, error) {
	found := make(chan string, 1)
	p.lineMu.Lock()
	for _, line := range p.tail { // it may already have been printed
		if v := match(line); v != "" {
			p.lineMu.Unlock()
			return v, nil
		}
	}
	p.watch = append(p.watch, func(line string) bool {
		if v := match(line); v != "" {
			found <- v
			return false
		}
		return true
	})
	p.lineMu.Unlock()
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	select {
	case v := <-found:
		return v, nil
	case <-p.done:
		return "", p.failure(what, errors.New("it exited"))
	case <-ctx.Done():
		return "", p.failure(what, fmt.Errorf("not within %s", timeout))
	}
}

// WaitHealthy polls url (a /healthz) until it answers 200. It fails early when the child
// exits, and says what the child last printed.
func (p *Proc) WaitHealthy(ctx context.Context, url string, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	client := &http.Client{Timeout: 2 * time.Second}
	var last string
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		resp, err := client.Do(req)
		if err == nil {
			body, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
			last = fmt.Sprintf("%d %s", resp.StatusCode, strings.TrimSpace(string(body)))
		} else {
			last = err.Error()
		}
		select {
		case <-p.done:
			return p.failure("healthy at "+url, errors.New("it exited"))
		case <-ctx.Done():
			return p.failure("healthy at "+url, fmt.Errorf("not within %s (last answer: %s)", timeout, last))
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func (p *Proc) failure(what string, err error) error {
	msg := fmt.Sprintf("demo: %s: waiting for %s: %v", p.Name, what, err)
	if p.Exited() && p.err != nil {
		msg += " (" + p.err.Error() + ")"
	}
	if t := p.Tail(); t != "" {
		msg += "\n--- last output of " + p.Name + ":\n" + t
	}
	return errors.New(msg)
}

// CheckFree fails with a clear message when a TCP address cannot be bound: another
// program (or a previous demo still running) holds it.
func CheckFree(addrs ...string) error {
	var errs []error
	for _, a := range addrs {
		ln, err := net.Listen("tcp", a)
		if err != nil {
			errs = append(errs, fmt.Errorf("demo: %s is taken (another program, or a demo still running, listens there): %w", a, err))
			continue
		}
		ln.Close()
	}
	return errors.Join(errs...)
}

// FreeAddr returns a loopback address with a port free at the time of the call.
func FreeAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}
