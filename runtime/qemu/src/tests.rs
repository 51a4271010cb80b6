//! Unit tests; those that boot the real firmware skip (saying how to install QEMU)
//! when qemu-system-arm is missing.

use super::*;

/// The repository root.
fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The firmware ELF: `TERN_FW_ELF`, else the last release build if there is one
/// (whatever its log lines, it is a real defmt firmware), else a fresh build.
fn firmware() -> PathBuf {
    if let Some(elf) = std::env::var_os("TERN_FW_ELF") {
        return elf.into();
    }
    let built = repo().join("target/firmware/thumbv7em-none-eabihf/release/tern-fw-mps2-an386");
    if built.is_file() {
        return built;
    }
    build_firmware(&repo(), "qemu-mps2-an386", &[]).expect("building the firmware")
}

/// `None` (after saying why) when QEMU is not installed; a failure instead when
/// `TERN_REQUIRE_QEMU` is set (CI installs QEMU, so there a skip would hide a test).
fn qemu_or_skip(test: &str) -> Option<()> {
    match check_tools() {
        Ok(()) => Some(()),
        Err(e) if std::env::var_os("TERN_REQUIRE_QEMU").is_some() => {
            panic!("{test}: TERN_REQUIRE_QEMU is set but {e}")
        }
        Err(e) => {
            eprintln!("{test}: SKIPPED, {e}");
            None
        }
    }
}

/// `path` relative to `base` (both absolute), with `..` as needed.
fn pathdiff(path: &Path, base: &Path) -> PathBuf {
    let path = path.canonicalize().expect("path exists");
    let base = base.canonicalize().expect("base exists");
    let common = path
        .components()
        .zip(base.components())
        .take_while(|(a, b)| a == b)
        .count();
    let mut out = PathBuf::new();
    for _ in base.components().skip(common) {
        out.push("..");
    }
    out.extend(path.components().skip(common));
    out
}

