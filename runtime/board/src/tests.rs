//! Every way a board.toml can be rejected, each checked to name the file, the key and the fix.

use std::path::PathBuf;

use tern_core::bundle::EngineKind;
use tern_core::grant::Scope;

use std::net::{Ipv4Addr, SocketAddrV4};

use crate::{
    BoardError, Ipv4Config, MemoryMap, Network, Peripherals, Problem, Region, device_code,
    load_boards, memory_x, parse_board,
};

const FILE: &str = "boards/x/board.toml";
const DEV_KEY: &str = "1f48883bb18d82d2c872c4f1ca7abcb9f799967be95779362690655f43819de8";
const OPS_KEY: &str = "443b0555f66e2360a5c177d2990562d463df3584afb64c55c5b306c0fc30df82";

/// A small valid board in folder `x`; each test changes one thing.
fn base() -> String {
    format!(
        r#"name = "x"
description = "test board"
targets = ["thumbv7em-none-eabihf"]
engine = "wasmi"

[limits]
fuel-per-call = 1000
memory-bytes = 65536
table-elements = 16
call-depth = 8

[flash]
sector-size = 4096
slots = [
    {{ name = "a", offset = 0, size = 8192 }},
    {{ name = "b", offset = 8192, size = 8192 }},
]

[trust]
signatures-required = 1
keys = [
    {{ name = "dev", public-key = "{DEV_KEY}" }},
    {{ name = "ops", public-key = "{OPS_KEY}" }},
]

[capabilities]
log = true
clock = true
sensors = ["temp-0"]
gpio = [4]
kv = 4096
publish = "alerts/"

[memory]
flash = {{ origin = 0x0800_0000, size = 0x10_0000 }}
ram = {{ origin = 0x2000_0000, size = 0x2_0000 }}
"#
    )
}

/// The base board with the one occurrence of `from` replaced by `to`.
#[track_caller]
fn with(from: &str, to: &str) -> String {
    let base = base();
    assert_eq!(base.matches(from).count(), 1, "`{from}` must occur once");
    base.replacen(from, to, 1)
}

/// Parses `text`, expecting an error at `key` whose message holds `fix`.
#[track_caller]
fn fails(text: &str, key: &str, fix: &str) -> BoardError {
    let error = parse_board(FILE, text).expect_err("the board should be rejected");
    names(&error, key, fix);
    error
}

/// Checks that `error` names the file, `key` and `fix`.
#[track_caller]
fn names(error: &BoardError, key: &str, fix: &str) {
    let message = error.to_string();
    assert_eq!(error.file, FILE, "{message}");
    assert_eq!(error.key, key, "{message}");
    assert!(message.starts_with(FILE), "names the file: {message}");
    assert!(
        message.contains(&format!(": {key}: ")),
        "names the key: {message}"
    );
    assert!(message.contains(fix), "names the fix `{fix}`: {message}");
}

#[test]
fn base_board_is_valid() {
    let board = parse_board(FILE, &base()).unwrap();
    assert_eq!(board.name, "x");
    assert_eq!(board.engine, EngineKind::Wasmi);
    assert_eq!(board.limits.memory_bytes, 65536);
    assert_eq!(board.slots.len(), 2);
    assert_eq!(board.trust_keys.len(), 2);
    assert_eq!(board.signatures_required, 1);
    assert_eq!(
        board.offers.sensors,
        Some(Scope::Only(vec!["temp-0".into()]))
    );
    assert_eq!(board.offers.gpio, Some(Scope::Only(vec![4])));
}

#[test]
fn missing_capabilities_are_not_offered_and_star_is_any() {
    let text = with(
        "log = true\nclock = true\nsensors = [\"temp-0\"]\ngpio = [4]\nkv = 4096\npublish = \"alerts/\"\n",
        "sensors = \"*\"\n",
    );
    let board = parse_board(FILE, &text).unwrap();
    assert!(!board.offers.log && !board.offers.clock);
    assert_eq!(board.offers.sensors, Some(Scope::Any));
    assert_eq!(
        (board.offers.gpio, board.offers.kv, board.offers.publish),
        (None, None, None)
    );
}

// --- TOML and serde -------------------------------------------------------------

#[test]
fn bad_toml_names_file_and_line() {
    let error = parse_board(FILE, &with("[flash]", "[flash")).unwrap_err();
    assert!(matches!(error.problem, Problem::Syntax { .. }));
    assert_eq!(error.line, Some(12));
    let message = error.to_string();
    assert!(message.starts_with("boards/x/board.toml:12: "), "{message}");
    assert!(message.contains("see boards/README.md"), "{message}");
}

#[test]
fn wrong_type_names_key() {
    let error = fails(
        &with("memory-bytes = 65536", "memory-bytes = \"lots\""),
        "limits.memory-bytes",
        "boards/README.md",
    );
    assert!(matches!(error.problem, Problem::Syntax { .. }));
    assert_eq!(error.line, Some(8));
    let error = fails(
        &with("offset = 8192", "offset = -1"),
        "flash.slots[1].offset",
        "u32",
    );
    assert!(matches!(error.problem, Problem::Syntax { .. }));
    fails(&with("kv = 4096", "kv = -1"), "capabilities.kv", "u32");
}

#[test]
fn unknown_top_level_key() {
    let error = fails(
        &with("engine = \"wasmi\"", "engine = \"wasmi\"\ncolour = \"red\""),
        "colour",
        "`engine`",
    );
    assert!(matches!(error.problem, Problem::UnknownKey { ref name, .. } if name == "colour"));
    assert!(
        error
            .to_string()
            .contains("check the spelling, or remove it")
    );
}

#[test]
fn unknown_limit() {
    let error = fails(
        &with("call-depth = 8", "call-depth = 8\nheap-bytes = 1"),
        "limits.heap-bytes",
        "`call-depth`",
    );
    assert!(matches!(error.problem, Problem::UnknownKey { .. }));
}

#[test]
fn unknown_slot_and_key_fields() {
    fails(
        &with("size = 8192 },\n]", "size = 8192, extra = 1 },\n]"),
        "flash.slots[1].extra",
        "`size`",
    );
    fails(
        &with("[trust]", "[trust]\nthreshold = 2"),
        "trust.threshold",
        "`signatures-required`",
    );
}

#[test]
fn unknown_capability() {
    let error = fails(
        &with("log = true", "wifi = true"),
        "capabilities.wifi",
        "check the spelling",
    );
    assert!(matches!(error.problem, Problem::UnknownCapability { ref name } if name == "wifi"));
    let message = error.to_string();
    assert!(message.contains("unknown capability `wifi`"), "{message}");
    assert!(
        message.contains("log, clock, sensors, gpio, kv, publish"),
        "{message}"
    );
}

