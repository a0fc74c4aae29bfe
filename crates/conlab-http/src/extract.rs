//! What a scraper takes out of a page, with a real HTML parser fed as the bytes arrive
//! (Cloudflare's lol_html: streaming, CSS selectors), never a regex: the `<title>` by
//! default, or the text or an attribute of every element a CSS selector matches. Bytes are
//! decoded from the charset the response's headers name, switching to the one a `<meta
//! charset>` names, as browsers do; bytes that are not valid in it become U+FFFD, never an
//! error. Once the title is read, [`Extract::feed`] says so, and the rest of the page need
//! not be fetched.

use std::borrow::Cow;
use std::sync::{Arc, LazyLock, Mutex, MutexGuard};

use lol_html::AsciiCompatibleEncoding;
use lol_html::html_content::{EndTag, TextChunk};
// The `Send` flavour: fetch's async model moves a page being read between tokio's threads.
use lol_html::send::{Element, ElementContentHandlers, HtmlRewriter, Settings};

/// What to take out of a page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Pick {
    /// The first `<title>`'s text, whitespace collapsed as a browser's `document.title`.
    Title,
    /// The text (collapsed the same way) of every element `selector` matches, or its
    /// attribute `attr` (`--select 'a@href'`).
    Css {
        /// A CSS selector, as lol_html reads them.
        selector: String,
        /// The attribute to take instead of the text.
        attr: Option<String>,
    },
}

impl Pick {
    /// `--select`'s syntax: `CSS` for the text, `CSS@attr` for an attribute; empty for the
    /// title.
    pub fn parse(spec: &str) -> Pick {
        match spec.trim() {
            "" | "title" => Pick::Title,
            spec => match spec.rsplit_once('@') {
                Some((css, attr)) if !attr.is_empty() && !attr.contains([' ', ']', '"']) => {
                    Pick::Css {
                        selector: css.trim().to_string(),
                        attr: Some(attr.to_string()),
                    }
                }
                _ => Pick::Css {
                    selector: spec.to_string(),
                    attr: None,
                },
            },
        }
    }
}

/// A selector lol_html cannot use.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("--select `{selector}`: {why}")]
pub struct SelectorError {
    /// The selector given.
    pub selector: String,
    /// What lol_html said.
    pub why: String,
}

#[derive(Debug, Default)]
struct Found {
    /// One slot per match, in document order (start tags), filled as each one closes.
    values: Vec<Option<String>>,
    /// Matched elements not closed yet, innermost last: their slot, tag, and raw text so far
    /// (every open match gets the text inside it, so a match inside a match is in both).
    open: Vec<Open>,
    /// The title has been read.
    done: bool,
    /// Every `<a href>`, for a crawl; `None` when not asked for.
    links: Option<Vec<String>>,
    /// `<ul>`s and `<ol>`s open now: a `<li>` ends an open `<li>` of its own list only.
    lists: usize,
}

/// A matched element whose end has not been read.
#[derive(Debug)]
struct Open {
    slot: usize,
    tag: String,
    raw: String,
    /// Lists open when it opened.
    lists: usize,
}

/// Groups of elements whose start tag ends an open one of the group (HTML's implied end
/// tags: `<p>one<p>two` is two paragraphs; a `<dd>` ends a `<dt>`).
const IMPLIED_END: [&[&str]; 8] = [
    &["p"],
    &["li"],
    &["dt", "dd"],
    &["option"],
    &["optgroup"],
    &["tr"],
    &["td", "th"],
    &["rb", "rt", "rp"],
];

/// Start tags that end an open `<p>` (the HTML standard's list, most of it).
const ENDS_P: [&str; 27] = [
    "address",
    "article",
    "aside",
    "blockquote",
    "details",
    "div",
    "dl",
    "fieldset",
    "figure",
    "footer",
    "form",
    "h1",
    "h2",
    "h3",
    "h4",
    "h5",
    "h6",
    "header",
    "hr",
    "main",
    "menu",
    "nav",
    "ol",
    "pre",
    "section",
    "table",
    "ul",
];

/// The selector of every start tag that may end an open element.
fn enders() -> lol_html::Selector {
    let tags: Vec<&str> = IMPLIED_END
        .iter()
        .flat_map(|g| g.iter())
        .chain(&ENDS_P)
        .copied()
        .collect();
    tags.join(", ").parse().expect("tag names are selectors")
}

/// The selectors every page needs, parsed once per process, not once per page: the title
/// (fetch's default, thousands of pages a second), a crawl's links, and [`enders`].
static TITLE: LazyLock<lol_html::Selector> =
    LazyLock::new(|| "title".parse().expect("a valid selector"));
static ANCHORS: LazyLock<lol_html::Selector> =
    LazyLock::new(|| "a[href]".parse().expect("a valid selector"));
