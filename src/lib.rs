//! mcrs: a memcached client with a Rust core and a C ABI.
//!
//! Layers, top to bottom (each depends only on the ones below it):
//! - [`ffi`]: the C ABI (handles, status codes, panic boundary);
//! - [`client`]: the Rust API, [`Client`] and [`ClientBuilder`] ([`lease`]:
//!   meta get, leases and stale-while-revalidate on it; [`meta_many`]: the
//!   meta multi-get);
//! - [`cluster`]: the server set and key routing;
//! - [`ring`]: pure key -> server selection (rendezvous, ketama, xxh3);
//! - [`pool`]: bounded per-server connection pools;
//! - [`conn`]: one connection with deadlines on every read and write, with
//!   [`tls`] and [`auth`] (memcached `-Y`) on top when configured;
//! - [`protocol`]: sans-I/O encoding and parsing of the text protocol.

pub mod auth;
pub mod client;
pub mod cluster;
pub mod conn;
pub mod counters;
pub mod engine;
pub mod error;
pub mod ffi;
pub mod lease;
pub mod meta_many;
pub mod pool;
pub mod protocol;
pub mod request;
pub mod ring;
pub mod tls;
pub mod value;

pub use client::{CasOutcome, Client, ClientBuilder, Value};
pub use error::{Error, Result};
pub use lease::{Lease, LeaseState, MetaValue};
pub use meta_many::UseMeta;
pub use ring::Distribution;
