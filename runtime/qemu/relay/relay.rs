//! Joins one guest TCP connection to a host port: QEMU's `guestfwd=...-cmd:` runs this once per connection.
//!
//! libslirp starts the command with the guest's connection as stdin, stdout and
//! stderr, so nothing may ever be printed here except the server's bytes. Built by
//! tern-qemu's build.rs with plain rustc (std only). Usage: `tern-qemu-relay HOST:PORT`.

use std::io::{Read, Write};
use std::net::{Shutdown, TcpStream};

fn main() {
    // A panic message would reach the guest as if the server had sent it.
    std::panic::set_hook(Box::new(|_| {}));
    let Some(address) = std::env::args().nth(1) else {
        std::process::exit(2);
    };
    // Server down: exit, and slirp closes the guest's connection at once.
    let Ok(server) = TcpStream::connect(&address) else {
        std::process::exit(1);
    };
    let _ = server.set_nodelay(true);
    let Ok(mut up) = server.try_clone() else {
        std::process::exit(1);
    };
    // Guest to server; the guest's FIN becomes a half-close towards the server.
    std::thread::spawn(move || {
        let mut stdin = std::io::stdin().lock();
        let mut buf = [0u8; 16 * 1024];
        loop {
            match stdin.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    if up.write_all(&buf[..n]).is_err() {
                        break;
                    }
                }
            }
        }
        let _ = up.shutdown(Shutdown::Write);
    });
    // Server to guest, flushed as it comes (stdout is line-buffered); when the server
    // closes, exiting closes the guest's connection.
    let mut down = server;
    let mut stdout = std::io::stdout().lock();
    let mut buf = [0u8; 16 * 1024];
    loop {
        match down.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                if stdout
                    .write_all(&buf[..n])
                    .and_then(|()| stdout.flush())
                    .is_err()
                {
                    break;
                }
            }
        }
    }
    std::process::exit(0);
}