#[test]
fn missing_keys() {
    let error = fails(&with("engine = \"wasmi\"\n", ""), "engine", "add it");
    assert!(matches!(error.problem, Problem::MissingKey { ref name } if name == "engine"));
    fails(&with("call-depth = 8\n", ""), "limits.call-depth", "add it");
    let text = base();
    let no_capabilities = &text[..text.find("[capabilities]").unwrap()];
    fails(no_capabilities, "capabilities", "add it");
    fails(
        &with("public-key = \"443b", "key = \"443b"),
        "trust.keys[1].key",
        "`public-key`",
    );
}

// --- name, description, targets, engine -----------------------------------------

#[test]
fn invalid_board_names() {
    for name in ["X", "x_1", "", "1x", "all", "x.y"] {
        let error = fails(
            &with("name = \"x\"", &format!("name = \"{name}\"")),
            "name",
            "lowercase letters",
        );
        assert!(
            matches!(error.problem, Problem::InvalidBoardName { .. }),
            "{name}"
        );
    }
}

#[test]
fn name_must_equal_folder() {
    let error = fails(
        &with("name = \"x\"", "name = \"y\""),
        "name",
        "set `name = \"x\"`",
    );
    assert!(matches!(error.problem, Problem::NameNotFolder { .. }));
    assert!(error.to_string().contains("rename the folder to `y`"));
}

#[test]
fn empty_description() {
    let error = fails(
        &with("description = \"test board\"", "description = \"  \""),
        "description",
        "write one line",
    );
    assert!(matches!(error.problem, Problem::Empty { .. }));
}

#[test]
fn targets() {
    let error = fails(
        &with("targets = [\"thumbv7em-none-eabihf\"]", "targets = []"),
        "targets",
        "target triple",
    );
    assert!(matches!(error.problem, Problem::NoTargets));
    for bad in ["thumbv7em", "Thumb-none-eabi", "a--b", "a-b-c-d-e"] {
        let error = fails(
            &with(
                "targets = [\"thumbv7em-none-eabihf\"]",
                &format!("targets = [\"{bad}\"]"),
            ),
            "targets[0]",
            "rustc --print target-list",
        );
        assert!(
            matches!(error.problem, Problem::InvalidTarget { .. }),
            "{bad}"
        );
    }
    let error = fails(
        &with(
            "\"thumbv7em-none-eabihf\"]",
            "\"thumbv7em-none-eabihf\", \"thumbv7em-none-eabihf\"]",
        ),
        "targets[1]",
        "remove one",
    );
    assert!(matches!(error.problem, Problem::Duplicate { .. }));
}

#[test]
fn unknown_engine() {
    let error = fails(
        &with("engine = \"wasmi\"", "engine = \"wamr\""),
        "engine",
        "use `wasmi`",
    );
    assert!(matches!(error.problem, Problem::UnknownEngine { ref engine } if engine == "wamr"));
}

#[test]
fn wasmtime_needs_an_os() {
    let error = fails(
        &with("engine = \"wasmi\"", "engine = \"wasmtime\""),
        "engine",
        "`engine = \"wasmi\"`",
    );
    assert!(matches!(error.problem, Problem::EngineNeedsOs { .. }));
    let hosted = with("engine = \"wasmi\"", "engine = \"wasmtime\"")
        .replace("thumbv7em-none-eabihf", "x86_64-unknown-linux-gnu");
    assert_eq!(
        parse_board(FILE, &hosted).unwrap().engine,
        EngineKind::Wasmtime
    );
}

// --- limits ---------------------------------------------------------------------

#[test]
fn limits_must_be_positive() {
    for (line, key) in [
        ("fuel-per-call = 1000", "limits.fuel-per-call"),
        ("memory-bytes = 65536", "limits.memory-bytes"),
        ("table-elements = 16", "limits.table-elements"),
        ("call-depth = 8", "limits.call-depth"),
    ] {
        let (name, _) = line.split_once(" = ").unwrap();
        let error = fails(
            &with(line, &format!("{name} = 0")),
            key,
            "must be greater than 0",
        );
        assert!(matches!(error.problem, Problem::Zero { .. }), "{key}");
    }
}

#[test]
fn memory_must_be_whole_pages() {
    let error = fails(
        &with("memory-bytes = 65536", "memory-bytes = 100000"),
        "limits.memory-bytes",
        "use 65536 (1 page) or 131072 (2 pages)",
    );
    assert!(matches!(
        error.problem,
        Problem::NotWholePages { bytes: 100000 }
    ));
    let message = fails(
        &with("memory-bytes = 65536", "memory-bytes = 1000"),
        "limits.memory-bytes",
        "use 65536 (1 page)",
    )
    .to_string();
    assert!(message.ends_with("use 65536 (1 page)"), "{message}");
}

// --- flash ----------------------------------------------------------------------

#[test]
fn sector_size() {
    let error = fails(
        &with("sector-size = 4096", "sector-size = 0"),
        "flash.sector-size",
        "greater than 0",
    );
    assert!(matches!(error.problem, Problem::Zero { .. }));
    let error = fails(
        &with("sector-size = 4096", "sector-size = 3000"),
        "flash.sector-size",
        "data sheet",
    );
    assert!(matches!(
        error.problem,
        Problem::SectorNotPowerOfTwo { bytes: 3000 }
    ));
}

#[test]
fn at_least_two_slots() {
    let error = fails(
        &with("    { name = \"b\", offset = 8192, size = 8192 },\n", ""),
        "flash.slots",
        "add at least two",
    );
    assert!(matches!(error.problem, Problem::TooFewSlots { count: 1 }));
}

#[test]
fn slot_names() {
    let error = fails(
        &with("name = \"b\"", "name = \"B\""),
        "flash.slots[1].name",
        "lowercase letters",
    );
    assert!(matches!(error.problem, Problem::InvalidName { .. }));
    let error = fails(
        &with("name = \"b\"", "name = \"a\""),
        "flash.slots[1].name",
        "repeats flash.slots[0].name",
    );
    assert!(matches!(error.problem, Problem::Duplicate { .. }));
}

#[test]
fn slots_on_sector_boundaries() {
    let error = fails(
        &with("offset = 8192, size = 8192", "offset = 8200, size = 8192"),
        "flash.slots[1].offset",
        "use 8192 or 12288",
    );
    assert!(matches!(
        error.problem,
        Problem::NotSectorAligned {
            value: 8200,
            sector_size: 4096
        }
    ));
    fails(
        &with("offset = 8192, size = 8192", "offset = 8192, size = 5000"),
        "flash.slots[1].size",
        "use 4096 or 8192",
    );
    let error = fails(
        &with("offset = 8192, size = 8192", "offset = 8192, size = 0"),
        "flash.slots[1].size",
        "greater than 0",
    );
    assert!(matches!(error.problem, Problem::Zero { .. }));
}

