//! Which URL goes next: the one place that knows the limits, so that neither model can
//! exceed them. URLs come from the input (read lazily, a bounded number ahead) or from the
//! crawl's frontier; each waits in its host's queue; a host is served while it has fewer
//! than `per_host` requests in flight and its rate allows, hosts taking turns; retries wait
//! in time order until they are due. Workers (threads or tasks) ask for a job, run it, and
//! settle it here; the lock is held for bookkeeping only, never across a request.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::time::{Duration, Instant};

use url::Url;

use crate::client::{ErrorKind, Failure, Origin};
use crate::frontier::Frontier;

/// One URL's journey: the address given, where it is now (after redirects), and what it
/// has cost so far.
#[derive(Debug, Clone)]
pub(crate) struct Job {
    /// As given (the row's `url`).
    pub(crate) given: String,
    /// The request to make now.
    pub(crate) url: Url,
    /// Its host's key (`host:port`).
    pub(crate) host: String,
    /// Crawl depth.
    pub(crate) depth: u32,
    /// Requests made.
    pub(crate) attempts: u32,
    /// Tries of the current address (retries start again after a redirect).
    pub(crate) tries: u32,
    /// Redirects followed.
    pub(crate) redirects: u32,
    /// Every address of its redirect chain.
    pub(crate) chain: Vec<String>,
    /// Time spent in requests.
    pub(crate) spent: Duration,
}

impl Job {
    fn new(given: String, url: Url, depth: u32) -> Option<Job> {
        let host = Origin::of(&url)?.authority();
        Some(Job {
            chain: vec![url.as_str().to_string()],
            given,
            url,
            host,
            depth,
            attempts: 0,
            tries: 0,
            redirects: 0,
            spent: Duration::ZERO,
        })
    }

    /// Moves the job to `url` (a redirect's target).
    pub(crate) fn redirect(&mut self, url: Url) -> bool {
        let Some(origin) = Origin::of(&url) else {
            return false;
        };
        self.host = origin.authority();
        self.chain.push(url.as_str().to_string());
        self.url = url;
        self.redirects += 1;
        self.tries = 0;
        true
    }
}

/// Where URLs come from.
pub enum Feed {
    /// A list, read as it is needed.
    Urls(Box<dyn Iterator<Item = String> + Send>),
    /// A crawl.
    Crawl(Frontier),
}

impl std::fmt::Debug for Feed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Feed::Urls(_) => f.write_str("Feed::Urls"),
            Feed::Crawl(fr) => f.debug_tuple("Feed::Crawl").field(fr).finish(),
        }
    }
}

/// What a worker is to do next.
#[derive(Debug)]
pub(crate) enum Take {
    /// Fetch this.
    Job(Job),
    /// This input is not a URL: its row.
    Invalid(String, Failure),
    /// Nothing can start before this time (`None`: before a request in flight ends).
    Wait(Option<Instant>),
    /// Fetch this host's robots.txt (at this address) first; settle it with
    /// [`Schedule::robots_known`].
    Robots(String, Url),
    /// robots.txt disallows this job: its row.
    Refused(Job, Failure),
    /// Everything is done.
    Done,
}

/// What a host's robots.txt says, as far as this run knows.
#[derive(Debug, Default)]
enum Robots {
    /// Not asked yet.
    #[default]
    Unknown,
    /// Being fetched: the host's jobs wait.
    Fetching,
    /// Read (`None`: no rules, everything allowed).
    Known(Option<Box<texting_robots::Robot>>),
}

#[derive(Debug, Default)]
struct Host {
    in_flight: usize,
    /// Its rate's next free slot.
    next_at: Option<Instant>,
    queue: VecDeque<Job>,
    robots: Robots,
    /// robots.txt's Crawl-delay: at least this long between two starts.
    delay: Option<Duration>,
    /// Why every page is refused, when robots.txt could not be read.
    robots_why: Option<String>,
}

