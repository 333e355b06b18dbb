//! Running the commands a step stands for (`nixos-rebuild`, `nix copy`, `rsync`…) and
//! streaming their output line by line while they run.
//!
//! Output is untrusted and unbounded: lines are handed over as bytes (the caller escapes
//! them), and a line longer than [`MAX_CHUNK`] arrives in pieces, so memory stays bounded
//! whatever a command prints. Each child runs in a process group of its own, so cancelling
//! reaches the processes it started too.

use std::fs::File;
use std::io::{self, Read};
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sys::signal::{Signal, killpg};
use nix::sys::wait::{Id, WaitPidFlag, WaitStatus, waitid};
use nix::unistd::Pid;

use crate::escape::{NEWLINE, escape_bytes};
use crate::report::{Action, Stream};

/// The longest piece of a line handed to the caller at once; longer lines are split.
pub const MAX_CHUNK: usize = 64 * 1024;
/// How many lines of stderr a [`Finished`] or an error keeps.
pub const TAIL_LINES: usize = 20;
/// The most stdout [`capture`] keeps before it gives up on the command.
pub const CAPTURE_LIMIT: usize = 64 * 1024 * 1024;
/// How long a cancelled command gets between SIGTERM and SIGKILL.
pub const TERM_GRACE: Duration = Duration::from_secs(5);

/// The longest stderr line kept whole in the tail (the tail is for error messages).
const TAIL_LINE_BYTES: usize = 1024;
/// How often the loop wakes up to look at the cancel flag and the child.
const POLL_INTERVAL_MS: u16 = 100;
/// After the child exits, how many silent poll rounds its pipes get before lifeboat stops
/// reading: a daemon it left behind may hold them open for ever.
const DRAIN_IDLE_ROUNDS: u32 = 10;

/// A command to run: argv, extra environment, working directory, and how to run it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommandSpec {
    argv: Vec<String>,
    env: Vec<(String, String)>,
    cwd: Option<PathBuf>,
    package: Option<String>,
    timeout: Option<Duration>,
    capture_stdout: bool,
    copies: bool,
    uninterruptible: bool,
}

impl CommandSpec {
    /// `program` with `args`; the program is looked up in `PATH` as by `execvp`.
    pub fn new<I, S>(program: impl Into<String>, args: I) -> CommandSpec
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let argv = std::iter::once(program.into())
            .chain(args.into_iter().map(Into::into))
            .collect();
        CommandSpec {
            argv,
            env: Vec::new(),
            cwd: None,
            package: None,
            timeout: None,
            capture_stdout: false,
            copies: false,
            uninterruptible: false,
        }
    }

    /// A `[commands]` argv prefix (`["nix"]`, `["sudo", "nixos-rebuild"]`) followed by
    /// `args`. The config never holds an empty prefix; one would fail as a missing program.
    pub fn from_prefix<I, S>(prefix: &[String], args: I) -> CommandSpec
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let (program, base) = prefix
            .split_first()
            .map_or(("", &[][..]), |(program, base)| (program.as_str(), base));
        CommandSpec::new(
            program,
            base.iter().cloned().chain(args.into_iter().map(Into::into)),
        )
    }

    /// Set `key` to `value` in the child's environment (on top of lifeboat's own).
    pub fn env(mut self, key: impl Into<String>, value: impl Into<String>) -> CommandSpec {
        self.env.push((key.into(), value.into()));
        self
    }

    /// Run the command in `dir`.
    pub fn current_dir(mut self, dir: impl Into<PathBuf>) -> CommandSpec {
        self.cwd = Some(dir.into());
        self
    }

    /// The NixOS package that provides the program, named when the program is missing.
    pub fn package(mut self, nixos_package: impl Into<String>) -> CommandSpec {
        self.package = Some(nixos_package.into());
        self
    }

    /// Stop the command (as on cancel) once it has run this long.
    pub fn timeout(mut self, limit: Duration) -> CommandSpec {
        self.timeout = Some(limit);
        self
    }

    /// Keep stdout (up to [`CAPTURE_LIMIT`]) in [`Finished::stdout_captured`] as well as streaming it.
    pub fn capture_stdout(mut self) -> CommandSpec {
        self.capture_stdout = true;
        self
    }

    /// The command copies data (rsync, `nix copy`): `LIFEBOAT_FAULT=pause-in:copy` stops
    /// the run once it has printed something (src/faults.rs).
    pub fn copies(mut self) -> CommandSpec {
        self.copies = true;
        self
    }

    /// The command must not be stopped half-way (installing a system to boot): a cancel
    /// waits for it to end, and it outlives a killed lifeboat. lifeboat stops before its
    /// next step instead. `LIFEBOAT_FAULT=pause-in:activation` stops the run once such a
    /// command has printed something (src/faults.rs).
    pub fn uninterruptible(mut self) -> CommandSpec {
        self.uninterruptible = true;
        self
    }

    /// The program and its arguments.
    pub fn argv(&self) -> &[String] {
        &self.argv
    }

    /// What the plan and `--dry-run` show: the exact argv, behind `env [-C DIR] KEY=VALUE…`
    /// when the command gets a working directory or extra environment, so that it can be
    /// pasted into a shell as it is.
    pub fn describe(&self) -> Action {
        let mut argv = Vec::new();
        if self.cwd.is_some() || !self.env.is_empty() {
            argv.push("env".to_string());
            if let Some(dir) = &self.cwd {
                argv.push("-C".to_string());
                argv.push(dir.to_string_lossy().into_owned());
            }
            argv.extend(self.env.iter().map(|(key, value)| format!("{key}={value}")));
        }
        argv.extend(self.argv.iter().cloned());
        Action::Command { argv }
    }
}

