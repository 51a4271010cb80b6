//! Host tests of the framing (escapes, packets split across reads, damaged and oversize packets), of the driver on a simulated serial line, and of tern-net's TCP over it.

extern crate std;

use core::cell::RefCell;
use std::rc::Rc;
use std::vec;
use std::vec::Vec;

use embedded_io::{ErrorKind, ErrorType};
use smoltcp::phy::{Device, RxToken as _, TxToken as _};

use super::*;

/// The receiving end of a serial line: `bytes` arrive at most `per_read` at a time;
/// a receive error is reported once when reading reaches `error_at`.
struct Line {
    bytes: Vec<u8>,
    at: usize,
    per_read: usize,
    error_at: Option<usize>,
}

impl Line {
    fn new(bytes: Vec<u8>, per_read: usize) -> Line {
        Line {
            bytes,
            at: 0,
            per_read,
            error_at: None,
        }
    }
}

impl ErrorType for Line {
    type Error = ErrorKind;
}

impl ReadReady for Line {
    fn read_ready(&mut self) -> Result<bool, ErrorKind> {
        Ok(self.at < self.bytes.len())
    }
}

impl Read for Line {
    fn read(&mut self, buf: &mut [u8]) -> Result<usize, ErrorKind> {
        if self.error_at == Some(self.at) {
            self.error_at = None;
            return Err(ErrorKind::Other);
        }
        let mut n = self.per_read.min(buf.len()).min(self.bytes.len() - self.at);
        if let Some(e) = self.error_at {
            // Deliver up to the error, so that it hits inside a packet.
            n = n.min(e - self.at);
        }
        buf[..n].copy_from_slice(&self.bytes[self.at..self.at + n]);
        self.at += n;
        Ok(n)
    }
}

/// The sending end: what was written, and how often it was flushed.
#[derive(Default)]
struct Wire {
    bytes: Vec<u8>,
    flushes: usize,
    broken: bool,
}

impl ErrorType for Wire {
    type Error = ErrorKind;
}

