//! The lecture's title fetcher (threading, `In [2]`): a queue of URLs, two worker threads,
//! each fetching a page with a blocking HTTP client (`requests.get`) and taking its
//! `<title>` with an HTML parser (`bs4.BeautifulSoup(...).select('title')`), printing under
//! one lock so lines of two threads never mix. The lecture fetched google.com five times;
//! here the page is `conlab serve`'s synthetic site, started by this example on 127.0.0.1.
//!
//! `cargo run --release -p conlab --example title_fetcher`

use std::sync::{Arc, Mutex, mpsc};
use std::time::Instant;

use conlab_http::Site;
use conlab_http::client::blocking::BlockingClient;
use conlab_http::client::{ClientOptions, Wants};
use conlab_http::extract::Pick;
use conlab_http::server::{self, Server, ServerConfig};
use url::Url;

/// `conlab serve` on a free loopback port.
fn start_site() -> std::io::Result<Server> {
    let listener = server::bind("127.0.0.1:0".parse().expect("an address"), false)?;
    let site = Arc::new(Site::new(None, conlab_work::sum_primes, "event"));
    Server::start(listener, site, ServerConfig::default())
}

/// Fetches every URL on `threads` workers taking turns at one queue; returns what was
/// printed, line by line.
fn fetch_titles(urls: &[String], threads: usize) -> Vec<String> {
    let printed = Arc::new(Mutex::new(Vec::new()));
    // print_lock: the lines of one fetch come out together.
    let say = {
        let printed = Arc::clone(&printed);
        move |lines: &[String]| {
            let mut out = printed.lock().unwrap_or_else(|p| p.into_inner());
            for line in lines {
                println!("{line}");
                out.push(line.clone());
            }
        }
    };
    let (queue, url_queue) = mpsc::channel::<String>();
    let url_queue = Arc::new(Mutex::new(url_queue));
    let wants = Wants {
        pick: Pick::Title,
        max_body: 1 << 20,
        ..Wants::default()
    };
    let workers: Vec<_> = (0..threads)
        .map(|i| {
            let (url_queue, say, wants) = (Arc::clone(&url_queue), say.clone(), wants.clone());
            std::thread::Builder::new()
                .name(format!("Thread-{}", i + 1))
                .spawn(move || {
                    let mut client = BlockingClient::new(ClientOptions::default(), None);
                    let name = std::thread::current().name().unwrap_or("?").to_string();
                    loop {
                        // url_queue.get(): the lock is held only to take one URL.
                        let next = url_queue.lock().map(|q| q.recv()).ok();
                        let Some(Ok(current_url)) = next else { break };
                        say(&[format!("Starting thread {name}")]);
                        let title = Url::parse(&current_url)
                            .ok()
                            .map(|url| client.get(&url, &wants))
                            .map(|page| match page {
                                Ok(page) => page.values.into_iter().next().unwrap_or_default(),
                                Err(failure) => {
                                    format!("({}: {})", failure.kind.as_str(), failure.detail)
                                }
                            })
                            .unwrap_or_else(|| "(not a URL)".into());
                        say(&[
                            name.clone(),
                            title,
                            format!("Finished fetching : {current_url}"),
                        ]);
                    }
                })
                .expect("starting a worker thread")
        })
        .collect();
    for url in urls {
        let _ = queue.send(url.clone());
    }
    // url_queue.join(): the workers end when the queue is empty and closed.
    drop(queue);
    for w in workers {
        let _ = w.join();
    }
    // A named binding: the guard must be dropped before `printed` is.
    let lines: Vec<String> = printed.lock().unwrap_or_else(|p| p.into_inner()).clone();
    lines
}

fn main() -> std::io::Result<()> {
    let server = start_site()?;
    let url_list = vec![format!("http://{}/site/0.html", server.local_addr()); 5];
    let start = Instant::now();
    fetch_titles(&url_list, 2);
    println!("Execution time = {:.5}", start.elapsed().as_secs_f64());
    server.shutdown();
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn five_fetches_on_two_threads_give_five_titles_each_block_unbroken() {
        let server = start_site().unwrap();
        let urls: Vec<String> = (0..5)
            .map(|n| format!("http://{}/site/{n}.html", server.local_addr()))
            .collect();
        let lines = fetch_titles(&urls, 2);
        // Each fetch prints "Starting", then its thread's name, title and "Finished" together.
        let finished: Vec<usize> = (0..lines.len())
            .filter(|&i| lines[i].starts_with("Finished fetching : "))
            .collect();
        assert_eq!(finished.len(), 5, "{lines:#?}");
        let mut titles: Vec<String> = finished.iter().map(|&i| lines[i - 1].clone()).collect();
        titles.sort();
        assert_eq!(titles, ["Page 0", "Page 1", "Page 2", "Page 3", "Page 4"]);
        for &i in &finished {
            assert!(lines[i - 2].starts_with("Thread-"), "{lines:#?}");
        }
        server.shutdown();
    }
}