/// A piece of output: a whole line without its `\n`, or, for a line longer than
/// [`MAX_CHUNK`], one piece of it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Line<'a> {
    pub stream: Stream,
    pub bytes: &'a [u8],
    /// The line goes on in the next piece from the same stream.
    pub continues: bool,
}

/// What a step shows of a command's output, piece by piece: see [`LongLines`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Piece<'a> {
    /// A whole line, or the first [`MAX_CHUNK`] bytes of a longer one.
    Show(Line<'a>),
    /// A later piece of a long line: counted, not shown.
    Skip,
    /// The end of a long line, of which `left_out` bytes were not shown.
    Cut { stream: Stream, left_out: u64 },
}

/// Sorts the pieces [`run_streaming`] hands over so that a step shows each line once: a
/// line of 10 MB (or one that never ends) becomes its first piece and a count of the rest,
/// not hundreds of events in the transcript.
#[derive(Debug, Default)]
pub struct LongLines {
    /// Bytes left out of the long line each stream is in (stdout, stderr), once cut.
    left_out: [Option<u64>; 2],
}

impl LongLines {
    /// What to do with `line`.
    pub fn sort<'a>(&mut self, line: Line<'a>) -> Piece<'a> {
        let index = match line.stream {
            Stream::Stdout => 0,
            Stream::Stderr => 1,
        };
        let Some(left_out) = &mut self.left_out[index] else {
            if line.continues {
                self.left_out[index] = Some(0);
            }
            return Piece::Show(line);
        };
        *left_out += line.bytes.len() as u64;
        if line.continues {
            return Piece::Skip;
        }
        let left_out = *left_out;
        self.left_out[index] = None;
        Piece::Cut {
            stream: line.stream,
            left_out,
        }
    }
}

/// The note a step shows after the first piece of a long line.
pub fn cut_note(left_out: u64) -> String {
    format!("… (the line above went on for {left_out} more bytes, not shown)")
}

/// How a command that ran to its end ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finished {
    pub argv: Vec<String>,
    pub status: ExitStatus,
    /// The last [`TAIL_LINES`] lines of stderr, escaped for display.
    pub stderr_tail: Vec<String>,
    /// All of stdout, when the spec asked for it with [`CommandSpec::capture_stdout`].
    pub stdout_captured: Option<Vec<u8>>,
}

impl Finished {
    /// The exit code; `None` when a signal killed the command.
    pub fn code(&self) -> Option<i32> {
        self.status.code()
    }

