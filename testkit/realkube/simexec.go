// The node simulator's container runtime for `pods/exec`: a few simulated commands (echo, cat, true, false,
// hostname, sleep, exit, stty size, sh and bash), no processes. What it answers is fixed by the fixture
// testdata/exec/cases.json, which the emulator's runtime shares. Only the standard library, so that its test
// (simexec_test.go) builds without the Kubernetes modules.

package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"path"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"
)

// termSize is a terminal size, as a client sends it in a resize event.
type termSize struct {
	Width, Height uint16
}

// firstSizeWait is how long a session with a TTY waits for the client's first terminal size before it runs the
// command.
const firstSizeWait = 2 * time.Second

// simExec is one exec session of the simulated runtime.
type simExec struct {
	ctx context.Context
	pod string
	tty bool
	in  *bufio.Reader // nil: no stdin stream
	std stdio

	mu   sync.Mutex
	size termSize
}

// stdio is where a command writes.
type stdio struct {
	out, err io.Writer
}

// runSimExec runs argv in the simulated container of pod and returns its exit status. stdin, stdout and stderr
// may be nil (no such stream). With tty, stderr is merged into stdout, every "\n" is written as "\r\n", and the
// terminal size comes from resize (nil: none); the command runs once the first size arrived or after
// firstSizeWait.
func runSimExec(ctx context.Context, pod string, argv []string, stdin io.Reader, stdout, stderr io.Writer, tty bool, resize <-chan termSize) int {
	s := &simExec{ctx: ctx, pod: pod, tty: tty}
	if stdin != nil {
		s.in = bufio.NewReader(stdin)
	}
	if stdout == nil {
		stdout = io.Discard
	}
	if stderr == nil {
		stderr = io.Discard
	}
	if tty {
		out := crlfWriter{stdout}
		s.std = stdio{out: out, err: out}
	} else {
		s.std = stdio{out: stdout, err: stderr}
	}
	if tty && resize != nil {
		timer := time.NewTimer(firstSizeWait)
		select {
		case size, ok := <-resize:
			if ok {
				s.setSize(size)
			}
		case <-timer.C:
		case <-ctx.Done():
		}
		timer.Stop()
	}
	if resize != nil {
		go func() {
			for size := range resize {
				s.setSize(size)
			}
		}()
	}
	if len(argv) == 0 {
		fmt.Fprintln(s.std.err, "exec: no command")
		return 127
	}
	status, _ := s.run(argv, s.std, false, 0)
	return status
}

func (s *simExec) setSize(size termSize) {
	s.mu.Lock()
	s.size = size
	s.mu.Unlock()
}

func (s *simExec) currentSize() termSize {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.size
}

// crlfWriter writes every "\n" as "\r\n", as a terminal's output processing does.
type crlfWriter struct {
	w io.Writer
}

func (c crlfWriter) Write(p []byte) (int, error) {
	if _, err := c.w.Write(bytes.ReplaceAll(p, []byte("\n"), []byte("\r\n"))); err != nil {
		return 0, err
	}
	return len(p), nil
}

// run runs one command. inShell says whether a shell runs it (an unknown command is the shell's "not found",
// not the runtime's "executable file not found"), last is that shell's last status (for a bare `exit`). It
// returns the status and whether the command was `exit`.
func (s *simExec) run(argv []string, std stdio, inShell bool, last int) (int, bool) {
	args := argv[1:]
	switch path.Base(argv[0]) {
	case "echo":
		fmt.Fprintln(std.out, strings.Join(args, " "))
		return 0, false
	case "cat":
		if s.in != nil {
			_, _ = s.in.WriteTo(std.out)
		}
		return 0, false
	case "true":
		return 0, false
	case "false":
		return 1, false
	case "hostname":
		fmt.Fprintln(std.out, s.pod)
		return 0, false
	case "sleep":
		return s.sleep(args, std), false
	case "exit":
		if len(args) == 0 {
			return last, true
		}
		n, err := strconv.Atoi(args[0])
		if err != nil {
			fmt.Fprintf(std.err, "sh: exit: %s: numeric argument required\n", args[0])
			return 2, true
		}
		return (n%256 + 256) % 256, true
	case "stty":
		if !s.tty {
			fmt.Fprintln(std.err, "stty: standard input: Not a tty")
			return 1, false
		}
		if len(args) != 1 || args[0] != "size" {
			fmt.Fprintf(std.err, "stty: invalid argument '%s'\n", strings.Join(args, " "))
			return 1, false
		}
		size := s.currentSize()
		fmt.Fprintf(std.out, "%d %d\n", size.Height, size.Width)
		return 0, false
	case "sh", "bash":
		return s.shell(args, std), false
	}
	if inShell {
		fmt.Fprintf(std.err, "sh: %s: not found\n", argv[0])
	} else {
		fmt.Fprintf(std.err, "exec: %q: executable file not found in $PATH\n", argv[0])
	}
	return 127, false
}

