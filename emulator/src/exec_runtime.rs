//! The simulated container runtime behind `pods/exec`: a few commands and a tiny shell, no real processes.
//!
//! What it answers is fixed by the fixture `testdata/exec/cases.json`, shared with the other test back end (the
//! realkube node simulator's kubelet exec), so both must agree byte for byte:
//!
//! * `argv[0]` is looked up by its basename (`/bin/echo` is `echo`). Commands: `echo ARGS…`, `cat` (stdin to
//!   stdout until EOF), `true`, `false`, `hostname` (the pod's name), `sleep N` (seconds, fractional allowed),
//!   `exit [N]`, `stty size` (needs a TTY), `sh -c SCRIPT`, and `sh`/`bash` without `-c`, an interactive shell
//!   reading stdin line by line.
//! * Scripts: commands separated by `;` or newlines, words split on blanks, single and double quotes group
//!   literally (no expansion), `>&2` sends that command's stdout to stderr, the status is the last command's,
//!   `exit N` stops. An unknown command in a script is `sh: NAME: not found` (127) and the script goes on; as the
//!   exec's own `argv[0]` it is `exec: "NAME": executable file not found in $PATH` (127).
//! * With a TTY stderr is merged into stdout, every `\n` written becomes `\r\n`, and the interactive shell prompts
//!   (`$ `), echoes what is typed and edits the line (`\r`/`\n` ends it, 0x7f erases, 0x03 discards it, 0x04 on
//!   an empty line ends the shell).
//!
//! Everything is bounded: lines ([`MAX_LINE`]), shell nesting ([`MAX_DEPTH`]), sleeps ([`MAX_SLEEP`]), and the
//! channels the caller passes in.

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::{mpsc, watch};

/// Longest line the shell keeps; bytes beyond it are dropped (as a terminal's line buffer drops them).
pub const MAX_LINE: usize = 64 * 1024;
/// Deepest nesting of shells (`sh` typed into `sh` …); deeper ones fail with status 2.
pub const MAX_DEPTH: usize = 16;
/// Longest `sleep` (the exec session's own limit usually ends it first).
pub const MAX_SLEEP: Duration = Duration::from_secs(24 * 3600);
/// How long a command with a TTY waits for the client's first terminal size before it runs.
pub const FIRST_SIZE_WAIT: Duration = Duration::from_secs(2);
/// Largest chunk handed to the output channel at once.
pub const MAX_CHUNK: usize = 32 * 1024;

/// A terminal size as the resize channel carries it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TerminalSize {
    /// Columns.
    pub width: u16,
    /// Rows.
    pub height: u16,
}

/// An output stream of the process.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stream {
    /// Standard output.
    Stdout,
    /// Standard error (merged into stdout with a TTY).
    Stderr,
}

/// The reader of the output went away: nothing more can be written, the process is abandoned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Gone;

/// How a command ended: with a status, or with `exit`, which also ends the script or shell running it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Flow {
    Next(i32),
    Exit(i32),
}

impl Flow {
    fn code(self) -> i32 {
        match self {
            Flow::Next(c) | Flow::Exit(c) => c,
        }
    }
}

/// One simulated process: its standard streams, its terminal, and the pod it runs in.
#[derive(Debug)]
pub struct Process {
    hostname: String,
    stdin: Option<mpsc::Receiver<Bytes>>,
    pending: Bytes,
    out: mpsc::Sender<(Stream, Bytes)>,
    tty: Option<watch::Receiver<Option<TerminalSize>>>,
}

type Boxed<'a, T> = Pin<Box<dyn Future<Output = Result<T, Gone>> + Send + 'a>>;

impl Process {
    /// A process in the pod `hostname`. `stdin` is `None` when no stdin is attached (reads see EOF at once);
    /// its end (the sender dropped) is EOF. `tty` carries the terminal size when the process has a TTY.
    pub fn new(
        hostname: impl Into<String>,
        stdin: Option<mpsc::Receiver<Bytes>>,
        out: mpsc::Sender<(Stream, Bytes)>,
        tty: Option<watch::Receiver<Option<TerminalSize>>>,
    ) -> Self {
        Self {
            hostname: hostname.into(),
            stdin,
            pending: Bytes::new(),
            out,
            tty,
        }
    }