#[test]
fn slot_past_4_gib() {
    let error = fails(
        &with(
            "offset = 8192, size = 8192",
            "offset = 4294963200, size = 8192",
        ),
        "flash.slots[1].size",
        "make the slot smaller",
    );
    assert!(matches!(error.problem, Problem::SlotPastEnd { .. }));
}

#[test]
fn slots_do_not_overlap() {
    let error = fails(
        &with("offset = 8192, size = 8192", "offset = 4096, size = 8192"),
        "flash.slots[1].offset",
        "start at or after 8192",
    );
    assert!(matches!(
        error.problem,
        Problem::SlotsOverlap {
            start: 4096,
            end: 8192,
            ..
        }
    ));
    assert!(error.to_string().contains("overlaps flash.slots[0] (`a`)"));
}

// --- trust ----------------------------------------------------------------------

/// The base board with the first key's hex replaced.
fn with_dev_key(hex: &str) -> String {
    with(DEV_KEY, hex)
}

#[test]
fn at_least_one_key() {
    let text = base();
    let start = text.find("keys = [").unwrap();
    let end = start + text[start..].find(']').unwrap() + 1;
    let text = format!("{}keys = []{}", &text[..start], &text[end..]);
    let error = fails(&text, "trust.keys", "add `{ name");
    assert!(matches!(error.problem, Problem::NoKeys));
}

#[test]
fn key_must_be_64_hex_chars() {
    let error = fails(
        &with_dev_key(&DEV_KEY[..62]),
        "trust.keys[0].public-key",
        "`.pub` file",
    );
    assert!(matches!(error.problem, Problem::KeyNotHex { len: 62 }));
    let not_hex = format!("{}zz", &DEV_KEY[..62]);
    let error = fails(
        &with_dev_key(&not_hex),
        "trust.keys[0].public-key",
        "64 hex characters",
    );
    assert!(matches!(error.problem, Problem::KeyNotHex { len: 64 }));
}

#[test]
fn key_must_be_a_curve_point() {
    // y = 2 has no x on Ed25519.
    let off_curve = format!("02{}", "0".repeat(62));
    let error = fails(
        &with_dev_key(&off_curve),
        "trust.keys[0].public-key",
        "not the `.key` file",
    );
    assert!(matches!(error.problem, Problem::KeyNotOnCurve));
}

#[test]
fn key_must_not_be_small_order() {
    // The identity point (y = 1).
    let identity = format!("01{}", "0".repeat(62));
    let error = fails(
        &with_dev_key(&identity),
        "trust.keys[0].public-key",
        "tern keygen",
    );
    assert!(matches!(error.problem, Problem::WeakKey));
}

#[test]
fn keys_are_unique() {
    let error = fails(
        &with(OPS_KEY, DEV_KEY),
        "trust.keys[1].public-key",
        "repeats trust.keys[0] (`dev`)",
    );
    assert!(matches!(error.problem, Problem::Duplicate { .. }));
    let error = fails(
        &with("name = \"ops\"", "name = \"dev\""),
        "trust.keys[1].name",
        "remove one",
    );
    assert!(matches!(error.problem, Problem::Duplicate { .. }));
    let error = fails(
        &with("name = \"ops\"", "name = \"Ops key\""),
        "trust.keys[1].name",
        "lowercase letters",
    );
    assert!(matches!(error.problem, Problem::InvalidName { .. }));
}

#[test]
fn signatures_required_in_range() {
    for (n, keys) in [("0", 2), ("3", 2), ("-1", 2), ("300", 2)] {
        let error = fails(
            &with(
                "signatures-required = 1",
                &format!("signatures-required = {n}"),
            ),
            "trust.signatures-required",
            &format!("outside 1..={keys}"),
        );
        assert!(
            matches!(error.problem, Problem::SignaturesRequired { .. }),
            "{n}"
        );
    }
    let two = with("signatures-required = 1", "signatures-required = 2");
    assert_eq!(parse_board(FILE, &two).unwrap().signatures_required, 2);
}

// --- capabilities ---------------------------------------------------------------

#[test]
fn scope_must_be_star_or_list() {
    let error = fails(
        &with("sensors = [\"temp-0\"]", "sensors = \"temp-0\""),
        "capabilities.sensors",
        "\"*\" (any)",
    );
    assert!(matches!(error.problem, Problem::ExpectedScope { .. }));
    assert!(error.to_string().contains("found string \"temp-0\""));
    let error = fails(
        &with("gpio = [4]", "gpio = 4"),
        "capabilities.gpio",
        "list of pin numbers",
    );
    assert!(matches!(error.problem, Problem::ExpectedScope { .. }));
}

#[test]
fn scope_lists_are_not_empty() {
    let error = fails(
        &with("sensors = [\"temp-0\"]", "sensors = []"),
        "capabilities.sensors",
        "remove the key",
    );
    assert!(matches!(error.problem, Problem::EmptyScope { .. }));
    fails(
        &with("gpio = [4]", "gpio = []"),
        "capabilities.gpio",
        "write \"*\" for any",
    );
}

#[test]
fn sensor_ids() {
    for bad in ["\"temp 0\"", "\"a,b\"", "\"\"", "3"] {
        let error = fails(
            &with(
                "sensors = [\"temp-0\"]",
                &format!("sensors = [\"temp-0\", {bad}]"),
            ),
            "capabilities.sensors[1]",
            "without spaces or commas",
        );
        assert!(
            matches!(error.problem, Problem::InvalidSensorId { .. }),
            "{bad}"
        );
    }
    let error = fails(
        &with(
            "sensors = [\"temp-0\"]",
            "sensors = [\"temp-0\", \"temp-0\"]",
        ),
        "capabilities.sensors[1]",
        "repeats capabilities.sensors[0]",
    );
    assert!(matches!(error.problem, Problem::Duplicate { .. }));
}

#[test]
fn pins() {
    for bad in ["-1", "\"4\"", "4294967296", "1.5"] {
        let error = fails(
            &with("gpio = [4]", &format!("gpio = [{bad}]")),
            "capabilities.gpio[0]",
            "integer from 0",
        );
        assert!(matches!(error.problem, Problem::InvalidPin { .. }), "{bad}");
    }
    fails(
        &with("gpio = [4]", "gpio = [4, 5, 4]"),
        "capabilities.gpio[2]",
        "repeats capabilities.gpio[0]",
    );
}

#[test]
fn kv_quota_is_positive() {
    let error = fails(
        &with("kv = 4096", "kv = 0"),
        "capabilities.kv",
        "remove the key to offer no kv",
    );
    assert!(matches!(error.problem, Problem::Zero { .. }));
}

