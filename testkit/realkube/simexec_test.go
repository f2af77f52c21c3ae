// Tests of the simulated container runtime (simexec.go): every case of the shared fixture testdata/exec/cases.json,
// then the terminal's line editing and sizes. Runs without the Kubernetes modules:
//
//	cd testkit/realkube && go test simexec.go simexec_test.go

package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"os"
	"strings"
	"testing"
	"time"
)

const testPod = "web-7d4b9c6f5-x2x9q"

type execCase struct {
	Name   string    `json:"name"`
	Argv   []string  `json:"argv"`
	Stdin  *string   `json:"stdin"`
	TTY    bool      `json:"tty"`
	Size   *termSize `json:"size"`
	Stdout string    `json:"stdout"`
	Stderr string    `json:"stderr"`
	Exit   int       `json:"exit"`
}

// runCase runs c with a deadline and returns stdout, stderr and the exit status.
func runCase(t *testing.T, c execCase, sizeDelay time.Duration) (string, string, int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var stdin io.Reader
	if c.Stdin != nil {
		stdin = strings.NewReader(*c.Stdin)
	}
	var resize chan termSize
	if c.Size != nil {
		resize = make(chan termSize, 1)
		go func() {
			time.Sleep(sizeDelay)
			resize <- *c.Size
			close(resize)
		}()
	}
	var stdout, stderr bytes.Buffer
	done := make(chan int, 1)
	go func() { done <- runSimExec(ctx, testPod, c.Argv, stdin, &stdout, &stderr, c.TTY, resize) }()
	select {
	case code := <-done:
		return stdout.String(), stderr.String(), code
	case <-ctx.Done():
		t.Fatalf("%s: did not finish", c.Name)
		return "", "", 0
	}
}

func check(t *testing.T, c execCase, stdout, stderr string, code int) {
	t.Helper()
	want := strings.ReplaceAll(c.Stdout, "{pod}", testPod)
	if stdout != want {
		t.Errorf("%s: stdout %q, want %q", c.Name, stdout, want)
	}
	if want := strings.ReplaceAll(c.Stderr, "{pod}", testPod); stderr != want {
		t.Errorf("%s: stderr %q, want %q", c.Name, stderr, want)
	}
	if code != c.Exit {
		t.Errorf("%s: exit %d, want %d", c.Name, code, c.Exit)
	}
}

func TestSimExecSharedCases(t *testing.T) {
	data, err := os.ReadFile("../../testdata/exec/cases.json")
	if err != nil {
		t.Fatal(err)
	}
	var fixture struct {
		Cases []execCase `json:"cases"`
	}
	if err := json.Unmarshal(data, &fixture); err != nil {
		t.Fatal(err)
	}
	if len(fixture.Cases) == 0 {
		t.Fatal("no cases in testdata/exec/cases.json")
	}
	for _, c := range fixture.Cases {
		t.Run(c.Name, func(t *testing.T) {
			t.Parallel()
			stdout, stderr, code := runCase(t, c, 0)
			check(t, c, stdout, stderr, code)
		})
	}
}

func str(s string) *string { return &s }

func TestSimExecTerminal(t *testing.T) {
	size := &termSize{Width: 100, Height: 30}
	cases := []execCase{
		{Name: "erase", Argv: []string{"sh"}, Stdin: str("echo hix\x7f\rexit 5\r"), TTY: true, Size: size,
			Stdout: "$ echo hix\b \b\r\nhi\r\n$ exit 5\r\n", Exit: 5},
		{Name: "erase on an empty line", Argv: []string{"sh"}, Stdin: str("\x7ftrue\r\x04"), TTY: true, Size: size,
			Stdout: "$ true\r\n$ ", Exit: 0},
		{Name: "interrupt discards the line", Argv: []string{"bash"}, Stdin: str("false\x03true\rexit\r"), TTY: true, Size: size,
			Stdout: "$ false^C\r\n$ true\r\n$ exit\r\n", Exit: 0},
		{Name: "0x04 ends only an empty line", Argv: []string{"sh"}, Stdin: str("false\x04\r\x04echo never\r"), TTY: true, Size: size,
			Stdout: "$ false\r\n$ ", Exit: 1},
		{Name: "stderr merged and newlines translated", Argv: []string{"/bin/sh", "-c", "echo a; echo b >&2; nosuch"}, Stdin: str(""), TTY: true, Size: size,
			Stdout: "a\r\nb\r\nsh: nosuch: not found\r\n", Exit: 127},
		{Name: "stty size in an interactive shell", Argv: []string{"sh"}, Stdin: str("stty size\n"), TTY: true, Size: size,
			Stdout: "$ stty size\r\n30 100\r\n$ ", Exit: 0},
		{Name: "fractional sleep, quoted separators", Argv: []string{"sh", "-c", "sleep 0.05; echo 'x;y' \"\" z"},
			Stdout: "x;y  z\n", Exit: 0},
		{Name: "the script goes on after an unknown command", Argv: []string{"sh", "-c", "nosuch\necho after"},
			Stdout: "after\n", Stderr: "sh: nosuch: not found\n", Exit: 0},
		{Name: "exit stops a nested shell only", Argv: []string{"sh", "-c", "sh -c 'exit 2'; echo $?"},
			Stdout: "$?\n", Exit: 0},
		{Name: "unterminated quote", Argv: []string{"sh", "-c", "echo 'x"},
			Stderr: "sh: syntax error: unterminated quoted string\n", Exit: 2},
		{Name: "cat in a script reads stdin", Argv: []string{"sh", "-c", "echo start; cat >&2"}, Stdin: str("data\n"),
			Stdout: "start\n", Stderr: "data\n", Exit: 0},
	}
	for _, c := range cases {
		t.Run(c.Name, func(t *testing.T) {
			t.Parallel()
			stdout, stderr, code := runCase(t, c, 0)
			check(t, c, stdout, stderr, code)
		})
	}
}

// With a TTY the command waits for the client's first size, however late (within 2 s) it comes.
func TestSimExecWaitsForTheFirstSize(t *testing.T) {
	c := execCase{Name: "late size", Argv: []string{"stty", "size"}, Stdin: str(""), TTY: true,
		Size: &termSize{Width: 132, Height: 43}, Stdout: "43 132\r\n"}
	stdout, stderr, code := runCase(t, c, 300*time.Millisecond)
	check(t, c, stdout, stderr, code)
}

// Without any size, the command runs after 2 s with a zero size.
func TestSimExecRunsWithoutASize(t *testing.T) {
	resize := make(chan termSize)
	defer close(resize)
	var stdout bytes.Buffer
	start := time.Now()
	code := runSimExec(context.Background(), testPod, []string{"stty", "size"}, nil, &stdout, nil, true, resize)
	if elapsed := time.Since(start); elapsed < firstSizeWait || elapsed > firstSizeWait+time.Second {
		t.Errorf("ran after %v, want %v", elapsed, firstSizeWait)
	}
	if stdout.String() != "0 0\r\n" || code != 0 {
		t.Errorf("stdout %q, exit %d", stdout.String(), code)
	}
}