/// A fresh working directory for one test.
fn workdir(test: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("tern-qemu-{}-{test}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

#[test]
fn lines_print_like_defmt_print() {
    let line = LogLine {
        level: Some("info".into()),
        timestamp: None,
        text: "installed smoother 1.0.0".into(),
    };
    assert_eq!(line.to_string(), "INFO  installed smoother 1.0.0");
    assert!(line.is("info"));
    let line = LogLine {
        level: Some("error".into()),
        timestamp: Some("1.250".into()),
        text: "boom".into(),
    };
    assert_eq!(line.to_string(), "1.250 ERROR boom");
    assert_eq!(LogLine::plain("qemu: hi").to_string(), "qemu: hi");
}

#[test]
fn network_is_one_forwarded_address_or_none() {
    let elf = Path::new("/fw.elf");
    let options = QemuOptions {
        server_port: Some(41234),
        guest_server: "10.0.2.100:8080".parse().expect("address"),
        ..QemuOptions::default()
    };
    let args: Vec<String> = options
        .args(elf)
        .into_iter()
        .map(|a| a.into_string().expect("UTF-8"))
        .collect();
    assert_eq!(
        args,
        [
            "-M",
            "mps2-an386",
            "-nographic",
            "-semihosting-config",
            "enable=on,target=native",
            "-kernel",
            "/fw.elf",
            "-nic",
            &format!(
                "user,model=lan9118,restrict=on,guestfwd=tcp:10.0.2.100:8080-cmd:'{}' 127.0.0.1:41234",
                relay().display()
            ),
        ]
    );
    assert!(relay().is_file(), "{}", relay().display());
    assert_eq!(quoted("/a b/it's,x"), "'/a b/it'\\''s,,x'");
    let args = QemuOptions::default().args(elf);
    assert_eq!(
        args[args.len() - 2..],
        ["-nic".into(), "none".into()] as [std::ffi::OsString; 2]
    );
}

#[test]
fn the_built_executable_comes_from_cargos_messages() {
    let messages = r#"{"reason":"compiler-artifact","executable":null,"target":{"name":"build-script-build"}}
{"reason":"compiler-artifact","executable":"/t/release/fw","target":{"name":"fw"}}
{"reason":"build-finished","success":true}"#;
    assert_eq!(
        executable_of(messages),
        Some(PathBuf::from("/t/release/fw"))
    );
    assert_eq!(executable_of("not json\n"), None);
}

#[test]
fn a_host_board_has_no_firmware_to_build() {
    let e = build_firmware(&repo(), "server", &[]).expect_err("server has no firmware");
    assert!(e.contains("has no firmware"), "{e}");
}

#[test]
fn an_elf_without_defmt_is_refused_before_qemu_starts() {
    let dir = workdir("not-defmt");
    std::fs::create_dir_all(&dir).expect("mkdir");
    let file = dir.join("not.elf");
    std::fs::write(&file, b"\x7fELF not really").expect("write");
    let e = Qemu::start(&file, &QemuOptions::default())
        .err()
        .expect("refused");
    assert!(e.contains("not.elf"), "{e}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn boots_the_firmware_and_decodes_its_log() {
    if qemu_or_skip("boots_the_firmware_and_decodes_its_log").is_none() {
        return;
    }
    let dir = workdir("boot");
    let options = QemuOptions {
        workdir: dir.clone(),
        icount: false,
        exec_trace: None,
        timeout: Some(Duration::from_secs(120)),
        ..QemuOptions::default()
    };
    let mut qemu = Qemu::start(&firmware(), &options).expect("QEMU starts");
    // Whatever the firmware logs first, it is a decoded line with a level.
    let seen = qemu
        .wait_until(|l| l.level.is_some(), Duration::from_secs(60))
        .expect("a log line");
    let first = seen.last().expect("the match");
    assert!(!first.text.is_empty());
    // A line that never comes: the error quotes the log (timeout, or the exit).
    let e = qemu
        .wait_for("no firmware ever logs this", Duration::from_secs(2))
        .expect_err("never logged");
    assert!(
        e.contains("`no firmware ever logs this`") && e.contains("lines:"),
        "{e}"
    );
    qemu.kill();
    let transcript = qemu.transcript();
    assert!(transcript.contains(first));
    assert!(
        !transcript.iter().any(|l| l.text.contains("malformed")),
        "{transcript:#?}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn dropping_qemu_kills_it() {
    if qemu_or_skip("dropping_qemu_kills_it").is_none() {
        return;
    }
    let dir = workdir("drop");
    let options = QemuOptions {
        workdir: dir.clone(),
        icount: false,
        exec_trace: None,
        ..QemuOptions::default()
    };
    // A path relative to our working directory works although QEMU runs in `dir`.
    let elf = firmware();
    let cwd = std::env::current_dir().expect("cwd");
    let elf = pathdiff(&elf, &cwd);
    let mut qemu = Qemu::start(&elf, &options).expect("QEMU starts");
    qemu.wait_until(|l| l.level.is_some(), Duration::from_secs(60))
        .expect("the firmware boots");
    let proc = PathBuf::from(format!("/proc/{}", qemu.pid()));
    drop(qemu);
    // Killed and reaped: not even a zombie is left.
    assert!(!proc.exists(), "{} still exists", proc.display());
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_timeout_kills_qemu() {
    if qemu_or_skip("a_timeout_kills_qemu").is_none() {
        return;
    }
    let dir = workdir("timeout");
    let options = QemuOptions {
        workdir: dir.clone(),
        icount: false,
        exec_trace: None,
        timeout: Some(Duration::from_millis(10)),
        ..QemuOptions::default()
    };
    let mut qemu = Qemu::start(&firmware(), &options).expect("QEMU starts");
    let status = qemu.wait().expect("reaped");
    assert!(!status.success());
    assert!(qemu.timed_out());
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn the_relay_joins_stdio_to_the_server_end_for_end() {
    use std::io::{Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let address = listener.local_addr().expect("address").to_string();
    let mut relay = Command::new(relay())
        .arg(&address)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("relay starts");
    let (mut conn, _) = listener.accept().expect("the relay connects");
    let mut stdin = relay.stdin.take().expect("stdin");
    stdin.write_all(b"GET / HTTP/1.1\r\n\r\n").expect("write");
    // The guest's FIN reaches the server as end of stream.
    drop(stdin);
    let mut request = Vec::new();
    conn.read_to_end(&mut request).expect("read");
    assert_eq!(request, b"GET / HTTP/1.1\r\n\r\n");
    // The answer comes back whole (no newline needed), and the server's close ends the relay.
    conn.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok")
        .expect("write");
    drop(conn);
    let mut answer = Vec::new();
    relay
        .stdout
        .take()
        .expect("stdout")
        .read_to_end(&mut answer)
        .expect("read");
    assert!(answer.ends_with(b"\r\n\r\nok"), "{answer:?}");
    assert!(relay.wait().expect("exits").success());
}

#[test]
fn the_relay_exits_when_the_server_is_down() {
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        listener.local_addr().expect("address").port()
    };
    let status = Command::new(relay())
        .arg(format!("127.0.0.1:{port}"))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .output()
        .expect("relay runs");
    assert!(!status.status.success());
    // Nothing on stderr: libslirp gives the relay the guest's connection as stderr.
    assert!(status.stderr.is_empty());
}
