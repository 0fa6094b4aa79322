//! Values handed out by the client: one owned value in a single block (the
//! `mcrs_value` of the C API), and the results of a multi-key read (`mcrs_values`).
//! Shared by the blocking client, the event-loop engine and the C ABI.
#![allow(non_camel_case_types)]

use std::alloc::{handle_alloc_error, Layout};
use std::mem::{align_of, size_of};
use std::ptr::NonNull;
use std::sync::atomic::{AtomicPtr, Ordering};

use crate::error::Error;

/// An item read from the server: its bytes, flags and (for gets/gats) cas
/// unique. A value returned by get/gets/gat/gats is owned by the caller and
/// freed with `mcrs_value_free`; a value obtained from `mcrs_values_get` is
/// borrowed from its list and must not be freed. Immutable, so safe to read
/// from several threads.
pub struct mcrs_value {
    pub(crate) data: *const u8,
    pub(crate) len: usize,
    pub(crate) flags: u32,
    /// meta reads: seconds of TTL left, -1 none; [`TTL_UNKNOWN`] otherwise
    /// (in the padding after `flags`)
    pub(crate) ttl: i32,
    pub(crate) cas: u64,
    /// data bytes the block has room for (owned values; 0 in a list)
    pub(crate) cap: usize,
    /// meta reads: seconds since the last access; -1 unknown
    pub(crate) last_access: i32,
    /// meta reads: 1 when the item was read before, 0 when not; -1 unknown
    pub(crate) hit_before: i8,
}

/// The `ttl` of a value that was not read with a meta command.
pub const TTL_UNKNOWN: i32 = -2;

/// An owned `mcrs_value` in one allocation: the header, then the bytes.
/// Dropping it frees the allocation; `into_raw` hands it to C. It is made
/// with libc's malloc directly (aligned for the header): one call on the get
/// path instead of the Rust allocator's layers over the same malloc.
///
/// The usual loop of get, use, free would pay a malloc/free pair per value
/// (about 130 instructions of glibc's, a tenth of a get). Instead a freed
/// block of at most `SPARE_MAX` data bytes goes into a spare slot and the next
/// value made on that thread reuses it. Slots are picked by the calling
/// thread's thread pointer, so threads mostly use different slots and cache
/// lines; a shared slot is still correct, because
/// a block is taken and put with an atomic swap, which makes the taker its
/// only owner. (Thread-local storage would cost a `__tls_get_addr` call per
/// access in a shared library.) Kept blocks stay until reused or replaced:
/// at most `SPARE_SLOTS` blocks of `SPARE_MAX` bytes.
pub struct OwnedValue(NonNull<mcrs_value>);

/// Largest data capacity a kept block may have.
const SPARE_MAX: usize = 1024;
const SPARE_SLOTS: usize = 16; // = 1 << (64 - 60), the hash's range

/// One slot per cache line, so threads on different slots do not contend.
#[repr(align(64))]
struct SpareSlot(AtomicPtr<mcrs_value>);

static SPARE: [SpareSlot; SPARE_SLOTS] =
    [const { SpareSlot(AtomicPtr::new(std::ptr::null_mut())) }; SPARE_SLOTS];

/// The calling thread's slot, picked by its thread pointer (`pthread_self`,
/// the address of the thread's control block: one load on Linux, and
/// distinct per thread). The address of a stack variable was used before:
/// frames of one thread a few KiB apart (a value made deep in an event
/// loop's run, freed in a callback) could straddle the boundary the hash
/// cut at and land on different slots every time.
#[inline(always)]
fn spare_slot() -> &'static AtomicPtr<mcrs_value> {
    let tp = thread_pointer();
    // Fibonacci hashing: the top 4 bits of the product mix all of tp's bits
    let h = tp.wrapping_mul(0x9e37_79b9_7f4a_7c15) >> 60;
    &SPARE[h % SPARE_SLOTS].0
}

/// The calling thread's thread pointer. On x86-64 Linux the first word of
/// the thread control block points to itself (`%fs:0`, what `pthread_self`
/// returns), read here without a call through the PLT.
#[inline(always)]
fn thread_pointer() -> usize {
    #[cfg(all(target_arch = "x86_64", target_os = "linux"))]
    {
        let tp: usize;
        // SAFETY: reads the TCB's self pointer, always mapped on Linux x86-64.
        unsafe {
            std::arch::asm!("mov {}, fs:0", out(reg) tp, options(nostack, readonly, preserves_flags))
        };
        tp
    }
    #[cfg(not(all(target_arch = "x86_64", target_os = "linux")))]
    {
        // SAFETY: pthread_self has no preconditions.
        unsafe { libc::pthread_self() as usize }
    }
}

