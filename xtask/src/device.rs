//! Device firmware tasks: `run` (build and boot under QEMU), `qemu` (boot an ELF; the firmware's cargo runner) and `flash` (flashable images).
//!
//! QEMU is driven through `tern-qemu`, the same code the end-to-end tests use: the
//! firmware's defmt log is decoded in-process and shown as plain lines.

use std::io::Write;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use object::read::elf::{ElfFile32, ProgramHeader};
use tern_qemu::{Echo, Qemu, QemuOptions};

use crate::root;

/// The board `run`, `qemu` and `size` use when none is named.
pub const DEFAULT_BOARD: &str = "qemu-mps2-an386";

const RUN_HELP: &str = "\
cargo xtask run [--board BOARD] [--server URL] [--feed FILE] [--workdir DIR]

Builds BOARD's firmware (default qemu-mps2-an386; `cargo build --release` in
boards/BOARD/firmware) and boots it under QEMU, showing its decoded defmt log until
the firmware exits or Ctrl-C. Exits with the firmware's status.

  --server URL   `tern serve` on this machine, as http://127.0.0.1:PORT. The guest
                 reaches it at board.toml's [network] server (10.0.2.100:8080 on
                 qemu-mps2-an386); QEMU forwards that one address to PORT and
                 nothing else. Loopback only. Without it the guest has no network.
  --feed FILE    the simulated sensors' feed (`tern feed` writes one), copied to
                 DIR/tern-feed.bin; without it a feed already in DIR is used
  --workdir DIR  QEMU's working directory: the device's component flash
                 (tern-flash.bin, kept between runs) and its feed. Default
                 target/qemu/BOARD; delete it to boot with blank flash.

The device identity compiled in comes from TERN_DEVICE_ID and TERN_DEVICE_TOKEN
(unset: the firmware's development identity, qemu-1).
Needs qemu-system-arm (apt-get update && apt-get install -y qemu-system-arm).
";

const QEMU_HELP: &str = "\
cargo xtask qemu [--board BOARD] [--server URL] [--feed FILE] [--workdir DIR] ELF

Boots an already built firmware ELF under QEMU with its decoded defmt log, as
`cargo xtask run` does after building (see `cargo xtask run --help` for the
options). This is the cargo runner of the firmware (boards/BOARD/firmware/run.sh), so
`cargo run --release` in the firmware folder ends here; arguments after `--` there
are passed on, e.g. `cargo run --release -- --server http://127.0.0.1:8080`.
";

const FLASH_HELP: &str = "\
cargo xtask flash --board BOARD [--elf ELF]

Builds BOARD's firmware (a device board: one with [memory] in its board.toml), or
takes ELF, and writes target/flash/BOARD/BOARD.elf and BOARD.bin: the raw image of
the ELF's loadable segments from the lowest flash address (gaps 0xff, as erased
flash). Prints their paths and sizes, the trust keys compiled in, and how to flash
them. Components are not in the image: the agent installs them into the slots.

The device identity compiled in comes from TERN_DEVICE_ID and TERN_DEVICE_TOKEN.
";

/// Options shared by `run` and `qemu`.
struct BootArgs {
    board: String,
    server: Option<String>,
    feed: Option<PathBuf>,
    workdir: Option<PathBuf>,
    positional: Vec<String>,
}

/// A task's command line: `--name VALUE` flags and positional arguments.
pub struct Parsed {
    flags: Vec<(String, String)>,
    /// Arguments that are not flags, in order.
    pub positional: Vec<String>,
}