func (s *simExec) sleep(args []string, std stdio) int {
	if len(args) == 0 {
		fmt.Fprintln(std.err, "sleep: missing operand")
		return 1
	}
	seconds, err := strconv.ParseFloat(args[0], 64)
	if err != nil || seconds < 0 || seconds > 1e9 {
		fmt.Fprintf(std.err, "sleep: invalid time interval '%s'\n", args[0])
		return 1
	}
	timer := time.NewTimer(time.Duration(seconds * float64(time.Second)))
	defer timer.Stop()
	select {
	case <-timer.C:
		return 0
	case <-s.ctx.Done():
		return 137
	}
}

// shell is `sh` (or `bash`): `-c SCRIPT` runs the script, no operand an interactive shell on stdin.
func (s *simExec) shell(args []string, std stdio) int {
	for len(args) > 0 && strings.HasPrefix(args[0], "-") && args[0] != "-c" {
		args = args[1:] // -i, -l, -e, ...: no effect here
	}
	switch {
	case len(args) == 0:
		return s.interactive(std)
	case args[0] == "-c" && len(args) == 1:
		fmt.Fprintln(std.err, "sh: -c: option requires an argument")
		return 2
	case args[0] == "-c":
		status, _ := s.script(args[1], std, 0)
		return status
	default:
		fmt.Fprintf(std.err, "sh: can't open '%s': No such file or directory\n", args[0])
		return 2
	}
}

// script runs the commands of text, starting with last as the shell's last status; it returns the last
// command's status and whether `exit` stopped it.
func (s *simExec) script(text string, std stdio, last int) (int, bool) {
	commands, err := parseScript(text)
	if err != nil {
		fmt.Fprintf(std.err, "sh: syntax error: %v\n", err)
		return 2, false
	}
	for _, c := range commands {
		cio := std
		if c.toStderr {
			cio.out = std.err
		}
		if len(c.words) == 0 {
			continue // only a redirection
		}
		status, exited := s.run(c.words, cio, true, last)
		last = status
		if exited {
			return last, true
		}
	}
	return last, false
}

// interactive reads command lines from stdin until `exit` or the end of stdin. With a TTY it also does what the
// terminal's line discipline would: the prompt, echo, erase (0x7f), interrupt (0x03) and end of file (0x04 on an
// empty line).
func (s *simExec) interactive(std stdio) int {
	last := 0
	if !s.tty {
		if s.in == nil {
			return 0
		}
		for {
			line, err := s.in.ReadString('\n')
			if line != "" {
				status, exited := s.script(strings.TrimSuffix(line, "\n"), std, last)
				last = status
				if exited {
					return last
				}
			}
			if err != nil {
				return last
			}
		}
	}
	var line []byte
	fmt.Fprint(std.out, "$ ")
	for {
		if s.in == nil {
			return last
		}
		b, err := s.in.ReadByte()
		if err != nil {
			return last
		}
		switch b {
		case '\r', '\n':
			fmt.Fprint(std.out, "\n")
			status, exited := s.script(string(line), std, last)
			last = status
			if exited {
				return last
			}
			line = line[:0]
			fmt.Fprint(std.out, "$ ")
		case 0x7f:
			if len(line) > 0 {
				_, n := utf8.DecodeLastRune(line)
				line = line[:len(line)-n]
				fmt.Fprint(std.out, "\b \b")
			}
		case 0x03:
			fmt.Fprint(std.out, "^C\n")
			line = line[:0]
			fmt.Fprint(std.out, "$ ")
		case 0x04:
			if len(line) == 0 {
				return last
			}
		default:
			line = append(line, b)
			_, _ = std.out.Write([]byte{b})
		}
	}
}

// command is one simple command of a script.
type command struct {
	words    []string
	toStderr bool // >&2
}

// parseScript splits a script into commands (separated by ";" or newlines) and words (separated by blanks;
// single and double quotes group their text literally, without expansion). An unquoted ">&2" sends the
// command's stdout to its stderr.
func parseScript(text string) ([]command, error) {
	var commands []command
	var current command
	var word strings.Builder
	inWord := false
	var quote byte // the open quote, 0 outside quotes
	endWord := func() {
		if inWord {
			current.words = append(current.words, word.String())
			word.Reset()
			inWord = false
		}
	}
	endCommand := func() {
		endWord()
		if len(current.words) > 0 || current.toStderr {
			commands = append(commands, current)
		}
		current = command{}
	}
	for i := 0; i < len(text); i++ {
		c := text[i]
		switch {
		case quote != 0:
			if c == quote {
				quote = 0
			} else {
				word.WriteByte(c)
			}
		case c == '\'' || c == '"':
			quote = c
			inWord = true
		case c == ';' || c == '\n':
			endCommand()
		case c == ' ' || c == '\t' || c == '\r':
			endWord()
		case strings.HasPrefix(text[i:], ">&2"):
			endWord()
			current.toStderr = true
			i += len(">&2") - 1
		default:
			word.WriteByte(c)
			inWord = true
		}
	}
	if quote != 0 {
		return nil, fmt.Errorf("unterminated quoted string")
	}
	endCommand()
	return commands, nil
}
