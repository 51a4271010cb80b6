//! The board table, device constants, memory.x and identity, from ../board.toml.
fn main() {
    tern_board::firmware::build("thumbv7em-none-eabihf");
}