impl Parsed {
    /// The last value given for `--name`.
    pub fn flag(&self, name: &str) -> Option<&str> {
        self.flags
            .iter()
            .rev()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// The ELF given with `--elf`, else the board's firmware, built now.
    pub fn elf_or_build(&self, board: &str) -> Result<PathBuf, String> {
        match self.flag("elf") {
            Some(elf) => Ok(PathBuf::from(elf)),
            None => {
                eprintln!("xtask: building the {board} firmware");
                tern_qemu::build_firmware(&root(), board, &[])
            }
        }
    }
}

/// Flags `--name VALUE` / `--name=VALUE` (only `names`) and positional arguments;
/// `None` after printing `help` for `--help`.
pub fn parse_flags(args: &[String], names: &[&str], help: &str) -> Result<Option<Parsed>, String> {
    let mut flags = Vec::new();
    let mut positional = Vec::new();
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        if arg == "--help" || arg == "-h" {
            print!("{help}");
            return Ok(None);
        }
        let Some(flag) = arg.strip_prefix("--") else {
            positional.push(arg.clone());
            continue;
        };
        let (name, value) = match flag.split_once('=') {
            Some((name, value)) => (name, Some(value.to_string())),
            None => (flag, None),
        };
        if !names.contains(&name) {
            return Err(format!("unknown option `--{name}`\n\n{help}"));
        }
        let value = match value {
            Some(v) => v,
            None => it
                .next()
                .cloned()
                .ok_or_else(|| format!("`--{name}` needs a value\n\n{help}"))?,
        };
        flags.push((name.to_string(), value));
    }
    Ok(Some(Parsed { flags, positional }))
}

fn boot_args(args: &[String], help: &str) -> Result<Option<BootArgs>, String> {
    let Some(parsed) = parse_flags(args, &["board", "server", "feed", "workdir"], help)? else {
        return Ok(None);
    };
    // The firmware's runner (run.sh) moves to the repo root and says where it was
    // called from: relative paths are relative to there.
    let caller = std::env::var_os("TERN_CALLER_DIR").map(PathBuf::from);
    let path = |p: &str| match &caller {
        Some(dir) => dir.join(p),
        None => PathBuf::from(p),
    };
    Ok(Some(BootArgs {
        board: parsed.flag("board").unwrap_or(DEFAULT_BOARD).to_string(),
        server: parsed.flag("server").map(str::to_string),
        feed: parsed.flag("feed").map(path),
        workdir: parsed.flag("workdir").map(path),
        positional: parsed.positional,
    }))
}

/// Reads and checks `boards/<name>/board.toml`.
pub fn load_board(name: &str) -> Result<tern_board::Board, String> {
    let shown = format!("boards/{name}/{}", tern_board::BOARD_FILE);
    let path = root().join(&shown);
    let text = std::fs::read_to_string(&path).map_err(|e| {
        let known = tern_board::load_boards(&root().join("boards"))
            .map(|boards| {
                boards
                    .iter()
                    .map(|b| b.name.clone())
                    .collect::<Vec<_>>()
                    .join(", ")
            })
            .unwrap_or_default();
        format!("unknown board `{name}`: {shown}: {e} (boards: {known})")
    })?;
    tern_board::parse_board(&shown, &text).map_err(|e| e.to_string())
}

/// `cargo xtask run`.
pub fn run(args: &[String]) -> Result<ExitCode, String> {
    let Some(boot) = boot_args(args, RUN_HELP)? else {
        return Ok(ExitCode::SUCCESS);
    };
    if let Some(extra) = boot.positional.first() {
        return Err(format!("unexpected argument `{extra}`\n\n{RUN_HELP}"));
    }
    tern_qemu::check_tools()?;
    // Everything that can be wrong is found before minutes of building.
    let options = prepare(&boot)?;
    eprintln!("xtask: building the {} firmware", boot.board);
    let elf = tern_qemu::build_firmware(&root(), &boot.board, &[])?;
    boot_elf(&elf, &options)
}

/// `cargo xtask qemu`.
pub fn qemu(args: &[String]) -> Result<ExitCode, String> {
    let Some(boot) = boot_args(args, QEMU_HELP)? else {
        return Ok(ExitCode::SUCCESS);
    };
    let elf = match boot.positional.as_slice() {
        [elf] => PathBuf::from(elf),
        [] => return Err(format!("which ELF?\n\n{QEMU_HELP}")),
        [_, extra, ..] => return Err(format!("unexpected argument `{extra}`\n\n{QEMU_HELP}")),
    };
    tern_qemu::check_tools()?;
    let options = prepare(&boot)?;
    boot_elf(&elf, &options)
}

