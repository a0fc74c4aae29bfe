//! `load` over HTTPS against a TLS server on loopback with a certificate made here: trusted
//! through a CA file, refused without it (a `tls` error that says why, and a run that ends),
//! and accepted by `insecure`; and `fetch` over HTTPS under both its models, the same way.

use std::sync::Arc;

use conlab_http::load::{self, LoadConfig, Target};
use conlab_http::tls::TlsOptions;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// A TLS acceptor for `localhost` with a certificate made here (offering `alpn`), a
/// listener on 127.0.0.1, and the certificate's PEM.
fn tls_listener(alpn: &[&[u8]]) -> (tokio_rustls::TlsAcceptor, std::net::TcpListener, String) {
    let rcgen::CertifiedKey { cert, key_pair } =
        rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(
            vec![CertificateDer::from(cert.der().to_vec())],
            PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key_pair.serialize_der())),
        )
        .unwrap();
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    (acceptor, listener, cert.pem())
}

/// A TLS server for `localhost` on 127.0.0.1 (offering `alpn`), handing each of at most
/// `connections` handshaken connections to `serve` on a runtime of its own; its address and
/// the PEM of its certificate.
fn serve_tls<F, Fut>(alpn: &[&[u8]], connections: usize, serve: F) -> (std::net::SocketAddr, String)
where
    F: Fn(tokio_rustls::server::TlsStream<tokio::net::TcpStream>) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let (acceptor, listener, pem) = tls_listener(alpn);
    let addr = listener.local_addr().unwrap();
    let serve = Arc::new(serve);
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let listener = tokio::net::TcpListener::from_std(listener).unwrap();
            // Bounded: the tests open a few dozen connections at most.
            for _ in 0..connections {
                let Ok((tcp, _)) = listener.accept().await else {
                    return;
                };
                let (acceptor, serve) = (acceptor.clone(), Arc::clone(&serve));
                // Each handshake in a task of its own, as a server would.
                tokio::spawn(async move {
                    if let Ok(tls) = acceptor.accept(tcp).await {
                        serve(tls).await;
                    }
                });
            }
        });
    });
    (addr, pem)
}

/// A TLS server for `localhost` on 127.0.0.1 answering every request with a page, and the
/// PEM of its self-signed certificate.
fn tls_server() -> (std::net::SocketAddr, String) {
    serve_tls(&[], 500, |mut tls| async move {
        let mut buf = Vec::new();
        let mut chunk = [0u8; 4096];
        loop {
            let Ok(n) = tls.read(&mut chunk).await else {
                return;
            };
            if n == 0 {
                return;
            }
            buf.extend_from_slice(&chunk[..n]);
            while let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                buf.drain(..end + 4);
                let reply = b"HTTP/1.1 200 OK\r\nContent-Length: 21\r\n\r\n<title>secure</title>";
                if tls.write_all(reply).await.is_err() {
                    return;
                }
            }
        }
    })
}

fn config(url: &str, tls: TlsOptions) -> LoadConfig {
    LoadConfig {
        connections: 2,
        requests: Some(50),
        tls,
        ..LoadConfig::new(Target::parse(url).unwrap())
    }
}

