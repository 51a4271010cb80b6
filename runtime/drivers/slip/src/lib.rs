//! SLIP (RFC 1055) over a serial port as a smoltcp `Device`: bare IPv4 packets, each ended by an END byte, with END and ESC escaped inside.
//!
//! SLIP is the simplest way to put IP on a UART: no addresses, no negotiation, no
//! checksum of its own (IP's and TCP's catch a damaged packet, and TCP sends it
//! again). The host side is Linux's `slip` driver (`slattach -p slip`), so a board
//! without Ethernet reaches the fleet server through the machine its serial port is
//! plugged into.
//!
//! [`Decoder`] and [`encode`] are the framing, with no I/O (tested on the host);
//! [`Slip`] drives them over any serial port with embedded-io's traits: [`ReadReady`]
//! so that receiving never waits (smoltcp polls), [`Read`] and [`Write`].
//!
//! A lost or damaged byte costs the packet it is in, never the next one: a packet
//! that overflows [`MTU`], holds a bad escape or met a receive error is dropped at
//! its END, and the next packet starts clean. Every packet is sent with an END in
//! front too (RFC 1055's advice), which ends any line noise as a packet of its own
//! that the receiver drops.

#![no_std]
#![forbid(unsafe_code)]

use embedded_io::{Read, ReadReady, Write};
use smoltcp::phy::{self, DeviceCapabilities, Medium};
use smoltcp::time::Instant;

/// Ends a packet.
pub const END: u8 = 0xC0;
/// Starts an escape: the next byte stands for END or ESC.
pub const ESC: u8 = 0xDB;
/// After [`ESC`]: a data byte [`END`].
pub const ESC_END: u8 = 0xDC;
/// After [`ESC`]: a data byte [`ESC`].
pub const ESC_ESC: u8 = 0xDD;

/// The largest packet, bytes: RFC 1055's 1006 (Berkeley SLIP's limit). The host's
/// interface must not send larger ones (`ip link set sl0 mtu 1006`); TCP then keeps
/// its segments to fit.
pub const MTU: usize = 1006;

/// Bytes read from the serial port at a time.
const READ_CHUNK: usize = 64;

/// Packets dropped and sent, by reason: for a board's log when a link misbehaves.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    /// Packets received whole.
    pub received: u32,
    /// Packets sent whole.
    pub sent: u32,
    /// Received packets over [`MTU`], dropped.
    pub oversize: u32,
    /// Received packets with an [`ESC`] not followed by [`ESC_END`] or [`ESC_ESC`], dropped.
    pub bad_escape: u32,
    /// Received packets cut by a serial receive error (overrun, framing), dropped.
    pub rx_errors: u32,
    /// Packets the serial port did not take whole.
    pub tx_errors: u32,
}

/// Where the decoder is within a packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    /// Collecting data bytes.
    Data,
    /// The last byte was [`ESC`].
    Escaped,
    /// This packet is lost; waiting for its END.
    Dropping,
}

/// RFC 1055 receive side: bytes in, whole packets out, no I/O.
#[derive(Debug)]
pub struct Decoder {
    buf: [u8; MTU],
    len: usize,
    state: State,
    stats: Stats,
}

impl Default for Decoder {
    fn default() -> Self {
        Decoder::new()
    }
}

impl Decoder {
    /// A decoder waiting for the first byte of a packet.
    pub const fn new() -> Decoder {
        Decoder {
            buf: [0; MTU],
            len: 0,
            state: State::Data,
            stats: Stats {
                received: 0,
                sent: 0,
                oversize: 0,
                bad_escape: 0,
                rx_errors: 0,
                tx_errors: 0,
            },
        }
    }

