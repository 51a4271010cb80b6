//! A polled driver for the SMSC LAN9118 Ethernet controller (as QEMU's MPS2 boards model it), as a smoltcp `Device`.
//!
//! The chip keeps whole frames in its own FIFOs: the CPU reads a status word and
//! then the frame's data words from fixed ports, and writes two command words and the
//! data words to send one. No DMA, no descriptors and no interrupts: smoltcp's poll
//! loop asks for frames. Register offsets and bits follow the SMSC LAN9118 datasheet's
//! register map, as QEMU's model (`hw/net/lan9118.c`) implements it. The PHY is left
//! as reset leaves it (auto-negotiation on), which is all QEMU needs; a real board
//! may want to wait for the link.

#![no_std]
#![deny(clippy::undocumented_unsafe_blocks)]
#![allow(unsafe_code, reason = "a driver reads and writes device registers")]

use core::fmt;
use core::ptr::{read_volatile, write_volatile};

use smoltcp::phy::{self, DeviceCapabilities, Medium};
use smoltcp::time::Instant;

/// Where QEMU mps2-an385/an386 map the controller (`hw/arm/mps2.c`, `ethernet_base`).
pub const MPS2_AN386_BASE: usize = 0x4020_0000;
/// Where QEMU mps2-an505 maps it (`hw/arm/mps2-tz.c`, the `eth` port at 0x4200_0000),
/// as a Secure program sees it: the IoTKit's Secure alias, 0x1000_0000 above.
pub const MPS2_AN505_SECURE_BASE: usize = 0x5200_0000;

/// The largest Ethernet frame without its CRC: 1500 bytes of payload and a 14-byte header.
pub const MAX_FRAME: usize = 1514;

/// Frame buffer size: a maximal frame plus its 4-byte CRC, rounded up to whole words.
const BUF: usize = 1520;

// Register offsets from the base address.
const RX_DATA_FIFO: usize = 0x00;
const TX_DATA_FIFO: usize = 0x20;
const RX_STATUS_FIFO: usize = 0x40;
const ID_REV: usize = 0x50;
const IRQ_CFG: usize = 0x54;
const INT_STS: usize = 0x58;
const INT_EN: usize = 0x5c;
const BYTE_TEST: usize = 0x64;
const RX_CFG: usize = 0x6c;
const TX_CFG: usize = 0x70;
const HW_CFG: usize = 0x74;
const RX_FIFO_INF: usize = 0x7c;
const TX_FIFO_INF: usize = 0x80;
const PMT_CTRL: usize = 0x84;
const GPT_CFG: usize = 0x8c;
const FREE_RUN: usize = 0x9c;
const MAC_CSR_CMD: usize = 0xa4;
const MAC_CSR_DATA: usize = 0xa8;

/// What `BYTE_TEST` always reads on a LAN911x/LAN92xx on a 32-bit bus.
const BYTE_TEST_VALUE: u32 = 0x8765_4321;
const HW_CFG_SRST: u32 = 1 << 0;
/// Must-be-one bit, and the default 5 KiB TX FIFO (the rest is RX FIFO).
const HW_CFG_MBO_TX_FIFO_5K: u32 = (1 << 20) | (5 << 16);
const PMT_CTRL_READY: u32 = 1 << 0;
const TX_CFG_TX_ON: u32 = 1 << 1;
/// Let the TX status FIFO overflow: nothing reads it, and a full one would stop sending.
const TX_CFG_TXSAO: u32 = 1 << 2;
const GPT_CFG_TIMER_EN: u32 = 1 << 29;
const MAC_CSR_BUSY: u32 = 1 << 31;
const MAC_CR: u32 = 1;
const MAC_ADDRH: u32 = 2;
const MAC_ADDRL: u32 = 3;
const MAC_CR_RXEN: u32 = 1 << 2;
const MAC_CR_TXEN: u32 = 1 << 3;
const MAC_CR_FDPX: u32 = 1 << 20;
/// RX status: error summary (CRC, runt, too long, collision...).
const RX_STS_ES: u32 = 1 << 15;
/// TX command A: first and last segment (each frame goes in one piece).
const TX_CMD_A_FS_LS: u32 = (1 << 13) | (1 << 12);

/// How many register reads a reset or a MAC register access may take before the
/// chip is declared stuck (real chips need microseconds, QEMU none).
const SPIN_LIMIT: u32 = 1_000_000;

