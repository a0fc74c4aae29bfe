//! The lecture's aiohttp cells (asyncio, `In [6]` and the IMDb scrape): one GET printing its
//! status, content type and the start of its page; then `asyncio.gather` over 57 pages on
//! one shared session, timed. Here the pages are `conlab serve`'s synthetic site, started by
//! this example on 127.0.0.1, each answered after 100 ms as a distant site would be; the
//! same 57 pages one after another are timed beside the gather, to show what it saves.
//!
//! `cargo run --release -p conlab --example gather_pages`

use std::sync::Arc;
use std::time::Instant;

use conlab_http::Site;
use conlab_http::client::nonblocking::AsyncClient;
use conlab_http::client::{ClientOptions, Wants};
use conlab_http::extract::Pick;
use conlab_http::server::{self, Server, ServerConfig};
use url::Url;

/// The lecture's 57 IMDb ids; page `i` of the site stands for the i-th.
const MOVIES: usize = 57;

/// How long each page takes to answer.
const PAGE_MS: u64 = 100;

fn start_site() -> std::io::Result<Server> {
    let listener = server::bind("127.0.0.1:0".parse().expect("an address"), false)?;
    let site = Arc::new(Site::new(None, conlab_work::sum_primes, "event"));
    Server::start(listener, site, ServerConfig::default())
}

fn wants() -> Wants {
    Wants {
        pick: Pick::Title,
        max_body: 1 << 20,
        ..Wants::default()
    }
}

/// One page's title (`session.request(...)`, then the parser).
async fn title(session: &AsyncClient, url: &Url) -> String {
    match session.get(url, &wants()).await {
        Ok(page) => page.values.into_iter().next().unwrap_or_default(),
        Err(failure) => format!("({})", failure.kind.as_str()),
    }
}

/// The titles of every page, fetched together (`gather`) or one after another.
async fn scrape_all_titles(
    session: &Arc<AsyncClient>,
    urls: &[Url],
    together: bool,
) -> Vec<String> {
    let mut titles = Vec::with_capacity(urls.len());
    if together {
        // asyncio.gather: a task per page, all in flight at once; awaited in input order,
        // so the titles come in the order of the URLs whatever order the pages finish in.
        let tasks: Vec<_> = urls
            .iter()
            .map(|url| {
                let (session, url) = (Arc::clone(session), url.clone());
                tokio::spawn(async move { title(&session, &url).await })
            })
            .collect();
        for task in tasks {
            titles.push(task.await.unwrap_or_default());
        }
    } else {
        for url in urls {
            titles.push(title(session, url).await);
        }
    }
    titles
}

fn urls(server: &Server) -> Vec<Url> {
    (0..MOVIES)
        .map(|i| {
            Url::parse(&format!(
                "http://{}/site/{i}.html?ms={PAGE_MS}",
                server.local_addr()
            ))
            .expect("a URL")
        })
        .collect()
}

fn main() -> std::io::Result<()> {
    let server = start_site()?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        // One ClientSession for every request: its kept-alive connections are reused.
        let session = Arc::new(AsyncClient::new(ClientOptions::default(), None));
        let first =
            Url::parse(&format!("http://{}/site/0.html", server.local_addr())).expect("a URL");
        match session.get(&first, &wants()).await {
            Ok(page) => {
                println!("Status: {}", page.status);
                println!("Content-type: {}", page.content_type.unwrap_or_default());
                println!(
                    "Title: {} ...",
                    page.values.first().map_or("", String::as_str)
                );
            }
            Err(failure) => println!("failed: {}", failure.detail),
        }
        let urls = urls(&server);
        let s = Instant::now();
        let titles = scrape_all_titles(&session, &urls, true).await;
        println!(
            "gather: {} titles, executed in {:.2} seconds.",
            titles.len(),
            s.elapsed().as_secs_f64()
        );
        let s = Instant::now();
        let titles = scrape_all_titles(&session, &urls, false).await;
        println!(
            "one after another: {} titles, executed in {:.2} seconds.",
            titles.len(),
            s.elapsed().as_secs_f64()
        );
    });
    server.shutdown();
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gather_gives_every_title_in_input_order() {
        let server = start_site().unwrap();
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let urls = urls(&server);
        let session = Arc::new(AsyncClient::new(ClientOptions::default(), None));
        for together in [true, false] {
            let titles = runtime.block_on(scrape_all_titles(&session, &urls[..12], together));
            let want: Vec<String> = (0..12).map(|i| format!("Page {i}")).collect();
            assert_eq!(titles, want, "together: {together}");
        }
        server.shutdown();
    }
}