/// The board, if QEMU can run it.
fn qemu_board(name: &str) -> Result<tern_board::Board, String> {
    let board = load_board(name)?;
    tern_qemu::machine_of(name).map_err(|e| {
        format!("{e}. Build a device board's image with `cargo xtask flash --board {name}`.")
    })?;
    Ok(board)
}

/// Checks the board and the options and prepares QEMU's working directory.
fn prepare(boot: &BootArgs) -> Result<QemuOptions, String> {
    let board = qemu_board(&boot.board)?;
    let server_port = boot.server.as_deref().map(loopback_port).transpose()?;
    let guest_server = match (&board.network, server_port) {
        (Some(network), _) => network.server,
        (None, Some(_)) => {
            return Err(format!(
                "{}: no [network] section, so the firmware has no server address to \
                 forward; add one (boards/README.md) or drop --server",
                board.file
            ));
        }
        (None, None) => QemuOptions::default().guest_server,
    };
    let workdir = boot
        .workdir
        .clone()
        .unwrap_or_else(|| root().join("target/qemu").join(&boot.board));
    std::fs::create_dir_all(&workdir).map_err(|e| format!("{}: {e}", workdir.display()))?;
    let feed = workdir.join(tern_qemu::FEED_FILE);
    match &boot.feed {
        Some(from) => {
            std::fs::copy(from, &feed).map_err(|e| {
                format!("--feed: copy {} -> {}: {e}", from.display(), feed.display())
            })?;
        }
        None if feed.is_file() => {
            eprintln!("xtask: sensor feed {} (from an earlier run)", shown(&feed));
        }
        None => {}
    }
    Ok(QemuOptions {
        machine: tern_qemu::machine_of(&boot.board)?.to_string(),
        server_port,
        guest_server,
        workdir,
        icount: false,
        exec_trace: None,
        timeout: None,
    })
}

/// Boots `elf` with the log shown live; the firmware's status becomes ours.
fn boot_elf(elf: &Path, options: &QemuOptions) -> Result<ExitCode, String> {
    let network = match options.server_port {
        Some(port) => format!("guest {} -> 127.0.0.1:{port} only", options.guest_server),
        None => "none (give --server to reach `tern serve`)".into(),
    };
    eprintln!(
        "xtask: booting {} under QEMU {}; flash {}; network {network}; Ctrl-C stops it",
        shown(elf),
        options.machine,
        shown(&options.workdir.join(tern_qemu::FLASH_FILE)),
    );
    let mut qemu = Qemu::start_with_echo(
        elf,
        options,
        Echo::Stdout {
            prefix: String::new(),
        },
    )?;
    let status = qemu.wait()?;
    // Not eprintln!: with the log piped into `head`, a closed stderr must not turn
    // the firmware's status into a panic.
    let _ = writeln!(
        std::io::stderr(),
        "xtask: firmware exited: {}",
        tern_qemu::describe(status)
    );
    Ok(exit_code(status))
}

/// The firmware's status as ours (a signal `n` as `128 + n`, as shells do).
fn exit_code(status: std::process::ExitStatus) -> ExitCode {
    #[cfg(unix)]
    {
        use std::os::unix::process::ExitStatusExt;
        if let Some(signal) = status.signal() {
            return ExitCode::from(128u8.saturating_add(u8::try_from(signal).unwrap_or(127)));
        }
    }
    ExitCode::from(status.code().map_or(1, |c| u8::try_from(c).unwrap_or(1)))
}

/// The port of a `tern serve` URL on this machine's loopback (`http://127.0.0.1:PORT`).
pub fn loopback_port(url: &str) -> Result<u16, String> {
    let refuse = |why: &str| {
        format!(
            "--server {url}: {why}. Give `tern serve`'s address on this machine, \
             http://127.0.0.1:PORT: QEMU forwards the guest's server address to one \
             port on 127.0.0.1 and nowhere else"
        )
    };
    let rest = if let Some(rest) = url.strip_prefix("http://") {
        rest
    } else if url.contains("://") {
        return Err(refuse("the device speaks plain HTTP only"));
    } else {
        url
    };
    let authority = match rest.split_once('/') {
        Some((authority, "")) => authority,
        Some(_) => return Err(refuse("a path is not allowed")),
        None => rest,
    };
    let (host, port) = authority
        .rsplit_once(':')
        .ok_or_else(|| refuse("no port"))?;
    let loopback = host == "localhost" || host.parse::<Ipv4Addr>() == Ok(Ipv4Addr::LOCALHOST);
    if !loopback {
        return Err(refuse(&format!("`{host}` is not 127.0.0.1")));
    }
    match port.parse::<u16>() {
        Ok(0) | Err(_) => Err(refuse(&format!("`{port}` is not a port"))),
        Ok(port) => Ok(port),
    }
}

