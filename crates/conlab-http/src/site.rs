//! What every server model serves, so that the architecture is the only variable:
//!
//! | path | answer |
//! |---|---|
//! | `GET /hello` | `Hello, World!` (13 bytes) |
//! | `GET /static/PATH` | the file `PATH` under `--root` (never outside it) |
//! | `GET /cpu?n=N` | the sum of the primes <= N, as text: CPU-bound (n=1000 gives 76127) |
//! | `GET /sleep?ms=M` | waits M ms, then answers: slow I/O |
//! | `GET /site/N.html` | page N of a synthetic site of linked pages with `<title>`s (`?ms=M`: after M ms, a slow page) |
//! | `GET /stats` | JSON counters: requests, responses by status, connections |
//!
//! `HEAD` works wherever `GET` does; other methods get 405; unknown paths 404. A handler never
//! blocks by itself: `/sleep` returns [`Reply::After`] and each model waits its own way (a
//! blocking sleep on a thread, a timer on an event loop). `/cpu` computes inline, which is
//! the point: on an event loop it holds up every other connection of that loop.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::time::Duration;

use crate::codec::{Method, Request};
use crate::counters::CounterStore;
use crate::response::Response;

/// Pages in the synthetic site.
pub const SITE_PAGES: u64 = 1000;

/// The answer to a request: now, or after a wait.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    /// Send this now.
    Now(Response),
    /// Wait this long (without blocking an event loop), then send this.
    After(Duration, Response),
}

/// The endpoints and their counters, shared by every worker of a server.
pub struct Site {
    root: Option<PathBuf>,
    cpu: fn(u64) -> u64,
    model: String,
    /// One atomic per counter, so that counting takes no lock; shared across processes for
    /// prefork (see [`crate::counters`]).
    counters: CounterStore,
}

impl std::fmt::Debug for Site {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Site")
            .field("root", &self.root)
            .field("model", &self.model)
            .finish_non_exhaustive()
    }
}

/// The schema id of [`Stats`], the JSON of `GET /stats`.
pub const STATS_SCHEMA: &str = "conlab.serve-stats/1";

/// What `GET /stats` answers: the whole server's counters (every process of a prefork
/// server, whichever one answers).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Stats {
    /// [`STATS_SCHEMA`].
    pub schema: String,
    /// The model's name.
    pub model: String,
    /// Requests answered.
    pub requests: u64,
    /// Connections accepted.
    pub connections: u64,
    /// Responses by status code.
    pub status: BTreeMap<String, u64>,
}

impl Site {
    /// A site serving static files from `root` (if any); `cpu` is the work behind `/cpu`.
    pub fn new(root: Option<PathBuf>, cpu: fn(u64) -> u64, model: &str) -> Self {
        Self::with_counters(root, cpu, model, CounterStore::default())
    }

    /// As [`Site::new`], counting into `counters` (a prefork worker's shared block).
    pub fn with_counters(
        root: Option<PathBuf>,
        cpu: fn(u64) -> u64,
        model: &str,
        counters: CounterStore,
    ) -> Self {
        Site {
            root,
            cpu,
            model: model.to_string(),
            counters,
        }
    }

    /// Counts a new connection.
    pub fn connection_opened(&self) {
        // Relaxed: counters read for /stats only; no ordering with other memory is needed.
        self.counters.connections.fetch_add(1, Ordering::Relaxed);
    }

