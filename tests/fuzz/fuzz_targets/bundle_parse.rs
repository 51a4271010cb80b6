//! Fuzz target: the streaming bundle parser must never panic, whatever the bytes and
//! however they are split into chunks, and must agree with the one-shot parser.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tern_core::bundle::{self, HeaderDecoder};

fuzz_target!(|data: &[u8]| {
    let whole = bundle::parse(data);
    // Feed the same bytes in chunks whose sizes come from the first byte.
    let step = usize::from(data.first().copied().unwrap_or(1)).max(1);
    let mut dec = HeaderDecoder::new();
    let mut streamed = None;
    for (i, chunk) in data.chunks(step).enumerate() {
        match dec.feed(chunk) {
            Err(e) => {
                streamed = Some(Err(e));
                break;
            }
            Ok(Some((header, rest))) => {
                let mut check = header.payload_checker();
                let consumed = i * step + (chunk.len() - rest.len());
                let r = check
                    .update(&data[consumed..])
                    .and_then(|()| check.finish())
                    .map(|()| header);
                streamed = Some(r);
                break;
            }
            Ok(None) => {}
        }
    }
    let streamed = streamed.unwrap_or_else(|| Err(dec.truncated()));
    match (&whole, &streamed) {
        (Ok((h, _)), Ok(s)) => assert_eq!(h, s),
        (Err(_), Err(_)) => {}
        _ => panic!("one-shot and streaming parsers disagree: {whole:?} vs {streamed:?}"),
    }
});
