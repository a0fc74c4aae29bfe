//! The crawl's frontier (`fetch --crawl`): the pages still to visit, breadth first, each
//! address normalised so that one page is fetched once however its links spell it
//! (`HTTP://Example.com:80/a/./b#top` and `http://example.com/a/b` are one page), within a
//! depth, an optional host, and a page budget. Links are joined to the page they were found
//! on as WHATWG URLs are (the `url` crate), so relative, protocol-relative and `..` links
//! resolve as a browser resolves them; `mailto:`, `javascript:` and the like are not pages.

use std::collections::{HashSet, VecDeque};

use url::Url;

/// `text` as a page address: an absolute http or https URL, its fragment dropped (never
/// sent), its scheme and host in lower case and its default port, dot segments and
/// percent-encoding normalised (the `url` crate's serialisation). `None` for what is not a
/// web page.
pub fn normalise(text: &str) -> Option<Url> {
    let url = Url::parse(text.trim()).ok()?;
    page(url)
}

/// `link`, found on the page at `base`, as a page address (see [`normalise`]).
pub fn join(base: &Url, link: &str) -> Option<Url> {
    let url = base.join(link.trim()).ok()?;
    page(url)
}

fn page(mut url: Url) -> Option<Url> {
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none_or(str::is_empty) {
        return None;
    }
    url.set_fragment(None);
    if url.query() == Some("") {
        url.set_query(None);
    }
    Some(url)
}

/// The pages still to visit, and every page ever queued.
#[derive(Debug)]
pub struct Frontier {
    queue: VecDeque<(Url, u32)>,
    seen: HashSet<String>,
    max_depth: u32,
    same_host: Option<String>,
    budget: Option<u64>,
}

impl Frontier {
    /// A frontier that starts at `start` (depth 0), follows links to `max_depth`, keeps to
    /// `start`'s host when `same_host`, and queues at most `max_pages` pages in all.
    pub fn new(start: Url, max_depth: u32, same_host: bool, max_pages: Option<u64>) -> Frontier {
        let mut frontier = Frontier {
            queue: VecDeque::new(),
            seen: HashSet::new(),
            max_depth,
            same_host: same_host.then(|| start.host_str().unwrap_or_default().to_string()),
            budget: max_pages,
        };
        frontier.offer(start, 0);
        frontier
    }

    /// Queues `url` found at `depth`, unless it is too deep, on another host, already
    /// queued once, or over the budget; true if queued.
    pub fn offer(&mut self, url: Url, depth: u32) -> bool {
        if depth > self.max_depth || self.budget == Some(0) {
            return false;
        }
        if self
            .same_host
            .as_deref()
            .is_some_and(|host| url.host_str() != Some(host))
        {
            return false;
        }
        if !self.seen.insert(url.as_str().to_string()) {
            return false;
        }
        if let Some(b) = &mut self.budget {
            *b -= 1;
        }
        self.queue.push_back((url, depth));
        true
    }

    /// The links of a page fetched at `depth`, each joined to its address `base`.
    pub fn offer_links<'a>(
        &mut self,
        base: &Url,
        depth: u32,
        links: impl IntoIterator<Item = &'a str>,
    ) {
        for link in links {
            if let Some(url) = join(base, link) {
                self.offer(url, depth + 1);
            }
        }
    }

    /// Marks `url` visited without queueing it (a redirect's target); false if it was
    /// already queued or visited.
    pub fn visit(&mut self, url: &Url) -> bool {
        self.seen.insert(url.as_str().to_string())
    }

    /// The next page to visit and its depth, oldest first.
    pub fn take(&mut self) -> Option<(Url, u32)> {
        self.queue.pop_front()
    }

    /// Pages queued and not yet taken.
    pub fn pending(&self) -> usize {
        self.queue.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_page_has_one_address_however_its_links_spell_it() {
        let canonical = normalise("http://example.com/a/b").unwrap();
        for spelling in [
            "HTTP://Example.COM:80/a/./b#top",
            "http://example.com/a/c/../b",
            "  http://example.com/a/b?  ",
        ] {
            assert_eq!(normalise(spelling).as_ref(), Some(&canonical), "{spelling}");
        }
        assert_eq!(
            normalise("https://example.com:443/").unwrap().as_str(),
            "https://example.com/"
        );
        for not_a_page in [
            "mailto:a@b.c",
            "javascript:void(0)",
            "ftp://x/",
            "/relative",
            "",
            "http://",
        ] {
            assert_eq!(normalise(not_a_page), None, "{not_a_page}");
        }
    }

    #[test]
    fn links_resolve_as_a_browser_resolves_them() {
        let base = normalise("https://example.com/docs/guide/index.html").unwrap();
        for (link, expected) in [
            ("intro.html", "https://example.com/docs/guide/intro.html"),
            ("../api/", "https://example.com/docs/api/"),
            ("/top", "https://example.com/top"),
            ("//other.org/x", "https://other.org/x"),
            (
                "?page=2",
                "https://example.com/docs/guide/index.html?page=2",
            ),
            ("#section", "https://example.com/docs/guide/index.html"),
        ] {
            assert_eq!(join(&base, link).unwrap().as_str(), expected, "{link}");
        }
        assert_eq!(join(&base, "mailto:x@y.z"), None);
    }

    #[test]
    fn the_frontier_queues_each_page_once_within_depth_host_and_budget() {
        let start = normalise("http://site.test/").unwrap();
        let mut f = Frontier::new(start.clone(), 1, true, None);
        assert_eq!(f.take().unwrap(), (start.clone(), 0));
        f.offer_links(
            &start,
            0,
            ["a", "/a", "./a#x", "b", "http://elsewhere.test/c"],
        );
        assert_eq!(f.pending(), 2, "a once, b; the other host left out");
        let (a, depth) = f.take().unwrap();
        assert_eq!((a.as_str(), depth), ("http://site.test/a", 1));
        // Depth 2 is beyond the limit; the start page again is not queued.
        f.offer_links(&a, 1, ["deeper", "/"]);
        assert_eq!(f.pending(), 1);
        // A budget counts every page queued, the start included.
        let mut small = Frontier::new(start.clone(), 5, false, Some(2));
        small.offer_links(&start, 0, ["1", "2", "3"]);
        assert_eq!(small.pending(), 2);
    }
}