impl OwnedValue {
    /// Copies `data` into a new value.
    pub fn new(data: &[u8], flags: u32, cas: Option<u64>) -> OwnedValue {
        // the swap makes this thread the only owner of a kept block
        let kept = spare_slot().swap(std::ptr::null_mut(), Ordering::Acquire);
        // SAFETY: a kept block's header was written by `new`.
        let (hdr, cap) = match NonNull::new(kept).map(|h| (h, unsafe { h.as_ref() }.cap)) {
            Some((h, cap)) if cap >= data.len() => (h, cap),
            _ => {
                if !kept.is_null() {
                    // SAFETY: a block taken from the slot is ours to free.
                    unsafe { libc::free(kept.cast()) };
                }
                (Self::alloc(data.len()), data.len())
            }
        };
        // SAFETY: the block holds a header followed by cap >= data.len() bytes.
        unsafe {
            let bytes = hdr.as_ptr().cast::<u8>().add(size_of::<mcrs_value>());
            std::ptr::copy_nonoverlapping(data.as_ptr(), bytes, data.len());
            hdr.as_ptr().write(mcrs_value {
                data: bytes,
                len: data.len(),
                flags,
                cas: cas.unwrap_or(0),
                cap,
                ttl: TTL_UNKNOWN,
                last_access: -1,
                hit_before: -1,
            });
        }
        OwnedValue(hdr)
    }

    /// A block for a header and `cap` data bytes (header not yet written).
    fn alloc(cap: usize) -> NonNull<mcrs_value> {
        let size = size_of::<mcrs_value>() + cap;
        // SAFETY: malloc has no preconditions; its result is aligned for any
        // fundamental type, which covers the header.
        let base = unsafe { libc::malloc(size) };
        match NonNull::new(base.cast::<mcrs_value>()) {
            Some(h) => h,
            None => {
                let layout =
                    Layout::from_size_align(size, align_of::<mcrs_value>()).expect("layout");
                handle_alloc_error(layout)
            }
        }
    }

    /// Records what a meta read told about the item: TTL left (-1: none),
    /// seconds since the last access and whether it was hit before.
    pub fn set_meta(
        &mut self,
        ttl: Option<i64>,
        last_access: Option<u64>,
        hit_before: Option<bool>,
    ) {
        let clamp = |n: i64| n.clamp(-1, i64::from(i32::MAX)) as i32;
        // SAFETY: the header was written by `new` and is owned by self.
        let v = unsafe { self.0.as_mut() };
        v.ttl = ttl.map_or(TTL_UNKNOWN, clamp);
        v.last_access = last_access.map_or(-1, |n| clamp(n.min(i32::MAX as u64) as i64));
        v.hit_before = hit_before.map_or(-1, i8::from);
    }

    pub fn into_raw(self) -> *mut mcrs_value {
        let p = self.0.as_ptr();
        std::mem::forget(self);
        p
    }

    /// Keeps the block for this thread's next value when it is small (a
    /// block kept in the slot before is freed), else frees it.
    ///
    /// # Safety
    /// `p` came from `into_raw` and is not used afterwards.
    pub unsafe fn free_raw(p: *mut mcrs_value) {
        if (*p).cap <= SPARE_MAX {
            let old = spare_slot().swap(p, Ordering::AcqRel);
            if !old.is_null() {
                libc::free(old.cast());
            }
            return;
        }
        libc::free(p.cast());
    }
}

impl Drop for OwnedValue {
    fn drop(&mut self) {
        // SAFETY: the pointer came from `new` and is freed once.
        unsafe { Self::free_raw(self.0.as_ptr()) }
    }
}

/// The outcome of one key of a multi-key command.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeyStatus {
    /// Done: a hit for a read, stored / deleted / touched for a write.
    Ok,
    /// A miss (reads, delete, touch).
    NotFound,
    /// A write the server did not store (set_many: e.g. too large).
    NotStored,
    /// The key's server failed: index into [`KeyResults::errors`].
    Failed(u32),
}

/// Per-key outcomes of a multi-key command: `status[i]` belongs to the
/// caller's key i; a failed key points at the failure of its server (one
/// error per failing server, shared by its keys).
#[derive(Debug, Default)]
pub struct KeyResults {
    pub status: Vec<KeyStatus>,
    pub errors: Vec<Error>,
}