impl Write for Wire {
    fn write(&mut self, buf: &[u8]) -> Result<usize, ErrorKind> {
        if self.broken {
            return Err(ErrorKind::BrokenPipe);
        }
        self.bytes.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> Result<(), ErrorKind> {
        self.flushes += 1;
        Ok(())
    }
}

fn encoded(packet: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    encode(packet, |piece| {
        out.extend_from_slice(piece);
        Ok::<(), ()>(())
    })
    .expect("a Vec takes every piece");
    out
}

fn decoded(bytes: &[u8]) -> Vec<Vec<u8>> {
    let mut decoder = Decoder::new();
    bytes
        .iter()
        .filter_map(|b| decoder.push(*b).map(<[u8]>::to_vec))
        .collect()
}

/// Every packet `slip` receives now, in order.
fn received<R: Read + ReadReady, W: Write>(slip: &mut Slip<R, W>) -> Vec<Vec<u8>> {
    let mut packets = Vec::new();
    while let Some((rx, _)) = slip.receive(Instant::ZERO) {
        packets.push(rx.consume(<[u8]>::to_vec));
    }
    packets
}

#[test]
fn end_and_esc_are_escaped_and_the_packet_is_framed_by_ends() {
    assert_eq!(
        encoded(&[1, END, 2, ESC, 3]),
        [END, 1, ESC, ESC_END, 2, ESC, ESC_ESC, 3, END]
    );
    assert_eq!(encoded(&[END, END]), [END, ESC, ESC_END, ESC, ESC_END, END]);
    // The escape codes on their own are plain data.
    assert_eq!(encoded(&[ESC_END, ESC_ESC]), [END, ESC_END, ESC_ESC, END]);
}

#[test]
fn every_byte_value_survives_a_round_trip() {
    let all: Vec<u8> = (0..=255).collect();
    let specials = vec![END, ESC, END, END, ESC, ESC, ESC_END];
    let mut line = Vec::new();
    for packet in [&all[..], &specials[..], &[0x45][..]] {
        line.extend(encoded(packet));
    }
    assert_eq!(decoded(&line), [all, specials, vec![0x45]]);
}

#[test]
fn empty_frames_and_leading_ends_are_not_packets() {
    assert_eq!(decoded(&[END, END, END]), Vec::<Vec<u8>>::new());
    assert_eq!(decoded(&[END, END, 7, 8, END, END]), [vec![7, 8]]);
    // A packet without the leading END (RFC 1055 allows it) is still a packet.
    assert_eq!(decoded(&[9, END]), [vec![9]]);
}

#[test]
fn a_packet_of_mtu_bytes_passes_and_a_longer_one_is_dropped_alone() {
    let full = vec![0x11; MTU];
    let long = vec![0x22; MTU + 1];
    let mut line = encoded(&long);
    line.extend(encoded(&full));
    line.extend(encoded(&[1, 2, 3]));
    let mut decoder = Decoder::new();
    let packets: Vec<Vec<u8>> = line
        .iter()
        .filter_map(|b| decoder.push(*b).map(<[u8]>::to_vec))
        .collect();
    assert_eq!(packets, [full, vec![1, 2, 3]]);
    assert_eq!(decoder.stats().oversize, 1);
    assert_eq!(decoder.stats().received, 2);
}

#[test]
fn a_bad_escape_drops_its_packet_and_not_the_next() {
    let mut decoder = Decoder::new();
    let line = [END, 1, ESC, 0x42, 2, END, 3, END, 4, ESC, END, 5, END];
    let packets: Vec<Vec<u8>> = line
        .iter()
        .filter_map(|b| decoder.push(*b).map(<[u8]>::to_vec))
        .collect();
    // `ESC 0x42` is not an escape, and `ESC END` lost its escaped byte.
    assert_eq!(packets, [vec![3], vec![5]]);
    assert_eq!(decoder.stats().bad_escape, 2);
}

#[test]
fn packets_split_across_reads_and_sharing_one_read_are_all_received() {
    let packets = [vec![1, END, 2], vec![ESC; 40], vec![3; 200], vec![4]];
    let line: Vec<u8> = packets.iter().flat_map(|p| encoded(p)).collect();
    // One byte per read, odd-sized reads that cut escapes in two, and reads that
    // hold several packets at once.
    for per_read in [1, 3, 7, 64, 1000] {
        let mut slip = Slip::new(Line::new(line.clone(), per_read), Wire::default());
        assert_eq!(received(&mut slip), packets, "{per_read} bytes per read");
        assert_eq!(slip.stats().received, 4);
    }
}

#[test]
fn nothing_received_is_no_packet_and_half_a_packet_waits_for_the_rest() {
    let mut slip = Slip::new(Line::new(Vec::new(), 64), Wire::default());
    assert!(slip.receive(Instant::ZERO).is_none());

    let whole = encoded(&[5, 6, 7]);
    let mut slip = Slip::new(Line::new(whole[..3].to_vec(), 64), Wire::default());
    assert!(slip.receive(Instant::ZERO).is_none());
    slip.rx.bytes.extend_from_slice(&whole[3..]);
    assert_eq!(received(&mut slip), [vec![5, 6, 7]]);
}

#[test]
fn a_receive_error_drops_the_packet_it_hit_and_not_the_next() {
    let mut line = encoded(&[1, 2, 3, 4]);
    let second = encoded(&[9, 9]);
    line.extend(&second);
    let mut serial = Line::new(line, 64);
    // Inside the first packet.
    serial.error_at = Some(3);
    let mut slip = Slip::new(serial, Wire::default());
    let mut packets = Vec::new();
    // The error ends one poll; the next poll goes on from after it.
    for _ in 0..3 {
        packets.extend(received(&mut slip));
    }
    assert_eq!(packets, [vec![9, 9]]);
    assert_eq!(slip.stats().rx_errors, 1);
}

#[test]
fn a_sent_packet_is_framed_escaped_and_flushed() {
    let mut slip = Slip::new(Line::new(Vec::new(), 64), Wire::default());
    let tx = slip
        .transmit(Instant::ZERO)
        .expect("sending never has to wait");
    tx.consume(4, |buf| buf.copy_from_slice(&[0x45, END, ESC, 0]));
    assert_eq!(
        slip.tx.bytes,
        [END, 0x45, ESC, ESC_END, ESC, ESC_ESC, 0, END]
    );
    assert_eq!(slip.tx.flushes, 1);
    assert_eq!(slip.stats().sent, 1);

    slip.tx.broken = true;
    let tx = slip.transmit(Instant::ZERO).expect("room");
    tx.consume(1, |buf| buf[0] = 1);
    assert_eq!(slip.stats().tx_errors, 1);
    assert_eq!(slip.stats().sent, 1);
}

#[test]
fn the_link_is_an_ip_medium_with_the_slip_mtu() {
    let slip = Slip::new(Line::new(Vec::new(), 64), Wire::default());
    let caps = slip.capabilities();
    assert_eq!(caps.medium, Medium::Ip);
    assert_eq!(caps.max_transmission_unit, MTU);
}

/// A clock that moves 1 ms every time it is read, so that tern-net's timeouts pass
/// in a test without waiting.
fn racing_clock() -> u64 {
    use core::sync::atomic::{AtomicU64, Ordering};
    static NOW: AtomicU64 = AtomicU64::new(0);
    NOW.fetch_add(1, Ordering::Relaxed)
}

/// tern-net on a SLIP link: it addresses the interface by IP alone (smoltcp would
/// panic on an Ethernet address for an IP device), refuses DHCP, and its first
/// request puts a TCP SYN to the server on the line as a SLIP frame.
#[test]
fn tern_net_sends_a_syn_to_the_server_over_slip() {
    use smoltcp::wire::{IpProtocol, Ipv4Address, Ipv4Packet, TcpPacket};
    use tern_net::{Ipv4Mode, Net, NetConfig, NetError, Request};

    let server = ([192, 168, 190, 1], 8080);
    let config = |ipv4| NetConfig {
        now_ms: racing_clock,
        mac: [0x02, 0, 0, 0, 0, 1],
        ipv4,
        server,
    };
    let sent = Rc::new(RefCell::new(Vec::new()));
    let link = || {
        Slip::new(
            Line::new(Vec::new(), 64),
            Tap {
                bytes: Rc::clone(&sent),
            },
        )
    };

    let refused = Net::new(config(Ipv4Mode::Dhcp), link()).err();
    assert_eq!(refused, Some(NetError::DhcpNeedsEthernet));

    let fixed = Ipv4Mode::Static {
        address: [192, 168, 190, 2],
        prefix_len: 24,
        gateway: None,
    };
    let mut net = Net::new(config(fixed), link()).expect("a static address needs no answer");
    let request = Request {
        method: "POST",
        path: "/device/v1/check-in",
        token: "a-device-token-of-16",
        content_type: None,
        body: b"",
        range_from: None,
    };
    let result = net.request(&request, &mut |_, _| Ok(()));
    assert!(
        matches!(result, Err(NetError::Timeout { .. })),
        "nobody answers on this line: {result:?}"
    );
    drop(net);

    let packets = decoded(&sent.borrow());
    let first = packets.first().expect("at least one packet sent");
    let ip = Ipv4Packet::new_checked(&first[..]).expect("an IPv4 packet");
    assert_eq!(ip.src_addr(), Ipv4Address::new(192, 168, 190, 2));
    assert_eq!(ip.dst_addr(), Ipv4Address::new(192, 168, 190, 1));
    assert_eq!(ip.next_header(), IpProtocol::Tcp);
    let tcp = TcpPacket::new_checked(ip.payload()).expect("a TCP segment");
    assert!(
        tcp.syn() && !tcp.ack(),
        "the first segment opens the connection"
    );
    assert_eq!(tcp.dst_port(), 8080);
    // Retransmitted SYNs (and the reset that aborts the connection), each framed
    // whole: every frame decodes to an IPv4 TCP packet.
    for p in &packets {
        let ip = Ipv4Packet::new_checked(&p[..]).expect("an IPv4 packet");
        assert_eq!(ip.next_header(), IpProtocol::Tcp);
    }
}

/// A sending end whose bytes the test keeps after the link is gone.
struct Tap {
    bytes: Rc<RefCell<Vec<u8>>>,
}

impl ErrorType for Tap {
    type Error = ErrorKind;
}

impl Write for Tap {
    fn write(&mut self, buf: &[u8]) -> Result<usize, ErrorKind> {
        self.bytes.borrow_mut().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> Result<(), ErrorKind> {
        Ok(())
    }
}
