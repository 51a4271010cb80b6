//! Tern's device network: smoltcp over any Ethernet or IP driver (a [`Nic`]) and a small
//! HTTP/1.1 client on one TCP socket, for the device agent's check-ins and downloads.
//!
//! A board brings its driver (for example `tern-lan9118`, Ethernet, or `tern-slip`,
//! bare IP packets over a serial line) and its clock; the rest is here, the same for
//! every board. The driver's [`phy::DeviceCapabilities::medium`] decides how the
//! interface is addressed: by the board's MAC on Ethernet, by nothing on an IP link.
//!
//! Everything runs on the caller's thread: [`Net::request`] polls the interface until
//! its response is complete or a timeout passes. The TCP connection stays open
//! between requests (HTTP keep-alive) and is opened again once the server has closed
//! it. Response bodies go to the caller in pieces as they arrive, so downloading a
//! bundle needs no more RAM than the 4 KiB receive window. Buffers are static, so the
//! network uses no heap.

#![no_std]
#![deny(clippy::undocumented_unsafe_blocks)]
#![allow(
    unsafe_code,
    reason = "the socket buffers are statics handed to one `Net` at a time"
)]

extern crate alloc;

#[macro_use]
mod log;
mod http;

use alloc::string::String;
use core::fmt;
use core::sync::atomic::{AtomicBool, Ordering};

use smoltcp::iface::{Config, Interface, SocketHandle, SocketSet, SocketStorage};
use smoltcp::phy::{self, Medium};
use smoltcp::socket::{dhcpv4, tcp};
use smoltcp::time::Instant;
use smoltcp::wire::{EthernetAddress, HardwareAddress, IpAddress, IpCidr};

use http::parse_response_head;

/// A network driver, as the network needs it: a smoltcp [`phy::Device`] (Ethernet
/// frames or bare IP packets, as its capabilities say) that can also stir some entropy
/// into the TCP sequence numbers.
pub trait Nic: phy::Device {
    /// Bits that differ from boot to boot (a free-running counter), or 0.
    fn entropy(&mut self) -> u32 {
        0
    }
}

/// How long opening a TCP connection may take (the one figure for every agent).
const CONNECT_TIMEOUT_MS: u64 = tern_core::protocol::CONNECT_TIMEOUT_MS;
/// How long a request may make no progress (no byte sent or received).
const IDLE_TIMEOUT_MS: u64 = tern_core::protocol::SILENCE_TIMEOUT_MS;
/// How long [`Net::new`] waits for a DHCP lease.
const DHCP_TIMEOUT_MS: u64 = 10_000;
/// TCP receive buffer: the receive window. QEMU's LAN9118 RX FIFO holds about
/// 10 KiB and drops frames beyond that, so the window must stay well below it.
const TCP_RX_BYTES: usize = 4096;
/// TCP transmit buffer; longer request bodies go out as it drains.
const TCP_TX_BYTES: usize = 2048;
/// The largest response head (status line and headers) accepted.
const HEAD_MAX: usize = 1024;
/// First dynamic port (RFC 6335); each connection takes the next local port, so
/// that a new connection never collides with the server's memory of an old one.
const FIRST_LOCAL_PORT: u16 = 49_152;

/// How the device reaches the network: from board.toml's `[network]` section, and the
/// board's millisecond clock.
#[derive(Clone, Copy, Debug)]
pub struct NetConfig {
    /// Milliseconds since boot.
    pub now_ms: fn() -> u64,
    /// The Ethernet address the controller answers to. An IP link (SLIP) has none on
    /// the wire; there it only seeds the TCP sequence numbers, so that two devices differ.
    pub mac: [u8; 6],
    /// A fixed IPv4 address or DHCP.
    pub ipv4: Ipv4Mode,
    /// The fleet server (`tern serve`): IPv4 address and TCP port.
    pub server: ([u8; 4], u16),
}

/// How the device gets its IPv4 address.
#[derive(Clone, Copy, Debug)]
pub enum Ipv4Mode {
    /// Ask a DHCP server (QEMU's `-nic user` has one), waiting at most 10 s at start.
    Dhcp,
    /// A fixed address.
    Static {
        /// The device's address.
        address: [u8; 4],
        /// Network prefix length, 0 to 32.
        prefix_len: u8,
        /// Default gateway, if anything is off-link.
        gateway: Option<[u8; 4]>,
    },
}