impl KeyResults {
    /// `n` keys, all with outcome `initial`.
    pub fn new(n: usize, initial: KeyStatus) -> KeyResults {
        KeyResults {
            status: vec![initial; n],
            errors: Vec::new(),
        }
    }

    /// Marks `keys` as failed with `err`.
    pub fn fail(&mut self, keys: impl IntoIterator<Item = usize>, err: Error) {
        let at = self.errors.len() as u32;
        self.errors.push(err);
        for i in keys {
            self.status[i] = KeyStatus::Failed(at);
        }
    }

    /// The failure of key `i`, if its server failed.
    pub fn error(&self, i: usize) -> Option<&Error> {
        match self.status.get(i)? {
            KeyStatus::Failed(e) => self.errors.get(*e as usize),
            _ => None,
        }
    }

    /// Number of keys whose server failed.
    pub fn failed(&self) -> usize {
        self.status
            .iter()
            .filter(|s| matches!(s, KeyStatus::Failed(_)))
            .count()
    }

    /// Keys whose outcome is `want`.
    pub fn count(&self, want: KeyStatus) -> usize {
        self.status.iter().filter(|&&s| s == want).count()
    }

    /// With `ignore_exc`, failed keys become `as_status` (misses for reads,
    /// not stored for writes) and the failures are forgotten.
    pub fn forgive(&mut self, as_status: KeyStatus) {
        for s in &mut self.status {
            if let KeyStatus::Failed(_) = s {
                *s = as_status;
            }
        }
        self.errors.clear();
    }

    /// The whole command's result: Ok when no key failed, the failure
    /// itself when every key failed (the first server's error), otherwise
    /// `Partial`.
    pub fn summary(&self) -> Summary<'_> {
        let failed = self.failed();
        if failed == 0 {
            Summary::Complete
        } else if failed == self.status.len() {
            Summary::Failed(&self.errors[0])
        } else {
            Summary::Partial
        }
    }
}

/// See [`KeyResults::summary`].
#[derive(Debug)]
pub enum Summary<'a> {
    Complete,
    Partial,
    Failed(&'a Error),
}

/// The results of a multi-key read: entry i belongs to the caller's key i,
/// with its outcome (hit, miss, or the failure of its server). Owned by the
/// caller, freed with `mcrs_values_free` (which frees every value in it).
pub struct mcrs_values {
    /// owns every hit's bytes, back to back; never touched once entries point in
    _arena: Vec<u8>,
    pub(crate) entries: Vec<mcrs_value>,
    pub(crate) results: KeyResults,
}

/// A name Rust code reads better.
pub type Values = mcrs_values;

impl mcrs_values {
    /// Number of keys asked for.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Key i's value, when it was a hit.
    pub fn get(&self, i: usize) -> Option<&mcrs_value> {
        match self.results.status.get(i)? {
            KeyStatus::Ok => Some(&self.entries[i]),
            _ => None,
        }
    }

    /// The per-key outcomes.
    pub fn results(&self) -> &KeyResults {
        &self.results
    }
}

impl mcrs_value {
    /// The value's bytes.
    pub fn data(&self) -> &[u8] {
        if self.len == 0 {
            return &[];
        }
        // SAFETY: data points to len bytes owned by the value (or its list).
        unsafe { std::slice::from_raw_parts(self.data, self.len) }
    }

    pub fn flags(&self) -> u32 {
        self.flags
    }

    /// The cas unique; 0 unless read with gets/gats.
    pub fn cas(&self) -> u64 {
        self.cas
    }

    /// Meta reads: seconds of TTL left, -1 when the item does not expire;
    /// -2 when unknown (read with a classic command).
    pub fn ttl(&self) -> i64 {
        i64::from(self.ttl)
    }

    /// Meta reads: whether the item had been read before; None when unknown.
    pub fn hit_before(&self) -> Option<bool> {
        (self.hit_before >= 0).then_some(self.hit_before == 1)
    }
}

impl std::ops::Deref for OwnedValue {
    type Target = mcrs_value;
    fn deref(&self) -> &mcrs_value {
        // SAFETY: the block's header was written by `new` and lives as long as self.
        unsafe { self.0.as_ref() }
    }
}

impl std::fmt::Debug for mcrs_values {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Values")
            .field("len", &self.len())
            .field("results", &self.results)
            .finish()
    }
}