    /// Exit 0 as `Ok`, anything else as [`ProcessError::Failed`]. Callers that give other
    /// codes a meaning (exit 4 of `switch-to-configuration`) look at [`Finished::code`] first.
    pub fn ensure_success(self) -> Result<Finished, ProcessError> {
        if self.status.success() {
            Ok(self)
        } else {
            Err(ProcessError::Failed {
                argv: self.argv,
                status: self.status,
                stderr_tail: self.stderr_tail,
            })
        }
    }
}

/// Why a command did not run to its end, or ended badly. Each keeps the argv; those that
/// ran keep the tail of stderr.
#[derive(Debug, thiserror::Error)]
pub enum ProcessError {
    #[error("{program}: command not found{}", package_hint(.package.as_deref()))]
    NotFound {
        program: String,
        package: Option<String>,
    },
    #[error("cannot run {}: {source}", shown_argv(.argv))]
    Spawn {
        argv: Vec<String>,
        source: io::Error,
    },
    #[error("reading the output of {}: {source}", shown_argv(.argv))]
    Io {
        argv: Vec<String>,
        source: io::Error,
    },
    #[error("{} was cancelled", shown_argv(.argv))]
    Cancelled { argv: Vec<String> },
    #[error("{} was stopped after {}s{}", shown_argv(.argv), .after.as_secs(), last_line(.stderr_tail))]
    TimedOut {
        argv: Vec<String>,
        after: Duration,
        stderr_tail: Vec<String>,
    },
    #[error("{} printed more than {limit} bytes on stdout", shown_argv(.argv))]
    OutputTooLarge { argv: Vec<String>, limit: usize },
    #[error("{} failed ({}){}", shown_argv(.argv), describe_status(*.status), last_line(.stderr_tail))]
    Failed {
        argv: Vec<String>,
        status: ExitStatus,
        stderr_tail: Vec<String>,
    },
}

fn package_hint(package: Option<&str>) -> String {
    package
        .map(|name| format!(" (on NixOS it comes from the package `{name}`)"))
        .unwrap_or_default()
}

fn last_line(tail: &[String]) -> String {
    tail.last()
        .map(|line| format!(": {line}"))
        .unwrap_or_default()
}

/// `exit status 100` or `killed by signal 9`.
pub fn describe_status(status: ExitStatus) -> String {
    match (status.code(), status.signal()) {
        (Some(code), _) => format!("exit status {code}"),
        (None, Some(signal)) => format!("killed by signal {signal}"),
        (None, None) => status.to_string(),
    }
}

