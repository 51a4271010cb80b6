//! Runs Tern's device firmware under QEMU from host code: builds it, boots it, decodes its defmt log.
//!
//! One code path for people and tests: `cargo xtask run`, the firmware's `cargo run`
//! runner and the end-to-end tests all boot the ELF through [`Qemu::start`], which
//! decodes the firmware's defmt frames (written to semihosting stdout, which is QEMU's
//! stdout) in-process with `defmt-decoder`, so no `defmt-print` is needed.
//!
//! ```no_run
//! # fn demo() -> Result<(), String> {
//! use std::time::Duration;
//! let repo = std::path::Path::new("/work/tern");
//! tern_qemu::check_tools()?;
//! let elf = tern_qemu::build_firmware(repo, "qemu-mps2-an386", &[("TERN_DEVICE_ID", "qemu-1")])?;
//! let options = tern_qemu::QemuOptions {
//!     server_port: Some(8080), // `tern serve` on 127.0.0.1:8080
//!     workdir: repo.join("target/qemu/test-1"),
//!     timeout: Some(Duration::from_secs(120)),
//!     ..tern_qemu::QemuOptions::default()
//! };
//! let mut qemu = tern_qemu::Qemu::start(&elf, &options)?;
//! qemu.wait_for("installed smoother 1.0.0", Duration::from_secs(60))?;
//! qemu.kill();
//! # Ok(()) }
//! ```
//!
//! The QEMU process never outlives its [`Qemu`]: dropping it kills and reaps QEMU
//! (a test that panics leaves no `qemu-system-arm` behind), and on Linux QEMU is also
//! killed by the kernel if the whole host process dies (`PR_SET_PDEATHSIG`).

#![deny(clippy::undocumented_unsafe_blocks)]

mod decode;

use std::fmt;
use std::io::{BufRead, BufReader};
use std::net::{Ipv4Addr, SocketAddrV4};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

/// The QEMU binary.
pub const QEMU: &str = "qemu-system-arm";

/// The command that installs [`QEMU`] on Debian and Ubuntu.
pub const INSTALL_QEMU: &str = "apt-get update && apt-get install -y qemu-system-arm";

/// The QEMU machine of the `qemu-mps2-an386` board, Tern's reference device.
pub const MACHINE: &str = "mps2-an386";

/// The QEMU machine a `qemu-<machine>` board runs on: its name without `qemu-`
/// (`qemu-mps2-an505` runs on `-M mps2-an505`). Other boards are not QEMU boards.
pub fn machine_of(board: &str) -> Result<&str, String> {
    board
        .strip_prefix("qemu-")
        .filter(|m| !m.is_empty())
        .ok_or_else(|| {
            format!(
                "board `{board}` is not a QEMU board: QEMU boards are named qemu-<machine>,                  such as qemu-mps2-an386"
            )
        })
}

/// The component flash's backing file in [`QemuOptions::workdir`] (semihosting),
/// loaded at boot and written through on every erase and write.
pub const FLASH_FILE: &str = "tern-flash.bin";

/// The simulated sensor feed in [`QemuOptions::workdir`] (semihosting): postcard of
/// the init config and the events, as `tern feed` writes it.
pub const FEED_FILE: &str = "tern-feed.bin";

/// How many lines of the log an error message quotes.
const TAIL_LINES: usize = 30;

/// Checks that [`QEMU`] can be started; the error says how to install it.
pub fn check_tools() -> Result<(), String> {
    match Command::new(QEMU)
        .arg("--version")
        .stdin(Stdio::null())
        .output()
    {
        Ok(out) if out.status.success() => Ok(()),
        Ok(out) => Err(format!(
            "`{QEMU} --version` failed ({}): reinstall it with `{INSTALL_QEMU}`",
            out.status
        )),
        Err(e) => Err(format!(
            "{QEMU} not found ({e}): install it with `{INSTALL_QEMU}`"
        )),
    }
}

