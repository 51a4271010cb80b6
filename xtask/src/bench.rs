pub fn run() -> Result<(), String> {
    Err("bench: not built yet".into())
}