/// The argv as one escaped line, arguments with spaces quoted.
pub fn shown_argv(argv: &[String]) -> String {
    argv.iter()
        .map(|arg| {
            let shown = escape_bytes(arg.as_bytes());
            if shown.is_empty() || shown.contains([' ', '\'', '"']) {
                format!("'{}'", shown.replace('\'', "'\\''"))
            } else {
                shown
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// Run `spec` to its end, handing every line of stdout and stderr to `on_line` as it
/// arrives. A non-zero exit is still `Ok` (see [`Finished::ensure_success`]). When `cancel`
/// is set the command's process group gets SIGTERM, then SIGKILL after [`TERM_GRACE`].
pub fn run_streaming(
    spec: &CommandSpec,
    on_line: &mut dyn FnMut(Line<'_>),
    cancel: &AtomicBool,
) -> Result<Finished, ProcessError> {
    run_streaming_with(spec, on_line, &|| {}, cancel)
}

/// [`run_streaming`], calling `flush` each time before lifeboat waits for more output (when
/// what it read so far is all handed over) and once the output has ended: where sinks that
/// buffer lines write them out, so that they reach the terminal and the disk while the
/// command is quiet.
pub fn run_streaming_with(
    spec: &CommandSpec,
    on_line: &mut dyn FnMut(Line<'_>),
    flush: &dyn Fn(),
    cancel: &AtomicBool,
) -> Result<Finished, ProcessError> {
    let (mut running, stdout, stderr) = spawn(spec)?;
    let mut output = Output {
        on_line,
        flush,
        tail: StderrTail::default(),
        captured: spec.capture_stdout.then(Vec::new),
        pipes: [
            Pipe::new(Stream::Stdout, stdout),
            Pipe::new(Stream::Stderr, stderr),
        ],
        closed_wait: Duration::from_millis(1),
    };
    let argv = spec.argv.clone();
    let streamed = stream_until_exit(spec, &running, &mut output, cancel);
    if streamed.is_ok() {
        output.finish();
    }
    (output.flush)();
    if let Err(stop) = streamed {
        running.terminate();
        return Err(stop.into_error(argv, output.tail.lines()));
    }
    let status = running.reap().map_err(|source| ProcessError::Io {
        argv: argv.clone(),
        source,
    })?;
    Ok(Finished {
        argv,
        status,
        stderr_tail: output.tail.lines(),
        stdout_captured: output.captured,
    })
}

/// Hand over output until the child has exited and its pipes are closed (or silent for
/// [`DRAIN_IDLE_ROUNDS`]), or until something says stop.
fn stream_until_exit(
    spec: &CommandSpec,
    running: &Running,
    output: &mut Output<'_>,
    cancel: &AtomicBool,
) -> Result<(), Stop> {
    let started = Instant::now();
    let mut buf = vec![0u8; MAX_CHUNK];
    let mut idle_rounds = 0;
    let mut waiting_told = false;
    loop {
        if cancel.load(Ordering::Relaxed) {
            if !spec.uninterruptible {
                return Err(Stop::Cancelled);
            }
            if !waiting_told {
                waiting_told = true;
                output.notice(UNINTERRUPTIBLE_NOTICE);
            }
        }
        if let Some(limit) = spec.timeout.filter(|limit| started.elapsed() >= *limit) {
            return Err(Stop::TimedOut(limit));
        }
        let exited = running.has_exited();
        if exited && (!output.any_open() || idle_rounds >= DRAIN_IDLE_ROUNDS) {
            return Ok(());
        }
        let read_any = output.pump(&mut buf)?;
        if read_any && spec.copies {
            crate::faults::pause_in(crate::faults::Point::Copy);
        }
        if read_any && spec.uninterruptible {
            crate::faults::pause_in(crate::faults::Point::Activation);
        }
        idle_rounds = if !read_any && exited {
            idle_rounds + 1
        } else {
            0
        };
    }
}

/// What lifeboat says when a cancel finds an uninterruptible command running.
const UNINTERRUPTIBLE_NOTICE: &str = "lifeboat: stop requested; this command is left to \
    finish, because stopping it half-way could leave the boot loader half-installed. lifeboat \
    stops after it.";

/// Why lifeboat stopped a command before its end.
enum Stop {
    Cancelled,
    TimedOut(Duration),
    Io(io::Error),
    TooLarge,
}

impl Stop {
    fn into_error(self, argv: Vec<String>, stderr_tail: Vec<String>) -> ProcessError {
        match self {
            Stop::Cancelled => ProcessError::Cancelled { argv },
            Stop::TimedOut(after) => ProcessError::TimedOut {
                argv,
                after,
                stderr_tail,
            },
            Stop::Io(source) => ProcessError::Io { argv, source },
            Stop::TooLarge => ProcessError::OutputTooLarge {
                argv,
                limit: CAPTURE_LIMIT,
            },
        }
    }
}

/// Run `spec` for its stdout (`nix eval --json`): all of it, up to [`CAPTURE_LIMIT`] bytes,
/// and how the command ended. Stderr only feeds the tail.
pub fn capture(
    spec: &CommandSpec,
    cancel: &AtomicBool,
) -> Result<(Vec<u8>, Finished), ProcessError> {
    let spec = spec.clone().capture_stdout();
    let mut finished = run_streaming(&spec, &mut |_| {}, cancel)?;
    let stdout = finished.stdout_captured.take().unwrap_or_default();
    Ok((stdout, finished))
}

fn spawn(spec: &CommandSpec) -> Result<(Running, File, File), ProcessError> {
    let spawn_error = |source| ProcessError::Spawn {
        argv: spec.argv.clone(),
        source,
    };
    let (program, args) = spec
        .argv
        .split_first()
        .ok_or_else(|| spawn_error(io::Error::new(io::ErrorKind::InvalidInput, "empty argv")))?;
    // A missing working directory also fails with ENOENT; say which one is missing.
    if let Some(dir) = spec.cwd.as_deref().filter(|dir| !dir.is_dir()) {
        return Err(spawn_error(io::Error::new(
            io::ErrorKind::NotFound,
            format!("no directory {}", crate::escape::shown(dir)),
        )));
    }
    let mut command = Command::new(program);
    command
        .args(args)
        .envs(spec.env.iter().map(|(key, value)| (key, value)))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0);
    if !spec.uninterruptible {
        let lifeboat = nix::unistd::getpid();
        // SAFETY: the hook makes two system calls and allocates nothing.
        unsafe {
            command.pre_exec(move || die_with(lifeboat));
        }
    }
    if let Some(dir) = &spec.cwd {
        command.current_dir(dir);
    }
    let mut child = command.spawn().map_err(|source| {
        if source.kind() == io::ErrorKind::NotFound {
            ProcessError::NotFound {
                program: program.clone(),
                package: spec.package.clone(),
            }
        } else {
            spawn_error(source)
        }
    })?;
    let stdout = child.stdout.take().map(OwnedFd::from).map(File::from);
    let stderr = child.stderr.take().map(OwnedFd::from).map(File::from);
    let running = Running::new(child);
    match (stdout, stderr) {
        (Some(stdout), Some(stderr)) => Ok((running, stdout, stderr)),
        _ => Err(spawn_error(io::Error::other("no pipes to the child"))),
    }
}

/// In the child before it runs the program: die when lifeboat dies, so that a SIGKILLed
/// run leaves no command running on (cancelling stops the whole group; see [`Running`]).
/// The kernel sends the signal when the spawning *thread* ends; [`run_streaming`] reaps the
/// child before it returns, so that thread outlives it. A lifeboat gone before the hook ran
/// fails the spawn.
fn die_with(lifeboat: Pid) -> io::Result<()> {
    nix::sys::prctl::set_pdeathsig(Signal::SIGKILL)?;
    if nix::unistd::getppid() != lifeboat {
        return Err(io::Error::from_raw_os_error(libc::ESRCH));
    }
    Ok(())
}

/// A spawned child and its process group. Dropping it before the child was reaped kills
/// the whole group and reaps the child, so an early return or a panic leaves nothing behind.
struct Running {
    child: Child,
    group: Pid,
    reaped: bool,
}

impl Running {
    fn new(child: Child) -> Running {
        // process_group(0) made the child the leader of a group with its own pid.
        let group = Pid::from_raw(child.id() as libc::pid_t);
        Running {
            child,
            group,
            reaped: false,
        }
    }

    /// Has the child exited? It is not reaped, so its pid, which names the process group,
    /// cannot be reused while lifeboat may still signal that group.
    fn has_exited(&self) -> bool {
        let flags = WaitPidFlag::WEXITED | WaitPidFlag::WNOWAIT | WaitPidFlag::WNOHANG;
        !matches!(
            waitid(Id::Pid(self.group), flags),
            Ok(WaitStatus::StillAlive) | Err(Errno::EINTR)
        )
    }

    /// SIGTERM to the group, SIGKILL once the child exits or [`TERM_GRACE`] is over (so
    /// descendants that ignore SIGTERM die too), then reap.
    fn terminate(&mut self) {
        let _ = killpg(self.group, Signal::SIGTERM);
        let deadline = Instant::now() + TERM_GRACE;
        while !self.has_exited() && Instant::now() < deadline {
            thread::sleep(Duration::from_millis(20));
        }
        let _ = killpg(self.group, Signal::SIGKILL);
        let _ = self.reap();
    }

    fn reap(&mut self) -> io::Result<ExitStatus> {
        let status = self.child.wait()?;
        self.reaped = true;
        Ok(status)
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if !self.reaped {
            let _ = killpg(self.group, Signal::SIGKILL);
            let _ = self.child.wait();
        }
    }
}

/// One of the child's output pipes and the line it is in the middle of.
struct Pipe {
    stream: Stream,
    file: Option<File>,
    lines: LineSplitter,
}

impl Pipe {
    fn new(stream: Stream, file: File) -> Pipe {
        Pipe {
            stream,
            file: Some(file),
            lines: LineSplitter::default(),
        }
    }
}

/// Where output goes: the caller's callback, the stderr tail, the captured stdout.
struct Output<'a> {
    on_line: &'a mut dyn FnMut(Line<'_>),
    flush: &'a dyn Fn(),
    tail: StderrTail,
    captured: Option<Vec<u8>>,
    pipes: [Pipe; 2],
    /// How long the next wait lasts once both pipes are closed: a command that closed its
    /// output is usually gone a moment later, so the wait starts short and doubles.
    closed_wait: Duration,
}

impl Output<'_> {
    /// A line of lifeboat's own among the command's output.
    fn notice(&mut self, text: &str) {
        (self.on_line)(Line {
            stream: Stream::Stderr,
            bytes: text.as_bytes(),
            continues: false,
        });
    }

    fn any_open(&self) -> bool {
        self.pipes.iter().any(|pipe| pipe.file.is_some())
    }

    /// Wait up to [`POLL_INTERVAL_MS`] for output and hand over what came. `Ok(true)` when
    /// anything was read (or a pipe closed). With both pipes closed it only waits.
    fn pump(&mut self, buf: &mut [u8]) -> Result<bool, Stop> {
        if !self.any_open() {
            (self.flush)();
            thread::sleep(self.closed_wait);
            self.closed_wait =
                (self.closed_wait * 2).min(Duration::from_millis(POLL_INTERVAL_MS.into()));
            return Ok(false);
        }
        // Output waiting is read at once; only before lifeboat waits is what it kept back
        // written out (a build that prints without pause fills whole buffers).
        let mut ready = self.poll_ready(PollTimeout::ZERO).map_err(Stop::Io)?;
        if ready == [false; 2] {
            (self.flush)();
            ready = self
                .poll_ready(PollTimeout::from(POLL_INTERVAL_MS))
                .map_err(Stop::Io)?;
        }
        let mut read_any = false;
        for (index, is_ready) in ready.into_iter().enumerate() {
            if is_ready {
                read_any = true;
                self.read_pipe(index, buf)?;
            }
        }
        Ok(read_any)
    }

    /// Which pipes have something to read (or are closed).
    fn poll_ready(&self, timeout: PollTimeout) -> io::Result<[bool; 2]> {
        let open: Vec<(usize, &File)> = self
            .pipes
            .iter()
            .enumerate()
            .filter_map(|(index, pipe)| pipe.file.as_ref().map(|file| (index, file)))
            .collect();
        let mut fds: Vec<PollFd> = open
            .iter()
            .map(|(_, file)| PollFd::new(file.as_fd(), PollFlags::POLLIN))
            .collect();
        let mut ready = [false; 2];
        match poll(&mut fds, timeout) {
            Ok(_) | Err(Errno::EINTR) => {}
            Err(errno) => return Err(io::Error::from(errno)),
        }
        for ((index, _), fd) in open.iter().zip(&fds) {
            ready[*index] = fd.revents().is_some_and(|events| !events.is_empty());
        }
        Ok(ready)
    }

    fn read_pipe(&mut self, index: usize, buf: &mut [u8]) -> Result<(), Stop> {
        let pipe = &mut self.pipes[index];
        let Some(file) = pipe.file.as_mut() else {
            return Ok(());
        };
        let n = match file.read(buf) {
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => return Ok(()),
            Err(e) => return Err(Stop::Io(e)),
        };
        let stream = pipe.stream;
        if n == 0 {
            pipe.file = None;
            let mut deliver = deliverer(stream, &mut *self.on_line, &mut self.tail);
            pipe.lines.finish(&mut deliver);
            return Ok(());
        }
        let captured = self.captured.as_mut().filter(|_| stream == Stream::Stdout);
        if let Some(captured) = captured {
            if captured.len() + n > CAPTURE_LIMIT {
                return Err(Stop::TooLarge);
            }
            captured.extend_from_slice(&buf[..n]);
        }
        let mut deliver = deliverer(stream, &mut *self.on_line, &mut self.tail);
        pipe.lines.feed(&buf[..n], &mut deliver);
        Ok(())
    }

    /// Hand over the unfinished last lines of pipes that lifeboat stopped reading.
    fn finish(&mut self) {
        for pipe in &mut self.pipes {
            let mut deliver = deliverer(pipe.stream, &mut *self.on_line, &mut self.tail);
            pipe.lines.finish(&mut deliver);
        }
    }
}

/// The callback a [`LineSplitter`] of `stream` delivers to.
fn deliverer<'a>(
    stream: Stream,
    on_line: &'a mut dyn FnMut(Line<'_>),
    tail: &'a mut StderrTail,
) -> impl FnMut(&[u8], bool) + 'a {
    move |bytes, continues| {
        if stream == Stream::Stderr {
            tail.push(bytes, continues);
        }
        on_line(Line {
            stream,
            bytes,
            continues,
        });
    }
}