/// One HTTP request to the fleet server.
#[derive(Clone, Copy, Debug)]
pub struct Request<'a> {
    /// `GET`, `POST`, ...
    pub method: &'a str,
    /// Absolute path, e.g. `/device/v1/check-in`.
    pub path: &'a str,
    /// The device token, sent as `Authorization: Bearer <token>`.
    pub token: &'a str,
    /// `Content-Type` of the body, if any.
    pub content_type: Option<&'a str>,
    /// The request body; empty for none.
    pub body: &'a [u8],
    /// Ask for the bytes from this offset on (`Range: bytes=N-`), to resume a download.
    pub range_from: Option<u64>,
}

/// Takes a response body piece by piece, with the response's status code; an `Err`
/// stops the transfer ([`NetError::Aborted`]).
pub type BodySink<'a> = dyn FnMut(u16, &[u8]) -> Result<(), String> + 'a;

/// What the server answered; the body went to the request's `on_body`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Response {
    /// HTTP status code.
    pub status: u16,
    /// The `Content-Length` header, if the server sent one.
    pub content_length: Option<u64>,
}

/// Where a request was when it failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Phase {
    /// Opening the TCP connection.
    Connect,
    /// Sending the request.
    Send,
    /// Waiting for the status line and headers.
    Head,
    /// Receiving the body.
    Body,
}

/// Why the network could not start or a request failed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum NetError {
    /// [`Net::new`] was called while another [`Net`] exists.
    InUse,
    /// DHCP was asked for on a driver that carries bare IP packets (SLIP), where a
    /// DHCP client has no hardware address to ask with (feature `medium-ip`).
    DhcpNeedsEthernet,
    /// The device has no IPv4 address: no DHCP lease within 10 s, or the lease was lost.
    NoLease,
    /// The server did not answer within a timeout (5 s to connect, else 10 s of silence).
    Timeout {
        /// The server's address and port.
        server: ([u8; 4], u16),
        /// What was going on.
        phase: Phase,
    },
    /// The server refused or closed the connection before the response was complete.
    Closed {
        /// The server's address and port.
        server: ([u8; 4], u16),
        /// What was going on.
        phase: Phase,
    },
    /// The response is not HTTP/1.x as this client reads it: what is wrong.
    BadResponse(&'static str),
    /// The request cannot be sent as given: what is wrong.
    BadRequest(&'static str),
    /// `on_body` refused a piece of the body and the download stopped: its reason.
    Aborted(String),
}

/// Writes `a.b.c.d:port`.
struct Server(([u8; 4], u16));

impl fmt::Display for Server {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ([a, b, c, d], port) = self.0;
        write!(f, "{a}.{b}.{c}.{d}:{port}")
    }
}

impl fmt::Display for NetError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NetError::InUse => {
                f.write_str("the network is already started: there is one `Net` at a time")
            }
            NetError::DhcpNeedsEthernet => f.write_str(
                "DHCP needs an Ethernet link, and this board's driver carries bare IP packets (SLIP): set a static `ipv4` (and `server`) in its board.toml [network]",
            ),
            NetError::NoLease => write!(
                f,
                "no IPv4 address: no DHCP lease within {} s (QEMU's -nic user serves DHCP; check the -nic option, or set a static ipv4 in board.toml)",
                DHCP_TIMEOUT_MS / 1000
            ),
            NetError::Timeout { server, phase } => {
                let s = Server(*server);
                let idle = IDLE_TIMEOUT_MS / 1000;
                match phase {
                    Phase::Connect => write!(
                        f,
                        "no answer from {s} within {} s: is `tern serve` running, and QEMU started with -nic user,guestfwd=tcp:{s}-...?",
                        CONNECT_TIMEOUT_MS / 1000
                    ),
                    Phase::Send => write!(f, "{s} took no more of the request for {idle} s"),
                    Phase::Head => write!(f, "no response from {s} within {idle} s of the request"),
                    Phase::Body => write!(
                        f,
                        "{s} sent nothing more of the response body for {idle} s; a Range request can resume it"
                    ),
                }
            }
            NetError::Closed { server, phase } => {
                let s = Server(*server);
                match phase {
                    Phase::Connect => write!(
                        f,
                        "{s} refused the connection: is `tern serve` listening on the port QEMU forwards it to?"
                    ),
                    Phase::Send | Phase::Head => write!(
                        f,
                        "{s} closed the connection before answering: is `tern serve` running behind QEMU's guestfwd?"
                    ),
                    Phase::Body => write!(
                        f,
                        "{s} closed the connection in the middle of the response body; a Range request can resume it"
                    ),
                }
            }
            NetError::BadResponse(why) => write!(f, "bad HTTP response from the server: {why}"),
            NetError::BadRequest(why) => write!(f, "request not sent: {why}"),
            NetError::Aborted(why) => write!(f, "download stopped: {why}"),
        }
    }
}

