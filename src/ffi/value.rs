//! Results handed to C: one value, a list of values, a list of stats.

use std::alloc::{handle_alloc_error, Layout};
use std::ffi::{c_char, CString};
use std::mem::{align_of, size_of};
use std::ptr::NonNull;
use std::sync::atomic::{AtomicPtr, Ordering};

use super::status::{fail, mcrs_status, mcrs_status::*};
use super::{check_null, ffi_boundary, ffi_boundary_value};
use crate::error::Error;

/// An item read from the server: its bytes, flags and (for gets/gats) cas
/// unique. A value returned by get/gets/gat/gats is owned by the caller and
/// freed with `mcrs_value_free`; a value obtained from `mcrs_values_get` is
/// borrowed from its list and must not be freed. Immutable, so safe to read
/// from several threads.
pub struct mcrs_value {
    data: *const u8,
    len: usize,
    flags: u32,
    cas: u64,
    /// data bytes the block has room for (owned values; 0 in a list)
    cap: usize,
}

/// An owned `mcrs_value` in one allocation: the header, then the bytes.
/// Dropping it frees the allocation; `into_raw` hands it to C. It is made
/// with libc's malloc directly (aligned for the header): one call on the get
/// path instead of the Rust allocator's layers over the same malloc.
///
/// The usual loop of get, use, free would pay a malloc/free pair per value
/// (about 130 instructions of glibc's, a tenth of a get). Instead a freed
/// block of at most `SPARE_MAX` data bytes goes into a spare slot and the next
/// value made on that thread reuses it. Slots are picked by the address of
/// the stack the call runs on, so threads (each on its own stack) mostly use
/// different slots and cache lines; a shared slot is still correct, because
/// a block is taken and put with an atomic swap, which makes the taker its
/// only owner. (Thread-local storage would cost a `__tls_get_addr` call per
/// access in a shared library.) Kept blocks stay until reused or replaced:
/// at most `SPARE_SLOTS` blocks of `SPARE_MAX` bytes.
pub(crate) struct OwnedValue(NonNull<mcrs_value>);

/// Largest data capacity a kept block may have.
const SPARE_MAX: usize = 1024;
const SPARE_SLOTS: usize = 16; // = 1 << (64 - 60), the hash's range

/// One slot per cache line, so threads on different slots do not contend.
#[repr(align(64))]
struct SpareSlot(AtomicPtr<mcrs_value>);

static SPARE: [SpareSlot; SPARE_SLOTS] =
    [const { SpareSlot(AtomicPtr::new(std::ptr::null_mut())) }; SPARE_SLOTS];

/// The calling thread's slot: thread stacks are at least 64 KiB apart and
/// usually megabytes, so bits 16 and up of a stack address tell them apart.
#[inline(always)]
fn spare_slot() -> &'static AtomicPtr<mcrs_value> {
    let marker = 0u8;
    let sp = std::hint::black_box(&marker) as *const u8 as usize;
    // Fibonacci hashing: the top 4 bits of the product mix all the bits above 16
    let h = (sp >> 16).wrapping_mul(0x9e37_79b9_7f4a_7c15) >> 60;
    &SPARE[h % SPARE_SLOTS].0
}