/// Cuts a byte stream into lines, and lines longer than [`MAX_CHUNK`] into pieces of at
/// most that size. Holds at most one piece.
#[derive(Debug, Default)]
struct LineSplitter {
    pending: Vec<u8>,
}

impl LineSplitter {
    /// Deliver every line (or piece) that `data` completes, as `(bytes, continues)`.
    fn feed(&mut self, mut data: &[u8], emit: &mut dyn FnMut(&[u8], bool)) {
        while let Some(newline) = NEWLINE.find(data) {
            let line = &data[..newline];
            // A whole line in `data` goes out from there, not copied first.
            if self.pending.is_empty() && line.len() <= MAX_CHUNK {
                emit(line, false);
            } else {
                self.push(line, emit);
                emit(&self.pending, false);
                self.pending.clear();
            }
            data = &data[newline + 1..];
        }
        self.push(data, emit);
    }

    /// Deliver a last line that has no `\n`.
    fn finish(&mut self, emit: &mut dyn FnMut(&[u8], bool)) {
        if !self.pending.is_empty() {
            emit(&self.pending, false);
            self.pending.clear();
        }
    }

    /// Add bytes of the current line; a full piece goes out only once more bytes follow,
    /// so a line of exactly [`MAX_CHUNK`] bytes is one piece.
    fn push(&mut self, mut piece: &[u8], emit: &mut dyn FnMut(&[u8], bool)) {
        loop {
            let room = MAX_CHUNK - self.pending.len();
            if piece.len() <= room {
                self.pending.extend_from_slice(piece);
                return;
            }
            self.pending.extend_from_slice(&piece[..room]);
            piece = &piece[room..];
            emit(&self.pending, true);
            self.pending.clear();
        }
    }
}