    /// Runs `argv` as the container runtime would exec it; returns the exit status.
    pub async fn exec(&mut self, argv: &[String]) -> Result<i32, Gone> {
        if let Some(tty) = self.tty.as_mut() {
            let first_size = tty.wait_for(Option::is_some);
            let _ =
                tokio::time::timeout(FIRST_SIZE_WAIT, async move { first_size.await.map(|_| ()) })
                    .await;
        }
        if argv.is_empty() {
            return Ok(0);
        }
        Ok(self.command(argv, false, 0, false, 0).await?.code())
    }

    // --- output ---

    async fn write(&mut self, stream: Stream, data: &[u8]) -> Result<(), Gone> {
        if data.is_empty() {
            return Ok(());
        }
        let (stream, bytes) = if self.tty.is_some() {
            let mut crlf = Vec::with_capacity(data.len() + data.len() / 8);
            for &b in data {
                if b == b'\n' {
                    crlf.push(b'\r');
                }
                crlf.push(b);
            }
            (Stream::Stdout, Bytes::from(crlf))
        } else {
            (stream, Bytes::copy_from_slice(data))
        };
        let mut at = 0;
        while at < bytes.len() {
            let end = (at + MAX_CHUNK).min(bytes.len());
            self.out
                .send((stream, bytes.slice(at..end)))
                .await
                .map_err(|_| Gone)?;
            at = end;
        }
        Ok(())
    }

    async fn print(&mut self, to_stderr: bool, text: &str) -> Result<(), Gone> {
        let stream = if to_stderr {
            Stream::Stderr
        } else {
            Stream::Stdout
        };
        self.write(stream, text.as_bytes()).await
    }

    async fn error(&mut self, text: &str) -> Result<(), Gone> {
        self.write(Stream::Stderr, text.as_bytes()).await
    }

    // --- input ---

    /// Makes sure some stdin is pending; false at EOF.
    async fn fill(&mut self) -> bool {
        while self.pending.is_empty() {
            let Some(rx) = self.stdin.as_mut() else {
                return false;
            };
            match rx.recv().await {
                Some(chunk) => self.pending = chunk,
                None => {
                    self.stdin = None;
                    return false;
                }
            }
        }
        true
    }

    async fn chunk(&mut self) -> Option<Bytes> {
        if !self.fill().await {
            return None;
        }
        Some(std::mem::take(&mut self.pending))
    }

    /// A byte of the stdin already received, if any.
    fn pending_byte(&mut self) -> Option<u8> {
        let b = *self.pending.first()?;
        self.pending = self.pending.slice(1..);
        Some(b)
    }

    /// A line of stdin without its `\n` (the last one may lack it); `None` at EOF.
    async fn read_line(&mut self) -> Option<Vec<u8>> {
        let mut line = Vec::new();
        loop {
            if !self.fill().await {
                return (!line.is_empty()).then_some(line);
            }
            match self.pending.iter().position(|&b| b == b'\n') {
                Some(i) => {
                    keep(&mut line, &self.pending[..i]);
                    self.pending = self.pending.slice(i + 1..);
                    return Some(line);
                }
                None => {
                    let all = std::mem::take(&mut self.pending);
                    keep(&mut line, &all);
                }
            }
        }
    }

    /// A line typed at the terminal: echoed, edited, ended by `\r` or `\n`.
    async fn read_tty_line(&mut self) -> Result<TtyLine, Gone> {
        let mut line = Vec::new();
        let mut echo = Vec::new();
        loop {
            let Some(b) = self.pending_byte() else {
                self.write(Stream::Stdout, &std::mem::take(&mut echo))
                    .await?;
                if !self.fill().await {
                    return Ok(TtyLine::Eof);
                }
                continue;
            };
            match b {
                b'\r' | b'\n' => {
                    echo.push(b'\n');
                    self.write(Stream::Stdout, &echo).await?;
                    return Ok(TtyLine::Line(line));
                }
                0x7f if erase_char(&mut line) => echo.extend_from_slice(b"\x08 \x08"),
                0x7f => {}
                0x03 => {
                    echo.extend_from_slice(b"^C\n");
                    self.write(Stream::Stdout, &echo).await?;
                    return Ok(TtyLine::Interrupted);
                }
                0x04 if line.is_empty() => {
                    self.write(Stream::Stdout, &echo).await?;
                    return Ok(TtyLine::Eof);
                }
                0x04 => {}
                b if line.len() < MAX_LINE => {
                    line.push(b);
                    echo.push(b);
                }
                _ => {}
            }
        }
    }