impl OwnedValue {
    /// Copies `data` into a new value.
    pub(crate) fn new(data: &[u8], flags: u32, cas: Option<u64>) -> OwnedValue {
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

    pub(crate) fn into_raw(self) -> *mut mcrs_value {
        let p = self.0.as_ptr();
        std::mem::forget(self);
        p
    }

    /// Keeps the block for this thread's next value when it is small (a
    /// block kept in the slot before is freed), else frees it.
    ///
    /// # Safety
    /// `p` came from `into_raw` and is not used afterwards.
    unsafe fn free_raw(p: *mut mcrs_value) {
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

/// The results of a multi-key read: entry i belongs to the caller's key i.
/// Owned by the caller, freed with `mcrs_values_free` (which frees every
/// value in it).
pub struct mcrs_values {
    /// owns every hit's bytes, back to back; never touched once entries point in
    _arena: Vec<u8>,
    entries: Vec<mcrs_value>,
    present: Vec<bool>,
}

/// Collects hits into one arena, then fixes up the pointers.
pub(crate) struct ValuesBuilder {
    arena: Vec<u8>,
    /// (offset, len, flags, cas) per key; None for a miss
    slots: Vec<Option<(usize, usize, u32, u64)>>,
}

impl ValuesBuilder {
    pub(crate) fn new(n: usize) -> ValuesBuilder {
        ValuesBuilder {
            arena: Vec::new(),
            slots: vec![None; n],
        }
    }

    pub(crate) fn hit(&mut self, i: usize, data: &[u8], flags: u32, cas: Option<u64>) {
        let off = self.arena.len();
        self.arena.extend_from_slice(data);
        self.slots[i] = Some((off, data.len(), flags, cas.unwrap_or(0)));
    }

    pub(crate) fn finish(self) -> mcrs_values {
        let base = self.arena.as_ptr();
        let mut present = Vec::with_capacity(self.slots.len());
        let entries = self
            .slots
            .iter()
            .map(|slot| {
                present.push(slot.is_some());
                let (off, len, flags, cas) = slot.unwrap_or((0, 0, 0, 0));
                mcrs_value {
                    // SAFETY: off <= arena.len(); the arena is not touched again.
                    data: unsafe { base.add(off) },
                    len,
                    flags,
                    cas,
                    cap: 0,
                }
            })
            .collect();
        mcrs_values {
            _arena: self.arena,
            entries,
            present,
        }
    }
}

/// `stats` results: (server, name, value) entries. Owned by the caller, freed
/// with `mcrs_stats_free`.
pub struct mcrs_stats(pub(crate) Vec<[CString; 3]>);

/// The value's bytes (valid until the value is freed; not NUL-terminated).
/// NULL for a NULL value; a non-NULL pointer for an empty value.
#[no_mangle]
pub extern "C" fn mcrs_value_data(v: *const mcrs_value) -> *const u8 {
    ffi_boundary_value!(std::ptr::null(), {
        // SAFETY: a non-NULL v came from mcrs and is alive.
        match unsafe { v.as_ref() } {
            Some(v) => v.data,
            None => std::ptr::null(),
        }
    })
}

/// The value's length in bytes (0 for NULL).
#[no_mangle]
pub extern "C" fn mcrs_value_len(v: *const mcrs_value) -> usize {
    // SAFETY: as above.
    ffi_boundary_value!(0, { unsafe { v.as_ref() }.map_or(0, |v| v.len) })
}

/// The value's 32-bit flags (0 for NULL).
#[no_mangle]
pub extern "C" fn mcrs_value_flags(v: *const mcrs_value) -> u32 {
    // SAFETY: as above.
    ffi_boundary_value!(0, { unsafe { v.as_ref() }.map_or(0, |v| v.flags) })
}

/// The cas unique (0 when the value was not read with gets/gats, or for NULL).
#[no_mangle]
pub extern "C" fn mcrs_value_cas(v: *const mcrs_value) -> u64 {
    // SAFETY: as above.
    ffi_boundary_value!(0, { unsafe { v.as_ref() }.map_or(0, |v| v.cas) })
}

/// Frees a value returned by get/gets/gat/gats. NULL is ignored. Do not free a
/// value borrowed from an `mcrs_values`. A small value's memory is kept for
/// the next value read on the calling thread, so a value used after it was
/// freed may show another value's bytes (memory checkers see no error then).
/// Thread-safe: a value may be freed on any thread.
#[no_mangle]
pub extern "C" fn mcrs_value_free(v: *mut mcrs_value) {
    ffi_boundary_value!((), {
        if !v.is_null() {
            // SAFETY: v came from OwnedValue::into_raw and is freed once.
            unsafe { OwnedValue::free_raw(v) };
        }
    })
}

/// Number of entries (the number of keys asked for); 0 for NULL.
#[no_mangle]
pub extern "C" fn mcrs_values_len(vs: *const mcrs_values) -> usize {
    // SAFETY: a non-NULL vs came from mcrs and is alive.
    ffi_boundary_value!(0, {
        unsafe { vs.as_ref() }.map_or(0, |vs| vs.entries.len())
    })
}

/// Entry `i`: the value of the caller's key i, or NULL for a miss (or when i is
/// out of range, or vs is NULL). The value is borrowed from `vs`: valid until
/// `mcrs_values_free(vs)`; never free it on its own.
#[no_mangle]
pub extern "C" fn mcrs_values_get(vs: *const mcrs_values, i: usize) -> *const mcrs_value {
    ffi_boundary_value!(std::ptr::null(), {
        // SAFETY: as above.
        match unsafe { vs.as_ref() } {
            Some(vs) if vs.present.get(i) == Some(&true) => &vs.entries[i] as *const mcrs_value,
            _ => std::ptr::null(),
        }
    })
}

/// Frees a result list and every value in it. NULL is ignored.
#[no_mangle]
pub extern "C" fn mcrs_values_free(vs: *mut mcrs_values) {
    ffi_boundary_value!((), {
        if !vs.is_null() {
            // SAFETY: vs came from Box::into_raw in this crate and is freed once.
            drop(unsafe { Box::from_raw(vs) });
        }
    })
}

/// Number of (server, name, value) entries; 0 for NULL.
#[no_mangle]
pub extern "C" fn mcrs_stats_len(s: *const mcrs_stats) -> usize {
    // SAFETY: a non-NULL s came from mcrs and is alive.
    ffi_boundary_value!(0, { unsafe { s.as_ref() }.map_or(0, |s| s.0.len()) })
}

/// Entry `i` of a stats result: the server address, the stat name and its
/// value, as NUL-terminated strings borrowed from `s` (valid until
/// `mcrs_stats_free(s)`). `i` out of range gives MCRS_STATUS_INVALID_ARGUMENT.
#[no_mangle]
pub extern "C" fn mcrs_stats_get(
    s: *const mcrs_stats,
    i: usize,
    server: *mut *const c_char,
    name: *mut *const c_char,
    value: *mut *const c_char,
) -> mcrs_status {
    ffi_boundary!({
        check_null!(s, server, name, value);
        // SAFETY: checked non-NULL; s is alive.
        let s = unsafe { &*s };
        let Some([srv, n, v]) = s.0.get(i) else {
            return fail(Error::InvalidArgument(format!(
                "stats index {i} out of range (len {})",
                s.0.len()
            )));
        };
        // SAFETY: the out pointers were checked non-NULL.
        unsafe {
            *server = srv.as_ptr();
            *name = n.as_ptr();
            *value = v.as_ptr();
        }
        MCRS_STATUS_OK
    })
}

/// Frees a stats result. NULL is ignored.
#[no_mangle]
pub extern "C" fn mcrs_stats_free(s: *mut mcrs_stats) {
    ffi_boundary_value!((), {
        if !s.is_null() {
            // SAFETY: s came from Box::into_raw in this crate and is freed once.
            drop(unsafe { Box::from_raw(s) });
        }
    })
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
                mcrs_value_free(v.into_raw());
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