/// A path under the repository as a relative one.
pub fn shown(path: &Path) -> String {
    let root = root();
    let root = root.canonicalize().unwrap_or(root);
    let path = path.canonicalize().unwrap_or_else(|_| path.to_path_buf());
    path.strip_prefix(&root)
        .unwrap_or(&path)
        .display()
        .to_string()
}

/// `cargo xtask flash`.
pub fn flash(args: &[String]) -> Result<(), String> {
    let Some(parsed) = parse_flags(args, &["board", "elf"], FLASH_HELP)? else {
        return Ok(());
    };
    if let Some(extra) = parsed.positional.first() {
        return Err(format!("unexpected argument `{extra}`\n\n{FLASH_HELP}"));
    }
    let name = parsed
        .flag("board")
        .ok_or_else(|| format!("which board?\n\n{FLASH_HELP}"))?;
    let board = load_board(name)?;
    let Some(memory) = board.memory else {
        return Err(format!(
            "{}: no [memory] section: `{name}` is a host board (its engine runs in `tern` \
             on the host), there is no firmware to flash. Device boards declare the \
             flash and RAM their firmware is linked for in [memory] (boards/README.md).",
            board.file
        ));
    };
    let built = parsed.elf_or_build(name)?;
    let elf_bytes = std::fs::read(&built).map_err(|e| format!("{}: {e}", built.display()))?;
    let (base, image) = flash_image(&elf_bytes, memory.flash.origin, memory.flash.size)?;

    let out = root().join("target/flash").join(name);
    std::fs::create_dir_all(&out).map_err(|e| format!("{}: {e}", out.display()))?;
    let elf = out.join(format!("{name}.elf"));
    let bin = out.join(format!("{name}.bin"));
    std::fs::write(&elf, &elf_bytes).map_err(|e| format!("{}: {e}", elf.display()))?;
    std::fs::write(&bin, &image).map_err(|e| format!("{}: {e}", bin.display()))?;

    let kib = |n: usize| n as f64 / 1024.0;
    println!("board      {name}: {}", board.description);
    println!(
        "ELF        {}  {:.1} KiB (symbols, line tables and the defmt table; loaders and QEMU take it)",
        shown(&elf),
        kib(elf_bytes.len())
    );
    println!(
        "image      {}  {:.1} KiB raw, load at {base:#010x} (memory.flash {:#010x}..{:#010x}, {:.0} % used)",
        shown(&bin),
        kib(image.len()),
        memory.flash.origin,
        u64::from(memory.flash.origin) + u64::from(memory.flash.size),
        100.0 * image.len() as f64 / f64::from(memory.flash.size.max(1)),
    );
    if let Some(origin) = board.flash_origin {
        let slots: Vec<String> = board
            .slots
            .iter()
            .map(|s| format!("{} {} KiB", s.name, s.size / 1024))
            .collect();
        println!(
            "components {origin:#010x}: slots {} (not in the image: the agent installs signed bundles there)",
            slots.join(", ")
        );
    }
    println!(
        "trust      {} of these keys must sign a bundle:",
        board.signatures_required
    );
    for key in &board.trust_keys {
        let id: String = tern_core::bundle::key_id(&key.public_key)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        let private = root().join("boards/keys").join(format!("{}.key", key.name));
        let warning = if private.is_file() {
            "  DEVELOPMENT KEY: its private half is in boards/keys/, anyone can sign for it"
        } else {
            ""
        };
        println!("             {:<20} key id {id}{warning}", key.name);
    }
    let identity = std::env::var("TERN_DEVICE_ID")
        .map(|id| format!("{id} (TERN_DEVICE_ID)"))
        .unwrap_or_else(|_| "the firmware's development identity (TERN_DEVICE_ID unset)".into());
    println!("device     {identity}; token from TERN_DEVICE_TOKEN if set");
    println!("flash it:");
    if let Ok(machine) = tern_qemu::machine_of(name) {
        println!(
            "  QEMU       cargo xtask qemu --board {name} {}",
            shown(&elf)
        );
        println!(
            "             (qemu-system-arm -M {machine} -nographic -semihosting-config enable=on,target=native -kernel {})",
            shown(&elf)
        );
    }
    println!(
        "  probe-rs   probe-rs download --chip <CHIP> {}",
        shown(&elf)
    );
    println!(
        "             probe-rs download --chip <CHIP> --binary-format bin --base-address {base:#x} {}",
        shown(&bin)
    );
    Ok(())
}