    /// Takes one received byte. When `byte` is the END of a good packet, returns it
    /// (valid until the next call); empty packets (END after END) are no packets.
    pub fn push(&mut self, byte: u8) -> Option<&[u8]> {
        match (self.state, byte) {
            (State::Dropping, END) => self.restart(),
            (State::Dropping, _) => {}
            (State::Escaped, END) => {
                // The escaped byte never came: the packet is damaged.
                self.stats.bad_escape += 1;
                self.restart();
            }
            (State::Data, END) => {
                let len = self.len;
                self.restart();
                if len > 0 {
                    self.stats.received += 1;
                    return Some(&self.buf[..len]);
                }
            }
            (State::Data, ESC) => self.state = State::Escaped,
            (State::Escaped, ESC_END) => self.data(END),
            (State::Escaped, ESC_ESC) => self.data(ESC),
            (State::Escaped, _) => {
                // RFC 1055 would keep the byte; a line that garbles escapes garbles
                // data too, so the packet is dropped rather than passed on damaged.
                self.stats.bad_escape += 1;
                self.state = State::Dropping;
            }
            (State::Data, _) => self.data(byte),
        }
        None
    }

    /// Drops the packet being received: a byte of it was lost (a receive error).
    pub fn discard(&mut self) {
        if self.state != State::Dropping {
            self.stats.rx_errors += 1;
            self.state = State::Dropping;
        }
    }

    /// What was received and dropped so far.
    pub fn stats(&self) -> Stats {
        self.stats
    }

    fn data(&mut self, byte: u8) {
        if self.len == MTU {
            self.stats.oversize += 1;
            self.state = State::Dropping;
            return;
        }
        self.buf[self.len] = byte;
        self.len += 1;
        self.state = State::Data;
    }

    fn restart(&mut self) {
        self.len = 0;
        self.state = State::Data;
    }
}

/// Writes `packet` as one SLIP frame through `emit`, in pieces: an END, the data with
/// END and ESC escaped, and the closing END. Runs of plain bytes go out as one piece,
/// so a driver with a DMA buffer copies them once. Stops at the first error.
pub fn encode<E>(packet: &[u8], mut emit: impl FnMut(&[u8]) -> Result<(), E>) -> Result<(), E> {
    emit(&[END])?;
    let mut rest = packet;
    while let Some(at) = rest.iter().position(|b| matches!(*b, END | ESC)) {
        if at > 0 {
            emit(&rest[..at])?;
        }
        emit(if rest[at] == END {
            &[ESC, ESC_END]
        } else {
            &[ESC, ESC_ESC]
        })?;
        rest = &rest[at + 1..];
    }
    if !rest.is_empty() {
        emit(rest)?;
    }
    emit(&[END])
}

/// A SLIP link on a serial port: `rx` receives (without waiting, through
/// [`ReadReady`]), `tx` sends (waiting until each packet is out). A smoltcp
/// [`phy::Device`] of [`Medium::Ip`] and a [`tern_net::Nic`].
pub struct Slip<R, W> {
    rx: R,
    tx: W,
    decoder: Decoder,
    /// Bytes read but not decoded yet: a read may bring the start of the next packet.
    chunk: [u8; READ_CHUNK],
    chunk_at: usize,
    chunk_len: usize,
    /// Where smoltcp writes an outgoing packet before it is framed.
    out: [u8; MTU],
    sent: u32,
    tx_errors: u32,
    entropy: u32,
}

impl<R: Read + ReadReady, W: Write> Slip<R, W> {
    /// A link on the serial port's two halves. Nothing is sent or received yet.
    pub fn new(rx: R, tx: W) -> Self {
        Slip {
            rx,
            tx,
            decoder: Decoder::new(),
            chunk: [0; READ_CHUNK],
            chunk_at: 0,
            chunk_len: 0,
            out: [0; MTU],
            sent: 0,
            tx_errors: 0,
            entropy: 0,
        }
    }

    /// Bits that differ from boot to boot (a hardware random number, a free-running
    /// counter) for the TCP sequence numbers; see [`tern_net::Nic::entropy`].
    pub fn with_entropy(mut self, bits: u32) -> Self {
        self.entropy = bits;
        self
    }

