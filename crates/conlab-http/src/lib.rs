//! # conlab-http: HTTP/1.1 for the lecture's Apache-vs-nginx experiment
//!
//! The lecture: Apache gives each request a process or a thread; nginx runs an event loop
//! per worker and "copes with around four times more requests per second". To make the
//! architecture the only variable, every conlab server model shares one HTTP/1.1
//! implementation, which starts here: [`codec`] turns bytes into requests with no sockets and
//! no threads (so it can be tested and fuzzed alone), and [`response`] writes responses into
//! a buffer, many pipelined answers per `write`.
//!
//! The server models (`prefork`, `threadpool`, `thread-per-conn`, `event`) and the load
//! generator build on these two modules; [`tls`] gives the client HTTPS and [`extract`] reads
//! what a scraper takes out of a page; [`frontier`] is the crawl's queue of pages.

pub mod client;
pub mod codec;
pub mod counters;
pub mod extract;
pub mod fetch;
pub mod frontier;
pub mod load;
pub mod response;
pub mod server;
pub mod site;
pub mod tls;

pub use codec::{CodecError, Limits, Method, Parsed, Request, parse};
pub use response::{DateCache, Response, write_response};
pub use server::ready::Ready;
pub use server::{Server, ServerConfig, ServerModel};
pub use site::Site;