/// Why the controller could not be started.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Error {
    /// The identification registers do not read as a LAN911x/LAN92xx.
    NotFound {
        /// The address that was probed.
        base: usize,
        /// What `ID_REV` read (chip id in the upper half).
        id_rev: u32,
        /// What `BYTE_TEST` read (`0x87654321` on a working chip).
        byte_test: u32,
    },
    /// The chip did not finish a step in time: the step's name.
    Stuck(&'static str),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Error::NotFound {
                base,
                id_rev,
                byte_test,
            } => write!(
                f,
                "no LAN9118 Ethernet controller at {base:#010x} (ID_REV {id_rev:#010x}, BYTE_TEST {byte_test:#010x}): check the board's base address, and run QEMU with -nic user,model=lan9118"
            ),
            Error::Stuck(step) => write!(f, "the LAN9118 did not finish {step}"),
        }
    }
}

/// The register block at one base address.
#[derive(Clone, Copy)]
struct Regs(usize);

impl Regs {
    fn read(self, offset: usize) -> u32 {
        // SAFETY: `Lan9118::new`'s caller promised that `self.0` is a LAN9118 register
        // block used by nothing else; `offset` is one of the word-aligned register
        // offsets above, all inside the block.
        unsafe { read_volatile((self.0 + offset) as *const u32) }
    }

    fn write(self, offset: usize, value: u32) {
        // SAFETY: as in `read`.
        unsafe { write_volatile((self.0 + offset) as *mut u32, value) }
    }

    /// Spins until `done` holds for the register at `offset`; `Stuck(step)` if it never does.
    fn wait(
        self,
        offset: usize,
        done: impl Fn(u32) -> bool,
        step: &'static str,
    ) -> Result<(), Error> {
        for _ in 0..SPIN_LIMIT {
            if done(self.read(offset)) {
                return Ok(());
            }
        }
        Err(Error::Stuck(step))
    }

    /// Writes a MAC register through the MAC_CSR command/data pair.
    fn write_mac(self, register: u32, value: u32) -> Result<(), Error> {
        let idle = |cmd: u32| cmd & MAC_CSR_BUSY == 0;
        self.wait(MAC_CSR_CMD, idle, "a MAC register write")?;
        self.write(MAC_CSR_DATA, value);
        // Bit 30 clear: a write.
        self.write(MAC_CSR_CMD, MAC_CSR_BUSY | register);
        self.wait(MAC_CSR_CMD, idle, "a MAC register write")
    }
}

/// The controller, started and ready to pass frames to smoltcp.
pub struct Lan9118 {
    regs: Regs,
    rx: [u8; BUF],
    tx: [u8; BUF],
}

impl Lan9118 {
    /// Checks that a LAN911x/LAN92xx answers at `base`, resets it, gives it `mac`
    /// and turns its receiver and transmitter on (full duplex, own address and
    /// broadcast only).
    ///
    /// # Safety
    ///
    /// `base` must be the address of a LAN9118-compatible register block (for QEMU
    /// mps2-an386, [`MPS2_AN386_BASE`]), and nothing else may access that block while
    /// the returned value exists.
    pub unsafe fn new(base: usize, mac: [u8; 6]) -> Result<Self, Error> {
        let regs = Regs(base);
        let byte_test = regs.read(BYTE_TEST);
        let id_rev = regs.read(ID_REV);
        // LAN9115-9118, LAN9215-9218 and LAN9210/9211/9220/9221 share this register set.
        let known = matches!(
            id_rev >> 16,
            0x0115..=0x0118 | 0x115a | 0x116a | 0x117a | 0x118a | 0x9210 | 0x9211 | 0x9220 | 0x9221
        );
        if byte_test != BYTE_TEST_VALUE || !known {
            return Err(Error::NotFound {
                base,
                id_rev,
                byte_test,
            });
        }

        regs.write(HW_CFG, HW_CFG_SRST);
        regs.wait(HW_CFG, |v| v & HW_CFG_SRST == 0, "its soft reset")?;
        regs.wait(
            PMT_CTRL,
            |v| v & PMT_CTRL_READY != 0,
            "its power-up (PMT_CTRL.READY)",
        )?;
        regs.write(HW_CFG, HW_CFG_MBO_TX_FIFO_5K);
        // Polled: no interrupt line, and nothing pending.
        regs.write(IRQ_CFG, 0);
        regs.write(INT_EN, 0);
        regs.write(INT_STS, u32::MAX);

        let [m0, m1, m2, m3, m4, m5] = mac.map(u32::from);
        regs.write_mac(MAC_ADDRL, m0 | m1 << 8 | m2 << 16 | m3 << 24)?;
        regs.write_mac(MAC_ADDRH, m4 | m5 << 8)?;
        // Frames start at the first data word, with no padding.
        regs.write(RX_CFG, 0);
        regs.write(TX_CFG, TX_CFG_TX_ON | TX_CFG_TXSAO);
        // Not promiscuous (QEMU's reset value is): our address and broadcast only.
        regs.write_mac(MAC_CR, MAC_CR_RXEN | MAC_CR_TXEN | MAC_CR_FDPX)?;

        Ok(Lan9118 {
            regs,
            rx: [0; BUF],
            tx: [0; BUF],
        })
    }

