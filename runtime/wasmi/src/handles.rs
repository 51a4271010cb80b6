//! Resource-handle tables: the canonical ABI's per-instance table of handles.
//!
//! A component instance refers to a resource the host made (a `wasi:keyvalue`
//! bucket) by an index into its own table; the host sees the resource's
//! representation (`rep`, the host's number for it), never the index. The spec's
//! rules, as Wasmtime keeps them, so that a guest sees the same indices on both
//! engines: index 0 is never given out, a freed index is the next one given
//! (last-freed first), and an index that is free, past the end or of another
//! resource type traps (`AbiError::UnknownHandle`, `AbiError::HandleType`).
//!
//! Only owned handles the host gave live here: a host passes no borrowed handles to
//! a component (exports with handles are refused when an image is made), and a
//! borrowed handle a component passes to the host is only looked up.

use alloc::vec::Vec;

use tern_cabi::{AbiError, ResourceId};

/// The most handles one instance may hold: past it the host's resources refuse to
/// open long before (`Host::MAX_OPEN_BUCKETS`), so this is a backstop.
pub(crate) const MAX_HANDLES: u32 = 64;

#[derive(Clone, Copy)]
enum Slot {
    /// Free; the next free slot after this one (the free list is a stack).
    Free { next: u32 },
    /// An owned handle to the host's `resource` number `rep`.
    Own { resource: ResourceId, rep: u32 },
}

/// One component instance's handles.
#[derive(Default)]
pub(crate) struct HandleTable {
    slots: Vec<Slot>,
    /// The first free slot (`slots.len()` when none is).
    next: u32,
}

impl HandleTable {
    /// Gives the instance an owned handle to `rep`; returns its index.
    pub(crate) fn insert_own(&mut self, resource: ResourceId, rep: u32) -> Result<u32, AbiError> {
        let next = self.next;
        if next >= MAX_HANDLES {
            return Err(AbiError::HandleTableFull {
                capacity: MAX_HANDLES,
            });
        }
        let slot = Slot::Own { resource, rep };
        match self.slots.get_mut(next as usize) {
            Some(s) => {
                let Slot::Free { next: after } = *s else {
                    // `next` only ever names a free slot or the end.
                    return Err(AbiError::HandleTableFull {
                        capacity: MAX_HANDLES,
                    });
                };
                *s = slot;
                self.next = after;
            }
            None => {
                self.slots.push(slot);
                self.next = next + 1;
            }
        }
        // Index 0 is reserved: the handle is the slot plus one.
        Ok(next + 1)
    }

    /// The slot of handle `index`, if it holds one of `resource`.
    fn find(&self, resource: ResourceId, index: u32) -> Result<(usize, u32), AbiError> {
        let slot = index
            .checked_sub(1)
            .and_then(|i| self.slots.get(i as usize).map(|s| (i as usize, s)));
        match slot {
            Some((i, Slot::Own { resource: r, rep })) if *r == resource => Ok((i, *rep)),
            Some((_, Slot::Own { .. })) => Err(AbiError::HandleType { index }),
            _ => Err(AbiError::UnknownHandle { index }),
        }
    }

    /// The representation behind handle `index` of `resource`, lent for one call.
    pub(crate) fn rep(&self, resource: ResourceId, index: u32) -> Result<u32, AbiError> {
        self.find(resource, index).map(|(_, rep)| rep)
    }

    /// Takes handle `index` of `resource` out of the table (its ownership passes to
    /// the host); returns the representation.
    pub(crate) fn remove_own(&mut self, resource: ResourceId, index: u32) -> Result<u32, AbiError> {
        let (i, rep) = self.find(resource, index)?;
        self.slots[i] = Slot::Free { next: self.next };
        self.next = i as u32;
        Ok(rep)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const BUCKET: ResourceId = ResourceId(0);
    const OTHER: ResourceId = ResourceId(1);

    #[test]
    fn indices_start_at_one_and_reuse_the_last_freed() {
        let mut t = HandleTable::default();
        assert_eq!(t.insert_own(BUCKET, 10), Ok(1));
        assert_eq!(t.insert_own(BUCKET, 11), Ok(2));
        assert_eq!(t.insert_own(BUCKET, 12), Ok(3));
        assert_eq!(t.remove_own(BUCKET, 1), Ok(10));
        assert_eq!(t.remove_own(BUCKET, 3), Ok(12));
        // Last freed first, as Wasmtime gives them.
        assert_eq!(t.insert_own(BUCKET, 13), Ok(3));
        assert_eq!(t.insert_own(BUCKET, 14), Ok(1));
        assert_eq!(t.insert_own(BUCKET, 15), Ok(4));
        assert_eq!(t.rep(BUCKET, 2), Ok(11));
        assert_eq!(t.rep(BUCKET, 1), Ok(14));
    }

    #[test]
    fn unknown_freed_and_mistyped_handles_are_refused() {
        let mut t = HandleTable::default();
        assert_eq!(t.rep(BUCKET, 0), Err(AbiError::UnknownHandle { index: 0 }));
        assert_eq!(t.rep(BUCKET, 1), Err(AbiError::UnknownHandle { index: 1 }));
        let h = t.insert_own(BUCKET, 7).unwrap();
        assert_eq!(t.rep(OTHER, h), Err(AbiError::HandleType { index: h }));
        assert_eq!(
            t.remove_own(OTHER, h),
            Err(AbiError::HandleType { index: h })
        );
        assert_eq!(t.remove_own(BUCKET, h), Ok(7));
        assert_eq!(
            t.remove_own(BUCKET, h),
            Err(AbiError::UnknownHandle { index: h })
        );
        assert_eq!(
            t.rep(BUCKET, u32::MAX),
            Err(AbiError::UnknownHandle { index: u32::MAX })
        );
    }

    #[test]
    fn the_table_is_bounded() {
        let mut t = HandleTable::default();
        for i in 0..MAX_HANDLES {
            assert_eq!(t.insert_own(BUCKET, i), Ok(i + 1));
        }
        assert_eq!(
            t.insert_own(BUCKET, 0),
            Err(AbiError::HandleTableFull {
                capacity: MAX_HANDLES
            })
        );
        t.remove_own(BUCKET, 5).unwrap();
        assert_eq!(t.insert_own(BUCKET, 99), Ok(5));
    }
}
