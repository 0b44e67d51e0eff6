//! The tie-breaker (`[cluster] ping`): whether this node reaches any of the
//! cluster's ping addresses, asked every [`REACH_EVERY`] (each address
//! once, at the same time, by `ping` with an argument vector, through
//! [`hamond::helper`]), and whether it is *isolated*: it sees no other node
//! on any heartbeat path (one was lost uncleanly) and the last check got
//! no answer. Safety rule 1: the ping addresses decide only who releases;
//! an isolated node releases its services and never fences, a node that
//! reaches them fences as it would without them.

use std::net::IpAddr;
use std::time::Duration;

/// How often the ping addresses are asked.
pub const REACH_EVERY: Duration = Duration::from_secs(2);
/// How long one ping waits for its answer.
const PING_WAIT: Duration = Duration::from_secs(1);
/// The ping program (Debian's iputils-ping).
const PING: &str = "/bin/ping";

/// What the tie-breaker knows.
#[derive(Debug, Default)]
pub struct Reach {
    ping: Vec<IpAddr>,
    /// The last check: `Some(true)` some address answered.
    answered: Option<bool>,
    /// A check is under way.
    pub checking: bool,
    /// No other node is up, and one was lost uncleanly.
    alone: bool,
    /// Why this node is isolated, while it is.
    isolated: Option<String>,
}

/// A change of isolation: `Some(why)` isolated now, `None` no longer.
pub type Change = Option<String>;

impl Reach {
    pub fn new(ping: Vec<IpAddr>) -> Reach {
        Reach {
            ping,
            ..Reach::default()
        }
    }

    /// The ping addresses.
    pub fn addresses(&self) -> &[IpAddr] {
        &self.ping
    }

    /// Whether there are ping addresses.
    pub fn configured(&self) -> bool {
        !self.ping.is_empty()
    }

    /// The last check's verdict, if there was one.
    pub fn answered(&self) -> Option<bool> {
        self.answered
    }

    /// Why this node is isolated, while it is.
    pub fn isolated(&self) -> Option<&str> {
        self.isolated.as_deref()
    }

    /// A check ended; the change of isolation, if any.
    pub fn checked(&mut self, result: Result<IpAddr, String>) -> Option<Change> {
        self.checking = false;
        let ok = result.is_ok();
        match (&result, self.answered) {
            (Err(e), Some(true) | None) => tracing::warn!(
                "none of the ping addresses answers ({e}): if this node loses sight of every \
                 peer it counts as isolated and releases its services; check its public network"
            ),
            (Ok(addr), Some(false)) => {
                tracing::info!("ping address {addr} answers again")
            }
            _ => {}
        }
        self.answered = Some(ok);
        self.update()
    }

    /// Whether no other node is up (`alone`, with one lost uncleanly);
    /// the change of isolation, if any.
    pub fn set_alone(&mut self, alone: bool) -> Option<Change> {
        self.alone = alone;
        self.update()
    }

    fn update(&mut self) -> Option<Change> {
        let now = self.alone && self.answered == Some(false) && self.configured();
        if now == self.isolated.is_some() {
            return None;
        }
        self.isolated = now.then(|| {
            let addrs: Vec<String> = self.ping.iter().map(ToString::to_string).collect();
            format!(
                "no other node is up on any heartbeat path and none of the ping addresses ({}) \
                 answers",
                addrs.join(", ")
            )
        });
        Some(self.isolated.clone())
    }

    /// Asks every address once; `Ok` names one that answered.
    pub async fn ask(ping: Vec<IpAddr>) -> Result<IpAddr, String> {
        let asks: Vec<_> = ping
            .into_iter()
            .map(|addr| tokio::spawn(async move { (addr, ping_once(addr).await) }))
            .collect();
        let mut errors = Vec::new();
        for ask in asks {
            match ask.await {
                Ok((addr, Ok(()))) => return Ok(addr),
                Ok((_, Err(e))) => errors.push(e),
                Err(e) => errors.push(format!("the ping task failed: {e}")),
            }
        }
        Err(errors.join("; "))
    }
}

/// One echo request to `addr`.
async fn ping_once(addr: IpAddr) -> Result<(), String> {
    let (wait, target) = (PING_WAIT.as_secs().to_string(), addr.to_string());
    let argv = [PING, "-n", "-q", "-c", "1", "-W", &wait, &target].map(str::to_owned);
    match hamond::helper::run(&argv, &[], b"", PING_WAIT + Duration::from_secs(1)).await {
        Ok(done) if done.code == Some(0) => Ok(()),
        Ok(_) => Err(format!("{addr} did not answer")),
        Err(e) => Err(format!(
            "cannot ping {addr}: {e}; install Debian's iputils-ping"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr() -> IpAddr {
        "192.0.2.1".parse().unwrap()
    }

    #[test]
    fn isolated_only_when_alone_and_no_address_answers() {
        let mut r = Reach::new(vec![addr()]);
        assert_eq!(r.checked(Err("silent".into())), None);
        let change = r.set_alone(true);
        assert!(matches!(change, Some(Some(ref why)) if why.contains("192.0.2.1")));
        assert!(r.isolated().is_some());
        assert_eq!(r.checked(Err("silent".into())), None);
        // An answer ends it, and so does a peer coming back.
        assert_eq!(r.checked(Ok(addr())), Some(None));
        assert_eq!(r.checked(Err("silent".into())), Some(r.isolated.clone()));
        assert_eq!(r.set_alone(false), Some(None));
        assert_eq!(r.isolated(), None);
    }

    #[test]
    fn a_node_that_reaches_an_address_or_has_none_is_never_isolated() {
        let mut r = Reach::new(vec![addr()]);
        assert_eq!(r.set_alone(true), None);
        assert_eq!(r.checked(Ok(addr())), None);
        let mut none = Reach::new(Vec::new());
        assert_eq!(none.set_alone(true), None);
        assert_eq!(none.checked(Err("no address".into())), None);
    }
}
