//! The result line: how one export call's outcome is written, the same on the device's
//! log, the gateway's and `tern run --results`, so two boxes' results compare line by
//! line.
//!
//! `result <call>[ #<event>]: ok [<name>=<value>[ <unit>], ...]`, or
//! `result <call>[ #<event>]: component error: <message>`, or
//! `result <call>[ #<event>]: runtime error: <error>`. A milli value is written with
//! three decimals and its sign (`-0.500`), a flag as `true`/`false`, text quoted.

use core::fmt;

use crate::wit::{Output, Value};

/// What one export call came to.
#[derive(Clone, Copy)]
pub enum Outcome<'a> {
    /// The component answered with these outputs (none for `init`/`health-check`).
    Ok(&'a [Output]),
    /// The component answered with an error of its own.
    ComponentError(&'a str),
    /// The runtime stopped the call (trap, fuel, limits, ...).
    RuntimeError(&'a dyn fmt::Display),
}

/// One result line (see the module docs); [`fmt::Display`] writes it.
#[derive(Clone, Copy)]
pub struct ResultLine<'a> {
    /// `init`, `on-event` or `health-check`.
    pub call: &'a str,
    /// For `on-event`: the event's index in its stream.
    pub event: Option<u64>,
    /// The outcome.
    pub outcome: Outcome<'a>,
}

impl fmt::Display for ResultLine<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "result {}", self.call)?;
        if let Some(i) = self.event {
            write!(f, " #{i}")?;
        }
        match self.outcome {
            Outcome::Ok(outputs) => {
                f.write_str(": ok")?;
                for (n, o) in outputs.iter().enumerate() {
                    f.write_str(if n == 0 { " " } else { ", " })?;
                    write!(f, "{o}")?;
                }
                Ok(())
            }
            Outcome::ComponentError(m) => write!(f, ": component error: {m}"),
            Outcome::RuntimeError(e) => write!(f, ": runtime error: {e}"),
        }
    }
}

impl fmt::Display for Output {
    /// `<name>=<value>[ <unit>]`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}={}", self.name, self.value)?;
        if let Some(unit) = &self.unit {
            write!(f, " {unit}")?;
        }
        Ok(())
    }
}

impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Milli(m) => {
                let sign = if *m < 0 { "-" } else { "" };
                let abs = m.unsigned_abs();
                write!(f, "{sign}{}.{:03}", abs / 1000, abs % 1000)
            }
            Value::Flag(b) => write!(f, "{b}"),
            Value::Text(t) => write!(f, "{t:?}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::string::{String, ToString};
    use alloc::vec;

    fn milli(m: i64) -> String {
        Value::Milli(m).to_string()
    }

    #[test]
    fn milli_values_keep_their_sign_below_one() {
        // The gateway used to print -500 milli as `0.500`.
        assert_eq!(milli(-500), "-0.500");
        assert_eq!(milli(-1), "-0.001");
        assert_eq!(milli(-1500), "-1.500");
        assert_eq!(milli(0), "0.000");
        assert_eq!(milli(500), "0.500");
        assert_eq!(milli(21_250), "21.250");
        assert_eq!(milli(i64::MIN), "-9223372036854775.808");
    }

    #[test]
    fn lines_for_every_outcome() {
        let outputs = vec![
            Output {
                name: "temp.ema".into(),
                value: Value::Milli(-2_125),
                unit: Some("C".into()),
            },
            Output {
                name: "alarm".into(),
                value: Value::Flag(false),
                unit: None,
            },
            Output {
                name: "note".into(),
                value: Value::Text("a \"b\"".into()),
                unit: None,
            },
        ];
        let line = ResultLine {
            call: "on-event",
            event: Some(3),
            outcome: Outcome::Ok(&outputs),
        };
        assert_eq!(
            line.to_string(),
            r#"result on-event #3: ok temp.ema=-2.125 C, alarm=false, note="a \"b\"""#
        );
        let line = ResultLine {
            call: "init",
            event: None,
            outcome: Outcome::Ok(&[]),
        };
        assert_eq!(line.to_string(), "result init: ok");
        let line = ResultLine {
            call: "health-check",
            event: None,
            outcome: Outcome::ComponentError("sensor missing"),
        };
        assert_eq!(
            line.to_string(),
            "result health-check: component error: sensor missing"
        );
        let e = crate::Error::StackOverflow;
        let line = ResultLine {
            call: "on-event",
            event: Some(0),
            outcome: Outcome::RuntimeError(&e),
        };
        assert_eq!(
            line.to_string(),
            alloc::format!("result on-event #0: runtime error: {e}")
        );
    }
}