#[test]
fn https_is_loaded_when_its_certificate_is_trusted_and_refused_when_not() {
    let (addr, pem) = tls_server();
    let url = format!("https://localhost:{}/", addr.port());
    let dir = std::env::temp_dir().join(format!("conlab-tls-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let ca = dir.join("ca.pem");
    std::fs::write(&ca, pem).unwrap();

    let trusted = config(
        &url,
        TlsOptions {
            ca_file: Some(ca.clone()),
            insecure: false,
        },
    );
    trusted.validate().unwrap();
    let result = load::run(trusted, |_| ());
    assert_eq!(result.successes, 50, "{:?}", result.errors);
    assert!(result.errors.is_empty(), "{:?}", result.errors);

    // Not trusted: every handshake fails, the run ends, and says why.
    let result = load::run(config(&url, TlsOptions::default()), |_| ());
    assert_eq!(result.requests, 0);
    assert!(
        result.errors.get("tls").copied().unwrap_or(0) > 0,
        "{:?}",
        result.errors
    );
    let why = result.first_error.unwrap_or_default();
    assert!(
        why.starts_with("tls:") && why.contains("certificate"),
        "{why}"
    );

    // Insecure: accepted, as wrk accepts any certificate.
    let insecure = TlsOptions {
        ca_file: None,
        insecure: true,
    };
    let result = load::run(config(&url, insecure), |_| ());
    assert_eq!(result.successes, 50, "{:?}", result.errors);

    // A CA file that is not one is refused before the run.
    let bad = dir.join("bad.pem");
    std::fs::write(&bad, "not a certificate").unwrap();
    let e = config(
        &url,
        TlsOptions {
            ca_file: Some(bad),
            insecure: false,
        },
    )
    .validate()
    .unwrap_err();
    assert!(e.to_string().contains("--cacert"), "{e}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn https_pages_are_fetched_by_both_models_when_trusted_and_are_tls_rows_when_not() {
    use conlab_http::fetch::{self, Feed, FetchConfig, FetchModel};
    let (addr, pem) = tls_server();
    let dir = std::env::temp_dir().join(format!("conlab-tls-fetch-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let ca = dir.join("ca.pem");
    std::fs::write(&ca, pem).unwrap();
    let urls: Vec<String> = (0..5)
        .map(|i| format!("https://localhost:{}/p{i}", addr.port()))
        .collect();
    for model in [FetchModel::Async, FetchModel::Threads] {
        for (ca_file, want) in [(Some(ca.clone()), None), (None, Some("tls"))] {
            let config = FetchConfig {
                model,
                concurrency: 2,
                tls: TlsOptions {
                    ca_file: ca_file.clone(),
                    insecure: false,
                },
                ..FetchConfig::default()
            };
            let mut rows = Vec::new();
            let feed = Feed::Urls(Box::new(urls.clone().into_iter()));
            fetch::run(config, feed, |_| {}, |r| rows.push(r.clone())).unwrap();
            assert_eq!(rows.len(), 5);
            for r in &rows {
                assert_eq!(r.error.as_deref(), want, "{model:?} {r:?}");
                if want.is_none() {
                    assert_eq!(r.title.as_deref(), Some("secure"));
                } else {
                    assert!(
                        r.detail.as_deref().unwrap().contains("certificate"),
                        "{r:?}"
                    );
                }
            }
        }
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

/// An HTTPS server that speaks HTTP/2 only (ALPN `h2`), answering every stream with a page
/// titled by its path; counts the TCP connections and the streams it served.
fn h2_server() -> (
    std::net::SocketAddr,
    String,
    Arc<std::sync::atomic::AtomicUsize>,
    Arc<std::sync::atomic::AtomicUsize>,
) {
    use std::sync::atomic::{AtomicUsize, Ordering};
    let (connections, streams) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let (c, st) = (Arc::clone(&connections), Arc::clone(&streams));
    let (addr, pem) = serve_tls(&[b"h2"], 100, move |tls| {
        let (c, st) = (Arc::clone(&c), Arc::clone(&st));
        async move {
            let Ok(mut h2) = h2::server::handshake(tls).await else {
                return;
            };
            c.fetch_add(1, Ordering::SeqCst);
            while let Some(Ok((request, mut respond))) = h2.accept().await {
                st.fetch_add(1, Ordering::SeqCst);
                let body = format!("<title>h2 {}</title>", request.uri().path());
                let response = http::Response::builder()
                    .status(200)
                    .header("content-type", "text/html")
                    .body(())
                    .unwrap();
                if let Ok(mut send) = respond.send_response(response, false) {
                    let _ = send.send_data(bytes::Bytes::from(body), true);
                }
            }
        }
    });
    (addr, pem, connections, streams)
}

#[test]
fn the_event_loop_takes_http_2_where_the_server_offers_it_streams_on_one_connection() {
    use conlab_http::fetch::{self, Feed, FetchConfig, FetchModel};
    use std::sync::atomic::Ordering;
    let (addr, pem, connections, streams) = h2_server();
    let dir = std::env::temp_dir().join(format!("conlab-h2-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let ca = dir.join("ca.pem");
    std::fs::write(&ca, pem).unwrap();
    let urls: Vec<String> = (0..40)
        .map(|i| format!("https://localhost:{}/p{i}", addr.port()))
        .collect();
    let config = FetchConfig {
        model: FetchModel::Async,
        concurrency: 10,
        tls: TlsOptions {
            ca_file: Some(ca),
            insecure: false,
        },
        ..FetchConfig::default()
    };
    let mut rows = Vec::new();
    let feed = Feed::Urls(Box::new(urls.clone().into_iter()));
    fetch::run(config, feed, |_| {}, |r| rows.push(r.clone())).unwrap();
    assert_eq!(rows.len(), 40);
    for r in &rows {
        let path = r.url.rsplit('/').next().unwrap();
        assert_eq!(
            r.title.as_deref(),
            Some(format!("h2 /{path}").as_str()),
            "{r:?}"
        );
        assert!(r.error.is_none(), "{r:?}");
    }
    assert_eq!(streams.load(Ordering::SeqCst), 40);
    assert_eq!(
        connections.load(Ordering::SeqCst),
        1,
        "every page a stream of one connection"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}