/// The limits a schedule keeps.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Limits {
    /// Requests in flight per host.
    pub(crate) per_host: Option<usize>,
    /// Requests started per second, in all.
    pub(crate) rate: Option<f64>,
    /// Requests started per second, per host.
    pub(crate) host_rate: Option<f64>,
    /// URLs read ahead of the workers.
    pub(crate) lookahead: usize,
    /// Obey each host's robots.txt.
    pub(crate) robots: bool,
}

/// The schedule.
#[derive(Debug)]
pub(crate) struct Schedule {
    feed: Feed,
    fed_all: bool,
    limits: Limits,
    hosts: HashMap<String, Host>,
    /// Hosts with queued jobs, in turn order.
    turns: VecDeque<String>,
    queued: usize,
    /// Retries, by when they are due (and a sequence number, to keep equal times apart).
    later: BTreeMap<(Instant, u64), Job>,
    seq: u64,
    in_flight: usize,
    next_at: Option<Instant>,
}

/// The interval of a rate per second.
fn interval(rate: Option<f64>) -> Option<Duration> {
    rate.map(|r| Duration::from_secs_f64(1.0 / r))
}

/// A rate's next slot after one taken at `now`: slots missed while nothing was waiting are
/// not made up for in a burst.
fn next_slot(prev: Option<Instant>, now: Instant, interval: Duration) -> Instant {
    prev.map_or(now, |at| at.max(now)) + interval
}

impl Schedule {
    pub(crate) fn new(feed: Feed, limits: Limits) -> Schedule {
        Schedule {
            feed,
            fed_all: false,
            limits,
            hosts: HashMap::new(),
            turns: VecDeque::new(),
            queued: 0,
            later: BTreeMap::new(),
            seq: 0,
            in_flight: 0,
            next_at: None,
        }
    }

    /// Requests in flight now.
    pub(crate) fn in_flight(&self) -> usize {
        self.in_flight
    }

    /// Jobs waiting: queued for their host, or for their retry.
    pub(crate) fn waiting(&self) -> usize {
        self.queued
            + self.later.len()
            + match &self.feed {
                Feed::Crawl(f) => f.pending(),
                Feed::Urls(_) => 0,
            }
    }

    /// Queues `job` at the front of its host's queue (a redirect, a retry now due) or at
    /// the back (a new URL).
    fn queue(&mut self, job: Job, front: bool) {
        let host = self.hosts.entry(job.host.clone()).or_default();
        if host.queue.is_empty() {
            self.turns.push_back(job.host.clone());
        }
        if front {
            host.queue.push_front(job);
        } else {
            host.queue.push_back(job);
        }
        self.queued += 1;
    }