    /// Counts a response sent with `status` (including errors from the codec).
    pub fn count(&self, status: u16) {
        self.counters.requests.fetch_add(1, Ordering::Relaxed);
        if let Some(counter) = self
            .counters
            .statuses
            .get(usize::from(status).wrapping_sub(100))
        {
            counter.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Requests answered so far.
    pub fn requests(&self) -> u64 {
        self.counters.requests.load(Ordering::Relaxed)
    }

    /// Requests whose handling has begun (answered or not yet).
    pub fn started(&self) -> u64 {
        self.counters.started.load(Ordering::Relaxed)
    }

    /// Answers one request.
    pub fn handle(&self, req: &Request) -> Reply {
        self.counters.started.fetch_add(1, Ordering::Relaxed);
        if !matches!(req.method, Method::Get | Method::Head) {
            return Reply::Now(Response::error(405));
        }
        let path = req.path.as_str();
        Reply::Now(match path {
            "/hello" => Response::fixed(200, "Hello, World!"),
            "/cpu" => match req.param("n").and_then(|n| n.parse::<u64>().ok()) {
                Some(n) if n <= 100_000_000 => Response::text(200, (self.cpu)(n).to_string()),
                _ => Response::text(400, "/cpu?n=N with N a whole number up to 100000000\n"),
            },
            "/sleep" => {
                return match req.param("ms").and_then(|m| m.parse::<u64>().ok()) {
                    Some(ms) if ms <= 60_000 => Reply::After(
                        Duration::from_millis(ms),
                        Response::text(200, format!("slept {ms} ms\n")),
                    ),
                    _ => Reply::Now(Response::text(
                        400,
                        "/sleep?ms=M with M a whole number up to 60000\n",
                    )),
                };
            }
            "/stats" => self.stats(),
            _ => {
                if let Some(page) = path
                    .strip_prefix("/site/")
                    .and_then(|p| p.strip_suffix(".html"))
                {
                    let page = site_page(page);
                    match req.param("ms").map(|m| m.parse::<u64>()) {
                        None => page,
                        Some(Ok(ms)) if ms <= 60_000 => {
                            return Reply::After(Duration::from_millis(ms), page);
                        }
                        Some(_) => Response::text(
                            400,
                            "/site/N.html?ms=M with M a whole number up to 60000\n",
                        ),
                    }
                } else if let Some(file) = path.strip_prefix("/static/") {
                    self.static_file(file)
                } else {
                    Response::error(404)
                }
            }
        })
    }

    fn stats(&self) -> Response {
        let statuses: BTreeMap<u16, u64> = (100u16..600)
            .zip(self.counters.statuses.iter())
            .map(|(code, n)| (code, n.load(Ordering::Relaxed)))
            .filter(|(_, n)| *n > 0)
            .collect();
        let stats = Stats {
            schema: STATS_SCHEMA.to_string(),
            model: self.model.to_string(),
            requests: self.requests(),
            connections: self.counters.connections.load(Ordering::Relaxed),
            status: statuses.iter().map(|(k, v)| (k.to_string(), *v)).collect(),
        };
        Response {
            status: 200,
            content_type: "application/json",
            body: serde_json::to_vec(&stats).unwrap_or_default().into(),
        }
    }

    fn static_file(&self, file: &str) -> Response {
        let Some(root) = &self.root else {
            return Response::error(404);
        };
        match resolve_static(root, file) {
            Some(path) => match std::fs::read(&path) {
                Ok(body) => Response {
                    status: 200,
                    content_type: content_type(&path),
                    body: body.into(),
                },
                Err(_) => Response::error(404),
            },
            None => Response::error(404),
        }
    }
}

/// `root/file`, if it is a file inside `root` (no `..`, no symlink out of it).
fn resolve_static(root: &Path, file: &str) -> Option<PathBuf> {
    if file
        .split('/')
        .any(|part| part == ".." || part.contains('\0'))
    {
        return None;
    }
    let root = root.canonicalize().ok()?;
    let path = root.join(file).canonicalize().ok()?;
    (path.starts_with(&root) && path.is_file()).then_some(path)
}

fn content_type(path: &Path) -> &'static str {
    match path.extension().and_then(|e| e.to_str()) {
        Some("html" | "htm") => "text/html; charset=utf-8",
        Some("txt") => "text/plain; charset=utf-8",
        Some("json") => "application/json",
        Some("css") => "text/css",
        Some("js") => "text/javascript",
        Some("png") => "image/png",
        Some("jpg" | "jpeg") => "image/jpeg",
        _ => "application/octet-stream",
    }
}

/// Page N of the synthetic site: a title and links to three other pages.
fn site_page(page: &str) -> Response {
    let Some(n) = page.parse::<u64>().ok().filter(|n| *n < SITE_PAGES) else {
        return Response::error(404);
    };
    let links: String = [n * 7 + 1, n * 13 + 5, n + 1]
        .iter()
        .map(|l| {
            format!(
                "<li><a href=\"/site/{0}.html\">page {0}</a></li>",
                l % SITE_PAGES
            )
        })
        .collect();
    Response {
        status: 200,
        content_type: "text/html; charset=utf-8",
        body: format!(
            "<!doctype html><html><head><title>Page {n}</title></head><body><h1>Page {n}</h1><ul>{links}</ul></body></html>\n"
        )
        .into_bytes()
        .into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::{Limits, Parsed, parse};

    fn get(site: &Site, target: &str) -> Reply {
        let raw = format!("GET {target} HTTP/1.1\r\nHost: x\r\n\r\n");
        match parse(raw.as_bytes(), &Limits::default()) {
            Ok(Parsed::Complete { request, .. }) => site.handle(&request),
            other => panic!("{other:?}"),
        }
    }

    fn body(reply: Reply) -> (u16, String) {
        match reply {
            Reply::Now(r) | Reply::After(_, r) => {
                (r.status, String::from_utf8(r.body.into_owned()).unwrap())
            }
        }
    }

    #[test]
    fn the_endpoints_answer() {
        let site = Site::new(None, |n| n * 2, "test");
        assert_eq!(body(get(&site, "/hello")), (200, "Hello, World!".into()));
        assert_eq!(body(get(&site, "/cpu?n=21")), (200, "42".into()));
        assert_eq!(body(get(&site, "/cpu?n=lots")).0, 400);
        assert!(
            matches!(get(&site, "/sleep?ms=5"), Reply::After(d, _) if d == Duration::from_millis(5))
        );
        let (status, page) = body(get(&site, "/site/3.html"));
        assert_eq!(status, 200);
        assert!(page.contains("<title>Page 3</title>") && page.contains("/site/22.html"));
        assert_eq!(body(get(&site, "/site/99999.html")).0, 404);
        assert!(matches!(
            get(&site, "/site/3.html?ms=7"),
            Reply::After(d, r) if d == Duration::from_millis(7) && r.status == 200
        ));
        assert_eq!(body(get(&site, "/site/3.html?ms=x")).0, 400);
        assert_eq!(body(get(&site, "/nope")).0, 404);
        site.count(200);
        assert!(body(get(&site, "/stats")).1.contains("\"requests\":1"));
    }

    #[test]
    fn static_files_stay_inside_the_root() {
        let root = std::env::temp_dir().join(format!("conlab-static-{}", std::process::id()));
        std::fs::create_dir_all(root.join("d")).unwrap();
        std::fs::write(root.join("d/a.txt"), "A").unwrap();
        let site = Site::new(Some(root.clone()), |n| n, "test");
        assert_eq!(body(get(&site, "/static/d/a.txt")), (200, "A".into()));
        assert_eq!(body(get(&site, "/static/../etc/passwd")).0, 404);
        assert_eq!(body(get(&site, "/static/d/../../../../etc/passwd")).0, 404);
        assert_eq!(body(get(&site, "/static/missing")).0, 404);
        std::fs::remove_dir_all(&root).unwrap();
    }
}