// --- loading a boards folder ----------------------------------------------------

/// A fresh, empty folder named `boards` under the system temp dir, removed on drop.
struct TempBoards(PathBuf);

impl TempBoards {
    fn new(test: &str) -> TempBoards {
        let root = std::env::temp_dir().join(format!("tern-board-{}-{test}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        std::fs::create_dir_all(root.join("boards")).unwrap();
        TempBoards(root)
    }

    fn dir(&self) -> PathBuf {
        self.0.join("boards")
    }
}

impl Drop for TempBoards {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[test]
fn loads_boards_sorted_and_skips_other_folders() {
    let temp = TempBoards::new("sorted");
    let dir = temp.dir();
    for name in ["zeta", "alpha"] {
        std::fs::create_dir(dir.join(name)).unwrap();
        let text = base().replace("name = \"x\"", &format!("name = \"{name}\""));
        std::fs::write(dir.join(name).join("board.toml"), text).unwrap();
    }
    std::fs::create_dir(dir.join("keys")).unwrap();
    let boards = load_boards(&dir).unwrap();
    let names: Vec<&str> = boards.iter().map(|b| b.name.as_str()).collect();
    assert_eq!(names, ["alpha", "zeta"]);
    assert_eq!(boards[0].file, "boards/alpha/board.toml");
}

#[test]
fn load_names_the_bad_file() {
    let temp = TempBoards::new("bad");
    let dir = temp.dir();
    std::fs::create_dir(dir.join("x")).unwrap();
    std::fs::write(dir.join("x/board.toml"), with("kv = 4096", "kv = 0")).unwrap();
    let message = load_boards(&dir).unwrap_err().to_string();
    assert!(
        message.starts_with("boards/x/board.toml: capabilities.kv: "),
        "{message}"
    );
}

#[test]
fn empty_boards_folder() {
    let temp = TempBoards::new("empty");
    let dir = temp.dir();
    let error = load_boards(&dir).unwrap_err();
    assert!(matches!(error.problem, Problem::NoBoards));
    assert_eq!(error.file, "boards");
    assert!(error.to_string().contains("add one"));
}

#[test]
fn missing_boards_folder() {
    let temp = TempBoards::new("missing");
    let dir = temp.dir().join("nowhere");
    let error = load_boards(&dir).unwrap_err();
    assert!(matches!(error.problem, Problem::Read { .. }));
    assert!(
        error.to_string().starts_with("nowhere: cannot read: "),
        "{error}"
    );
}

// --- the repository's own boards ------------------------------------------------

#[test]
fn examples_fit_the_device_and_server_boards() {
    let dir = PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../boards"));
    let boards = load_boards(&dir).unwrap();
    for name in ["qemu-mps2-an386", "server"] {
        let offers = &boards.iter().find(|b| b.name == name).unwrap().offers;
        // alarm: sensor temp-0, pin 4, topic alerts/temp-0, log, clock;
        // smoother: kv, sensors temp-0, log; ruuvi: kv, log.
        assert!(offers.log && offers.clock, "{name}");
        assert!(
            offers
                .sensors
                .as_ref()
                .unwrap()
                .allows(&"temp-0".to_string()),
            "{name}"
        );
        assert!(offers.gpio.as_ref().unwrap().allows(&4), "{name}");
        assert!(offers.kv.unwrap() >= 4096, "{name}");
        assert!(
            "alerts/temp-0".starts_with(offers.publish.as_deref().unwrap()),
            "{name}"
        );
    }
}

// --- device sections ------------------------------------------------------------

/// The base board's `[memory]`, as text.
const MEMORY: &str = "[memory]
flash = { origin = 0x0800_0000, size = 0x10_0000 }
ram = { origin = 0x2000_0000, size = 0x2_0000 }
";

/// `[network]` and `[peripherals]` of the device board.
const NETWORK_AND_PERIPHERALS: &str = r#"
[network]
mac = "02:54:45:52:4e:01"
ipv4 = "10.0.2.15/24"
gateway = "10.0.2.2"
server = "10.0.2.100:8080"

[peripherals]
sensors = ["temp-0", "temp-1"]
gpio = [4, 5]
"#;

/// The base board with every device section; the component flash (slots end at
/// 0x4000, then two metadata sectors: 0x6000 bytes) sits right after the code.
fn device() -> String {
    let text = with(
        "sector-size = 4096\n",
        "sector-size = 4096\norigin = 0x0810_0000\n",
    );
    format!("{text}{NETWORK_AND_PERIPHERALS}")
}

/// The device board with the one occurrence of `from` replaced by `to`.
#[track_caller]
fn with_device(from: &str, to: &str) -> String {
    let device = device();
    assert_eq!(device.matches(from).count(), 1, "`{from}` must occur once");
    device.replacen(from, to, 1)
}

/// `text` as a Linux board running Wasmtime.
fn hosted(text: &str) -> String {
    text.replace("thumbv7em-none-eabihf", "x86_64-unknown-linux-gnu")
        .replace("engine = \"wasmi\"", "engine = \"wasmtime\"")
}

/// `text` without the base board's `[memory]`.
#[track_caller]
fn without_memory(text: &str) -> String {
    assert_eq!(text.matches(MEMORY).count(), 1);
    text.replace(MEMORY, "")
}

#[test]
fn a_board_may_give_the_engine_more_heap_never_less_than_one_component_needs() {
    let more = with_device(
        "ram = { origin = 0x2000_0000, size = 0x2_0000 }",
        "ram = { origin = 0x2000_0000, size = 0x2_0000 }\nengine-heap = 200_000",
    );
    let board = parse_board(FILE, &more).unwrap();
    assert_eq!(board.memory.unwrap().engine_heap, 200_000);
    let less = with_device(
        "ram = { origin = 0x2000_0000, size = 0x2_0000 }",
        "ram = { origin = 0x2000_0000, size = 0x2_0000 }\nengine-heap = 4096",
    );
    let error = fails(&less, "memory.engine-heap", "give at least that");
    assert_eq!(error.problem, Problem::EngineHeapTooSmall { bytes: 4096 });
}

#[test]
fn device_board_is_valid() {
    let board = parse_board(FILE, &device()).unwrap();
    assert_eq!(
        board.memory,
        Some(MemoryMap {
            flash: Region {
                origin: 0x0800_0000,
                size: 0x10_0000
            },
            ram: Region {
                origin: 0x2000_0000,
                size: 0x2_0000
            },
            engine_heap: crate::firmware::ENGINE_PEAK,
        })
    );
    assert_eq!(board.flash_origin, Some(0x0810_0000));
    assert_eq!(
        board.network,
        Some(Network {
            mac: [0x02, 0x54, 0x45, 0x52, 0x4e, 0x01],
            ipv4: Ipv4Config::Static {
                address: Ipv4Addr::new(10, 0, 2, 15),
                prefix_len: 24,
                gateway: Some(Ipv4Addr::new(10, 0, 2, 2)),
            },
            server: SocketAddrV4::new(Ipv4Addr::new(10, 0, 2, 100), 8080),
        })
    );
    assert_eq!(
        board.peripherals,
        Some(Peripherals {
            sensors: vec!["temp-0".into(), "temp-1".into()],
            gpio: vec![4, 5],
        })
    );
}

#[test]
fn host_boards_need_no_device_sections_but_may_have_them() {
    let board = parse_board(FILE, &hosted(&without_memory(&base()))).unwrap();
    assert_eq!(board.engine, EngineKind::Wasmtime);
    assert_eq!(
        (
            board.memory,
            board.flash_origin,
            board.network,
            board.peripherals
        ),
        (None, None, None, None)
    );
    let board = parse_board(FILE, &hosted(&device())).unwrap();
    assert!(board.memory.is_some() && board.network.is_some() && board.peripherals.is_some());
}

#[test]
fn bare_metal_targets_need_memory() {
    let error = fails(&without_memory(&base()), "memory", "add `[memory]`");
    assert!(
        matches!(error.problem, Problem::NeedsMemoryMap { ref target } if target == "thumbv7em-none-eabihf")
    );
    // Any bare-metal target, not only the Cortex-M4F one.
    let riscv =
        without_memory(&base()).replace("thumbv7em-none-eabihf", "riscv32imac-unknown-none-elf");
    fails(&riscv, "memory", "`riscv32imac-unknown-none-elf` firmware");
}

#[test]
fn device_sections_are_strict() {
    fails(
        &with("ram = {", "rom = {"),
        "memory.rom",
        "`flash`, `ram`, `engine-heap`",
    );
    fails(
        &with("origin = 0x2000_0000,", "origin = 0x2000_0000, length = 4,"),
        "memory.ram.length",
        "`origin`",
    );
    fails(
        &with("ram = { origin = 0x2000_0000, size = 0x2_0000 }\n", ""),
        "memory.ram",
        "add it",
    );
    fails(
        &with_device("server = ", "port = 8080\nserver = "),
        "network.port",
        "`mac`",
    );
    fails(
        &with_device("server = \"10.0.2.100:8080\"\n", ""),
        "network.server",
        "add it",
    );
    fails(
        &with_device("gpio = [4, 5]", "gpio = [4, 5]\nleds = [1]"),
        "peripherals.leds",
        "`sensors`",
    );
    fails(
        &with_device("gpio = [4, 5]\n", ""),
        "peripherals.gpio",
        "add it",
    );
    let error = fails(
        &with_device("origin = 0x0810_0000", "origin = \"high\""),
        "flash.origin",
        "boards/README.md",
    );
    assert!(matches!(error.problem, Problem::Syntax { .. }));
}

// --- memory ---------------------------------------------------------------------

#[test]
fn memory_regions_are_aligned() {
    let error = fails(
        &with("origin = 0x0800_0000", "origin = 0x0800_0002"),
        "memory.flash.origin",
        "use 0x8000000 or 0x8000004",
    );
    assert!(matches!(
        error.problem,
        Problem::NotAligned {
            value: 0x0800_0002,
            align: 4,
            ..
        }
    ));
    fails(
        &with("size = 0x10_0000", "size = 0x10_0001"),
        "memory.flash.size",
        "use 0x100000 or 0x100004",
    );
    let error = fails(
        &with("origin = 0x2000_0000", "origin = 0x2000_0004"),
        "memory.ram.origin",
        "use 0x20000000 or 0x20000008 (the stack",
    );
    assert!(matches!(
        error.problem,
        Problem::NotAligned { align: 8, .. }
    ));
    fails(
        &with("size = 0x2_0000", "size = 0x2_0004"),
        "memory.ram.size",
        "8-byte aligned",
    );
}

#[test]
fn memory_regions_are_not_empty_and_below_4_gib() {
    let error = fails(
        &with("size = 0x10_0000", "size = 0"),
        "memory.flash.size",
        "greater than 0",
    );
    assert!(matches!(error.problem, Problem::Zero { .. }));
    let error = fails(
        &with("origin = 0x2000_0000", "origin = 0xFFFF_0000"),
        "memory.ram.size",
        "make the region smaller or move it down",
    );
    assert!(matches!(error.problem, Problem::RegionPastEnd { .. }));
    // Ending exactly at 4 GiB is fine.
    parse_board(FILE, &with("origin = 0x2000_0000", "origin = 0xFFFE_0000")).unwrap();
}

#[test]
fn memory_regions_do_not_overlap() {
    for (origin, start, end) in [
        ("0x080F_0000", 0x080F_0000, 0x0810_0000),
        ("0x07FF_0000", 0x0800_0000, 0x0801_0000),
    ] {
        let error = fails(
            &with("origin = 0x2000_0000", &format!("origin = {origin}")),
            "memory.ram",
            &format!("overlaps memory.flash at {start:#x}..{end:#x}"),
        );
        assert!(error.to_string().ends_with("so that they share no bytes"));
        assert!(matches!(error.problem, Problem::MemoryOverlap { .. }));
    }
}

// --- flash.origin ---------------------------------------------------------------

#[test]
fn flash_origin_needs_memory() {
    let error = fails(
        &hosted(&without_memory(&device())),
        "flash.origin",
        "add `[memory]` with `flash` and `ram` regions",
    );
    assert!(matches!(error.problem, Problem::FlashOriginNeedsMemory));
}

#[test]
fn flash_origin_is_sector_aligned() {
    let error = fails(
        &with_device("origin = 0x0810_0000", "origin = 0x0810_0800"),
        "flash.origin",
        "use 0x8100000 or 0x8101000",
    );
    assert!(matches!(
        error.problem,
        Problem::NotAligned { align: 4096, .. }
    ));
    assert!(error.to_string().contains("`flash.sector-size`"));
}

#[test]
fn component_flash_is_below_4_gib() {
    let error = fails(
        &with_device("origin = 0x0810_0000", "origin = 0xFFFF_C000"),
        "flash.origin",
        "move `origin` down",
    );
    assert!(matches!(
        error.problem,
        Problem::ComponentFlashPastEnd { bytes: 0x6000, .. }
    ));
    // Ending exactly at 4 GiB is fine.
    parse_board(
        FILE,
        &with_device("origin = 0x0810_0000", "origin = 0xFFFF_A000"),
    )
    .unwrap();
}

#[test]
fn component_flash_does_not_overlap_memory() {
    for (origin, region, shared) in [
        ("0x080F_F000", "memory.flash", "0x80ff000..0x8100000"),
        ("0x2001_F000", "memory.ram", "0x2001f000..0x20020000"),
        // Only the metadata sectors after the slots overlap.
        ("0x1FFF_C000", "memory.ram", "0x20000000..0x20002000"),
    ] {
        let error = fails(
            &with_device("origin = 0x0810_0000", &format!("origin = {origin}")),
            "flash.origin",
            &format!("overlaps {region} at {shared}; move `origin` outside {region}"),
        );
        assert!(
            error
                .to_string()
                .contains("(slots plus two metadata sectors)"),
            "{error}"
        );
        assert!(matches!(
            error.problem,
            Problem::ComponentFlashOverlaps { .. }
        ));
    }
    // Right below RAM, metadata included.
    parse_board(
        FILE,
        &with_device("origin = 0x0810_0000", "origin = 0x1FFF_A000"),
    )
    .unwrap();
}

// --- network --------------------------------------------------------------------

/// The device board with `network.<key>` set to the TOML `value`.
#[track_caller]
fn with_network(key: &str, value: &str) -> String {
    let device = device();
    let start = device.find(&format!("\n{key} = ")).unwrap() + 1;
    let end = start + device[start..].find('\n').unwrap();
    format!("{}{key} = {value}{}", &device[..start], &device[end..])
}

#[test]
fn mac_is_six_hex_bytes() {
    for bad in [
        "02:54:45:52:4e",
        "02:54:45:52:4e:01:02",
        "02-54-45-52-4e-01",
        "2:54:45:52:4e:01",
        "02:54:45:52:4e:0g",
        "02:54:45:52:4e:01:",
        "",
    ] {
        let error = fails(
            &with_network("mac", &format!("\"{bad}\"")),
            "network.mac",
            "six two-digit hex bytes separated by `:`",
        );
        assert!(matches!(error.problem, Problem::InvalidMac { .. }), "{bad}");
    }
    let board = parse_board(FILE, &with_network("mac", "\"0A:54:45:52:4E:01\"")).unwrap();
    assert_eq!(board.network.unwrap().mac[0], 0x0a);
}

#[test]
fn mac_is_locally_administered_unicast() {
    for (mac, what, fix) in [
        ("03:54:45:52:4e:01", "a multicast address", "e.g. 02:.."),
        ("ff:ff:ff:ff:ff:ff", "a multicast address", "e.g. fe:.."),
        (
            "00:1b:63:52:4e:01",
            "a vendor-assigned address",
            "e.g. 02:..",
        ),
        (
            "a4:83:e7:00:00:01",
            "a vendor-assigned address",
            "e.g. a6:..",
        ),
    ] {
        let error = fails(
            &with_network("mac", &format!("\"{mac}\"")),
            "network.mac",
            fix,
        );
        let message = error.to_string();
        assert!(message.contains(what), "{message}");
        assert!(message.contains("bit 1 set and bit 0 clear"), "{message}");
        assert!(matches!(error.problem, Problem::MacNotLocalUnicast { .. }));
    }
}

#[test]
fn ipv4_is_dhcp_or_address_with_prefix() {
    for bad in [
        "10.0.2.15",
        "10.0.2/24",
        "10.0.2.15/",
        "10.0.2.15/x",
        "10.0.2.15/+24",
        "10.0.2.256/24",
        "DHCP",
        "static",
    ] {
        let error = fails(
            &with_network("ipv4", &format!("\"{bad}\"")),
            "network.ipv4",
            "write \"dhcp\", or e.g. \"192.168.1.20/24\"",
        );
        assert!(
            matches!(error.problem, Problem::InvalidIpv4 { .. }),
            "{bad}"
        );
    }
    for len in ["0", "31", "32", "300"] {
        let error = fails(
            &with_network("ipv4", &format!("\"10.0.2.15/{len}\"")),
            "network.ipv4",
            &format!("prefix length /{len} is outside 1..=30; use the subnet's prefix length"),
        );
        assert!(matches!(error.problem, Problem::PrefixLen { .. }), "{len}");
    }
    let dhcp = with_device(
        "ipv4 = \"10.0.2.15/24\"\ngateway = \"10.0.2.2\"",
        "ipv4 = \"dhcp\"",
    );
    let network = parse_board(FILE, &dhcp).unwrap().network.unwrap();
    assert_eq!(network.ipv4, Ipv4Config::Dhcp);
}

#[test]
fn static_address_is_a_host() {
    for (address, kind) in [("10.0.2.0", "network"), ("10.0.2.255", "broadcast")] {
        let error = fails(
            &with_network("ipv4", &format!("\"{address}/24\"")),
            "network.ipv4",
            "use an address from 10.0.2.1 to 10.0.2.254",
        );
        let message = error.to_string();
        assert!(
            message.contains(&format!("is the {kind} address of 10.0.2.0/24")),
            "{message}"
        );
    }
}

#[test]
fn gateway() {
    let error = fails(
        &with_network("gateway", "\"10.0.2\""),
        "network.gateway",
        "four numbers from 0 to 255",
    );
    assert!(matches!(error.problem, Problem::InvalidAddress { .. }));
    let error = fails(
        &with_network("ipv4", "\"dhcp\""),
        "network.gateway",
        "remove `gateway`",
    );
    assert!(matches!(error.problem, Problem::GatewayWithDhcp));
    for outside in ["10.0.3.1", "10.0.2.255", "10.0.2.0"] {
        let error = fails(
            &with_network("gateway", &format!("\"{outside}\"")),
            "network.gateway",
            "use the router's address, from 10.0.2.1 to 10.0.2.254",
        );
        assert!(
            matches!(error.problem, Problem::GatewayOutsideSubnet { .. }),
            "{outside}"
        );
    }
    // A /30 has two hosts: the device and its gateway.
    let narrow = with_network("ipv4", "\"10.0.2.1/30\"");
    parse_board(FILE, &narrow).unwrap();
    let narrow = narrow.replace("gateway = \"10.0.2.2\"", "gateway = \"10.0.2.3\"");
    fails(
        &narrow,
        "network.gateway",
        "10.0.2.3 is not a host of 10.0.2.0/30 (from `ipv4`), so the device cannot reach it; \
         use the router's address, from 10.0.2.1 to 10.0.2.2",
    );
    // Without a gateway, the device reaches only its subnet.
    let board = parse_board(FILE, &with_device("gateway = \"10.0.2.2\"\n", "")).unwrap();
    assert!(matches!(
        board.network.unwrap().ipv4,
        Ipv4Config::Static { gateway: None, .. }
    ));
}

#[test]
fn server_is_address_and_port() {
    for bad in [
        "10.0.2.100",
        "tern.local:8080",
        "[::1]:8080",
        "10.0.2.100:",
        "10.0.2.100:70000",
        "http://10.0.2.100:8080",
    ] {
        let error = fails(
            &with_network("server", &format!("\"{bad}\"")),
            "network.server",
            "e.g. \"192.168.1.10:8080\" (the device has no DNS)",
        );
        assert!(
            matches!(error.problem, Problem::InvalidServer { .. }),
            "{bad}"
        );
    }
    let error = fails(
        &with_network("server", "\"10.0.2.100:0\""),
        "network.server",
        "use the port `tern serve` listens on",
    );
    assert!(matches!(error.problem, Problem::ServerPortZero));
}

// --- peripherals ----------------------------------------------------------------

#[test]
fn peripheral_ids_and_pins() {
    let error = fails(
        &with_device("[\"temp-0\", \"temp-1\"]", "[\"temp-0\", \"temp 1\"]"),
        "peripherals.sensors[1]",
        "without spaces or commas",
    );
    assert!(matches!(error.problem, Problem::InvalidSensorId { .. }));
    let error = fails(
        &with_device("[\"temp-0\", \"temp-1\"]", "[\"temp-0\", \"temp-0\"]"),
        "peripherals.sensors[1]",
        "repeats peripherals.sensors[0]",
    );
    assert!(matches!(error.problem, Problem::Duplicate { .. }));
    let error = fails(
        &with_device("gpio = [4, 5]", "gpio = [4, -5]"),
        "peripherals.gpio[1]",
        "integer from 0",
    );
    assert!(matches!(error.problem, Problem::InvalidPin { .. }));
    fails(
        &with_device("gpio = [4, 5]", "gpio = [4, 5, 4]"),
        "peripherals.gpio[2]",
        "repeats peripherals.gpio[0]",
    );
    // A board may have no pins, if it offers none.
    let text = with_device("gpio = [4, 5]", "gpio = []").replace("gpio = [4]\n", "");
    let board = parse_board(FILE, &text).unwrap();
    assert!(board.peripherals.unwrap().gpio.is_empty());
}

#[test]
fn offers_are_peripherals() {
    let error = fails(
        &with_device("sensors = [\"temp-0\"]", "sensors = \"*\""),
        "capabilities.sensors",
        "list the ones to offer, e.g. `sensors = [\"temp-0\", \"temp-1\"]`",
    );
    assert!(matches!(
        error.problem,
        Problem::AnyWithPeripherals {
            name: "sensors",
            ..
        }
    ));
    fails(
        &with_device("gpio = [4]", "gpio = \"*\""),
        "capabilities.gpio",
        "e.g. `gpio = [4, 5]`",
    );
    let error = fails(
        &with_device(
            "sensors = [\"temp-0\"]",
            "sensors = [\"temp-0\", \"temp-2\"]",
        ),
        "capabilities.sensors[1]",
        "`temp-2` is not one of the board's `peripherals.sensors = [\"temp-0\", \"temp-1\"]`; add \
         it there",
    );
    assert!(matches!(error.problem, Problem::NotAPeripheral { .. }));
    fails(
        &with_device("gpio = [4]", "gpio = [6, 4]"),
        "capabilities.gpio[0]",
        "`6` is not one of the board's `peripherals.gpio = [4, 5]`; add it there if the board has \
         it, or remove it here",
    );
    let none = with_device("[\"temp-0\", \"temp-1\"]", "[]");
    fails(
        &none,
        "capabilities.sensors[0]",
        "`peripherals.sensors = []`",
    );
    // Offering none of them is fine.
    let text = with_device("sensors = [\"temp-0\"]\ngpio = [4]\n", "");
    let offers = parse_board(FILE, &text).unwrap().offers;
    assert_eq!((offers.sensors, offers.gpio), (None, None));
}

// --- device code ----------------------------------------------------------------

#[test]
fn device_code_needs_every_device_section() {
    let board = parse_board(FILE, &base()).unwrap();
    let error = device_code(&board).unwrap_err();
    names(
        &error,
        "flash.origin",
        "device firmware needs it for the address of the component flash; add it",
    );
    assert!(matches!(error.problem, Problem::DeviceKeyMissing { .. }));
    memory_x(&board).unwrap();

    let host = parse_board(FILE, &hosted(&without_memory(&base()))).unwrap();
    names(&device_code(&host).unwrap_err(), "memory", "add it");
    names(
        &memory_x(&host).unwrap_err(),
        "memory",
        "memory map it is linked for",
    );

    let device = device();
    let peripherals = &device[device.find("\n[peripherals]").unwrap()..];
    let board = parse_board(FILE, &device.replace(peripherals, "\n")).unwrap();
    names(&device_code(&board).unwrap_err(), "peripherals", "add it");
    let network =
        &device[device.find("\n[network]").unwrap()..device.find("\n[peripherals]").unwrap()];
    let board = parse_board(FILE, &device.replace(network, "")).unwrap();
    names(&device_code(&board).unwrap_err(), "network", "add it");
}

/// Every `pub const` in generated device code (`net::MAC` for the module's), with its
/// value's integer, boolean and string literals in order.
fn consts(code: &str) -> Vec<(String, Vec<String>)> {
    fn literals(expr: &syn::Expr, out: &mut Vec<String>) {
        match expr {
            syn::Expr::Lit(lit) => out.push(match &lit.lit {
                syn::Lit::Int(n) => n.base10_parse::<u64>().unwrap().to_string(),
                syn::Lit::Bool(b) => b.value.to_string(),
                syn::Lit::Str(s) => s.value(),
                _ => panic!("unexpected literal"),
            }),
            syn::Expr::Array(a) => a.elems.iter().for_each(|e| literals(e, out)),
            syn::Expr::Tuple(t) => t.elems.iter().for_each(|e| literals(e, out)),
            syn::Expr::Reference(r) => literals(&r.expr, out),
            syn::Expr::Call(c) => c.args.iter().for_each(|e| literals(e, out)),
            syn::Expr::Path(_) => {}
            _ => panic!("unexpected expression"),
        }
    }
    fn items(prefix: &str, list: &[syn::Item], out: &mut Vec<(String, Vec<String>)>) {
        for item in list {
            match item {
                syn::Item::Const(c) => {
                    let mut values = Vec::new();
                    literals(&c.expr, &mut values);
                    out.push((format!("{prefix}{}", c.ident), values));
                }
                syn::Item::Mod(m) => {
                    let (_, inner) = m.content.as_ref().unwrap();
                    items(&format!("{}::", m.ident), inner, out);
                }
                _ => panic!("unexpected item"),
            }
        }
    }
    let file = syn::parse_file(code).unwrap();
    let mut out = Vec::new();
    items("", &file.items, &mut out);
    out
}

#[test]
fn device_code_with_dhcp_and_no_gateway() {
    let text = with_device(
        "ipv4 = \"10.0.2.15/24\"\ngateway = \"10.0.2.2\"",
        "ipv4 = \"dhcp\"",
    );
    let code = device_code(&parse_board(FILE, &text).unwrap()).unwrap();
    let consts = consts(&code);
    let get = |name: &str| consts.iter().find(|(n, _)| n == name).unwrap().1.join(",");
    assert_eq!(get("net::DHCP"), "true");
    assert_eq!(get("net::ADDRESS"), "0,0,0,0");
    assert_eq!(get("net::PREFIX_LEN"), "0");
    assert_eq!(get("net::GATEWAY"), "");
    assert!(
        code.contains("pub const GATEWAY: Option<[u8; 4]> = None;"),
        "{code}"
    );
}

/// The QEMU board's generated constants and memory.x, against its board.toml read as
/// plain TOML (not through this crate's parser). The snapshots in `device.rs` pin the
/// whole text.
#[test]
fn qemu_device_code_and_memory_x_match_its_board_toml() {
    let dir = PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../boards"));
    let text = std::fs::read_to_string(dir.join("qemu-mps2-an386/board.toml")).unwrap();
    let toml: toml::Table = text.parse().unwrap();
    let int = |table: &str, key: &str| -> u64 {
        let mut value = &toml[table];
        for part in key.split('.') {
            value = &value[part];
        }
        u64::try_from(value.as_integer().unwrap()).unwrap()
    };
    let net = |key: &str| toml["network"][key].as_str().unwrap().to_string();
    let boards = load_boards(&dir).unwrap();
    let board = boards.iter().find(|b| b.name == "qemu-mps2-an386").unwrap();

    let code = device_code(board).unwrap();
    let consts = consts(&code);
    let names: Vec<&str> = consts.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(
        names,
        [
            "FLASH_ORIGIN",
            "FLASH_BYTES",
            "net::MAC",
            "net::DHCP",
            "net::ADDRESS",
            "net::PREFIX_LEN",
            "net::GATEWAY",
            "net::SERVER",
            "SENSORS",
            "GPIO"
        ]
    );
    let get = |name: &str| consts.iter().find(|(n, _)| n == name).unwrap().1.join(",");
    assert_eq!(get("FLASH_ORIGIN"), int("flash", "origin").to_string());
    // Both slots, then the two metadata sectors (tern-agent's SlotLayout::from_board).
    let slots = toml["flash"]["slots"].as_array().unwrap();
    let slots_end = slots
        .iter()
        .map(|s| s["offset"].as_integer().unwrap() + s["size"].as_integer().unwrap())
        .max()
        .unwrap();
    let sector = toml["flash"]["sector-size"].as_integer().unwrap();
    assert_eq!(get("FLASH_BYTES"), (slots_end + 2 * sector).to_string());
    let mac: Vec<String> = net("mac")
        .split(':')
        .map(|b| u8::from_str_radix(b, 16).unwrap().to_string())
        .collect();
    assert_eq!(get("net::MAC"), mac.join(","));
    assert_eq!(get("net::DHCP"), "false");
    let (address, len) = net("ipv4")
        .split_once('/')
        .map(|(a, l)| (a.to_string(), l.to_string()))
        .unwrap();
    assert_eq!(get("net::ADDRESS"), address.replace('.', ","));
    assert_eq!(get("net::PREFIX_LEN"), len);
    assert_eq!(get("net::GATEWAY"), net("gateway").replace('.', ","));
    assert_eq!(get("net::SERVER"), net("server").replace(['.', ':'], ","));
    let list = |key: &str| -> String {
        toml["peripherals"][key]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| match v.as_integer() {
                Some(n) => n.to_string(),
                None => v.as_str().unwrap().to_string(),
            })
            .collect::<Vec<_>>()
            .join(",")
    };
    assert_eq!(get("SENSORS"), list("sensors"));
    assert_eq!(get("GPIO"), list("gpio"));

    let memory = memory_x(board).unwrap();
    for (name, region) in [("FLASH", "flash"), ("RAM", "ram")] {
        let line = format!(
            "  {name} : ORIGIN = {:#010x}, LENGTH = {:#x}\n",
            int("memory", &format!("{region}.origin")),
            int("memory", &format!("{region}.size"))
        );
        assert!(memory.contains(&line), "{line}{memory}");
    }
    assert!(memory.contains("MEMORY\n{\n"), "{memory}");
    assert!(
        memory.starts_with(
            "/* @generated by tern-board from `[memory]` in boards/qemu-mps2-an386/board.toml."
        ),
        "{memory}"
    );

    // The offer stays what the examples need, inside what the board has.
    assert_eq!(
        board.offers.sensors,
        Some(Scope::Only(vec!["temp-0".to_string()]))
    );
    assert_eq!(board.offers.gpio, Some(Scope::Only(vec![4])));
    // The host boards (Wasmtime on an OS) have no device sections.
    for host in boards.iter().filter(|b| b.engine == EngineKind::Wasmtime) {
        assert_eq!(
            (
                &host.memory,
                host.flash_origin,
                &host.network,
                &host.peripherals
            ),
            (&None, None, &None, &None),
            "{}",
            host.name
        );
    }
}

// --- download -------------------------------------------------------------------

#[test]
fn the_download_floor_defaults_can_be_set_and_turned_off() {
    use tern_core::board::DownloadFloor;
    assert_eq!(
        parse_board(FILE, &base()).unwrap().download_floor,
        DownloadFloor::DEFAULT
    );
    let set = format!("{}\n[download]\nmin-rate = 1024\nwindow = 5\n", base());
    assert_eq!(
        parse_board(FILE, &set).unwrap().download_floor,
        DownloadFloor {
            min_bytes_per_s: 1024,
            window_s: 5
        }
    );
    let off = format!("{}\n[download]\nmin-rate = 0\nwindow = 0\n", base());
    assert_eq!(
        parse_board(FILE, &off)
            .unwrap()
            .download_floor
            .min_bytes_per_s,
        0
    );
}

#[test]
fn a_download_floor_needs_a_window_of_a_second_to_an_hour() {
    let zero = format!("{}\n[download]\nmin-rate = 128\nwindow = 0\n", base());
    let error = fails(&zero, "download.window", "must be greater than 0");
    assert!(matches!(error.problem, Problem::Zero { .. }));
    let long = format!("{}\n[download]\nmin-rate = 128\nwindow = 3601\n", base());
    let error = fails(&long, "download.window", "may be at most 3600");
    assert!(matches!(
        error.problem,
        Problem::TooLarge {
            value: 3601,
            max: 3600,
            ..
        }
    ));
}