/// Builds `boards/<board>/firmware` under `repo` with `cargo build --release` and
/// returns the ELF's path.
///
/// The firmware is its own cargo workspace: its `.cargo/config.toml` sets the target
/// and the target directory (`target/firmware/` at the repo root), which is why
/// `CARGO_TARGET_DIR` and `CARGO_BUILD_TARGET` are removed from cargo's environment.
/// `env` is added to it (the device identity: `TERN_DEVICE_ID`, `TERN_DEVICE_TOKEN`).
/// Cargo's progress and diagnostics go to our stderr.
pub fn build_firmware(repo: &Path, board: &str, env: &[(&str, &str)]) -> Result<PathBuf, String> {
    let dir = repo.join("boards").join(board).join("firmware");
    if !dir.join("Cargo.toml").is_file() {
        return Err(format!(
            "{} not found: board `{board}` has no firmware (only device boards have a \
             boards/<board>/firmware/ folder)",
            dir.join("Cargo.toml").display()
        ));
    }
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let out = Command::new(cargo)
        .current_dir(&dir)
        .args([
            "build",
            "--release",
            "--message-format=json-render-diagnostics",
        ])
        .env_remove("CARGO_TARGET_DIR")
        .env_remove("CARGO_BUILD_TARGET")
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .stderr(Stdio::inherit())
        .output()
        .map_err(|e| format!("cannot start cargo in {}: {e}", dir.display()))?;
    if !out.status.success() {
        return Err(format!(
            "cargo build --release in {} failed ({})",
            dir.display(),
            out.status
        ));
    }
    executable_of(&String::from_utf8_lossy(&out.stdout)).ok_or_else(|| {
        format!(
            "cargo build --release in {} reported no executable",
            dir.display()
        )
    })
}

/// The last executable among cargo's JSON `compiler-artifact` messages.
fn executable_of(messages: &str) -> Option<PathBuf> {
    messages
        .lines()
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
        .filter(|m| m["reason"] == "compiler-artifact")
        .filter_map(|m| m["executable"].as_str().map(PathBuf::from))
        .next_back()
}

/// Where decoded log lines are echoed as they arrive, besides the channel.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum Echo {
    /// Not echoed.
    #[default]
    Off,
    /// To our stdout, each line after `prefix`.
    Stdout {
        /// Printed before each line (`""` for none).
        prefix: String,
    },
    /// To our stderr, each line after `prefix`.
    Stderr {
        /// Printed before each line (`""` for none).
        prefix: String,
    },
}

/// How to run QEMU.
#[derive(Clone, Debug)]
pub struct QemuOptions {
    /// QEMU's `-M` machine ([`machine_of`] the board).
    pub machine: String,
    /// The host loopback port (`127.0.0.1:PORT`) that the guest's server address is
    /// forwarded to; `None` runs without a network backend (`-nic none`).
    pub server_port: Option<u16>,
    /// Where the firmware finds the server: board.toml `[network] server`. QEMU's user
    /// network forwards TCP to this address, and nothing else, to `server_port`.
    pub guest_server: SocketAddrV4,
    /// QEMU's working directory: the semihosting files ([`FLASH_FILE`], [`FEED_FILE`])
    /// live here. Created if missing.
    pub workdir: PathBuf,
    /// Kill QEMU after this long ([`Qemu::timed_out`] then says so).
    pub timeout: Option<Duration>,
    /// Run with `-icount shift=0`: one guest instruction per virtual nanosecond, so
    /// the guest's clock counts instructions (for `cargo xtask bench`; QEMU models no
    /// cycle timing, so this is the honest measure of work on the device).
    pub icount: bool,
    /// Log the address of every guest instruction executed to this file (QEMU's
    /// `-singlestep -d exec,nochain -D FILE`: one translation block per instruction,
    /// none chained, so each one is logged as it runs). Very slow and very large: for
    /// `cargo xtask bench --device --profile`, which reads it through a FIFO.
    pub exec_trace: Option<PathBuf>,
}

impl Default for QemuOptions {
    /// The `qemu-mps2-an386` board's machine, no network, `10.0.2.100:8080` as the
    /// guest's server, the current directory, no timeout.
    fn default() -> Self {
        QemuOptions {
            machine: MACHINE.to_string(),
            server_port: None,
            guest_server: SocketAddrV4::new(Ipv4Addr::new(10, 0, 2, 100), 8080),
            workdir: PathBuf::from("."),
            timeout: None,
            icount: false,
            exec_trace: None,
        }
    }
}