    // --- commands ---

    /// Runs one command. `to_stderr`: its stdout goes to stderr (`>&2`); `depth`: shells around it;
    /// `in_script`: it was named by a script rather than by the exec request; `last`: the status `exit` defaults to.
    fn command<'a>(
        &'a mut self,
        argv: &'a [String],
        to_stderr: bool,
        depth: usize,
        in_script: bool,
        last: i32,
    ) -> Boxed<'a, Flow> {
        Box::pin(async move {
            let Some((name, args)) = argv.split_first() else {
                return Ok(Flow::Next(last));
            };
            let base = name.rsplit('/').next().unwrap_or(name);
            match base {
                "echo" => {
                    let mut line = args.join(" ");
                    line.push('\n');
                    self.print(to_stderr, &line).await?;
                    Ok(Flow::Next(0))
                }
                "cat" => self.cat(to_stderr).await,
                "true" => Ok(Flow::Next(0)),
                "false" => Ok(Flow::Next(1)),
                "hostname" => {
                    let line = format!("{}\n", self.hostname);
                    self.print(to_stderr, &line).await?;
                    Ok(Flow::Next(0))
                }
                "sleep" => self.sleep(args).await,
                "exit" => self.exit(args, last).await,
                "stty" => self.stty(args, to_stderr).await,
                "sh" | "bash" => self.shell(args, to_stderr, depth).await,
                _ if in_script => {
                    self.error(&format!("sh: {name}: not found\n")).await?;
                    Ok(Flow::Next(127))
                }
                _ => {
                    self.error(&format!(
                        "exec: {name:?}: executable file not found in $PATH\n"
                    ))
                    .await?;
                    Ok(Flow::Next(127))
                }
            }
        })
    }

    /// `cat`: stdin to stdout until EOF (there are no files: arguments are ignored, as the other back end does).
    async fn cat(&mut self, to_stderr: bool) -> Result<Flow, Gone> {
        let stream = if to_stderr {
            Stream::Stderr
        } else {
            Stream::Stdout
        };
        while let Some(chunk) = self.chunk().await {
            self.write(stream, &chunk).await?;
        }
        Ok(Flow::Next(0))
    }

    async fn sleep(&mut self, args: &[String]) -> Result<Flow, Gone> {
        let Some(arg) = args.first() else {
            self.error("sleep: missing operand\n").await?;
            return Ok(Flow::Next(1));
        };
        let Some(duration) = seconds(arg) else {
            self.error(&format!("sleep: invalid time interval '{arg}'\n"))
                .await?;
            return Ok(Flow::Next(1));
        };
        tokio::time::sleep(duration.min(MAX_SLEEP)).await;
        Ok(Flow::Next(0))
    }

    async fn exit(&mut self, args: &[String], last: i32) -> Result<Flow, Gone> {
        let Some(arg) = args.first() else {
            return Ok(Flow::Exit(last));
        };
        let Ok(n) = arg.parse::<i64>() else {
            self.error(&format!("sh: exit: {arg}: numeric argument required\n"))
                .await?;
            return Ok(Flow::Exit(2));
        };
        // Only the low 8 bits of a status survive, as with a real process.
        Ok(Flow::Exit(i32::try_from(n.rem_euclid(256)).unwrap_or(0)))
    }

    async fn stty(&mut self, args: &[String], to_stderr: bool) -> Result<Flow, Gone> {
        let Some(tty) = self.tty.as_ref() else {
            self.error("stty: standard input: Not a tty\n").await?;
            return Ok(Flow::Next(1));
        };
        if args.len() != 1 || args[0] != "size" {
            let message = format!("stty: invalid argument '{}'\n", args.join(" "));
            self.error(&message).await?;
            return Ok(Flow::Next(1));
        }
        let size = *tty.borrow();
        let (rows, cols) = size.map_or((0, 0), |s| (s.height, s.width));
        self.print(to_stderr, &format!("{rows} {cols}\n")).await?;
        Ok(Flow::Next(0))
    }

    async fn shell(
        &mut self,
        args: &[String],
        to_stderr: bool,
        depth: usize,
    ) -> Result<Flow, Gone> {
        if depth >= MAX_DEPTH {
            self.error("sh: too many nested shells\n").await?;
            return Ok(Flow::Next(2));
        }
        let mut options = true;
        let mut rest = args.iter();
        while let Some(arg) = rest.next() {
            if options && arg == "--" {
                options = false;
            } else if options && arg.starts_with('-') && arg.len() > 1 {
                // `-c`, also within combined short options (`-ec`, `-lc`); other options change nothing.
                if !arg.starts_with("--") && arg.contains('c') {
                    let Some(script) = rest.next() else {
                        self.error("sh: -c: option requires an argument\n").await?;
                        return Ok(Flow::Next(2));
                    };
                    let flow = self.script(script, to_stderr, depth + 1, 0).await?;
                    return Ok(Flow::Next(flow.code()));
                }
            } else {
                self.error(&format!(
                    "sh: can't open '{arg}': No such file or directory\n"
                ))
                .await?;
                return Ok(Flow::Next(2));
            }
        }
        let code = self.interactive(to_stderr, depth + 1).await?;
        Ok(Flow::Next(code))
    }

    /// Runs a script; `last` is the status `exit` without a number returns before any command ran.
    fn script<'a>(
        &'a mut self,
        script: &'a str,
        to_stderr: bool,
        depth: usize,
        last: i32,
    ) -> Boxed<'a, Flow> {
        Box::pin(async move {
            let commands = match parse_script(script) {
                Ok(c) => c,
                Err(message) => {
                    self.error(&format!("sh: {message}\n")).await?;
                    return Ok(Flow::Next(2));
                }
            };
            let mut status = last;
            for cmd in &commands {
                match self
                    .command(&cmd.argv, to_stderr || cmd.to_stderr, depth, true, status)
                    .await?
                {
                    Flow::Next(s) => status = s,
                    Flow::Exit(s) => return Ok(Flow::Exit(s)),
                }
            }
            Ok(Flow::Next(status))
        })
    }

    /// The shell without `-c`: reads stdin line by line until `exit` or EOF; returns its status.
    async fn interactive(&mut self, to_stderr: bool, depth: usize) -> Result<i32, Gone> {
        let mut status = 0;
        loop {
            let line = if self.tty.is_some() {
                self.write(Stream::Stderr, b"$ ").await?;
                match self.read_tty_line().await? {
                    TtyLine::Line(line) => line,
                    TtyLine::Interrupted => continue,
                    TtyLine::Eof => return Ok(status),
                }
            } else {
                match self.read_line().await {
                    Some(line) => line,
                    None => return Ok(status),
                }
            };
            let text = String::from_utf8_lossy(&line).into_owned();
            match self.script(&text, to_stderr, depth, status).await? {
                Flow::Next(s) => status = s,
                Flow::Exit(s) => return Ok(s),
            }
        }
    }
}

