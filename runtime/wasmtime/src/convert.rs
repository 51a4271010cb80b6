//! Conversions between `bindgen!` types and tern-core's engine-neutral types.

use crate::wit::types as t;

pub(crate) fn sample_in(s: tern_core::Sample) -> t::Sample {
    t::Sample {
        sensor: s.sensor,
        milli: s.milli,
        at_ms: s.at_ms,
    }
}

pub(crate) fn event(e: &tern_core::Event) -> t::Event {
    match e {
        tern_core::Event::Sample(s) => t::Event::Sample(sample_in(s.clone())),
        tern_core::Event::Frame(b) => t::Event::Frame(b.clone()),
        tern_core::Event::Tick(at) => t::Event::Tick(*at),
    }
}

pub(crate) fn output(o: t::Output) -> tern_core::Output {
    tern_core::Output {
        name: o.name,
        value: match o.value {
            t::Value::Milli(v) => tern_core::Value::Milli(v),
            t::Value::Flag(v) => tern_core::Value::Flag(v),
            t::Value::Text(v) => tern_core::Value::Text(v),
        },
        unit: o.unit,
    }
}