impl QemuOptions {
    /// QEMU's arguments for booting `elf`.
    pub fn args(&self, elf: &Path) -> Vec<std::ffi::OsString> {
        let mut args: Vec<std::ffi::OsString> = [
            "-M",
            self.machine.as_str(),
            "-nographic",
            "-semihosting-config",
            "enable=on,target=native",
            "-kernel",
        ]
        .iter()
        .map(Into::into)
        .collect();
        args.push(elf.into());
        if self.icount {
            args.push("-icount".into());
            args.push("shift=0".into());
        }
        if let Some(trace) = &self.exec_trace {
            args.extend(["-singlestep", "-d", "exec,nochain", "-D"].map(Into::into));
            args.push(trace.into());
        }
        args.push("-nic".into());
        args.push(match self.server_port {
            // `restrict=on`: the guest reaches nothing but the one forwarded address,
            // where the relay joins each of its connections to 127.0.0.1:PORT.
            Some(port) => format!(
                "user,model=lan9118,restrict=on,guestfwd=tcp:{}:{}-cmd:{} 127.0.0.1:{port}",
                self.guest_server.ip(),
                self.guest_server.port(),
                quoted(&relay().to_string_lossy()),
            )
            .into(),
            None => "none".into(),
        });
        args
    }
}

/// The program QEMU runs for each guest connection to [`QemuOptions::guest_server`]
/// (`guestfwd=...-cmd:`): it joins that connection to `127.0.0.1:server_port`, one
/// host connection per guest connection, FIN for FIN. Built from `relay/relay.rs` by
/// build.rs. (QEMU's `guestfwd=...-tcp:` form instead opens a single host connection
/// when QEMU starts, fails if the server is not up yet, and squeezes every guest
/// connection through it without passing their ends on.)
pub fn relay() -> &'static Path {
    Path::new(env!("TERN_QEMU_RELAY"))
}

/// `path` as one word for libslirp's command parser (glib shell quoting), with the
/// commas doubled for QEMU's option parser.
fn quoted(path: &str) -> String {
    format!("'{}'", path.replace('\'', "'\\''")).replace(',', ",,")
}

/// One decoded line of the firmware's log, or one line QEMU wrote to its stderr.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LogLine {
    /// `"trace"`, `"debug"`, `"info"`, `"warn"` or `"error"`; `None` for
    /// `defmt::println!`, QEMU's own messages and decoder notes.
    pub level: Option<String>,
    /// The defmt timestamp, if the firmware defines one.
    pub timestamp: Option<String>,
    /// The message (QEMU's own lines start with `qemu: `).
    pub text: String,
}

impl LogLine {
    /// A line without level or timestamp.
    pub fn plain(text: impl Into<String>) -> LogLine {
        LogLine {
            level: None,
            timestamp: None,
            text: text.into(),
        }
    }

    /// Whether this line has `level` (`"error"`, ...).
    pub fn is(&self, level: &str) -> bool {
        self.level.as_deref() == Some(level)
    }
}

impl fmt::Display for LogLine {
    /// As defmt-print shows it: `INFO  installed smoother 1.0.0`, with the timestamp
    /// first when there is one.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(ts) = &self.timestamp {
            write!(f, "{ts} ")?;
        }
        if let Some(level) = &self.level {
            write!(f, "{:<5} ", level.to_uppercase())?;
        }
        f.write_str(&self.text)
    }
}

/// What the owner thread hands back when QEMU has been reaped.
struct Outcome {
    status: Result<ExitStatus, String>,
    timed_out: bool,
}

/// A running (or finished) QEMU with the firmware's decoded log.
///
/// Lines arrive on a channel as QEMU writes them; every line taken through this type
/// is kept in [`Qemu::transcript`]. Dropping a `Qemu` kills QEMU and waits for it.
pub struct Qemu {
    lines: Receiver<LogLine>,
    transcript: Vec<LogLine>,
    /// Dropping it (or sending) tells the owner thread to kill QEMU.
    kill: Option<Sender<()>>,
    owner: Option<JoinHandle<Outcome>>,
    outcome: Option<Outcome>,
    pid: u32,
}