    /// The chip's free-running 25 MHz counter: a little entropy for smoltcp's seed.
    pub fn free_run(&self) -> u32 {
        self.regs.read(FREE_RUN)
    }

    /// Moves the next good frame from the RX FIFO into `self.rx` and returns its
    /// length without the CRC; drops bad or oversized frames on the way.
    fn pop_frame(&mut self) -> Option<usize> {
        loop {
            // RXSUSED: frames waiting in the status FIFO.
            if (self.regs.read(RX_FIFO_INF) >> 16) & 0xff == 0 {
                return None;
            }
            let status = self.regs.read(RX_STATUS_FIFO);
            // The length includes the 4-byte CRC; the data is padded to whole words.
            let len = ((status >> 16) & 0x3fff) as usize;
            let good = status & RX_STS_ES == 0 && (14 + 4..=BUF).contains(&len);
            for i in 0..len.div_ceil(4) {
                let word = self.regs.read(RX_DATA_FIFO);
                if good {
                    self.rx[4 * i..4 * i + 4].copy_from_slice(&word.to_le_bytes());
                }
            }
            if good {
                return Some(len - 4);
            }
        }
    }
}

impl tern_net::Nic for Lan9118 {
    fn entropy(&mut self) -> u32 {
        self.free_run()
    }
}

impl phy::Device for Lan9118 {
    type RxToken<'a> = RxToken<'a>;
    type TxToken<'a> = TxToken<'a>;

    fn receive(&mut self, _timestamp: Instant) -> Option<(RxToken<'_>, TxToken<'_>)> {
        let len = self.pop_frame()?;
        Some((
            RxToken(&self.rx[..len]),
            TxToken {
                regs: self.regs,
                buf: &mut self.tx,
            },
        ))
    }

    fn transmit(&mut self, _timestamp: Instant) -> Option<TxToken<'_>> {
        // TDFREE: bytes free in the TX data FIFO; a frame needs its two command words too.
        if (self.regs.read(TX_FIFO_INF) & 0xffff) < (BUF + 8) as u32 {
            return None;
        }
        Some(TxToken {
            regs: self.regs,
            buf: &mut self.tx,
        })
    }

    fn capabilities(&self) -> DeviceCapabilities {
        let mut caps = DeviceCapabilities::default();
        caps.medium = Medium::Ethernet;
        caps.max_transmission_unit = MAX_FRAME;
        caps
    }
}

/// Restarts the chip's general-purpose timer (interrupt off) with a count of one.
///
/// Only for QEMU: its user-mode network (slirp) runs in QEMU's main loop, which
/// sleeps until its next timer and does not notice the host socket that a frame
/// from the guest has just opened or filled, so the answer waits for whatever timer
/// comes next (SysTick's 0.67 s wrap, measured). Starting a timer that is due in
/// 0.1 ms wakes that loop at once. On a real chip this is a timer nobody listens to.
fn kick(regs: Regs) {
    regs.write(GPT_CFG, 0);
    regs.write(GPT_CFG, GPT_CFG_TIMER_EN | 1);
}

/// A received frame, already copied out of the chip.
pub struct RxToken<'a>(&'a [u8]);

impl phy::RxToken for RxToken<'_> {
    fn consume<R, F: FnOnce(&[u8]) -> R>(self, f: F) -> R {
        f(self.0)
    }
}

/// Room for one frame in the TX FIFO; the frame is written there when consumed.
pub struct TxToken<'a> {
    regs: Regs,
    buf: &'a mut [u8; BUF],
}

impl phy::TxToken for TxToken<'_> {
    fn consume<R, F: FnOnce(&mut [u8]) -> R>(self, len: usize, f: F) -> R {
        let len = len.min(MAX_FRAME);
        let frame = &mut self.buf[..len];
        let result = f(frame);
        // Command A: one segment holding the whole frame, word-aligned, no offset.
        // Command B: a tag (unused) and the frame length.
        self.regs.write(TX_DATA_FIFO, TX_CMD_A_FS_LS | len as u32);
        self.regs.write(TX_DATA_FIFO, len as u32);
        for chunk in frame.chunks(4) {
            let mut word = [0; 4];
            word[..chunk.len()].copy_from_slice(chunk);
            self.regs.write(TX_DATA_FIFO, u32::from_le_bytes(word));
        }
        kick(self.regs);
        result
    }
}