    /// The next thing to do at `now`.
    pub(crate) fn take(&mut self, now: Instant) -> Take {
        while let Some(entry) = self.later.first_entry() {
            if entry.key().0 > now {
                break;
            }
            let job = entry.remove();
            self.queue(job, true);
        }
        while !self.fed_all && self.queued < self.limits.lookahead.max(1) {
            let next = match &mut self.feed {
                Feed::Urls(urls) => urls.next().map(|text| {
                    let url = crate::frontier::normalise(&text);
                    (text, url, 0)
                }),
                Feed::Crawl(frontier) => frontier
                    .take()
                    .map(|(url, depth)| (url.as_str().to_string(), Some(url), depth)),
            };
            let Some((given, url, depth)) = next else {
                self.fed_all = true;
                break;
            };
            match url.and_then(|u| Job::new(given.clone(), u, depth)) {
                Some(job) => self.queue(job, false),
                None => {
                    return Take::Invalid(
                        given,
                        Failure::new(
                            ErrorKind::InvalidUrl,
                            "not an absolute http:// or https:// URL with a host",
                        ),
                    );
                }
            }
        }
        if let Some(at) = self.next_at.filter(|at| *at > now)
            && self.queued > 0
        {
            return Take::Wait(Some(at));
        }
        let mut soonest = self.later.first_key_value().map(|(k, _)| k.0);
        for turn in 0..self.turns.len() {
            let name = &self.turns[turn];
            let host = self
                .hosts
                .get_mut(name)
                .expect("a host with a turn is known");
            if self.limits.per_host.is_some_and(|n| host.in_flight >= n) {
                continue;
            }
            if let Some(at) = host.next_at.filter(|at| *at > now) {
                soonest = Some(soonest.map_or(at, |s| s.min(at)));
                continue;
            }
            let front = host.queue.front().expect("a host with a turn has a job");
            let mut refused = false;
            if self.limits.robots {
                match &host.robots {
                    Robots::Unknown => {
                        host.robots = Robots::Fetching;
                        host.in_flight += 1;
                        self.in_flight += 1;
                        let mut url = front.url.clone();
                        url.set_path("/robots.txt");
                        url.set_query(None);
                        return Take::Robots(name.clone(), url);
                    }
                    Robots::Fetching => continue,
                    Robots::Known(Some(robot)) => {
                        refused = !robot.allowed(&super::one_form(front.url.as_str()));
                    }
                    Robots::Known(None) => {}
                }
            }
            let job = host
                .queue
                .pop_front()
                .expect("a host with a turn has a job");
            let name = self.turns.remove(turn).expect("the turn exists");
            if !host.queue.is_empty() {
                self.turns.push_back(name);
            }
            self.queued -= 1;
            if refused {
                let mut robots = job.url.clone();
                robots.set_path("/robots.txt");
                robots.set_query(None);
                let why = host
                    .robots_why
                    .clone()
                    .unwrap_or_else(|| format!("disallowed by {robots}"));
                return Take::Refused(job, Failure::new(ErrorKind::Robots, why));
            }
            host.in_flight += 1;
            let gap = match (interval(self.limits.host_rate), host.delay) {
                (Some(i), Some(d)) => Some(i.max(d)),
                (i, d) => i.or(d),
            };
            if let Some(i) = gap {
                host.next_at = Some(next_slot(host.next_at, now, i));
            }
            if let Some(i) = interval(self.limits.rate) {
                self.next_at = Some(next_slot(self.next_at, now, i));
            }
            self.in_flight += 1;
            return Take::Job(job);
        }
        if self.fed_all && self.queued == 0 && self.later.is_empty() && self.in_flight == 0 {
            // A crawl's frontier grows as pages are settled: it is empty only now.
            return Take::Done;
        }
        Take::Wait(soonest)
    }

    /// `job`'s request is over.
    pub(crate) fn finished(&mut self, host: &str) {
        self.in_flight -= 1;
        if let Some(h) = self.hosts.get_mut(host) {
            h.in_flight -= 1;
            if h.in_flight == 0
                && h.queue.is_empty()
                && h.next_at.is_none_or(|at| at <= Instant::now())
            {
                self.hosts.remove(host);
            }
        }
    }

    /// `host`'s robots.txt has been read: `robot` (`None`: no rules), whose Crawl-delay
    /// spaces the host's starts from now on.
    pub(crate) fn robots_known(
        &mut self,
        host: &str,
        robot: Option<texting_robots::Robot>,
        why: Option<String>,
    ) {
        self.in_flight -= 1;
        if let Some(h) = self.hosts.get_mut(host) {
            h.in_flight -= 1;
            h.delay = robot
                .as_ref()
                .and_then(|r| r.delay)
                .filter(|d| d.is_finite() && *d > 0.0)
                .map(|d| Duration::from_secs_f64(f64::from(d).min(60.0)));
            h.robots = Robots::Known(robot.map(Box::new));
            h.robots_why = why;
        }
    }

    /// Runs `job` again at `at` (a retry), or as soon as its host allows (a redirect).
    pub(crate) fn again(&mut self, job: Job, at: Option<Instant>) {
        match at {
            Some(at) => {
                self.seq += 1;
                self.later.insert((at, self.seq), job);
            }
            None => self.queue(job, true),
        }
    }

    /// A crawl's page at `depth`, settled at `final_url`, had these links.
    pub(crate) fn links(&mut self, final_url: &Url, depth: u32, links: &[String]) {
        if let Feed::Crawl(frontier) = &mut self.feed {
            frontier.offer_links(final_url, depth, links.iter().map(String::as_str));
            if frontier.pending() > 0 {
                self.fed_all = false;
            }
        }
    }

