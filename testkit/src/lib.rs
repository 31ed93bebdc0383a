//! The one test harness every crate's integration tests share: throwaway
//! databases on both back ends ([`TestDb`]), the test MariaDB reached
//! directly ([`mysql_exec`], [`mysql_dump`]), a private MariaDB server a
//! test may stop and restart ([`PrivateMariaDb`]), and polling helpers.
//! Test-only: panics on failure, which is what a test wants.

mod db;
mod mysql;
mod private;

pub use db::{actor, TestDb};
pub use mysql::{
    mysql_base, mysql_dump, mysql_exec, try_mysql_exec, unique_database_name, with_database,
};
pub use private::PrivateMariaDb;

use std::time::{Duration, Instant};

/// Polls `f` until it returns true or `limit` passes; returns the time taken.
pub fn eventually(limit: Duration, mut f: impl FnMut() -> bool) -> Option<Duration> {
    let start = Instant::now();
    loop {
        if f() {
            return Some(start.elapsed());
        }
        if start.elapsed() > limit {
            return None;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// A TCP port on 127.0.0.1 with nothing listening.
#[must_use]
pub fn closed_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    listener.local_addr().expect("addr").port()
}
