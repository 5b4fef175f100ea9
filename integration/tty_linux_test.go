package integration

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"
	"unsafe"
)

// openPTY returns the controller and the terminal side of a new
// pseudo-terminal (/dev/ptmx, unlocked, its number read back).
func openPTY(t *testing.T) (ptmx, tty *os.File) {
	t.Helper()
	ptmx, err := os.OpenFile("/dev/ptmx", os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		t.Skipf("no pseudo-terminals here: %v", err)
	}
	var unlock int32
	if _, _, e := syscall.Syscall(syscall.SYS_IOCTL, ptmx.Fd(), syscall.TIOCSPTLCK, uintptr(unsafe.Pointer(&unlock))); e != 0 {
		ptmx.Close()
		t.Skipf("unlock the pseudo-terminal: %v", e)
	}
	var n uint32
	if _, _, e := syscall.Syscall(syscall.SYS_IOCTL, ptmx.Fd(), syscall.TIOCGPTN, uintptr(unsafe.Pointer(&n))); e != 0 {
		ptmx.Close()
		t.Skipf("pseudo-terminal number: %v", e)
	}
	tty, err = os.OpenFile(fmt.Sprintf("/dev/pts/%d", n), os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		ptmx.Close()
		t.Skipf("open /dev/pts/%d: %v", n, err)
	}
	t.Cleanup(func() { ptmx.Close(); tty.Close() })
	return ptmx, tty
}

// 14.1 on a terminal: the forged record's CR and ESC reach the terminal
// as the text \x0d and \x1b, inside the frame; nothing can move the cursor
// or erase a line.
func TestHostileForgedRecordOnTerminal(t *testing.T) {
	b := newBed(t)
	req := newNode(t, "com.test.requester")
	r1 := newNode(t, "com.test.r1")
	reqCfg := b.requesterConfig(t, req, r1)
	forger := writeScript(t, b.dir, "forger.sh", `printf 'ok\rcom.crypto.forged,0,all good\033[2K'`+"\n")
	p1 := b.responder(t, req, r1, forger)
	p1.waitReady(t)

	ptmx, tty := openPTY(t)
	ctx, cancel := context.WithTimeout(context.Background(), procBound)
	defer cancel()
	cmd := exec.CommandContext(ctx, binary, "-c", reqCfg, "-r", "-t", "20s")
	var stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = tty, &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	read := make(chan struct{})
	go func() { io.Copy(&out, ptmx); close(read) }()
	err := cmd.Wait()
	tty.Close() // the reader sees EIO once every writer is gone
	select {
	case <-read:
	case <-time.After(10 * time.Second):
		t.Fatal("the terminal output did not end")
	}
	if err != nil {
		t.Fatalf("requester: %v\nstderr: %s", err, stderr.String())
	}
	// The terminal turns each "\n" into "\r\n" (ONLCR); no other CR and no
	// ESC may reach it.
	got := strings.ReplaceAll(out.String(), "\r\n", "\n")
	m := regexp.MustCompile(`^--> ([0-9a-f]{16})\n`).FindStringSubmatch(got)
	if m == nil {
		t.Fatalf("terminal output %q does not begin with a frame", got)
	}
	want := "--> " + m[1] + "\ncom.test.r1,0,ok\\x0dcom.crypto.forged,0,all good\\x1b[2K\n--< " + m[1] + "\n"
	if got != want {
		t.Errorf("terminal showed %q, want %q", got, want)
	}
}
