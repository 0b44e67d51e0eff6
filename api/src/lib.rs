//! The agent API of hacluster: SureHA's five calls (manual chapter 7) for
//! agents that watch a service and tell hasvrd whether it works.
//!
//! | C (`clusterapi.h`) | `haapi` tool | request sent | meaning |
//! |---|---|---|---|
//! | `int apiopen(char *szServiceName)` | `haapi open NAME` | `open NAME` | start expecting heartbeats |
//! | `int apiok(char *szServiceName)` | `haapi ok NAME` | `ok NAME` | one heartbeat: the service works |
//! | `int apierr(char *szServiceName)` | `haapi err NAME [REASON...]` | `err NAME [REASON]` | the service does not work |
//! | `int apiclose(char *szServiceName)` | `haapi close NAME` | `close NAME` | stop expecting heartbeats |
//! | `int apicmd(char *cmd, char *szServiceName)` | `haapi cmd CMD NAME` | `cmd CMD NAME` | `BRINGIN`, `BRINGOUT` or `FAILOVER` (root or the admin group only, checked by hasvrd) |
//!
//! Each C call returns 0 when hasvrd answered `ok`, and -1 otherwise: the
//! service is unknown on this node, the name or command is invalid (NULL,
//! not UTF-8, not a service name), `apicmd` was refused, or hasvrd stayed
//! unreachable for the whole grace period. The protocol is
//! [`haschema::agent`]; the server is `hasvrd::agent::Agents`.
//!
//! # Environment
//!
//! * `HA_AGENT_SOCKET`: hasvrd's agent socket; default
//!   [`DEFAULT_SOCKET`](haschema::agent::DEFAULT_SOCKET),
//!   `/run/hacluster/agent.sock`.
//! * `HA_AGENT_GRACE`: how long a call keeps retrying while hasvrd is
//!   away (socket missing or refusing, connection lost), in seconds,
//!   decimals allowed (`0.5`); default 10, `0` for a single attempt. A
//!   malformed value makes every call fail (-1), with the reason.
//! * `HAHOME` is the agents' home directory, as in the manual's templates
//!   (`hafile.h` defines `CLUSTERHOME` as `"HAHOME"`): the templates watch
//!   `$HAHOME/tmp/agent...` and the shell template runs
//!   `$HAHOME/bin/APIOK.x` and `$HAHOME/bin/APIERROR.x`, links to `haapi`.
//!   It does **not** move the socket: HAHOME is set for every agent, while
//!   hasvrd's socket is a system path; deriving one from the other would
//!   make every install that sets HAHOME need a matching hasvrd option. Use
//!   `HA_AGENT_SOCKET` to point agents elsewhere.
//!
//! # Behaviour
//!
//! * **One connection per call**: connect, send one line, read one reply,
//!   close. Heartbeats come every few seconds, so the cost is nothing, and
//!   there is no state to share: calls are thread-safe without a lock, safe
//!   in a child after `fork` (a child never uses its parent's socket), and
//!   unharmed by agents that close every descriptor (as the C template
//!   does) or reuse descriptor numbers.
//! * **Restarts of hasvrd**: while the socket is missing or refuses
//!   connections, or the connection breaks before the request is sent, the
//!   call retries (pauses of 50 ms doubling to 500 ms) until the grace
//!   period ends. A heartbeat whose reply is lost after sending is sent
//!   again (they are idempotent); an `apicmd` is not (it might run twice):
//!   it fails instead.
//! * Writes use `MSG_NOSIGNAL`: a C agent that does not ignore SIGPIPE is
//!   not killed by a vanished hasvrd. The socket is close-on-exec.
//! * No panic crosses the C boundary; the library never writes to stdout
//!   or stderr (an agent may have closed them and reused the numbers). The
//!   reason of the last failure on the calling thread is available from
//!   `haapi_lasterror()`.

pub mod client;
pub mod ffi;

pub use client::{Client, DEFAULT_GRACE, Error, GRACE_ENV, SOCKET_ENV};
pub use ffi::{apiclose, apicmd, apierr, apiok, apiopen, haapi_lasterror};
