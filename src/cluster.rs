//! The server set: which server a key goes to, and (with several servers)
//! which servers are currently in the ring.

use std::time::Duration;

use crate::conn::{ConnOptions, ServerAddr};
use crate::error::{Error, Result};
use crate::pool::Pool;
use crate::ring::{Distribution, NodeSpec, Ring};

/// One configured server.
#[derive(Clone, Debug)]
pub struct ServerSpec {
    pub addr: ServerAddr,
    pub weight: u32,
}

impl ServerSpec {
    fn node(&self) -> NodeSpec {
        let (host, port) = match &self.addr {
            ServerAddr::Tcp { host, port } => (host.clone(), *port),
            ServerAddr::Unix(p) => (p.to_string_lossy().into_owned(), 0),
        };
        NodeSpec {
            id: self.addr.node_id(),
            host,
            port,
            weight: self.weight,
        }
    }
}

/// Pool sizing shared by every server.
#[derive(Clone, Debug)]
pub struct PoolOptions {
    pub max_size: usize,
    pub idle_timeout: Option<Duration>,
}

pub struct Server {
    pub spec: ServerSpec,
    pub pool: Pool,
}

pub struct Cluster {
    servers: Vec<Server>,
    ring: Option<Ring>,
}

impl Cluster {
    pub fn new(
        specs: &[ServerSpec],
        dist: Distribution,
        conn: &ConnOptions,
        pool: &PoolOptions,
    ) -> Result<Cluster> {
        if specs.is_empty() {
            return Err(Error::NoServers);
        }
        let servers: Vec<Server> = specs
            .iter()
            .map(|s| Server {
                spec: s.clone(),
                pool: Pool::new(
                    s.addr.clone(),
                    conn.clone(),
                    pool.max_size,
                    pool.idle_timeout,
                ),
            })
            .collect();
        // With one server there is nothing to choose: no ring, no hashing.
        let ring = (servers.len() > 1).then(|| {
            let nodes: Vec<NodeSpec> = specs.iter().map(ServerSpec::node).collect();
            Ring::new(dist, &nodes)
        });
        Ok(Cluster { servers, ring })
    }

    pub fn servers(&self) -> &[Server] {
        &self.servers
    }

    /// Index of the server that owns `key` (the caller's key, before the prefix).
    pub fn route(&self, key: &[u8]) -> Result<usize> {
        match &self.ring {
            None => Ok(0),
            Some(r) => r.pick(key).ok_or(Error::NoServers),
        }
    }
}