impl Qemu {
    /// Boots `elf` under QEMU with `options`.
    ///
    /// Fails if the ELF cannot be read or has no defmt table, or QEMU cannot be started
    /// (see [`check_tools`]).
    pub fn start(elf: &Path, options: &QemuOptions) -> Result<Qemu, String> {
        Qemu::start_with_echo(elf, options, Echo::Off)
    }

    /// As [`Qemu::start`], and every line is also printed as it arrives, as `echo`
    /// says (for people watching: `cargo xtask run`, the demo).
    pub fn start_with_echo(elf: &Path, options: &QemuOptions, echo: Echo) -> Result<Qemu, String> {
        let bytes = std::fs::read(elf).map_err(|e| format!("{}: {e}", elf.display()))?;
        let table = decode::table(&bytes).map_err(|e| format!("{}: {e}", elf.display()))?;
        drop(bytes);
        std::fs::create_dir_all(&options.workdir)
            .map_err(|e| format!("{}: {e}", options.workdir.display()))?;

        // QEMU runs in the working directory, so a relative ELF path would miss.
        let elf = std::path::absolute(elf).map_err(|e| format!("{}: {e}", elf.display()))?;
        let mut cmd = Command::new(QEMU);
        cmd.args(options.args(&elf))
            .current_dir(&options.workdir)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        die_with_parent(&mut cmd);

        // `-nic none` leaves the board's LAN9118 without a backend, and QEMU says so.
        let quiet_no_peer = options.server_port.is_none();
        let (line_tx, lines) = mpsc::channel();
        let (kill, kill_rx) = mpsc::channel();
        let (started_tx, started) = mpsc::sync_channel(1);
        let timeout = options.timeout;
        // The thread that spawns QEMU also reaps it: the parent-death signal is tied to
        // the spawning thread, so this one lives exactly as long as QEMU.
        let owner = thread::Builder::new()
            .name("qemu".into())
            .spawn(move || {
                let child = match cmd.spawn() {
                    Ok(child) => child,
                    Err(e) => {
                        let e =
                            format!("cannot start {QEMU} ({e}); install it with `{INSTALL_QEMU}`");
                        let _ = started_tx.send(Err(e.clone()));
                        return Outcome {
                            status: Err(e),
                            timed_out: false,
                        };
                    }
                };
                let _ = started_tx.send(Ok(child.id()));
                supervise(child, table, echo, quiet_no_peer, line_tx, kill_rx, timeout)
            })
            .map_err(|e| format!("cannot start the QEMU thread: {e}"))?;
        let pid = match started.recv() {
            Ok(Ok(pid)) => pid,
            Ok(Err(e)) => {
                let _ = owner.join();
                return Err(e);
            }
            Err(_) => return Err("the QEMU thread died before starting QEMU".into()),
        };
        Ok(Qemu {
            lines,
            transcript: Vec::new(),
            kill: Some(kill),
            owner: Some(owner),
            outcome: None,
            pid,
        })
    }

    /// QEMU's process id.
    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// The next line, waiting up to `timeout`; `Disconnected` once QEMU has exited and
    /// every line has been taken. The line is also added to the transcript.
    pub fn recv_line(&mut self, timeout: Duration) -> Result<LogLine, RecvTimeoutError> {
        let line = self.lines.recv_timeout(timeout)?;
        self.transcript.push(line.clone());
        Ok(line)
    }

    /// Waits up to `timeout` for a line whose text contains `needle`.
    ///
    /// Returns the lines taken by this call, the match last. The error (timeout, or
    /// QEMU exited first) quotes the last lines of the log.
    pub fn wait_for(&mut self, needle: &str, timeout: Duration) -> Result<Vec<LogLine>, String> {
        self.wait_matching(
            |line| line.text.contains(needle),
            timeout,
            &format!("`{needle}`"),
        )
    }

