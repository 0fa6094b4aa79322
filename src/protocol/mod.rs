//! The memcached text and meta protocols, sans I/O ([`meta`] for `mg ms md ma mn`): [`encode`] turns requests into bytes,
//! [`parse`](mod@parse) turns bytes into responses. Nothing here touches a socket or a
//! clock, so every path is unit-tested (and fuzzed) on byte strings.

pub mod encode;
pub mod meta;
pub mod meta_fast;
pub mod meta_many;
pub mod parse;

pub use encode::{Retrieve, StoreCmd, WireKey};
pub use parse::{
    announced_value_len, parse, parse_get_reply, parse_plain_hit, parse_plain_value, FastGet,
    GetReply, ProtocolError, Response,
};