/// The last [`TAIL_LINES`] lines of stderr; a long line is kept as its first
/// [`TAIL_LINE_BYTES`] bytes and `…`. Lines are kept raw and escaped only when asked for:
/// a build prints a million lines and the tail is read once.
#[derive(Debug, Default)]
struct StderrTail {
    /// A ring: the next line replaces `lines[next]` (the oldest once all are taken), and
    /// keeps its buffer: a build prints a million lines.
    lines: Vec<(Vec<u8>, bool)>,
    next: usize,
    in_long_line: bool,
}

impl StderrTail {
    fn push(&mut self, bytes: &[u8], continues: bool) {
        if !self.in_long_line {
            let kept = &bytes[..bytes.len().min(TAIL_LINE_BYTES)];
            let cut = continues || kept.len() < bytes.len();
            if self.lines.len() < TAIL_LINES {
                self.lines.push(Default::default());
            }
            let entry = &mut self.lines[self.next];
            entry.0.clear();
            entry.0.extend_from_slice(kept);
            entry.1 = cut;
            self.next = (self.next + 1) % TAIL_LINES;
        }
        self.in_long_line = continues;
    }

    /// The lines, oldest first, escaped for display.
    fn lines(&self) -> Vec<String> {
        let oldest = if self.lines.len() < TAIL_LINES {
            0
        } else {
            self.next
        };
        let (newer, older) = self.lines.split_at(oldest);
        older
            .iter()
            .chain(newer)
            .map(|(bytes, cut)| {
                let mut line = escape_bytes(bytes);
                if *cut {
                    line.push('…');
                }
                line
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {

    #[test]
    fn long_lines_show_their_first_piece_and_count_the_rest_per_stream() {
        let mut long = LongLines::default();
        let piece = |stream, bytes: &'static [u8], continues| Line {
            stream,
            bytes,
            continues,
        };
        let first = piece(Stream::Stderr, b"aaaa", true);
        assert_eq!(long.sort(first), Piece::Show(first));
        let other = piece(Stream::Stdout, b"whole", false);
        assert_eq!(long.sort(other), Piece::Show(other));
        assert_eq!(long.sort(piece(Stream::Stderr, b"bbb", true)), Piece::Skip);
        assert_eq!(
            long.sort(piece(Stream::Stderr, b"cc", false)),
            Piece::Cut {
                stream: Stream::Stderr,
                left_out: 5
            }
        );
        let next = piece(Stream::Stderr, b"next", false);
        assert_eq!(long.sort(next), Piece::Show(next));
    }
    use super::*;

    fn split(input: &[&[u8]]) -> Vec<(Vec<u8>, bool)> {
        let mut splitter = LineSplitter::default();
        let mut out = Vec::new();
        let mut emit = |bytes: &[u8], continues| out.push((bytes.to_vec(), continues));
        for data in input {
            splitter.feed(data, &mut emit);
        }
        splitter.finish(&mut emit);
        out
    }

    #[test]
    fn lines_are_split_across_reads_and_the_last_line_needs_no_newline() {
        let out = split(&[b"one\ntw", b"o\n\nthree"]);
        let expected: Vec<(Vec<u8>, bool)> = vec![
            (b"one".to_vec(), false),
            (b"two".to_vec(), false),
            (b"".to_vec(), false),
            (b"three".to_vec(), false),
        ];
        assert_eq!(out, expected);
    }

    #[test]
    fn a_line_of_exactly_one_chunk_is_one_piece_and_a_longer_one_is_cut() {
        let exact = vec![b'a'; MAX_CHUNK];
        assert_eq!(split(&[&exact, b"\n"]), vec![(exact.clone(), false)]);
        let longer = vec![b'b'; MAX_CHUNK + 1];
        let out = split(&[&longer, b"\n"]);
        assert_eq!(out.len(), 2);
        assert_eq!((out[0].0.len(), out[0].1), (MAX_CHUNK, true));
        assert_eq!(out[1], (b"b".to_vec(), false));
    }

    #[test]
    fn the_tail_keeps_the_last_lines_and_one_entry_per_long_line() {
        let mut tail = StderrTail::default();
        for line in ["a", "b", "c"] {
            tail.push(line.as_bytes(), false);
        }
        assert_eq!(tail.lines(), ["a", "b", "c"]);
        for i in 0..30 {
            tail.push(format!("line {i}").as_bytes(), false);
        }
        tail.push(&[b'x'; 10], true);
        tail.push(&[b'y'; 10], false);
        tail.push(b"\x1b[31mred", false);
        let lines = tail.lines();
        assert_eq!(lines.len(), TAIL_LINES);
        assert_eq!(lines[0], "line 12");
        assert_eq!(lines[TAIL_LINES - 2], "xxxxxxxxxx…");
        assert_eq!(lines[TAIL_LINES - 1], "\\e[31mred");
    }

    #[test]
    fn describe_is_the_argv_with_env_and_directory_in_front() {
        let spec = CommandSpec::new("nix", ["eval", "--json"]);
        assert_eq!(
            spec.describe(),
            Action::Command {
                argv: vec!["nix".into(), "eval".into(), "--json".into()]
            }
        );
        let spec = spec.env("NIX_CONFIG", "x = y").current_dir("/etc/nixos");
        assert_eq!(
            spec.describe(),
            Action::Command {
                argv: [
                    "env",
                    "-C",
                    "/etc/nixos",
                    "NIX_CONFIG=x = y",
                    "nix",
                    "eval",
                    "--json"
                ]
                .map(String::from)
                .to_vec()
            }
        );
    }

    #[test]
    fn shown_argv_quotes_spaces_and_escapes_controls() {
        let argv = ["git", "commit", "-m", "it's done", "\x1b[2J"].map(String::from);
        assert_eq!(shown_argv(&argv), "git commit -m 'it'\\''s done' \\e[2J");
    }
}