static ENDERS: LazyLock<lol_html::Selector> = LazyLock::new(enders);

/// Whether a start tag `tag` ends an open element `open` that has no end tag yet. Only the
/// simple cases: lol_html builds no tree, so what needs one (a `<li>` in a nested list) is
/// not ended here.
fn ends(tag: &str, open: &str) -> bool {
    IMPLIED_END
        .iter()
        .any(|group| group.contains(&tag) && group.contains(&open))
        || (open == "p" && ENDS_P.contains(&tag))
}

impl Found {
    /// Nothing more is needed from the page.
    fn finished(&self) -> bool {
        self.done && self.links.is_none()
    }

    /// Closes the open match in `slot` and every match opened inside it.
    fn close(&mut self, slot: usize) {
        while let Some(at) = self.open.iter().position(|o| o.slot >= slot) {
            let open = self.open.remove(at);
            self.values[open.slot] = Some(text(&open.raw, &open.tag));
        }
    }
}

/// An element's text as a browser gives it: character references decoded (not in
/// `<script>` or `<style>`, whose text is raw), NUL as U+FFFD, ASCII whitespace collapsed.
fn text(raw: &str, tag: &str) -> String {
    let decoded = if matches!(tag, "script" | "style") {
        std::borrow::Cow::Borrowed(raw)
    } else {
        htmlize::unescape(raw)
    };
    collapse(&decoded.replace('\0', "\u{fffd}"))
}

/// A page being read.
pub struct Extract {
    rewriter: HtmlRewriter<'static, fn(&[u8])>,
    found: Arc<Mutex<Found>>,
}

impl std::fmt::Debug for Extract {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Extract")
            .field("found", &self.found)
            .finish()
    }
}

/// The page's own bytes are not kept: only what the handlers take.
fn discard(_: &[u8]) {}

/// The findings, locked (never contended: one page is read by one thread at a time).
fn lock(found: &Mutex<Found>) -> MutexGuard<'_, Found> {
    found.lock().unwrap_or_else(|p| p.into_inner())
}

impl Extract {
    /// A reader for `pick`, decoding from `charset` (a label from Content-Type; UTF-8 when
    /// absent or not an ASCII-compatible encoding lol_html can read).
    pub fn new(pick: &Pick, charset: Option<&str>) -> Result<Extract, SelectorError> {
        Self::build(pick, charset, false)
    }

    /// As [`Extract::new`], also keeping every `<a href>` (a crawl's links): the page is then
    /// read to its end.
    pub fn with_links(pick: &Pick, charset: Option<&str>) -> Result<Extract, SelectorError> {
        Self::build(pick, charset, true)
    }