#[cfg(feature = "defmt")]
impl defmt::Format for NetError {
    fn format(&self, f: defmt::Formatter<'_>) {
        defmt::write!(f, "{}", defmt::Display2Format(self))
    }
}

/// The TCP socket's buffers, static so that they cost no heap; [`IN_USE`] hands
/// them to one [`Net`] at a time. All zeros, so they take no flash (`.bss`).
struct Buffers {
    rx: [u8; TCP_RX_BYTES],
    tx: [u8; TCP_TX_BYTES],
}

static mut BUFFERS: Buffers = Buffers {
    rx: [0; TCP_RX_BYTES],
    tx: [0; TCP_TX_BYTES],
};

/// smoltcp's socket slots: the TCP socket and the DHCP client. Not all zeros, so
/// apart from [`BUFFERS`], which would otherwise go to `.data` and cost 6 KiB of flash.
static mut SOCKETS: [SocketStorage<'static>; 2] = [SocketStorage::EMPTY; 2];

/// Whether a [`Net`] exists (and so owns the controller, [`BUFFERS`] and [`SOCKETS`]).
static IN_USE: AtomicBool = AtomicBool::new(false);

/// The started network: controller, IPv4 interface and one HTTP connection to the server.
pub struct Net<D: Nic> {
    device: D,
    now_ms: fn() -> u64,
    iface: Interface,
    sockets: SocketSet<'static>,
    tcp: SocketHandle,
    dhcp: Option<SocketHandle>,
    server: ([u8; 4], u16),
    local_port: u16,
}

impl<D: Nic> Net<D> {
    /// Starts the IPv4 interface on the started controller `device`; with DHCP, waits
    /// up to 10 s for a lease. The clock must run. Connects to nothing yet.
    pub fn new(config: NetConfig, device: D) -> Result<Net<D>, NetError> {
        if IN_USE.swap(true, Ordering::Acquire) {
            return Err(NetError::InUse);
        }
        let net = Net::start(config, device);
        if net.is_err() {
            IN_USE.store(false, Ordering::Release);
        }
        net
    }

    fn start(config: NetConfig, mut device: D) -> Result<Net<D>, NetError> {
        let clock = config.now_ms;
        // smoltcp insists that the address fits the driver's medium: an Ethernet
        // controller answers to the MAC, an IP link (SLIP) has no link-layer address.
        let hardware = match device.capabilities().medium {
            Medium::Ethernet => HardwareAddress::Ethernet(EthernetAddress(config.mac)),
            #[cfg(feature = "medium-ip")]
            Medium::Ip => {
                // smoltcp's DHCP client panics without an Ethernet address.
                if matches!(config.ipv4, Ipv4Mode::Dhcp) {
                    return Err(NetError::DhcpNeedsEthernet);
                }
                HardwareAddress::Ip
            }
        };
        let mut iface_config = Config::new(hardware);
        // TCP initial sequence numbers and the first local port come from this seed:
        // the driver's entropy (a free-running counter) and the time since boot, so that a
        // rebooted device does not reuse its last connection's port, and the MAC, so
        // that two devices differ; multiplied to spread every input over all bits.
        let mac = config
            .mac
            .iter()
            .fold(0u64, |acc, &b| acc << 8 | u64::from(b));
        let seed =
            (u64::from(device.entropy()) ^ clock() << 32 ^ mac).wrapping_mul(0x9e37_79b9_7f4a_7c15);
        iface_config.random_seed = seed;
        let mut iface = Interface::new(iface_config, &mut device, now(clock));

        let (buffers, slots) = (&raw mut BUFFERS, &raw mut SOCKETS);
        // SAFETY: `IN_USE` makes this `Net` the only holder of `BUFFERS` and `SOCKETS`:
        // an earlier `Net` and every borrow of them are gone, so these are the only
        // references.
        let (buffers, slots) = unsafe { (&mut *buffers, &mut *slots) };
        // An earlier `Net` left its sockets in the storage: a new set starts empty.
        for slot in slots.iter_mut() {
            *slot = SocketStorage::EMPTY;
        }
        let mut sockets = SocketSet::new(&mut slots[..]);
        let mut socket = tcp::Socket::new(
            tcp::SocketBuffer::new(&mut buffers.rx[..]),
            tcp::SocketBuffer::new(&mut buffers.tx[..]),
        );
        // Requests are written whole before each poll, so Nagle would only delay
        // their last segment.
        socket.set_nagle_enabled(false);
        let tcp = sockets.add(socket);

        let mut dhcp = None;
        match config.ipv4 {
            Ipv4Mode::Static {
                address,
                prefix_len,
                gateway,
            } => {
                iface.update_ip_addrs(|addrs| {
                    // Cannot fail: the list is empty and holds two.
                    let _ = addrs.push(IpCidr::new(
                        IpAddress::Ipv4(address.into()),
                        prefix_len.min(32),
                    ));
                });
                if let Some(gateway) = gateway {
                    // Cannot fail: the route table is empty.
                    let _ = iface.routes_mut().add_default_ipv4_route(gateway.into());
                }
            }
            Ipv4Mode::Dhcp => dhcp = Some(sockets.add(dhcpv4::Socket::new())),
        }

        let mut net = Net {
            device,
            now_ms: clock,
            iface,
            sockets,
            tcp,
            dhcp,
            server: config.server,
            local_port: FIRST_LOCAL_PORT + (seed >> 51) as u16,
        };
        if net.dhcp.is_some() {
            let deadline = clock() + DHCP_TIMEOUT_MS;
            while net.iface.ipv4_addr().is_none() {
                if clock() >= deadline {
                    return Err(NetError::NoLease);
                }
                net.poll();
            }
        }
        Ok(net)
    }

    /// Sends one request to the server and reads the response: the status and
    /// headers into the returned [`Response`], the body piece by piece into
    /// `on_body` (with the status code) as it arrives. Reuses the open connection when the server kept it,
    /// else connects first. Any status is a successful exchange; a timeout, a closed
    /// connection, a malformed response or an `Err` from `on_body` is a [`NetError`],
    /// after which the connection is dropped (the next request opens a new one).
    pub fn request(
        &mut self,
        req: &Request<'_>,
        on_body: &mut BodySink<'_>,
    ) -> Result<Response, NetError> {
        check_request(req)?;
        self.poll();
        let socket = self.socket();
        let reuse = socket.state() == tcp::State::Established && socket.recv_queue() == 0;
        let mut result = if reuse {
            self.exchange(req, on_body)
        } else {
            self.connect().and_then(|()| self.exchange(req, on_body))
        };
        if reuse
            && matches!(
                result,
                Err(NetError::Closed {
                    phase: Phase::Send | Phase::Head,
                    ..
                })
            )
        {
            // The server closed the idle connection just as this request went out,
            // before answering it: send it again on a new one.
            result = self.connect().and_then(|()| self.exchange(req, on_body));
        }
        if result.is_err() {
            self.socket().abort();
        }
        // Sends what is due now (acknowledgements, a FIN or a reset) rather than at
        // the next request.
        self.poll();
        result
    }

    fn socket(&mut self) -> &mut tcp::Socket<'static> {
        self.sockets.get_mut::<tcp::Socket>(self.tcp)
    }

    /// Lets smoltcp send and receive what it can, and applies DHCP news.
    fn poll(&mut self) {
        self.iface
            .poll(now(self.now_ms), &mut self.device, &mut self.sockets);
        let Some(handle) = self.dhcp else { return };
        let lease = match self.sockets.get_mut::<dhcpv4::Socket>(handle).poll() {
            None => return,
            Some(dhcpv4::Event::Configured(config)) => Some((config.address, config.router)),
            Some(dhcpv4::Event::Deconfigured) => None,
        };
        if lease.is_none() && self.iface.ipv4_addr().is_none() {
            // The DHCP socket says so once at start: nothing to undo.
            return;
        }
        self.iface.update_ip_addrs(|addrs| {
            addrs.clear();
            if let Some((address, _)) = lease {
                // Cannot fail: the list was just cleared.
                let _ = addrs.push(IpCidr::Ipv4(address));
            }
        });
        let routes = self.iface.routes_mut();
        routes.remove_default_ipv4_route();
        match lease {
            Some((address, router)) => {
                let [a, b, c, d] = address.address().octets();
                info!(
                    "net: DHCP lease {}.{}.{}.{}/{}",
                    a,
                    b,
                    c,
                    d,
                    address.prefix_len()
                );
                if let Some(router) = router {
                    // Cannot fail: the default route was just removed.
                    let _ = routes.add_default_ipv4_route(router);
                }
            }
            None => warn!("net: DHCP lease lost"),
        }
    }

    /// Opens a new connection to the server from the next local port.
    fn connect(&mut self) -> Result<(), NetError> {
        self.local_port = self.local_port.checked_add(1).unwrap_or(FIRST_LOCAL_PORT);
        let (ip, port) = self.server;
        let socket = self.sockets.get_mut::<tcp::Socket>(self.tcp);
        socket.abort();
        socket
            .connect(
                self.iface.context(),
                (IpAddress::Ipv4(ip.into()), port),
                self.local_port,
            )
            .map_err(|_| NetError::NoLease)?;
        let deadline = (self.now_ms)() + CONNECT_TIMEOUT_MS;
        loop {
            self.poll();
            match self.socket().state() {
                tcp::State::Established => {
                    debug!(
                        "net: connected from port {} in {} ms",
                        self.local_port,
                        (self.now_ms)() + CONNECT_TIMEOUT_MS - deadline
                    );
                    return Ok(());
                }
                // A reset answered the SYN.
                tcp::State::Closed => return Err(self.error(Phase::Connect, false)),
                _ if (self.now_ms)() >= deadline => return Err(self.error(Phase::Connect, true)),
                _ => {}
            }
        }
    }

    /// Sends the request and reads the whole response on the open connection.
    fn exchange(
        &mut self,
        req: &Request<'_>,
        on_body: &mut BodySink<'_>,
    ) -> Result<Response, NetError> {
        let mut digits = [0; 20];
        let (ip, port) = self.server;
        self.send(req.method.as_bytes())?;
        self.send(b" ")?;
        self.send(req.path.as_bytes())?;
        self.send(b" HTTP/1.1\r\nHost: ")?;
        for (i, octet) in ip.into_iter().enumerate() {
            if i > 0 {
                self.send(b".")?;
            }
            self.send(decimal(u64::from(octet), &mut digits))?;
        }
        self.send(b":")?;
        self.send(decimal(u64::from(port), &mut digits))?;
        self.send(b"\r\nAuthorization: Bearer ")?;
        self.send(req.token.as_bytes())?;
        if let Some(content_type) = req.content_type {
            self.send(b"\r\nContent-Type: ")?;
            self.send(content_type.as_bytes())?;
        }
        if !req.body.is_empty() || !matches!(req.method, "GET" | "HEAD") {
            self.send(b"\r\nContent-Length: ")?;
            self.send(decimal(req.body.len() as u64, &mut digits))?;
        }
        if let Some(from) = req.range_from {
            self.send(b"\r\nRange: bytes=")?;
            self.send(decimal(from, &mut digits))?;
            self.send(b"-")?;
        }
        self.send(b"\r\n\r\n")?;
        self.send(req.body)?;

        let mut head = [0; HEAD_MAX];
        let (head_len, filled) = self.read_head(&mut head)?;
        let parsed = parse_response_head(&head[..head_len]).map_err(NetError::BadResponse)?;
        let has_body = !(req.method == "HEAD" || matches!(parsed.status, 100..=199 | 204 | 304));
        let length = match parsed.content_length {
            _ if !has_body => 0,
            Some(length) => length,
            None => {
                return Err(NetError::BadResponse(
                    "a body without Content-Length (chunked bodies are not read)",
                ));
            }
        };
        // Body bytes that arrived together with the head.
        let early = &head[head_len..filled];
        if early.len() as u64 > length {
            return Err(NetError::BadResponse("more bytes than its Content-Length"));
        }
        // Every piece goes out with the status, so a caller can tell a bundle from an
        // error page before it writes a byte anywhere.
        let status = parsed.status;
        let mut sink = |piece: &[u8]| on_body(status, piece);
        if !early.is_empty() {
            sink(early).map_err(NetError::Aborted)?;
        }
        self.read_body(length - early.len() as u64, &mut sink)?;
        if parsed.close {
            self.socket().close();
        }
        Ok(Response {
            status: parsed.status,
            content_length: parsed.content_length,
        })
    }

    /// Queues all of `data` for sending, polling while the send buffer is full.
    fn send(&mut self, mut data: &[u8]) -> Result<(), NetError> {
        let mut deadline = (self.now_ms)() + IDLE_TIMEOUT_MS;
        loop {
            let Ok(sent) = self.socket().send_slice(data) else {
                return Err(self.error(Phase::Send, false));
            };
            data = &data[sent..];
            if data.is_empty() {
                return Ok(());
            }
            if sent > 0 {
                deadline = (self.now_ms)() + IDLE_TIMEOUT_MS;
            } else if (self.now_ms)() >= deadline {
                return Err(self.error(Phase::Send, true));
            }
            self.poll();
        }
    }

    /// Receives into `head` until the blank line that ends the headers; returns
    /// where the head ends and how much of `head` is filled (the rest is body).
    fn read_head(&mut self, head: &mut [u8; HEAD_MAX]) -> Result<(usize, usize), NetError> {
        let mut filled = 0;
        let mut deadline = (self.now_ms)() + IDLE_TIMEOUT_MS;
        loop {
            self.poll();
            match self.socket().recv_slice(&mut head[filled..]) {
                Ok(0) => {}
                Ok(n) => {
                    let from = filled.saturating_sub(3);
                    filled += n;
                    if let Some(at) = head[from..filled].windows(4).position(|w| w == b"\r\n\r\n") {
                        return Ok((from + at + 4, filled));
                    }
                    if filled == HEAD_MAX {
                        return Err(NetError::BadResponse(
                            "a head (status line and headers) over 1024 bytes",
                        ));
                    }
                    deadline = (self.now_ms)() + IDLE_TIMEOUT_MS;
                }
                Err(_) => return Err(self.error(Phase::Head, false)),
            }
            if (self.now_ms)() >= deadline {
                return Err(self.error(Phase::Head, true));
            }
        }
    }

    /// Hands the next `remaining` bytes to `on_body` as they arrive.
    fn read_body(
        &mut self,
        mut remaining: u64,
        on_body: &mut dyn FnMut(&[u8]) -> Result<(), String>,
    ) -> Result<(), NetError> {
        let mut deadline = (self.now_ms)() + IDLE_TIMEOUT_MS;
        while remaining > 0 {
            self.poll();
            let want = usize::try_from(remaining).unwrap_or(usize::MAX);
            let received = self.socket().recv(|buf| {
                let n = buf.len().min(want);
                if n == 0 {
                    return (0, Ok(0));
                }
                (n, on_body(&buf[..n]).map(|()| n))
            });
            match received {
                Ok(Ok(0)) => {
                    if (self.now_ms)() >= deadline {
                        return Err(self.error(Phase::Body, true));
                    }
                }
                Ok(Ok(n)) => {
                    remaining -= n as u64;
                    deadline = (self.now_ms)() + IDLE_TIMEOUT_MS;
                }
                Ok(Err(why)) => return Err(NetError::Aborted(why)),
                Err(_) => return Err(self.error(Phase::Body, false)),
            }
        }
        Ok(())
    }

    /// A timeout or a closed connection in `phase`, naming the server.
    fn error(&self, phase: Phase, timeout: bool) -> NetError {
        let server = self.server;
        if timeout {
            NetError::Timeout { server, phase }
        } else {
            NetError::Closed { server, phase }
        }
    }
}

