//! The real servers of the lecture's chart, started beside conlab's when installed: nginx
//! (its event loop) and Apache httpd with the prefork MPM (a process per connection). Each
//! gets a configuration of its own in a scratch directory, listens on a free loopback port,
//! answers `/hello` with the same 13 bytes as `conlab serve`, and keeps connections alive as
//! long as the client wants, so that the architecture stays the only difference.
//!
//! The configurations are `bench/http.py`'s, which measured them against conlab first.

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use super::RunningServer;
use crate::Error;

/// Where Debian keeps Apache's modules.
const APACHE_MODULES: &str = "/usr/lib/apache2/modules";

/// How long a peer may take to listen (and, for Apache, to start every worker).
const START_TIMEOUT: Duration = Duration::from_secs(10);

/// Where `program` is: on the PATH, or in the `sbin` directories Debian installs servers
/// in (which a user's PATH often leaves out).
pub fn find(program: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin", "/usr/local/sbin"].map(PathBuf::from))
        .map(|dir| dir.join(program))
        .find(|candidate| candidate.is_file())
}

/// Whether `program` is installed (see [`find`]).
pub fn installed(program: &str) -> bool {
    find(program).is_some()
}

/// nginx with `workers` worker processes (one when `workers` is 1, with no master).
pub fn nginx(workers: usize) -> Result<RunningServer, Error> {
    let fail = fail("nginx");
    let Some(program) = find("nginx") else {
        return Err(fail(
            "not installed (Debian: apt-get install nginx-light)".into(),
        ));
    };
    let (dir, addr) = scratch("nginx").map_err(|e| fail(e.to_string()))?;
    let d = dir.display();
    let conf = format!(
        "worker_processes {workers}; daemon off; master_process {};
error_log {d}/error.log; pid {d}/nginx.pid;
events {{ worker_connections 4096; }}
http {{ access_log off; keepalive_requests 1000000000; keepalive_timeout 60s;
  client_body_temp_path {d}; proxy_temp_path {d}; fastcgi_temp_path {d};
  uwsgi_temp_path {d}; scgi_temp_path {d};
  server {{ listen {addr}; location /hello {{ return 200 \"Hello, World!\"; }} }} }}
",
        if workers > 1 { "on" } else { "off" }
    );
    let path = dir.join("nginx.conf");
    std::fs::write(&path, conf).map_err(|e| fail(e.to_string()))?;
    let mut command = Command::new(program);
    command.arg("-c").arg(&path).arg("-p").arg(&dir);
    start("nginx", command, Peer { dir, addr, workers }, 0)
}

/// Apache httpd, prefork MPM, `workers` processes all started before it is used.
pub fn apache_prefork(workers: usize) -> Result<RunningServer, Error> {
    let fail = fail("apache prefork");
    let Some(program) = find("apache2") else {
        return Err(fail(
            "not installed (Debian: apt-get install apache2)".into(),
        ));
    };
    let module = Path::new(APACHE_MODULES).join("mod_mpm_prefork.so");
    if !module.is_file() {
        return Err(fail(format!("{} is missing", module.display())));
    }
    let (dir, addr) = scratch("apache").map_err(|e| fail(e.to_string()))?;
    let www = dir.join("www");
    let made = std::fs::create_dir_all(&www)
        .and_then(|()| std::fs::write(www.join("hello"), "Hello, World!"))
        .and_then(|()| world_readable(&dir))
        .and_then(|()| world_readable(&www));
    made.map_err(|e| fail(e.to_string()))?;
    let (d, w) = (dir.display(), www.display());
    let conf = format!(
        "ServerRoot {d}
ServerName localhost
LoadModule mpm_prefork_module {APACHE_MODULES}/mod_mpm_prefork.so
LoadModule authz_core_module {APACHE_MODULES}/mod_authz_core.so
Listen {addr}
PidFile {d}/httpd.pid
ErrorLog {d}/error.log
User www-data
Group www-data
DocumentRoot {w}
<Directory {w}>
  Require all granted
</Directory>
KeepAlive On
MaxKeepAliveRequests 0
MaxConnectionsPerChild 0
StartServers {workers}
MinSpareServers {workers}
MaxSpareServers {workers}
ServerLimit {workers}
MaxRequestWorkers {workers}
"
    );
    let path = dir.join("httpd.conf");
    std::fs::write(&path, conf).map_err(|e| fail(e.to_string()))?;
    let mut command = Command::new(program);
    command.arg("-f").arg(&path).arg("-DFOREGROUND");
    // Its own process group: at shutdown Apache signals its whole group, which would
    // otherwise be ours.
    command.process_group(0);
    // Every worker up before the clock starts, as conlab's prefork children are.
    start(
        "apache prefork",
        command,
        Peer { dir, addr, workers },
        workers,
    )
}

/// Where a peer's files are, where it listens, and how many workers it runs.
struct Peer {
    dir: PathBuf,
    addr: SocketAddr,
    workers: usize,
}

/// Starts `command` (quiet on every stream) and waits until it listens with `children`
/// worker processes besides the parent.
fn start(
    name: &str,
    mut command: Command,
    peer: Peer,
    children: usize,
) -> Result<RunningServer, Error> {
    conlab_exec::die_with_parent(&mut command, libc::SIGTERM);
    let child = command
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| fail(name)(e.to_string()))?;
    let server = RunningServer {
        name: name.into(),
        addr: peer.addr,
        workers: peer.workers,
        child,
        scratch: Some(peer.dir),
    };
    wait_listening(server, children)
}

/// A launch error of `server`, as a closure over the reason.
fn fail(server: &str) -> impl Fn(String) -> Error + '_ {
    move |why| Error::Launch {
        server: server.to_string(),
        why,
    }
}

/// A fresh scratch directory and a free loopback port (bound and released: the peer binds
/// it a moment later; nothing else on this machine is picking ports meanwhile).
fn scratch(name: &str) -> std::io::Result<(PathBuf, SocketAddr)> {
    use std::sync::atomic::{AtomicUsize, Ordering};
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    let dir = std::env::temp_dir().join(format!(
        "conlab-{name}-{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir)?;
    let addr = TcpListener::bind("127.0.0.1:0")?.local_addr()?;
    Ok((dir, addr))
}

fn world_readable(dir: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755))
}

/// Waits until `server` accepts connections and its tree has `children` processes besides
/// the parent; gives the server back, or stops it and says why.
fn wait_listening(mut server: RunningServer, children: usize) -> Result<RunningServer, Error> {
    let deadline = Instant::now() + START_TIMEOUT;
    loop {
        if let Ok(Some(status)) = server.child.try_wait() {
            let log = server
                .scratch
                .as_ref()
                .and_then(|d| std::fs::read_to_string(d.join("error.log")).ok())
                .and_then(|l| l.lines().last().map(str::to_string))
                .unwrap_or_default();
            return Err(fail(&server.name)(format!("it exited ({status}): {log}")));
        }
        let listening =
            TcpStream::connect_timeout(&server.addr, Duration::from_millis(100)).is_ok();
        let tree = conlab_measure::usage::process_tree(server.pid()).len();
        if listening && tree > children {
            return Ok(server);
        }
        if Instant::now() >= deadline {
            return Err(fail(&server.name)(format!(
                "not listening on {} with {children} workers within {START_TIMEOUT:?}",
                server.addr
            )));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_peer_is_an_error_that_says_how_to_install_it() {
        if installed("apache2") {
            return;
        }
        let e = apache_prefork(2).unwrap_err().to_string();
        assert!(
            e.contains("apache prefork") && e.contains("apt-get install apache2"),
            "{e}"
        );
    }

    #[test]
    fn the_path_is_searched() {
        assert!(installed("sh"));
        assert!(!installed("surely-not-a-program-here"));
    }
}