    fn build(pick: &Pick, charset: Option<&str>, links: bool) -> Result<Extract, SelectorError> {
        let found = Arc::new(Mutex::new(Found {
            links: links.then(Vec::new),
            ..Found::default()
        }));
        let (parsed, attr, title) = match pick {
            Pick::Title => (Cow::Borrowed(&*TITLE), None, true),
            Pick::Css { selector, attr } => {
                let parsed: lol_html::Selector = selector.parse().map_err(|e| SelectorError {
                    selector: selector.clone(),
                    why: format!("{e}"),
                })?;
                (Cow::Owned(parsed), attr.clone(), false)
            }
        };
        let on_element = {
            let found = Arc::clone(&found);
            move |el: &mut Element<'_, '_>| {
                let mut f = lock(&found);
                if f.done {
                    return Ok(());
                }
                if let Some(attr) = &attr {
                    if let Some(value) = el.get_attribute(attr) {
                        f.values
                            .push(Some(htmlize::unescape_attribute(value).into_owned()));
                    }
                    return Ok(());
                }
                let tag = el.tag_name();
                let slot = f.values.len();
                f.values.push(None);
                let lists = f.lists;
                f.open.push(Open {
                    slot,
                    tag,
                    raw: String::new(),
                    lists,
                });
                drop(f);
                let found = Arc::clone(&found);
                // A void or unclosed element has no end tag: `finish` takes its text.
                if let Some(handlers) = el.end_tag_handlers() {
                    handlers.push(Box::new(move |_: &mut EndTag<'_>| {
                        let mut f = lock(&found);
                        if f.open.iter().any(|o| o.slot == slot) {
                            f.close(slot);
                            if title {
                                f.done = true;
                            }
                        }
                        Ok(())
                    }));
                }
                Ok(())
            }
        };
        let on_text = {
            let found = Arc::clone(&found);
            move |t: &mut TextChunk<'_>| {
                let mut f = lock(&found);
                if !f.done {
                    for open in &mut f.open {
                        open.raw.push_str(t.as_str());
                    }
                }
                Ok(())
            }
        };
        let named = charset
            .and_then(|label| encoding_rs::Encoding::for_label_no_replacement(label.as_bytes()))
            .and_then(AsciiCompatibleEncoding::new);
        let encoding = named.unwrap_or_else(AsciiCompatibleEncoding::utf_8);
        let mut handlers = Vec::new();
        if !title {
            // Start tags that end an open match without an end tag of their own (HTML's
            // implied end tags), whether or not the selector matches them: registered first,
            // so they close the old match before a new one opens.
            let found = Arc::clone(&found);
            handlers.push((
                Cow::Borrowed(&*ENDERS),
                ElementContentHandlers::default().element(move |el: &mut Element<'_, '_>| {
                    let tag = el.tag_name();
                    let mut f = lock(&found);
                    let lists = f.lists;
                    let ended = f
                        .open
                        .iter()
                        .rev()
                        .find(|o| ends(&tag, &o.tag) && (o.tag != "li" || o.lists == lists));
                    if let Some(open) = ended {
                        let slot = open.slot;
                        f.close(slot);
                    }
                    if matches!(tag.as_str(), "ul" | "ol") {
                        f.lists += 1;
                        drop(f);
                        let found = Arc::clone(&found);
                        if let Some(handlers) = el.end_tag_handlers() {
                            handlers.push(Box::new(move |_: &mut EndTag<'_>| {
                                let mut f = lock(&found);
                                f.lists = f.lists.saturating_sub(1);
                                Ok(())
                            }));
                        }
                    }
                    Ok(())
                }),
            ));
        }
        handlers.push((
            parsed,
            ElementContentHandlers::default()
                .element(on_element)
                .text(on_text),
        ));
        if links {
            let found = Arc::clone(&found);
            handlers.push((
                Cow::Borrowed(&*ANCHORS),
                ElementContentHandlers::default().element(move |el: &mut Element<'_, '_>| {
                    if let (Some(href), Some(links)) =
                        (el.get_attribute("href"), lock(&found).links.as_mut())
                    {
                        links.push(htmlize::unescape_attribute(href).into_owned());
                    }
                    Ok(())
                }),
            ));
        }
        let settings = Settings {
            element_content_handlers: handlers,
            encoding,
            // A charset the response's headers name is certain (the HTML standard's
            // encoding sniffing): a <meta> may change only a guessed one.
            adjust_charset_on_meta_tag: named.is_none(),
            ..Settings::new_send()
        };
        Ok(Extract {
            rewriter: HtmlRewriter::new(settings, discard as fn(&[u8])),
            found,
        })
    }

    /// Reads the next bytes of the page; true once the title is read and no links are wanted
    /// (the rest of the page is not needed). Markup lol_html cannot read is left unread:
    /// what was found stands.
    pub fn feed(&mut self, bytes: &[u8]) -> bool {
        if !lock(&self.found).finished() && self.rewriter.write(bytes).is_err() {
            let mut f = lock(&self.found);
            f.done = true;
            f.links.take();
        }
        lock(&self.found).finished()
    }

    /// What was found, in document order; an element the page never closed gives the text
    /// read up to its end.
    pub fn finish(self) -> Vec<String> {
        self.finish_with_links().0
    }

    /// What was found, and the page's links (empty unless made [`Extract::with_links`]).
    pub fn finish_with_links(self) -> (Vec<String>, Vec<String>) {
        let Extract { rewriter, found } = self;
        let _ = rewriter.end();
        let mut f = lock(&found);
        if !f.done {
            // Elements the page never closed: the text read up to its end.
            f.close(0);
        }
        let values = std::mem::take(&mut f.values)
            .into_iter()
            .flatten()
            .collect();
        (values, f.links.take().unwrap_or_default())
    }
}