/// The raw image of an ELF's loadable bytes that lie in flash (`origin`, `size`):
/// every `PT_LOAD` segment with file bytes at its load (physical) address, so that
/// `.data`'s initial values sit where the startup code copies them from. Returns the
/// lowest address and the bytes from there; gaps are 0xff, as erased NOR flash.
pub fn flash_image(elf: &[u8], origin: u32, size: u32) -> Result<(u32, Vec<u8>), String> {
    let file = ElfFile32::<object::Endianness>::parse(elf).map_err(|e| format!("ELF: {e}"))?;
    let endian = file.endian();
    let end = u64::from(origin) + u64::from(size);
    let mut parts = Vec::new();
    for header in file.elf_program_headers() {
        let filesz = u64::from(header.p_filesz(endian));
        if header.p_type(endian) != object::elf::PT_LOAD || filesz == 0 {
            continue;
        }
        let at = u64::from(header.p_paddr(endian));
        if at < u64::from(origin) || at + filesz > end {
            return Err(format!(
                "a loadable segment at {at:#x}..{:#x} lies outside memory.flash \
                 {origin:#x}..{end:#x}: the firmware is not linked for this board.toml",
                at + filesz
            ));
        }
        let bytes = header
            .data(endian, elf)
            .map_err(|()| format!("ELF: segment at {at:#x} runs past the file"))?;
        parts.push((at, bytes));
    }
    let Some(base) = parts.iter().map(|(at, _)| *at).min() else {
        return Err("the ELF has no loadable bytes".into());
    };
    let top = parts
        .iter()
        .map(|(at, b)| at + b.len() as u64)
        .max()
        .unwrap_or(base);
    let mut image = vec![0xffu8; (top - base) as usize];
    for (at, bytes) in parts {
        let from = (at - base) as usize;
        image[from..from + bytes.len()].copy_from_slice(bytes);
    }
    // `base` came from a u32 field.
    Ok((base as u32, image))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_loopback_server_is_accepted() {
        assert_eq!(loopback_port("http://127.0.0.1:8080"), Ok(8080));
        assert_eq!(loopback_port("http://localhost:9000/"), Ok(9000));
        assert_eq!(loopback_port("127.0.0.1:7878"), Ok(7878));
        for bad in [
            "http://10.0.0.5:8080",
            "http://example.com:80",
            "https://127.0.0.1:8443",
            "http://127.0.0.1",
            "http://127.0.0.1:0",
            "http://127.0.0.1:8080/api",
            "http://[::1]:8080",
        ] {
            let e = loopback_port(bad).expect_err(bad);
            assert!(e.contains("http://127.0.0.1:PORT"), "{e}");
        }
    }

    #[test]
    fn flags_take_values_either_way() {
        let args: Vec<String> = ["--board=x", "elf", "--server", "http://127.0.0.1:1"]
            .map(String::from)
            .to_vec();
        let parsed = parse_flags(&args, &["board", "server"], "help")
            .expect("parsed")
            .expect("not help");
        assert_eq!(parsed.flag("board"), Some("x"));
        assert_eq!(parsed.flag("server"), Some("http://127.0.0.1:1"));
        assert_eq!(parsed.positional, ["elf"]);
        assert!(parse_flags(&["--nope".into()], &["board"], "help").is_err());
        assert!(parse_flags(&["--board".into()], &["board"], "help").is_err());
    }
}