impl std::fmt::Debug for OwnedValue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OwnedValue")
            .field("data", &String::from_utf8_lossy(self.data()))
            .field("flags", &self.flags)
            .field("cas", &self.cas)
            .finish()
    }
}

// SAFETY: an OwnedValue is the only owner of its block; nothing in it is
// tied to a thread (blocks are freed with libc's free, valid on any thread).
unsafe impl Send for OwnedValue {}
// SAFETY: a values list owns its arena; its pointers only point into it.
unsafe impl Send for mcrs_values {}

/// Collects hits into one arena, then fixes up the pointers.
pub struct ValuesBuilder {
    arena: Vec<u8>,
    /// (offset, len, flags, cas) per hit, by key index
    slots: Vec<(usize, usize, u32, u64)>,
    results: KeyResults,
}

impl ValuesBuilder {
    /// `n` keys, all misses until a hit or a failure is recorded.
    pub fn new(n: usize) -> ValuesBuilder {
        ValuesBuilder {
            arena: Vec::new(),
            slots: vec![(0, 0, 0, 0); n],
            results: KeyResults::new(n, KeyStatus::NotFound),
        }
    }

    pub fn hit(&mut self, i: usize, data: &[u8], flags: u32, cas: Option<u64>) {
        let off = self.arena.len();
        self.arena.extend_from_slice(data);
        self.slots[i] = (off, data.len(), flags, cas.unwrap_or(0));
        self.results.status[i] = KeyStatus::Ok;
    }

    /// Records that `keys` are unknown because their server failed.
    pub fn fail(&mut self, keys: impl IntoIterator<Item = usize>, err: Error) {
        self.results.fail(keys, err);
    }

    pub fn results_mut(&mut self) -> &mut KeyResults {
        &mut self.results
    }

    pub fn finish(self) -> mcrs_values {
        let base = self.arena.as_ptr();
        let entries = self
            .slots
            .iter()
            .map(|&(off, len, flags, cas)| mcrs_value {
                // SAFETY: off <= arena.len(); the arena is not touched again.
                data: unsafe { base.add(off) },
                len,
                flags,
                cas,
                cap: 0,
                ttl: TTL_UNKNOWN,
                last_access: -1,
                hit_before: -1,
            })
            .collect();
        mcrs_values {
            _arena: self.arena,
            entries,
            results: self.results,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(v: &OwnedValue, data: &[u8], flags: u32, cas: u64) {
        // SAFETY: v is alive.
        let h = unsafe { v.0.as_ref() };
        // SAFETY: data points to len bytes inside the block.
        let got = unsafe { std::slice::from_raw_parts(h.data, h.len) };
        assert_eq!((got, h.flags, h.cas), (data, flags, cas));
        assert!(h.cap >= h.len);
    }

    #[test]
    fn reused_blocks_hold_exactly_the_new_value() {
        // sizes that shrink and grow across reuse, around SPARE_MAX
        let sizes = [100, 3, 0, 500, 1, SPARE_MAX, SPARE_MAX + 1, 64, 2000, 7];
        for round in 0..3u8 {
            for (i, &n) in sizes.iter().enumerate() {
                let data: Vec<u8> = (0..n).map(|j| (j as u8) ^ round ^ i as u8).collect();
                let v = OwnedValue::new(&data, i as u32, Some(n as u64).filter(|_| i % 2 == 0));
                check(&v, &data, i as u32, if i % 2 == 0 { n as u64 } else { 0 });
                // a value handed to C and freed through the C call
                // SAFETY: into_raw hands the block over; freed once.
                unsafe { OwnedValue::free_raw(v.into_raw()) };
            }
        }
    }

    #[test]
    fn values_made_and_freed_on_many_threads_stay_intact() {
        std::thread::scope(|s| {
            for t in 0..8u8 {
                s.spawn(move || {
                    let mut held = Vec::new();
                    for i in 0..2000usize {
                        let n = (i * 37 + t as usize) % 300;
                        let data = vec![t.wrapping_add(i as u8); n];
                        let v = OwnedValue::new(&data, t.into(), None);
                        check(&v, &data, t.into(), 0);
                        // keep some alive for a while so blocks change hands out of order
                        held.push((v, data));
                        if held.len() > 3 {
                            let (old, d) = held.remove(i % 3);
                            check(&old, &d, t.into(), 0);
                        }
                    }
                });
            }
        });
    }
}