/// ASCII whitespace runs as one space, none at the ends: a browser's `document.title`.
fn collapse(text: &str) -> String {
    text.split_ascii_whitespace().collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `page` fed in pieces of `step` bytes.
    fn pick(page: &[u8], what: &str, charset: Option<&str>, step: usize) -> Vec<String> {
        let mut x = Extract::new(&Pick::parse(what), charset).unwrap();
        for piece in page.chunks(step) {
            if x.feed(piece) {
                break;
            }
        }
        x.finish()
    }

    #[test]
    fn the_title_is_read_in_any_pieces_and_reading_stops_there() {
        let page = b"<!doctype html><html><head><title>\n  The  Gophers'\tBook \n</title>\
                     <title>second</title></head><body><h1>x</h1></body></html>";
        for step in [1, 3, 7, 4096] {
            assert_eq!(
                pick(page, "", None, step),
                ["The Gophers' Book"],
                "step {step}"
            );
        }
        let mut x = Extract::new(&Pick::Title, None).unwrap();
        assert!(!x.feed(b"<html><head><title>early"));
        assert!(x.feed(b" bird</title>"), "done once the title is closed");
        assert_eq!(x.finish(), ["early bird"]);
        // No title; an unclosed one gives what it had.
        assert!(pick(b"<html><body>none</body></html>", "", None, 64).is_empty());
        assert_eq!(pick(b"<title>cut off", "", None, 64), ["cut off"]);
    }

    #[test]
    fn css_selects_texts_and_attributes_in_document_order() {
        let page = br#"<ul><li><a href="/a">One <b>1</b></a></li><li><a href="/b" class="x">Two</a></li></ul><a>no href</a>"#;
        assert_eq!(pick(page, "li a", None, 5), ["One 1", "Two"]);
        // Document order, a match inside a match in both, implied end tags.
        let nested = b"<div>outer <div>inner</div> tail</div><p>one<p>two<li>x<li>y";
        assert_eq!(pick(nested, "div", None, 3), ["outer inner tail", "inner"]);
        assert_eq!(pick(nested, "p", None, 3), ["one", "twoxy"]);
        assert_eq!(pick(nested, "li", None, 3), ["x", "y"]);
        let lists = b"<ul><li>2<ul><li>2a</ul><li>3</ul>";
        assert_eq!(pick(lists, "li", None, 4), ["22a", "2a", "3"]);
        let dl = b"<dl><dt>k<dd>v<dt>k2<dd>v2</dl>";
        assert_eq!(pick(dl, "dt", None, 4), ["k", "k2"]);
        assert_eq!(pick(dl, "dt, dd", None, 4), ["k", "v", "k2", "v2"]);
        assert_eq!(pick(page, "a@href", None, 5), ["/a", "/b"]);
        assert_eq!(pick(page, "a.x", None, 5), ["Two"]);
        let e = Extract::new(&Pick::parse("a[[["), None).unwrap_err();
        // With links, the page is read past its title, to its last link.
        let mut x = Extract::with_links(&Pick::Title, None).unwrap();
        assert!(!x.feed(b"<title>t</title><a href=/one>1</a>"));
        assert!(!x.feed(b"<a href='two'>2</a><a>none</a>"));
        assert_eq!(
            x.finish_with_links(),
            (
                vec!["t".to_string()],
                vec!["/one".to_string(), "two".to_string()]
            )
        );
        assert!(e.to_string().contains("a[[["), "{e}");
    }

    #[test]
    fn character_references_are_decoded_as_a_browser_decodes_them() {
        let page = b"<title>A &amp; B &lt;&#233;&eacute;&copy 2&nbsp;x&#10;y\0</title>";
        assert_eq!(
            pick(page, "", None, 4),
            ["A & B <\u{e9}\u{e9}\u{a9} 2\u{a0}x y\u{fffd}"]
        );
        let links = br#"<a href="/one?a=1&amp;b=2">1</a><a href="/two?x&copy=3">2</a>"#;
        assert_eq!(
            pick(links, "a@href", None, 5),
            ["/one?a=1&b=2", "/two?x&copy=3"]
        );
        assert_eq!(
            pick(b"<script>a &amp;&amp; b</script>", "script", None, 5),
            ["a &amp;&amp; b"]
        );
    }

    #[test]
    fn charsets_come_from_the_header_or_the_meta_tag_and_garbage_is_not_an_error() {
        // "Café" in Latin-1, named by the response's header.
        let latin1 = b"<title>Caf\xe9</title>";
        assert_eq!(pick(latin1, "", Some("iso-8859-1"), 64), ["Caf\u{e9}"]);
        // The same bytes named by a <meta charset> before the title.
        let meta = b"<meta charset=\"windows-1252\"><title>Caf\xe9</title>";
        assert_eq!(pick(meta, "", None, 64), ["Caf\u{e9}"]);
        // A charset the headers name wins over the page's <meta>.
        let utf8 = "<meta charset=iso-8859-1><title>Caf\u{e9}</title>".as_bytes();
        assert_eq!(pick(utf8, "", Some("utf-8"), 64), ["Caf\u{e9}"]);
        // Read as UTF-8, the stray byte becomes U+FFFD.
        assert_eq!(pick(latin1, "", None, 64), ["Caf\u{fffd}"]);
        // Arbitrary bytes (a multiplicative hash of the index): no panic.
        let noise: Vec<u8> = (0..100_000u32)
            .map(|i| (i.wrapping_mul(2_654_435_761) >> 11) as u8)
            .collect();
        let _ = pick(&noise, "", None, 1000);
        let _ = pick(&noise, "a@href", Some("shift_jis"), 1000);
    }
}