    /// A crawl's redirect reached `url`: it counts as visited, so a link to it later is not
    /// fetched again. False if it was already.
    pub(crate) fn visit(&mut self, url: &Url) -> bool {
        match &mut self.feed {
            Feed::Crawl(frontier) => frontier.visit(url),
            Feed::Urls(_) => true,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn urls(list: &[&str]) -> Feed {
        let v: Vec<String> = list.iter().map(|s| s.to_string()).collect();
        Feed::Urls(Box::new(v.into_iter()))
    }

    fn job(t: Take) -> Job {
        match t {
            Take::Job(j) => j,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn hosts_take_turns_and_never_exceed_their_limit() {
        let limits = Limits {
            per_host: Some(2),
            lookahead: 100,
            ..Limits::default()
        };
        let mut s = Schedule::new(
            urls(&[
                "http://a/1",
                "http://a/2",
                "http://a/3",
                "http://b/1",
                "http://b/2",
            ]),
            limits,
        );
        let now = Instant::now();
        let order: Vec<String> = (0..4).map(|_| job(s.take(now)).given).collect();
        assert_eq!(
            order,
            ["http://a/1", "http://b/1", "http://a/2", "http://b/2"]
        );
        // a has two in flight: a/3 waits for one of them.
        assert!(matches!(s.take(now), Take::Wait(None)));
        s.finished("a:80");
        assert_eq!(job(s.take(now)).given, "http://a/3");
        for h in ["a:80", "a:80", "b:80", "b:80"] {
            s.finished(h);
        }
        assert!(matches!(s.take(now), Take::Done));
    }

    #[test]
    fn bad_urls_are_rows_and_retries_wait_until_due() {
        let mut s = Schedule::new(urls(&["nonsense", "http://a/1"]), Limits::default());
        let now = Instant::now();
        assert!(matches!(s.take(now), Take::Invalid(given, _) if given == "nonsense"));
        let j = job(s.take(now));
        s.finished(&j.host.clone());
        s.again(j, Some(now + Duration::from_secs(1)));
        assert!(matches!(s.take(now), Take::Wait(Some(at)) if at == now + Duration::from_secs(1)));
        let j = job(s.take(now + Duration::from_secs(1)));
        s.finished(&j.host);
        assert!(matches!(s.take(now), Take::Done));
    }

    #[test]
    fn robots_txt_is_read_first_and_its_rules_refuse_jobs() {
        let limits = Limits {
            robots: true,
            lookahead: 10,
            ..Limits::default()
        };
        let mut s = Schedule::new(urls(&["http://a/ok?x=1", "http://a/private/1"]), limits);
        let now = Instant::now();
        let Take::Robots(host, url) = s.take(now) else {
            panic!()
        };
        assert_eq!(
            (host.as_str(), url.as_str()),
            ("a:80", "http://a/robots.txt")
        );
        // The host's jobs wait while it is read.
        assert!(matches!(s.take(now), Take::Wait(None)));
        let robot =
            texting_robots::Robot::new("conlab", b"User-agent: *\nDisallow: /private\n").unwrap();
        s.robots_known(&host, Some(robot), None);
        assert_eq!(job(s.take(now)).given, "http://a/ok?x=1");
        assert!(
            matches!(s.take(now), Take::Refused(j, f) if j.given == "http://a/private/1" && f.kind == ErrorKind::Robots)
        );
        s.finished("a:80");
        assert!(matches!(s.take(now), Take::Done));
    }

    #[test]
    fn a_rate_spaces_the_starts() {
        let limits = Limits {
            rate: Some(10.0),
            lookahead: 10,
            ..Limits::default()
        };
        let mut s = Schedule::new(urls(&["http://a/1", "http://b/2"]), limits);
        let now = Instant::now();
        job(s.take(now));
        let Take::Wait(Some(at)) = s.take(now) else {
            panic!()
        };
        assert_eq!(at - now, Duration::from_millis(100));
        job(s.take(at));
    }
}