    /// Waits up to `timeout` for a line that satisfies `matches`; as
    /// [`Qemu::wait_for`].
    pub fn wait_until(
        &mut self,
        matches: impl FnMut(&LogLine) -> bool,
        timeout: Duration,
    ) -> Result<Vec<LogLine>, String> {
        self.wait_matching(matches, timeout, "a matching line")
    }

    fn wait_matching(
        &mut self,
        mut matches: impl FnMut(&LogLine) -> bool,
        timeout: Duration,
        what: &str,
    ) -> Result<Vec<LogLine>, String> {
        let deadline = Instant::now() + timeout;
        let mut seen = Vec::new();
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.recv_line(left) {
                Ok(line) => {
                    let hit = matches(&line);
                    seen.push(line);
                    if hit {
                        return Ok(seen);
                    }
                }
                Err(RecvTimeoutError::Timeout) => {
                    return Err(format!(
                        "timed out after {:.1} s waiting for {what}; {}",
                        timeout.as_secs_f64(),
                        self.tail(TAIL_LINES)
                    ));
                }
                Err(RecvTimeoutError::Disconnected) => {
                    let mut status = self.wait().map_or_else(|e| e, describe);
                    if self.timed_out() {
                        status.push_str(", killed when its timeout ran out");
                    }
                    return Err(format!(
                        "QEMU exited ({status}) before {what}; {}",
                        self.tail(TAIL_LINES)
                    ));
                }
            }
        }
    }

    /// Every line taken so far, plus those waiting in the channel.
    pub fn transcript(&mut self) -> &[LogLine] {
        self.drain();
        &self.transcript
    }

    /// `last N lines:` and the last `n` lines of the transcript, one per line.
    pub fn tail(&mut self, n: usize) -> String {
        self.drain();
        let from = self.transcript.len().saturating_sub(n);
        let mut out = format!("last {} lines:", self.transcript.len() - from);
        for line in &self.transcript[from..] {
            out.push_str("\n  ");
            out.push_str(&line.to_string());
        }
        out
    }

    /// Kills QEMU (if it still runs) and waits for it.
    pub fn kill(&mut self) {
        if let Some(kill) = &self.kill {
            let _ = kill.send(());
        }
        let _ = self.wait();
    }

    /// Waits for QEMU to exit (the firmware ends a run with a semihosting exit, which
    /// becomes QEMU's status). All remaining lines go to the transcript.
    pub fn wait(&mut self) -> Result<ExitStatus, String> {
        if let Some(owner) = self.owner.take() {
            let outcome = owner.join().unwrap_or_else(|_| Outcome {
                status: Err("the QEMU thread panicked".into()),
                timed_out: false,
            });
            self.outcome = Some(outcome);
        }
        self.drain();
        match &self.outcome {
            Some(outcome) => outcome.status.clone(),
            None => Err("QEMU was never started".into()),
        }
    }

    /// Waits up to `timeout` for QEMU to exit; kills it and fails (quoting the log) if
    /// it does not.
    pub fn wait_timeout(&mut self, timeout: Duration) -> Result<ExitStatus, String> {
        let deadline = Instant::now() + timeout;
        while self.owner.as_ref().is_some_and(|o| !o.is_finished()) {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                self.kill();
                return Err(format!(
                    "QEMU still running after {:.1} s, killed; {}",
                    timeout.as_secs_f64(),
                    self.tail(TAIL_LINES)
                ));
            }
            // Taking lines keeps the transcript current while we wait.
            let _ = self.recv_line(left.min(Duration::from_millis(50)));
        }
        self.wait()
    }

    /// Whether QEMU was killed because [`QemuOptions::timeout`] ran out; known once
    /// [`Qemu::wait`] has returned.
    pub fn timed_out(&self) -> bool {
        self.outcome.as_ref().is_some_and(|o| o.timed_out)
    }

    /// Moves every line already in the channel to the transcript.
    fn drain(&mut self) {
        while let Ok(line) = self.lines.try_recv() {
            self.transcript.push(line);
        }
    }
}

impl Drop for Qemu {
    fn drop(&mut self) {
        // Disconnecting the kill channel makes the owner thread kill QEMU; joining it
        // means QEMU has been reaped before we go on.
        self.kill = None;
        if let Some(owner) = self.owner.take() {
            let _ = owner.join();
        }
    }
}

