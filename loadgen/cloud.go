package loadgen

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"
)

// cloudProc is a larder-cloud the run started: a real binary with a temporary data
// directory, on free loopback ports, with an admin key and MQTT service password the
// run drew (given by environment, as secrets are).
type cloudProc struct {
	bin     string
	args    []string
	env     []string
	cmd     *exec.Cmd
	dir     string
	api     string
	metrics string
	broker  string
	admin   string
	svcUser string
	svcPass string
	done    chan error
	out     *bytes.Buffer
	lines   atomic.Int64 // output lines (the cloud logs at warn and above)
}

func freeAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

func secret(prefix string) string {
	var b [24]byte
	rand.Read(b[:])
	return prefix + hex.EncodeToString(b[:])
}

// startCloud runs bin with its embedded broker, or with externalBroker (user and
// password its login) when set, and waits for /healthz.
func startCloud(ctx context.Context, bin, externalBroker, user, pass string, timeout time.Duration) (*cloudProc, error) {
	dir, err := os.MkdirTemp("", "larder-load-cloud-")
	if err != nil {
		return nil, err
	}
	c := &cloudProc{dir: dir, admin: secret("lk_"), svcUser: user, svcPass: pass, done: make(chan error, 1), out: &bytes.Buffer{}}
	httpAddr, err1 := freeAddr()
	metricsAddr, err2 := freeAddr()
	mqttAddr, err3 := freeAddr()
	if err := firstErr(err1, err2, err3); err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	args := []string{"-data", dir, "-http", httpAddr, "-metrics", metricsAddr, "-log-level", "warn"}
	env := []string{"LARDER_CLOUD_ADMIN_KEY=" + c.admin}
	if externalBroker != "" {
		args = append(args, "-mqtt", externalBroker, "-mqtt-user", user)
		env = append(env, "LARDER_CLOUD_MQTT_PASSWORD="+pass)
		c.broker = externalBroker
	} else {
		if c.svcPass == "" {
			c.svcPass = secret("")
		}
		args = append(args, "-mqtt-listen", mqttAddr, "-mqtt-user", c.svcUser)
		env = append(env, "LARDER_CLOUD_MQTT_PASSWORD="+c.svcPass)
		c.broker = "tcp://" + mqttAddr
	}
	c.api, c.metrics = "http://"+httpAddr, "http://"+metricsAddr
	if err := c.launch(ctx, bin, args, env, timeout); err != nil {
		return nil, err
	}
	return c, nil
}

// launch starts bin with args and env added to this process's environment, keeps the
// tail of its output, and waits up to timeout for /healthz at c.api. On failure the
// child is stopped and c.dir removed.
func (c *cloudProc) launch(ctx context.Context, bin string, args, env []string, timeout time.Duration) error {
	c.bin, c.args, c.env = bin, args, env
	c.done = make(chan error, 1)
	c.cmd = exec.Command(bin, args...)
	c.cmd.Env = append(os.Environ(), env...)
	c.cmd.WaitDelay = 5 * time.Second // a child holding the output open never hangs the run
	pr, pw := io.Pipe()
	c.cmd.Stdout, c.cmd.Stderr = pw, pw
	if err := c.cmd.Start(); err != nil {
		os.RemoveAll(c.dir)
		return fmt.Errorf("loadgen: start %s: %w", bin, err)
	}
	go keepTail(pr, c.out, &c.lines)
	go func() { c.done <- c.cmd.Wait(); pw.Close() }()
	deadline := time.Now().Add(timeout)
	a := newAPI(c.api, 1)
	for {
		hctx, cancel := context.WithTimeout(ctx, time.Second)
		err := a.healthz(hctx)
		cancel()
		if err == nil {
			return nil
		}
		select {
		case werr := <-c.done:
			os.RemoveAll(c.dir)
			return fmt.Errorf("loadgen: %s exited at start (%v): %s", bin, werr, c.tail())
		default:
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			c.stop()
			return fmt.Errorf("loadgen: %s not healthy within %s: %v", bin, timeout, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// keepTail keeps the last 64 KB of the child's output, for error messages.
// It counts the lines.
func keepTail(r io.Reader, buf *bytes.Buffer, lines *atomic.Int64) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		lines.Add(1)
		if buf.Len() < 64<<10 {
			buf.Write(sc.Bytes())
			buf.WriteByte('\n')
		}
	}
}

func (c *cloudProc) tail() string { return c.out.String() }

func (c *cloudProc) logLines() int64 { return c.lines.Load() }

func (c *cloudProc) pid() int { return c.cmd.Process.Pid }

// stop sends SIGTERM, waits up to 10 s, then kills; it removes the data directory.
func (c *cloudProc) stop() error {
	defer os.RemoveAll(c.dir)
	return c.halt()
}

// relaunch starts the cloud again after halt, with the same arguments, data
// directory, ports and secrets.
func (c *cloudProc) relaunch(ctx context.Context, timeout time.Duration) error {
	return c.launch(ctx, c.bin, c.args, c.env, timeout)
}

// halt sends SIGTERM, waits up to 10 s, then kills.
func (c *cloudProc) halt() error {
	_ = c.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-c.done:
		return err
	case <-time.After(10 * time.Second):
		_ = c.cmd.Process.Kill()
		<-c.done
		return fmt.Errorf("loadgen: larder-cloud did not stop within 10 s after SIGTERM")
	}
}

// residentBytes is a process's resident set size: VmRSS of /proc/{pid}/status when pid
// is set, else process_resident_memory_bytes from the metrics URL.
func residentBytes(ctx context.Context, pid int, metricsURL string) (int64, error) {
	if pid > 0 {
		data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
		if err != nil {
			return 0, err
		}
		for line := range strings.Lines(string(data)) {
			if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
				kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
				return kb << 10, err
			}
		}
		return 0, fmt.Errorf("no VmRSS in /proc/%d/status", pid)
	}
	if metricsURL == "" {
		return 0, fmt.Errorf("neither -pid nor -metrics given")
	}
	req, _ := http.NewRequestWithContext(ctx, "GET", strings.TrimSuffix(metricsURL, "/")+"/metrics", nil)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, err
	}
	defer res.Body.Close()
	sc := bufio.NewScanner(res.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "process_resident_memory_bytes "); ok {
			f, err := strconv.ParseFloat(strings.TrimSpace(rest), 64)
			return int64(f), err
		}
	}
	return 0, fmt.Errorf("no process_resident_memory_bytes at %s", metricsURL)
}

func firstErr(errs ...error) error {
	for _, e := range errs {
		if e != nil {
			return e
		}
	}
	return nil
}
