//! One argument check and one result mapping per command shape, shared by
//! the blocking exports (`mcrs_client_*`) and the event-loop exports
//! (`mcrs_loop_*`): C arguments become a [`Request`], an [`Outcome`](crate::request::Outcome)
//! becomes a status and the shape's outputs.

use std::ffi::{c_char, CStr, CString};

use super::bytes;
use super::client::{mcrs_noreply, MCRS_NOREPLY_DEFAULT, MCRS_NOREPLY_OFF, MCRS_NOREPLY_ON};
use super::status::{fail, mcrs_status, mcrs_status::*, outcome, set_last_error};
use super::value::mcrs_stats;
use crate::error::Error;
use crate::protocol::{Retrieve, StoreCmd};
use crate::request::{Ack, Counter, Request};
use crate::value::{mcrs_value, mcrs_values, KeyResults, KeyStatus, OwnedValue, Summary, Values};

/// An argument error: its status, with the detail already recorded.
pub(crate) type Arg<T> = Result<T, mcrs_status>;

fn null(name: &str) -> mcrs_status {
    set_last_error(format!("argument `{name}` is NULL"));
    MCRS_STATUS_NULL_POINTER
}

/// A byte argument: NULL only with length 0.
pub(crate) fn arg_bytes<'a>(p: *const u8, len: usize, name: &str) -> Arg<&'a [u8]> {
    // SAFETY: the caller passes len readable bytes at p.
    unsafe { bytes(p, len) }.ok_or_else(|| null(name))
}

/// A required key.
pub(crate) fn arg_key<'a>(p: *const u8, len: usize) -> Arg<&'a [u8]> {
    if p.is_null() {
        return Err(null("key"));
    }
    arg_bytes(p, len, "key")
}

/// `n` keys given as parallel pointer/length arrays (NULL arrays only when
/// n is 0).
pub(crate) fn arg_keys<'a>(
    keys: *const *const u8,
    lens: *const usize,
    n: usize,
) -> Arg<Vec<&'a [u8]>> {
    if n == 0 {
        return Ok(Vec::new());
    }
    let bad = || {
        set_last_error("argument `keys`, `key_lens` or one of the keys is NULL");
        MCRS_STATUS_NULL_POINTER
    };
    if keys.is_null() || lens.is_null() {
        return Err(bad());
    }
    // SAFETY: the caller passes n entries in each array.
    let (ptrs, lens) = unsafe {
        (
            std::slice::from_raw_parts(keys, n),
            std::slice::from_raw_parts(lens, n),
        )
    };
    ptrs.iter()
        .zip(lens)
        // SAFETY: key i has lens[i] readable bytes.
        .map(|(&p, &l)| {
            if p.is_null() {
                None
            } else {
                unsafe { bytes(p, l) }
            }
        })
        .collect::<Option<Vec<_>>>()
        .ok_or_else(bad)
}

pub(crate) fn arg_noreply(n: mcrs_noreply) -> Arg<Option<bool>> {
    match n {
        MCRS_NOREPLY_DEFAULT => Ok(None),
        MCRS_NOREPLY_ON => Ok(Some(true)),
        MCRS_NOREPLY_OFF => Ok(Some(false)),
        other => Err(fail(Error::InvalidArgument(format!(
            "unknown noreply value {other}"
        )))),
    }
}

/// get / gets / gat / gats
pub(crate) fn retrieve<'a>(key: *const u8, key_len: usize, cmd: Retrieve) -> Arg<Request<'a>> {
    Ok(Request::Retrieve {
        cmd,
        key: arg_key(key, key_len)?,
    })
}

/// get_many / gets_many
pub(crate) fn retrieve_many<'a>(
    keys: *const *const u8,
    lens: *const usize,
    n: usize,
    cmd: Retrieve,
) -> Arg<Request<'a>> {
    Ok(Request::RetrieveMany {
        cmd,
        keys: arg_keys(keys, lens, n)?,
    })
}

/// The arguments of set, add, replace, append, prepend and cas.
pub(crate) struct StoreArgs {
    pub key: *const u8,
    pub key_len: usize,
    pub value: *const u8,
    pub value_len: usize,
    pub flags: u32,
    pub exptime: u32,
    pub noreply: mcrs_noreply,
}

/// `StoreArgs`, checked.
pub(crate) struct Store<'a> {
    pub key: &'a [u8],
    pub value: &'a [u8],
    pub flags: u32,
    pub exptime: u32,
    pub noreply: Option<bool>,
}

impl StoreArgs {
    /// The checked arguments (the blocking set family uses them as they
    /// are: its hot path builds no `Request`).
    #[inline(always)]
    pub(crate) fn check<'a>(self) -> Arg<Store<'a>> {
        Ok(Store {
            key: arg_key(self.key, self.key_len)?,
            value: arg_bytes(self.value, self.value_len, "value")?,
            flags: self.flags,
            exptime: self.exptime,
            noreply: arg_noreply(self.noreply)?,
        })
    }
}