/// `exit status 0`, `killed by signal 9`.
pub fn describe(status: ExitStatus) -> String {
    match status.code() {
        Some(code) => format!("exit status {code}"),
        None => format!("{status}"),
    }
}

/// Runs on the owner thread: starts the readers, then waits for QEMU to exit, for a
/// kill request or for the timeout, and reaps QEMU.
fn supervise(
    mut child: Child,
    table: decode::Table,
    echo: Echo,
    quiet_no_peer: bool,
    lines: Sender<LogLine>,
    kill: Receiver<()>,
    timeout: Option<Duration>,
) -> Outcome {
    let mut readers = Vec::new();
    if let Some(stdout) = child.stdout.take() {
        let (lines, echo) = (lines.clone(), echo.clone());
        readers.push(thread::spawn(move || {
            decode::frames(stdout, &table, &mut |line| emit(line, &echo, &lines));
        }));
    }
    if let Some(stderr) = child.stderr.take() {
        readers.push(thread::spawn(move || {
            for text in BufReader::new(stderr).lines().map_while(Result::ok) {
                if quiet_no_peer && text.contains("has no peer") {
                    continue;
                }
                emit(LogLine::plain(format!("qemu: {text}")), &echo, &lines);
            }
        }));
    }
    let deadline = timeout.map(|t| Instant::now() + t);
    let mut timed_out = false;
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break Ok(status),
            Ok(None) => {}
            Err(e) => break Err(format!("waiting for QEMU: {e}")),
        }
        let kill_now = match kill.recv_timeout(Duration::from_millis(20)) {
            Ok(()) | Err(RecvTimeoutError::Disconnected) => true,
            Err(RecvTimeoutError::Timeout) => {
                timed_out = deadline.is_some_and(|d| Instant::now() >= d);
                timed_out
            }
        };
        if kill_now {
            let _ = child.kill();
            break child.wait().map_err(|e| format!("waiting for QEMU: {e}"));
        }
    };
    for reader in readers {
        let _ = reader.join();
    }
    Outcome { status, timed_out }
}

/// Echoes a line if asked to, then sends it (the receiver may be gone: ignored).
///
/// Echo errors (a closed pipe: `cargo xtask run | head`) are ignored: the log still
/// reaches the channel and the transcript.
fn emit(line: LogLine, echo: &Echo, lines: &Sender<LogLine>) {
    use std::io::Write;
    let _ = match echo {
        Echo::Off => Ok(()),
        Echo::Stdout { prefix } => writeln!(std::io::stdout().lock(), "{prefix}{line}"),
        Echo::Stderr { prefix } => writeln!(std::io::stderr().lock(), "{prefix}{line}"),
    };
    let _ = lines.send(line);
}

/// Asks the kernel to kill QEMU when the thread that spawned it exits, so that a
/// killed test run or xtask leaves no QEMU behind.
#[cfg(target_os = "linux")]
fn die_with_parent(cmd: &mut Command) {
    use std::os::unix::process::CommandExt;
    let parent = std::process::id();
    let hook = move || -> std::io::Result<()> {
        // SAFETY: PR_SET_PDEATHSIG with a valid signal number has no memory effects.
        if unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) } != 0 {
            return Err(std::io::Error::last_os_error());
        }
        // The parent may have died between fork and prctl; then nobody would kill us.
        // SAFETY: getppid has no preconditions.
        if unsafe { libc::getppid() } as u32 != parent {
            // SAFETY: _exit ends the child at once without running any of the parent's
            // handlers, which is what a child that must not run needs.
            unsafe { libc::_exit(1) };
        }
        Ok(())
    };
    // SAFETY: the hook runs in the forked child before exec and calls only
    // async-signal-safe functions (prctl, getppid, _exit); it allocates nothing.
    unsafe { cmd.pre_exec(hook) };
}

/// Elsewhere only [`Drop`] stops QEMU.
#[cfg(not(target_os = "linux"))]
fn die_with_parent(_cmd: &mut Command) {}

#[cfg(test)]
mod tests;
