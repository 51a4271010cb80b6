//! The log shim (Embassy's `fmt.rs` idea): `info!`, `warn!` and `debug!` go to defmt
//! with the `defmt` feature (devices), to `tracing` with the `tracing` feature (hosts),
//! and nowhere without either. Format strings use plain `{}` so both accept them.
#![allow(unused_macros, reason = "not every crate uses every level")]

#[cfg(all(feature = "defmt", feature = "tracing"))]
compile_error!("the `defmt` and `tracing` features are exclusive: a build logs one way");

macro_rules! info {
    ($s:literal $(, $x:expr)* $(,)?) => {{
        #[cfg(feature = "defmt")]
        ::defmt::info!($s $(, $x)*);
        #[cfg(feature = "tracing")]
        ::tracing::info!($s $(, $x)*);
        #[cfg(not(any(feature = "defmt", feature = "tracing")))]
        let _ = ($( & $x ),*);
    }};
}

macro_rules! warn {
    ($s:literal $(, $x:expr)* $(,)?) => {{
        #[cfg(feature = "defmt")]
        ::defmt::warn!($s $(, $x)*);
        #[cfg(feature = "tracing")]
        ::tracing::warn!($s $(, $x)*);
        #[cfg(not(any(feature = "defmt", feature = "tracing")))]
        let _ = ($( & $x ),*);
    }};
}

macro_rules! debug {
    ($s:literal $(, $x:expr)* $(,)?) => {{
        #[cfg(feature = "defmt")]
        ::defmt::debug!($s $(, $x)*);
        #[cfg(feature = "tracing")]
        ::tracing::debug!($s $(, $x)*);
        #[cfg(not(any(feature = "defmt", feature = "tracing")))]
        let _ = ($( & $x ),*);
    }};
}
