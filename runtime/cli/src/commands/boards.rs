//! `tern boards`: the boards compiled into this tern, with what they trust and offer.

use super::outln;
use std::process::ExitCode;

use super::{Outcome, grant_summary};

/// Runs `tern boards`.
pub fn run() -> Outcome {
    for b in tern_host::boards::ALL {
        let keys: Vec<&str> = b.trust_keys().iter().map(|k| k.name).collect();
        outln!(
            "{:<18} engine {:<8} slot {:>8} bytes  trusts {} (needs {})  offers {}",
            b.name(),
            b.engine().name(),
            b.slot_size(),
            keys.join("+"),
            b.signatures_required(),
            grant_summary(&b.offers().to_grant())
        )?;
    }
    Ok(ExitCode::SUCCESS)
}
