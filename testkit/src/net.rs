//! Free loopback ports for test servers.

use std::net::{Ipv4Addr, TcpListener};

use crate::{Result, io_error};

/// Asks the kernel for a free TCP port on 127.0.0.1. The port is released
/// before returning, so a server started right after can bind it; callers
/// retry on the rare collision.
pub fn free_port() -> Result<u16> {
    let listener =
        TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).map_err(io_error("binding a free port"))?;
    let port = listener
        .local_addr()
        .map_err(io_error("reading a bound port"))?
        .port();
    Ok(port)
}