/// set / add / replace / append / prepend
pub(crate) fn store<'a>(cmd: StoreCmd, a: StoreArgs) -> Arg<Request<'a>> {
    let s = a.check()?;
    Ok(Request::Store {
        cmd,
        key: s.key,
        value: s.value,
        flags: s.flags,
        exptime: s.exptime,
        noreply: s.noreply,
    })
}

pub(crate) fn cas<'a>(a: StoreArgs, cas: u64) -> Arg<Request<'a>> {
    let s = a.check()?;
    Ok(Request::Cas {
        key: s.key,
        value: s.value,
        flags: s.flags,
        exptime: s.exptime,
        cas,
        noreply: s.noreply,
    })
}

pub(crate) fn delete<'a>(
    key: *const u8,
    key_len: usize,
    noreply: mcrs_noreply,
) -> Arg<Request<'a>> {
    Ok(Request::Delete {
        key: arg_key(key, key_len)?,
        noreply: arg_noreply(noreply)?,
    })
}

pub(crate) fn touch<'a>(
    key: *const u8,
    key_len: usize,
    exptime: u32,
    noreply: mcrs_noreply,
) -> Arg<Request<'a>> {
    Ok(Request::Touch {
        key: arg_key(key, key_len)?,
        exptime,
        noreply: arg_noreply(noreply)?,
    })
}

pub(crate) fn arith<'a>(
    incr: bool,
    key: *const u8,
    key_len: usize,
    delta: u64,
    noreply: mcrs_noreply,
) -> Arg<Request<'a>> {
    Ok(Request::Arith {
        incr,
        key: arg_key(key, key_len)?,
        delta,
        noreply: arg_noreply(noreply)?,
    })
}

/// The arguments of set_many.
pub(crate) struct SetManyArgs {
    pub keys: *const *const u8,
    pub key_lens: *const usize,
    pub values: *const *const u8,
    pub value_lens: *const usize,
    pub flags: *const u32,
    pub n: usize,
    pub exptime: u32,
    pub noreply: mcrs_noreply,
}

pub(crate) fn set_many<'a>(a: SetManyArgs) -> Arg<Request<'a>> {
    let keys = arg_keys(a.keys, a.key_lens, a.n)?;
    let mut items = Vec::with_capacity(a.n);
    if a.n > 0 {
        if a.values.is_null() || a.value_lens.is_null() || a.flags.is_null() {
            return Err(null("values`, `value_lens` or `flags"));
        }
        // SAFETY: checked non-NULL; the caller passes n entries.
        let (vp, vl, fl) = unsafe {
            (
                std::slice::from_raw_parts(a.values, a.n),
                std::slice::from_raw_parts(a.value_lens, a.n),
                std::slice::from_raw_parts(a.flags, a.n),
            )
        };
        for i in 0..a.n {
            let v = arg_bytes(vp[i], vl[i], "values[i]")?;
            items.push((keys[i], v, fl[i]));
        }
    }
    Ok(Request::SetMany {
        items,
        exptime: a.exptime,
        noreply: arg_noreply(a.noreply)?,
    })
}

pub(crate) fn delete_many<'a>(
    keys: *const *const u8,
    lens: *const usize,
    n: usize,
    noreply: mcrs_noreply,
) -> Arg<Request<'a>> {
    Ok(Request::DeleteMany {
        keys: arg_keys(keys, lens, n)?,
        noreply: arg_noreply(noreply)?,
    })
}

pub(crate) fn touch_many<'a>(
    keys: *const *const u8,
    lens: *const usize,
    n: usize,
    exptime: u32,
    noreply: mcrs_noreply,
) -> Arg<Request<'a>> {
    Ok(Request::TouchMany {
        keys: arg_keys(keys, lens, n)?,
        exptime,
        noreply: arg_noreply(noreply)?,
    })
}

pub(crate) fn flush_all<'a>(delay: u32, noreply: mcrs_noreply) -> Arg<Request<'a>> {
    Ok(Request::FlushAll {
        delay,
        noreply: arg_noreply(noreply)?,
    })
}

pub(crate) fn stats<'a>(args: *const c_char) -> Arg<Request<'a>> {
    if args.is_null() {
        return Err(null("args"));
    }
    // SAFETY: args is a NUL-terminated string.
    match unsafe { CStr::from_ptr(args) }.to_str() {
        Ok(args) => Ok(Request::Stats { args }),
        Err(_) => Err(fail(Error::InvalidArgument(
            "stats arguments are not UTF-8".into(),
        ))),
    }
}

// ---- outcomes -----------------------------------------------------------------