impl<D: Nic> Drop for Net<D> {
    fn drop(&mut self) {
        // The controller and the buffers are free for the next `Net`.
        IN_USE.store(false, Ordering::Release);
    }
}

/// The clock as smoltcp sees it.
fn now(clock: fn() -> u64) -> Instant {
    Instant::from_millis(clock() as i64)
}

/// Refuses requests that would not make a well-formed HTTP head: a method, path,
/// token or content type with spaces or line breaks where they do not belong.
fn check_request(req: &Request<'_>) -> Result<(), NetError> {
    let clean = |s: &str, spaces: bool| {
        !s.is_empty()
            && !s
                .bytes()
                .any(|b| b.is_ascii_control() || (!spaces && b == b' '))
    };
    if !clean(req.method, false) || !clean(req.path, false) || !req.path.starts_with('/') {
        return Err(NetError::BadRequest(
            "the method or path is empty or has spaces or control characters",
        ));
    }
    if !clean(req.token, false) || !req.content_type.is_none_or(|t| clean(t, true)) {
        return Err(NetError::BadRequest(
            "the token or content type is empty or has control characters",
        ));
    }
    Ok(())
}

/// `n` in decimal ASCII, written into `buf`.
fn decimal(mut n: u64, buf: &mut [u8; 20]) -> &[u8] {
    let mut at = buf.len();
    loop {
        at -= 1;
        buf[at] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            return &buf[at..];
        }
    }
}