enum TtyLine {
    Line(Vec<u8>),
    Interrupted,
    Eof,
}

/// Appends to a line, dropping what goes beyond [`MAX_LINE`].
fn keep(line: &mut Vec<u8>, more: &[u8]) {
    let room = MAX_LINE.saturating_sub(line.len());
    line.extend_from_slice(&more[..more.len().min(room)]);
}

/// Removes the last UTF-8 character of a line; false when it was empty.
fn erase_char(line: &mut Vec<u8>) -> bool {
    let Some(mut b) = line.pop() else {
        return false;
    };
    while b & 0b1100_0000 == 0b1000_0000 {
        match line.pop() {
            Some(prev) => b = prev,
            None => break,
        }
    }
    true
}

/// A `sleep` operand: seconds, fractions and exponents allowed, from 0 to 10⁹.
fn seconds(arg: &str) -> Option<Duration> {
    let secs: f64 = arg.parse().ok()?;
    if !(0.0..=1e9).contains(&secs) {
        return None;
    }
    Duration::try_from_secs_f64(secs).ok()
}

/// One command of a script.
#[derive(Debug, Default, PartialEq, Eq)]
struct Command {
    argv: Vec<String>,
    /// `>&2`: stdout goes to stderr.
    to_stderr: bool,
}

/// Splits a script into commands (`;` or newline) and words (blanks), with quotes grouping literally.
fn parse_script(script: &str) -> Result<Vec<Command>, &'static str> {
    let chars: Vec<char> = script.chars().collect();
    let mut commands = Vec::new();
    let mut cmd = Command::default();
    let mut word: Option<String> = None;
    let mut quote: Option<char> = None;
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        i += 1;
        if let Some(q) = quote {
            if c == q {
                quote = None;
            } else if let Some(w) = word.as_mut() {
                w.push(c);
            }
            continue;
        }
        match c {
            '\'' | '"' => {
                quote = Some(c);
                word.get_or_insert_default();
            }
            ';' | '\n' => {
                cmd.argv.extend(word.take());
                if !cmd.argv.is_empty() {
                    commands.push(std::mem::take(&mut cmd));
                }
                cmd = Command::default();
            }
            ' ' | '\t' | '\r' => cmd.argv.extend(word.take()),
            '>' if chars.get(i) == Some(&'&') && chars.get(i + 1) == Some(&'2') => {
                // `>&2`, or `1>&2` when the word so far is the descriptor `1`.
                if word.as_deref() == Some("1") && chars.get(i.wrapping_sub(2)) == Some(&'1') {
                    word = None;
                }
                cmd.argv.extend(word.take());
                cmd.to_stderr = true;
                i += 2;
            }
            c => word.get_or_insert_default().push(c),
        }
    }
    if quote.is_some() {
        return Err("syntax error: unterminated quoted string");
    }
    cmd.argv.extend(word.take());
    if !cmd.argv.is_empty() {
        commands.push(cmd);
    }
    Ok(commands)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(script: &str) -> Vec<(Vec<String>, bool)> {
        parse_script(script)
            .unwrap()
            .into_iter()
            .map(|c| (c.argv, c.to_stderr))
            .collect()
    }

    fn cmd(argv: &[&str], to_stderr: bool) -> (Vec<String>, bool) {
        (argv.iter().map(|w| (*w).to_string()).collect(), to_stderr)
    }

    #[test]
    fn scripts_split_on_separators_blanks_and_quotes() {
        assert_eq!(
            words("echo 'a  b'; echo \"c\"; exit 3"),
            vec![
                cmd(&["echo", "a  b"], false),
                cmd(&["echo", "c"], false),
                cmd(&["exit", "3"], false)
            ]
        );
        assert_eq!(
            words("echo a\"b c\"'d'e\n\n;  true"),
            vec![cmd(&["echo", "ab cde"], false), cmd(&["true"], false)]
        );
        assert_eq!(words("echo ''"), vec![cmd(&["echo", ""], false)]);
        assert_eq!(words("echo \"it's\""), vec![cmd(&["echo", "it's"], false)]);
        assert_eq!(
            words("echo '$HOME;x'"),
            vec![cmd(&["echo", "$HOME;x"], false)]
        );
        assert!(parse_script("echo 'open").is_err());
    }

    #[test]
    fn redirections_to_stderr() {
        assert_eq!(words("echo err >&2"), vec![cmd(&["echo", "err"], true)]);
        assert_eq!(words("echo err>&2"), vec![cmd(&["echo", "err"], true)]);
        assert_eq!(words(">&2 echo err"), vec![cmd(&["echo", "err"], true)]);
        assert_eq!(words("echo err 1>&2"), vec![cmd(&["echo", "err"], true)]);
        assert_eq!(words("echo '>&2'"), vec![cmd(&["echo", ">&2"], false)]);
        assert_eq!(words("echo a >x"), vec![cmd(&["echo", "a", ">x"], false)]);
    }

    #[test]
    fn sleep_operands() {
        assert_eq!(seconds("1.5"), Some(Duration::from_millis(1500)));
        assert_eq!(seconds("0"), Some(Duration::ZERO));
        assert_eq!(seconds("-1"), None);
        assert_eq!(seconds("x"), None);
        assert_eq!(seconds("1e3"), Some(Duration::from_secs(1000)));
        assert_eq!(seconds("nan"), None);
        assert_eq!(seconds("1e10"), None);
    }

    struct Run {
        stdout: String,
        stderr: String,
        exit: i32,
    }

    async fn run(argv: &[&str], stdin: Option<&[u8]>, tty: Option<TerminalSize>) -> Run {
        let (in_tx, in_rx) = mpsc::channel(4);
        let (out_tx, mut out_rx) = mpsc::channel(4);
        let (_size_tx, size_rx) = watch::channel(tty);
        let mut p = Process::new(
            "pod-1",
            stdin.is_some().then_some(in_rx),
            out_tx,
            tty.is_some().then_some(size_rx),
        );
        let input = stdin.map(<[u8]>::to_vec);
        let feeder = tokio::spawn(async move {
            if let Some(input) = input {
                let _ = in_tx.send(Bytes::from(input)).await;
            }
        });
        let collector = tokio::spawn(async move {
            let (mut o, mut e) = (Vec::new(), Vec::new());
            while let Some((s, b)) = out_rx.recv().await {
                match s {
                    Stream::Stdout => o.extend_from_slice(&b),
                    Stream::Stderr => e.extend_from_slice(&b),
                }
            }
            (o, e)
        });
        let argv: Vec<String> = argv.iter().map(|s| (*s).to_string()).collect();
        let exit = p.exec(&argv).await.unwrap();
        drop(p);
        feeder.await.unwrap();
        let (o, e) = collector.await.unwrap();
        Run {
            stdout: String::from_utf8(o).unwrap(),
            stderr: String::from_utf8(e).unwrap(),
            exit,
        }
    }

    const SIZE: Option<TerminalSize> = Some(TerminalSize {
        width: 80,
        height: 24,
    });

    #[tokio::test]
    async fn terminal_line_editing() {
        // Erase (also a whole multi-byte character), then ^C discards a line, ^D on an empty line ends.
        let r = run(
            &["sh"],
            Some("ecko\x7f\x7fho é\x7fa\rnope\x03\x04".as_bytes()),
            SIZE,
        )
        .await;
        assert_eq!(
            r.stdout,
            "$ ecko\x08 \x08\x08 \x08ho é\x08 \x08a\r\na\r\n$ nope^C\r\n$ "
        );
        assert_eq!(r.exit, 0);
        // ^D on a non-empty line is ignored; \n ends a line like \r; the status of exit defaults to the last one.
        let r = run(&["bash"], Some(b"fa\x04lse\nexit\n"), SIZE).await;
        assert_eq!(r.stdout, "$ false\r\n$ exit\r\n");
        assert_eq!(r.exit, 1);
        // Stdin EOF ends the shell too.
        let r = run(&["sh", "-i"], Some(b"echo x\r"), SIZE).await;
        assert_eq!(r.stdout, "$ echo x\r\nx\r\n$ ");
    }

    #[tokio::test]
    async fn tty_merges_stderr_and_translates_newlines() {
        let r = run(&["sh", "-c", "echo a; echo b >&2; nosuch"], Some(b""), SIZE).await;
        assert_eq!(r.stdout, "a\r\nb\r\nsh: nosuch: not found\r\n");
        assert_eq!(r.stderr, "");
        assert_eq!(r.exit, 127);
    }

    #[tokio::test]
    async fn shells_and_statuses() {
        let r = run(&["sh", "-c", "false; exit"], None, None).await;
        assert_eq!(r.exit, 1);
        let r = run(&["bash", "-lc", "exit 300"], None, None).await;
        assert_eq!(r.exit, 44);
        let r = run(&["sh", "-c", "exit x; echo no"], None, None).await;
        assert_eq!(
            (r.stderr.as_str(), r.exit),
            ("sh: exit: x: numeric argument required\n", 2)
        );
        let r = run(&["sh", "-c", "exit -1"], None, None).await;
        assert_eq!(r.exit, 255);
        // A nested sh's exit ends only that shell.
        let r = run(&["sh", "-c", "sh -c 'exit 5'; echo after"], None, None).await;
        assert_eq!((r.stdout.as_str(), r.exit), ("after\n", 0));
        // A redirected subshell sends all its stdout to stderr.
        let r = run(&["sh", "-c", "sh -c 'echo in' >&2"], None, None).await;
        assert_eq!((r.stdout.as_str(), r.stderr.as_str()), ("", "in\n"));
        let r = run(&["sh", "-c"], None, None).await;
        assert_eq!(
            (r.stderr.as_str(), r.exit),
            ("sh: -c: option requires an argument\n", 2)
        );
        let r = run(&["sh", "-c", "echo 'x"], None, None).await;
        assert_eq!(r.exit, 2);
        let r = run(&["/usr/bin/hostname"], None, None).await;
        assert_eq!(r.stdout, "pod-1\n");
        let r = run(&["exit", "7"], None, None).await;
        assert_eq!(r.exit, 7);
        let r = run(&["cat", "/etc/passwd"], Some(b"x"), None).await;
        assert_eq!((r.stdout.as_str(), r.exit), ("x", 0));
        let r = run(&["sh", "script.sh"], None, None).await;
        assert_eq!(
            (r.stderr.as_str(), r.exit),
            ("sh: can't open 'script.sh': No such file or directory\n", 2)
        );
        let r = run(&["stty", "-echo"], Some(b""), SIZE).await;
        assert_eq!(
            (r.stdout.as_str(), r.exit),
            ("stty: invalid argument '-echo'\r\n", 1)
        );
        // A line ending in \r\n (no TTY): the \r is a blank.
        let r = run(&["sh"], Some(b"echo a\r\n"), None).await;
        assert_eq!(r.stdout, "a\n");
        let r = run(&["sh", "-c", "sleep x"], None, None).await;
        assert_eq!(
            (r.stderr.as_str(), r.exit),
            ("sleep: invalid time interval 'x'\n", 1)
        );
    }

    #[tokio::test]
    async fn nested_interactive_shells_are_bounded() {
        // Lines 1 to 15 each start a shell inside the last one; the 16th and the rest fail in the 16th shell.
        let input = "sh\n".repeat(MAX_DEPTH + 4);
        let r = run(&["sh"], Some(input.as_bytes()), None).await;
        assert_eq!(r.stderr, "sh: too many nested shells\n".repeat(5));
        assert_eq!(r.exit, 2);
    }

    #[tokio::test]
    async fn long_lines_are_cut() {
        let mut input = b"echo ".to_vec();
        input.extend(std::iter::repeat_n(b'x', MAX_LINE * 2));
        input.push(b'\n');
        let r = run(&["sh"], Some(&input), None).await;
        assert_eq!(r.stdout.len(), MAX_LINE - "echo ".len() + 1);
    }

    #[tokio::test]
    async fn stty_size_without_a_size_is_zero() {
        let (out_tx, mut out_rx) = mpsc::channel(4);
        let (size_tx, size_rx) = watch::channel(None);
        let mut p = Process::new("p", None, out_tx, Some(size_rx));
        // No size will come: the wait for the first one ends at once.
        drop(size_tx);
        let exit = p
            .exec(&["stty".to_string(), "size".to_string()])
            .await
            .unwrap();
        assert_eq!(exit, 0);
        assert_eq!(
            out_rx.recv().await,
            Some((Stream::Stdout, Bytes::from_static(b"0 0\r\n")))
        );
    }
}
