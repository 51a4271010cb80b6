//! Writes a device board's `[memory]`, `flash.origin`, `[network]` and `[peripherals]`
//! as firmware inputs: Rust constants and a cortex-m-rt `memory.x`.

use proc_macro2::TokenStream;
use quote::quote;

use crate::check::{Board, Ipv4Config, MemoryMap};
use crate::error::{BoardError, Problem};

/// Rust source of the constants a device firmware takes from its board.toml, formatted,
/// for its `build.rs` to write to `OUT_DIR` and `include!`:
///
/// - `FLASH_ORIGIN: usize`, the address of the component flash (`flash.origin`);
/// - `FLASH_BYTES: usize`, its length: the slots, then the two metadata sectors that
///   `tern_agent::SlotLayout::from_board` puts after the last slot, a multiple of
///   `flash.sector-size`;
/// - `mod net`: `MAC: [u8; 6]`, `DHCP: bool`, `ADDRESS: [u8; 4]` and `PREFIX_LEN: u8`
///   (`[0; 4]` and `0` with DHCP), `GATEWAY: Option<[u8; 4]>`, `SERVER: ([u8; 4], u16)`;
/// - `SENSORS: &[&str]` and `GPIO: &[u32]`, what `[peripherals]` lists.
///
/// Fails, naming the key, if the board has no `[memory]`, `flash.origin`, `[network]`
/// or `[peripherals]`.
pub fn device_code(board: &Board) -> Result<String, BoardError> {
    memory_map(board)?;
    let Some(origin) = board.flash_origin else {
        return Err(missing(
            board,
            "flash.origin",
            "the address of the component flash",
        ));
    };
    let Some(network) = &board.network else {
        return Err(missing(
            board,
            "network",
            "the MAC address, its IPv4 address and where `tern serve` is",
        ));
    };
    let Some(peripherals) = &board.peripherals else {
        return Err(missing(
            board,
            "peripherals",
            "the sensors and pins it drives",
        ));
    };

    let file = &board.file;
    let doc = |text: String| {
        let lines = text.lines().map(|line| format!(" {line}"));
        quote!(#(#[doc = #lines])*)
    };

    let bytes = board.component_flash_bytes();
    let flash_origin = hex(u64::from(origin));
    let flash_bytes = hex(bytes);
    let origin_doc = doc(format!(
        "Address of the component flash (the slots, then two metadata sectors).\n\n\
         From `flash.origin` in `{file}`."
    ));
    let bytes_doc = doc(format!(
        "Length of the component flash, bytes ({} KiB): up to the end of the last slot,\n\
         then the two metadata sectors, a multiple of the {}-byte sector.\n\n\
         From `flash.slots` and `flash.sector-size` in `{file}`.",
        bytes / 1024,
        board.sector_size
    ));

    let mac = network.mac.iter().map(|b| hex_byte(*b));
    let (dhcp, address, prefix_len, gateway) = match network.ipv4 {
        Ipv4Config::Dhcp => (true, [0; 4], 0, None),
        Ipv4Config::Static {
            address,
            prefix_len,
            gateway,
        } => (false, address.octets(), prefix_len, gateway),
    };
    let address = octets(address);
    let prefix_len = proc_macro2::Literal::u8_unsuffixed(prefix_len);
    let gateway = match gateway {
        Some(gateway) => {
            let gateway = octets(gateway.octets());
            quote!(Some(#gateway))
        }
        None => quote!(None),
    };
    let server_ip = octets(network.server.ip().octets());
    let server_port = proc_macro2::Literal::u16_unsuffixed(network.server.port());
    let net_doc = doc(format!(
        "How the device joins the network and reaches `tern serve`.\n\n\
         From `[network]` in `{file}`."
    ));
    let mac_doc = doc(format!(
        "The device's MAC address (locally administered, unicast).\n\n\
         From `network.mac` in `{file}`."
    ));
    let dhcp_doc = doc(format!(
        "`true`: address, subnet and gateway come from a DHCP server, and `ADDRESS`,\n\
         `PREFIX_LEN` and `GATEWAY` are unused.\n\n\
         From `network.ipv4` in `{file}`."
    ));
    let address_doc = doc(format!(
        "The static IPv4 address; `[0; 4]` with DHCP.\n\n\
         From `network.ipv4` in `{file}`."
    ));
    let prefix_doc = doc(format!(
        "The static address's subnet prefix length (24 = 255.255.255.0); 0 with DHCP.\n\n\
         From `network.ipv4` in `{file}`."
    ));
    let gateway_doc = doc(format!(
        "The router, inside the static address's subnet; `None` with DHCP or when the\n\
         server is on the same subnet.\n\n\
         From `network.gateway` in `{file}`."
    ));
    let server_doc = doc(format!(
        "IPv4 address and TCP port of `tern serve`.\n\n\
         From `network.server` in `{file}`."
    ));

    let sensors = &peripherals.sensors;
    let gpio = peripherals
        .gpio
        .iter()
        .map(|pin| proc_macro2::Literal::u32_unsuffixed(*pin));
    let sensors_doc = doc(format!(
        "Ids of the sensors the board has; `capabilities.sensors` offers a subset.\n\n\
         From `peripherals.sensors` in `{file}`."
    ));
    let gpio_doc = doc(format!(
        "Pins the board has; `capabilities.gpio` offers a subset.\n\n\
         From `peripherals.gpio` in `{file}`."
    ));

    let tokens = quote! {
        #origin_doc
        pub const FLASH_ORIGIN: usize = #flash_origin;

        #bytes_doc
        pub const FLASH_BYTES: usize = #flash_bytes;

        #net_doc
        pub mod net {
            #mac_doc
            pub const MAC: [u8; 6] = [#(#mac),*];
            #dhcp_doc
            pub const DHCP: bool = #dhcp;
            #address_doc
            pub const ADDRESS: [u8; 4] = #address;
            #prefix_doc
            pub const PREFIX_LEN: u8 = #prefix_len;
            #gateway_doc
            pub const GATEWAY: Option<[u8; 4]> = #gateway;
            #server_doc
            pub const SERVER: ([u8; 4], u16) = (#server_ip, #server_port);
        }

        #sensors_doc
        pub const SENSORS: &[&str] = &[#(#sensors),*];

        #gpio_doc
        pub const GPIO: &[u32] = &[#(#gpio),*];
    };
    let mut parsed: syn::File = syn::parse2(tokens).expect("generated device constants parse");

    let mut out = format!(
        "// @generated by tern-board from {file}.\n\
         // Do not edit: change the board.toml and rebuild.\n"
    );
    // One item at a time, so that a blank line separates them.
    let items = std::mem::take(&mut parsed.items);
    for item in items {
        parsed.items = vec![item];
        out.push('\n');
        out.push_str(&prettyplease::unparse(&parsed));
    }
    Ok(out)
}

/// A cortex-m-rt `memory.x` from the board's `[memory]`: the `FLASH` region for code
/// and read-only data, the `RAM` region for data, heap and stack. The component flash,
/// if `flash.origin` is set, lies outside both (checked), and is named in a comment.
///
/// Fails, naming the key, if the board has no `[memory]`.
pub fn memory_x(board: &Board) -> Result<String, BoardError> {
    let MemoryMap { flash, ram, .. } = memory_map(board)?;
    let mut out = format!(
        "/* @generated by tern-board from `[memory]` in {}.\n   Do not edit: change the board.toml and rebuild. */\n",
        board.file
    );
    if let Some(origin) = board.flash_origin {
        let end = u64::from(origin) + board.component_flash_bytes();
        out.push_str(&format!(
            "/* The component flash (`flash.origin`) is {origin:#010x}..{end:#010x}, outside both regions. */\n"
        ));
    }
    out.push_str(&format!(
        "MEMORY\n{{\n  FLASH : ORIGIN = {:#010x}, LENGTH = {:#x}\n  RAM : ORIGIN = {:#010x}, LENGTH = {:#x}\n}}\n",
        flash.origin, flash.size, ram.origin, ram.size
    ));
    Ok(out)
}

fn memory_map(board: &Board) -> Result<MemoryMap, BoardError> {
    board.memory.ok_or_else(|| {
        missing(
            board,
            "memory",
            "the memory map it is linked for (memory.x)",
        )
    })
}

fn missing(board: &Board, key: &str, for_what: &'static str) -> BoardError {
    BoardError::new(&board.file, key, Problem::DeviceKeyMissing { for_what })
}

/// `0x0030_0000`: an address as board.toml writes it, in groups of four hex digits.
fn hex(value: u64) -> TokenStream {
    let digits = format!("{value:08x}");
    let mut text = String::from("0x");
    for (i, digit) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(4) {
            text.push('_');
        }
        text.push(digit);
    }
    text.parse().expect("a hex number is one literal token")
}

/// `0x02`: MAC bytes read like the hex in board.toml.
fn hex_byte(byte: u8) -> TokenStream {
    format!("{byte:#04x}")
        .parse()
        .expect("a hex byte is one literal token")
}

/// `[10, 0, 2, 15]`.
fn octets(octets: [u8; 4]) -> TokenStream {
    let octets = octets
        .iter()
        .map(|o| proc_macro2::Literal::u8_unsuffixed(*o));
    quote!([#(#octets),*])
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use crate::{Board, load_boards};

    fn qemu() -> Board {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../boards");
        load_boards(&dir)
            .unwrap()
            .into_iter()
            .find(|b| b.name == "qemu-mps2-an386")
            .unwrap()
    }

    /// Pins the constants the QEMU firmware is built with.
    #[test]
    fn qemu_device_code() {
        insta::assert_snapshot!(super::device_code(&qemu()).unwrap());
    }

    /// Pins the QEMU firmware's linker memory map.
    #[test]
    fn qemu_memory_x() {
        insta::assert_snapshot!(super::memory_x(&qemu()).unwrap());
    }
}
