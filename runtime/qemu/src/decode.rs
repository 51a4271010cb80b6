//! The firmware's defmt frames, read from QEMU's stdout, as [`LogLine`]s.
//!
//! The firmware writes defmt's wire format (defmt 1.x, rzcobs-framed) to semihosting
//! stdout; the format strings live in the ELF's `.defmt` section, which
//! `defmt_decoder::Table::parse` reads (and which refuses an ELF built with a defmt
//! wire version the decoder does not speak).

use std::io::{ErrorKind, Read};

pub(crate) use defmt_decoder::Table;
use defmt_decoder::{DecodeError, Frame};

use crate::LogLine;

/// The defmt table of an ELF's bytes.
pub(crate) fn table(elf: &[u8]) -> Result<Table, String> {
    match Table::parse(elf) {
        Ok(Some(table)) => Ok(table),
        Ok(None) => Err("no .defmt section: not a firmware that logs with defmt".into()),
        Err(e) => Err(format!("cannot read its defmt table: {e:#}")),
    }
}

/// Decodes `input` until it ends, giving every frame to `sink`.
///
/// Input is read to the end even after an unrecoverable error, so that QEMU never
/// blocks on a full pipe.
pub(crate) fn frames(mut input: impl Read, table: &Table, sink: &mut dyn FnMut(LogLine)) {
    let mut decoder = table.new_stream_decoder();
    let can_recover = table.encoding().can_recover();
    let mut broken = false;
    let mut buf = [0u8; 4096];
    loop {
        let n = match input.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            Err(_) => break,
        };
        if broken {
            continue;
        }
        decoder.received(&buf[..n]);
        loop {
            match decoder.decode() {
                Ok(frame) => sink(line_of(&frame)),
                Err(DecodeError::UnexpectedEof) => break,
                Err(DecodeError::Malformed) if can_recover => {
                    sink(LogLine::plain("(malformed defmt frame skipped)"));
                }
                Err(DecodeError::Malformed) => {
                    sink(LogLine::plain(
                        "(malformed defmt frame; the raw encoding cannot resynchronise, \
                         nothing after this is decoded)",
                    ));
                    broken = true;
                    break;
                }
            }
        }
    }
}

/// One frame as a line.
fn line_of(frame: &Frame<'_>) -> LogLine {
    LogLine {
        level: frame.level().map(|l| l.as_str().to_string()),
        timestamp: frame.display_timestamp().map(|t| t.to_string()),
        text: frame.display_message().to_string(),
    }
}