    /// Packets received, sent and dropped so far.
    pub fn stats(&self) -> Stats {
        Stats {
            sent: self.sent,
            tx_errors: self.tx_errors,
            ..self.decoder.stats()
        }
    }

    /// Decodes received bytes until a packet is whole (its length in the decoder's
    /// buffer) or the serial port has no more for now.
    fn next_packet(&mut self) -> Option<usize> {
        loop {
            while self.chunk_at < self.chunk_len {
                let byte = self.chunk[self.chunk_at];
                self.chunk_at += 1;
                if let Some(packet) = self.decoder.push(byte) {
                    return Some(packet.len());
                }
            }
            match self.rx.read_ready() {
                Ok(true) => {}
                Ok(false) => return None,
                Err(_) => {
                    self.decoder.discard();
                    return None;
                }
            }
            match self.rx.read(&mut self.chunk) {
                // End of stream: a closed port has nothing more.
                Ok(0) => return None,
                Ok(n) => {
                    self.chunk_at = 0;
                    self.chunk_len = n;
                }
                Err(_) => {
                    self.decoder.discard();
                    return None;
                }
            }
        }
    }
}

impl<R: Read + ReadReady, W: Write> tern_net::Nic for Slip<R, W> {
    fn entropy(&mut self) -> u32 {
        self.entropy
    }
}

impl<R: Read + ReadReady, W: Write> phy::Device for Slip<R, W> {
    type RxToken<'a>
        = RxToken<'a>
    where
        Self: 'a;
    type TxToken<'a>
        = TxToken<'a, W>
    where
        Self: 'a;

    fn receive(&mut self, _timestamp: Instant) -> Option<(RxToken<'_>, TxToken<'_, W>)> {
        let len = self.next_packet()?;
        Some((
            RxToken(&self.decoder.buf[..len]),
            TxToken {
                tx: &mut self.tx,
                out: &mut self.out,
                sent: &mut self.sent,
                tx_errors: &mut self.tx_errors,
            },
        ))
    }

    fn transmit(&mut self, _timestamp: Instant) -> Option<TxToken<'_, W>> {
        // Sending waits for the port, so there is always room.
        Some(TxToken {
            tx: &mut self.tx,
            out: &mut self.out,
            sent: &mut self.sent,
            tx_errors: &mut self.tx_errors,
        })
    }

    fn capabilities(&self) -> DeviceCapabilities {
        let mut caps = DeviceCapabilities::default();
        caps.medium = Medium::Ip;
        caps.max_transmission_unit = MTU;
        // One packet at a time: the receive buffer holds one.
        caps.max_burst_size = Some(1);
        caps
    }
}

/// A received packet, in the decoder's buffer.
pub struct RxToken<'a>(&'a [u8]);

impl phy::RxToken for RxToken<'_> {
    fn consume<T, F: FnOnce(&[u8]) -> T>(self, f: F) -> T {
        f(self.0)
    }
}

/// Room for one outgoing packet; it is framed and sent when consumed.
pub struct TxToken<'a, W> {
    tx: &'a mut W,
    out: &'a mut [u8; MTU],
    sent: &'a mut u32,
    tx_errors: &'a mut u32,
}

impl<W: Write> phy::TxToken for TxToken<'_, W> {
    fn consume<T, F: FnOnce(&mut [u8]) -> T>(self, len: usize, f: F) -> T {
        // smoltcp never asks for more than the MTU it was given.
        let packet = &mut self.out[..len.min(MTU)];
        let result = f(packet);
        let tx = self.tx;
        // A packet the port did not take is lost like one lost on the line: TCP
        // sends it again.
        match encode(packet, |piece| tx.write_all(piece)).and_then(|()| tx.flush()) {
            Ok(()) => *self.sent += 1,
            Err(_) => *self.tx_errors += 1,
        }
        result
    }
}

#[cfg(test)]
mod tests;
