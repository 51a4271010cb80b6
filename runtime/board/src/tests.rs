//! Every way a board.toml can be rejected, each checked to name the file, the key and the fix.

use std::path::PathBuf;

use tern_core::bundle::EngineKind;
use tern_core::grant::Scope;

use crate::{BoardError, Problem, load_boards, parse_board};

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
    let message = error.to_string();
    assert_eq!(error.file, FILE, "{message}");
    assert_eq!(error.key, key, "{message}");
    assert!(message.starts_with(FILE), "names the file: {message}");
    assert!(
        message.contains(&format!(": {key}: ")),
        "names the key: {message}"
    );
    assert!(message.contains(fix), "names the fix `{fix}`: {message}");
    error
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