/// A retrieval: the value (the caller's) or NULL.
pub(crate) fn value_out(r: Result<Option<OwnedValue>, Error>) -> (mcrs_status, *mut mcrs_value) {
    match r {
        Ok(Some(v)) => (MCRS_STATUS_OK, v.into_raw()),
        Ok(None) => (outcome(MCRS_STATUS_NOT_FOUND), std::ptr::null_mut()),
        Err(e) => (fail(e), std::ptr::null_mut()),
    }
}

/// A write, delete, touch or flush.
pub(crate) fn ack_out(r: Result<Ack, Error>) -> mcrs_status {
    match r {
        Ok(Ack::Done) => MCRS_STATUS_OK,
        Ok(Ack::NotFound) => outcome(MCRS_STATUS_NOT_FOUND),
        Ok(Ack::NotStored) => outcome(MCRS_STATUS_NOT_STORED),
        Ok(Ack::Exists) => outcome(MCRS_STATUS_EXISTS),
        Err(e) => fail(e),
    }
}

/// incr/decr: the new value when there is one.
pub(crate) fn counter_out(r: Result<Counter, Error>) -> (mcrs_status, Option<u64>) {
    match r {
        Ok(Counter::Value(v)) => (MCRS_STATUS_OK, Some(v)),
        Ok(Counter::Sent) => (MCRS_STATUS_OK, None),
        Ok(Counter::NotFound) => (outcome(MCRS_STATUS_NOT_FOUND), None),
        Err(e) => (fail(e), None),
    }
}

/// The status of one key's outcome.
pub(crate) fn key_status(res: &KeyResults, i: usize) -> mcrs_status {
    match res.status.get(i) {
        Some(KeyStatus::Ok) => MCRS_STATUS_OK,
        Some(KeyStatus::NotFound) => MCRS_STATUS_NOT_FOUND,
        Some(KeyStatus::NotStored) => MCRS_STATUS_NOT_STORED,
        Some(KeyStatus::Failed(_)) => res.error(i).map_or(MCRS_STATUS_PANIC, mcrs_status::from),
        None => MCRS_STATUS_INVALID_ARGUMENT,
    }
}

/// The status of a many-key command from its per-key outcomes: OK; PARTIAL
/// when some keys' servers failed (the detail is the first failure); the
/// failure itself when every key failed; NOT_STORED when some writes were
/// refused and none failed.
fn many_status(res: &KeyResults) -> mcrs_status {
    match res.summary() {
        Summary::Complete if res.count(KeyStatus::NotStored) > 0 => outcome(MCRS_STATUS_NOT_STORED),
        Summary::Complete => MCRS_STATUS_OK,
        Summary::Partial => {
            set_last_error(format!(
                "{} of {} keys failed: {}",
                res.failed(),
                res.status.len(),
                res.errors[0]
            ));
            MCRS_STATUS_PARTIAL
        }
        Summary::Failed(e) => {
            set_last_error(e.to_string());
            mcrs_status::from(e)
        }
    }
}

/// A many-key read: the list (NULL unless OK or PARTIAL).
pub(crate) fn values_out(r: Result<Values, Error>) -> (mcrs_status, *mut mcrs_values) {
    match r {
        Ok(vs) => match many_status(vs.results()) {
            s @ (MCRS_STATUS_OK | MCRS_STATUS_PARTIAL) => (s, Box::into_raw(Box::new(vs))),
            s => (s, std::ptr::null_mut()),
        },
        Err(e) => (fail(e), std::ptr::null_mut()),
    }
}

/// A many-key write: its status and each key's.
pub(crate) fn keys_out(r: Result<KeyResults, Error>) -> (mcrs_status, Vec<mcrs_status>) {
    match r {
        Ok(res) => {
            let per_key = (0..res.status.len()).map(|i| key_status(&res, i)).collect();
            (many_status(&res), per_key)
        }
        Err(e) => (fail(e), Vec::new()),
    }
}

/// `version`: the text as a C string.
pub(crate) fn version_out(r: Result<String, Error>) -> (mcrs_status, Option<CString>) {
    match r {
        Ok(v) => (
            MCRS_STATUS_OK,
            Some(CString::new(v.replace('\0', "?")).unwrap_or_default()),
        ),
        Err(e) => (fail(e), None),
    }
}

/// `stats`: the list (the caller's), or NULL.
pub(crate) fn stats_out(
    r: Result<Vec<(String, String, String)>, Error>,
) -> (mcrs_status, *mut mcrs_stats) {
    match r {
        Ok(stats) => {
            let cstr = |s: String| CString::new(s.replace('\0', "?")).unwrap_or_default();
            let entries = stats
                .into_iter()
                .map(|(srv, n, v)| [cstr(srv), cstr(n), cstr(v)])
                .collect();
            (MCRS_STATUS_OK, Box::into_raw(Box::new(mcrs_stats(entries))))
        }
        Err(e) => (fail(e), std::ptr::null_mut()),
    }
}
