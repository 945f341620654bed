//! RFC 2136 dynamic updates signed with TSIG (RFC 8945), for BIND, Knot, PowerDNS and any other
//! authoritative server that accepts them.
//!
//! - [`records`](DnsProvider::records) transfers the zone (AXFR over TCP, signed with the key).
//! - [`apply`](DnsProvider::apply) sends the whole change set as **one** UPDATE message: the
//!   server applies all of it or none (RFC 2136 §3.4). Each change carries a prerequisite:
//!   "this RRset does not exist" for a create, "this RRset exists with exactly these values"
//!   for an update or delete, so an update planned against a zone someone changed meanwhile is
//!   refused as a whole ([`DnsError::ZoneChanged`]) instead of overwriting their change.
//!   A change set too large for one DNS message (64 KiB: several hundred names with their
//!   ownership records) is sent as several such updates, in order, each atomic, never splitting
//!   a record's replacement from its removal; a failure after the first is reported as
//!   [`DnsError::PartiallyApplied`].
//!
//! The messages are built with `hickory-proto` and signed with its `TSigner`; the exchange over
//! TCP is this module's own (about forty lines). `hickory-net`'s client verifies the TSIG of a
//! response before it exposes the response code, so a server's BADSIG/BADKEY/BADTIME answer
//! (which is unsigned) surfaces there as "truncated HMACs are not supported", and the user
//! cannot tell a wrong secret from a wrong key name or a skewed clock. Here the TSIG error is
//! read first and turned into an error that says which of those to fix.

use std::fmt;
use std::net::SocketAddr;
use std::str::FromStr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use hickory_proto::op::{Edns, Message, MessageType, OpCode, Query, ResponseCode, UpdateMessage};
use hickory_proto::rr::rdata::tsig::{TsigAlgorithm as HickoryAlgorithm, TsigError};
use hickory_proto::rr::rdata::{A, AAAA, CNAME, TXT};
use hickory_proto::rr::{DNSClass, Name, RData, Record, RecordType as HType, TSigner};
use secrecy::{ExposeSecret as _, SecretString};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;

use crate::change::{Change, ChangeSet};
use crate::clock::Clock;
use crate::config::ServerAddress;
use crate::error::DnsError;
use crate::name::DnsName;
use crate::provider::{Capabilities, DnsProvider, NameServer};
use crate::record::{RecordSet, RecordType, split_txt};
use crate::retry::{AttemptError, RetryPolicy};

const PROVIDER: &str = "rfc2136";
/// How far apart the signer's and the server's clocks may be (RFC 8945 recommends 300 s).
const FUDGE: u16 = 300;

/// A TSIG algorithm ferry signs with.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
pub enum TsigAlgorithm {
    /// hmac-sha256 (the default, and what `keymgr`/`tsig-keygen` make by default).
    HmacSha256,
    /// hmac-sha384.
    HmacSha384,
    /// hmac-sha512.
    HmacSha512,
}

impl FromStr for TsigAlgorithm {
    type Err = DnsError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().trim_end_matches('.').to_ascii_lowercase().as_str() {
            "hmac-sha256" => Ok(TsigAlgorithm::HmacSha256),
            "hmac-sha384" => Ok(TsigAlgorithm::HmacSha384),
            "hmac-sha512" => Ok(TsigAlgorithm::HmacSha512),
            other => Err(DnsError::invalid(format!(
                "TSIG algorithm `{other}` is not supported; use hmac-sha256, hmac-sha384 or hmac-sha512"
            ))),
        }
    }
}

impl fmt::Display for TsigAlgorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            TsigAlgorithm::HmacSha256 => "hmac-sha256",
            TsigAlgorithm::HmacSha384 => "hmac-sha384",
            TsigAlgorithm::HmacSha512 => "hmac-sha512",
        })
    }
}

/// A TSIG key: its name as the server knows it, the algorithm and the base64 secret. `Debug`
/// never shows the secret.
#[derive(Clone)]
pub struct TsigKey {
    name: DnsName,
    algorithm: TsigAlgorithm,
    secret: SecretString,
}

impl fmt::Debug for TsigKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TsigKey")
            .field("name", &self.name)
            .field("algorithm", &self.algorithm)
            .field("secret", &"<redacted>")
            .finish()
    }
}

impl TsigKey {
    /// A key; the secret must be base64 (as in `key` blocks of BIND and Knot).
    pub fn new(
        name: &str,
        algorithm: TsigAlgorithm,
        secret: SecretString,
    ) -> Result<Self, DnsError> {
        let name = DnsName::parse(name).map_err(|e| {
            DnsError::invalid(format!(
                "TSIG key name `{name}` is not a valid DNS name: {e}"
            ))
        })?;
        let key = TsigKey {
            name,
            algorithm,
            secret,
        };
        if key.secret_bytes()?.is_empty() {
            return Err(DnsError::invalid(format!(
                "the secret of TSIG key `{}` is empty",
                key.name
            )));
        }
        Ok(key)
    }

    /// The key's name.
    pub fn name(&self) -> &DnsName {
        &self.name
    }

    /// The algorithm.
    pub fn algorithm(&self) -> TsigAlgorithm {
        self.algorithm
    }

    fn secret_bytes(&self) -> Result<Vec<u8>, DnsError> {
        use base64::Engine as _;
        base64::engine::general_purpose::STANDARD
            .decode(self.secret.expose_secret().trim())
            .map_err(|_| {
                DnsError::invalid(format!(
                    "the secret of TSIG key `{}` is not base64 (copy the `secret` of the key as \
                     the server's config has it)",
                    self.name
                ))
            })
    }

    fn signer(&self) -> Result<TSigner, DnsError> {
        let algorithm = match self.algorithm {
            TsigAlgorithm::HmacSha256 => HickoryAlgorithm::HmacSha256,
            TsigAlgorithm::HmacSha384 => HickoryAlgorithm::HmacSha384,
            TsigAlgorithm::HmacSha512 => HickoryAlgorithm::HmacSha512,
        };
        TSigner::new(self.secret_bytes()?, algorithm, to_name(&self.name)?, FUDGE)
            .map_err(|e| DnsError::invalid(format!("TSIG key `{}`: {e}", self.name)))
    }
}

/// A zone on an authoritative server that accepts RFC 2136 updates.
#[derive(Clone, Debug)]
pub struct Rfc2136Provider {
    zone: DnsName,
    server: ServerAddress,
    key: Option<TsigKey>,
    timeout: Duration,
    clock: Clock,
    retry: RetryPolicy,
    /// The address of `server` that last accepted a connection: tried first next time, and
    /// the one verification asks.
    answered: Arc<Mutex<Option<SocketAddr>>>,
}

impl Rfc2136Provider {
    /// A provider for `zone` on `server` (a [`SocketAddr`], or a [`ServerAddress`] that may be
    /// a host name: resolved at each connection, its addresses tried in turn), signing with
    /// `key` (`None` sends unsigned requests, which servers normally refuse). The clock dates
    /// TSIG signatures.
    pub fn new(
        zone: DnsName,
        server: impl Into<ServerAddress>,
        key: Option<TsigKey>,
        clock: Clock,
    ) -> Self {
        Rfc2136Provider {
            zone,
            server: server.into(),
            key,
            timeout: Duration::from_secs(10),
            clock,
            retry: RetryPolicy::default(),
            answered: Arc::default(),
        }
    }

    /// The time allowed for each exchange with the server.
    #[must_use]
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// How to retry a zone transfer that failed in transit (updates are sent once: see
    /// [`apply`](DnsProvider::apply)).
    #[must_use]
    pub fn with_retry(mut self, retry: RetryPolicy) -> Self {
        self.retry = retry;
        self
    }

    fn zone_query(&self, qtype: HType) -> Result<Query, DnsError> {
        let mut q = Query::query(to_name(&self.zone)?, qtype);
        q.set_query_class(DNSClass::IN);
        Ok(q)
    }

    /// The server's addresses: the configured one, or what its name resolves to now, with
    /// the one that answered last first.
    async fn addresses(&self) -> Result<Vec<SocketAddr>, AttemptError> {
        let mut addrs = self.server.resolve(self.timeout).await.map_err(|e| {
            AttemptError::Transient(DnsError::transport(
                PROVIDER,
                format!("resolving the server's name {}", self.server),
                e,
            ))
        })?;
        if let Some(last) = *self.answered.lock().unwrap_or_else(|e| e.into_inner())
            && let Some(i) = addrs.iter().position(|a| *a == last)
        {
            addrs[..=i].rotate_right(1);
        }
        Ok(addrs)
    }

    async fn connect(&self) -> Result<TcpStream, AttemptError> {
        let mut failures = Vec::new();
        for addr in self.addresses().await? {
            match tokio::time::timeout(self.timeout, TcpStream::connect(addr)).await {
                Ok(Ok(s)) => {
                    *self.answered.lock().unwrap_or_else(|e| e.into_inner()) = Some(addr);
                    return Ok(s);
                }
                Ok(Err(e)) => failures.push((addr, e.to_string())),
                Err(_) => failures.push((addr, format!("no answer within {:?}", self.timeout))),
            }
        }
        let detail = match &self.server {
            ServerAddress::Ip(_) => failures
                .into_iter()
                .map(|(_, e)| e)
                .collect::<Vec<_>>()
                .join("; "),
            ServerAddress::Host { .. } => failures
                .into_iter()
                .map(|(a, e)| format!("{a}: {e}"))
                .collect::<Vec<_>>()
                .join("; "),
        };
        Err(AttemptError::Transient(DnsError::transport(
            PROVIDER,
            format!("connecting to {}", self.server),
            detail,
        )))
    }

    /// Sends one message over a new TCP connection and reads responses until `done` says the
    /// exchange is complete. Every response is checked for TSIG errors and verified.
    async fn exchange(
        &self,
        mut message: Message,
        operation: &str,
        mut done: impl FnMut(&Message) -> bool,
    ) -> Result<Vec<Message>, AttemptError> {
        let mut verifier = match &self.key {
            Some(key) => message
                .finalize(&key.signer()?, self.clock.unix_seconds())
                .map_err(|e| DnsError::invalid(format!("cannot sign the request: {e}")))?,
            None => None,
        };
        let bytes = message
            .to_vec()
            .map_err(|e| DnsError::invalid(format!("cannot encode the request: {e}")))?;
        let len = u16::try_from(bytes.len()).map_err(|_| {
            DnsError::invalid(format!(
                "the request is {} bytes, more than one DNS message can hold; apply fewer changes at once",
                bytes.len()
            ))
        })?;
        let mut stream = self.connect().await?;
        let fail = |what: String| {
            // Once the request is sent it may have been applied: never resend it.
            AttemptError::Fatal(DnsError::transport(PROVIDER, operation.to_owned(), what))
        };
        let io = async {
            stream.write_all(&len.to_be_bytes()).await?;
            stream.write_all(&bytes).await?;
            stream.flush().await?;
            let mut responses = Vec::new();
            loop {
                let mut len = [0u8; 2];
                stream.read_exact(&mut len).await?;
                let mut buf = vec![0u8; usize::from(u16::from_be_bytes(len))];
                stream.read_exact(&mut buf).await?;
                responses.push(buf);
                let last = Message::from_vec(responses.last().map_or(&[][..], Vec::as_slice))
                    .map(|m| done(&m) || m.metadata.response_code != ResponseCode::NoError)
                    .unwrap_or(true);
                if last {
                    return Ok::<_, std::io::Error>(responses);
                }
            }
        };
        let raw = match tokio::time::timeout(self.timeout, io).await {
            Ok(Ok(r)) => r,
            Ok(Err(e)) => return Err(fail(format!("talking to {}: {e}", self.server))),
            Err(_) => {
                return Err(fail(format!(
                    "{} did not answer within {:?}",
                    self.server, self.timeout
                )));
            }
        };
        let mut out = Vec::new();
        for buf in raw {
            let response = Message::from_vec(&buf)
                .map_err(|e| fail(format!("{} sent a malformed DNS message: {e}", self.server)))?;
            if response.metadata.id != message.metadata.id
                || response.metadata.message_type != MessageType::Response
            {
                return Err(fail(format!("{} answered another request", self.server)));
            }
            self.check_tsig(&response)?;
            if let Some(v) = verifier.as_mut() {
                v.verify(&buf).map_err(|e| {
                    AttemptError::Fatal(self.rejected(
                        "response signature",
                        &format!("the server's answer does not verify with this key ({e})"),
                    ))
                })?;
            } else if self.key.is_some() {
                return Err(AttemptError::Fatal(self.rejected(
                    "unsigned response",
                    "the server's answer to a signed request was not signed",
                )));
            }
            out.push(response);
        }
        Ok(out)
    }

    fn rejected(&self, code: &str, help: &str) -> DnsError {
        DnsError::TsigRejected {
            server: self.server.to_string(),
            key: self
                .key
                .as_ref()
                .map_or_else(|| "(none)".to_owned(), |k| k.name.to_string()),
            code: code.to_owned(),
            help: help.to_owned(),
        }
    }

    fn check_tsig(&self, response: &Message) -> Result<(), AttemptError> {
        let Some(error) = response.signature().and_then(|s| s.data.error) else {
            return Ok(());
        };
        let help = match error {
            TsigError::BadSig => {
                "the server knows the key but the signature does not match: check the secret (and the algorithm)"
            }
            TsigError::BadKey => {
                "the server does not know this key, or does not allow it for this zone: check the key name, the algorithm and the zone's ACL"
            }
            TsigError::BadTime => {
                "this machine's clock and the server's differ by more than 5 minutes: fix the clock"
            }
            _ => "the server refused the signature",
        };
        let code = match error {
            TsigError::BadSig => "BADSIG".to_owned(),
            TsigError::BadKey => "BADKEY".to_owned(),
            TsigError::BadTime => "BADTIME".to_owned(),
            TsigError::BadTrunc => "BADTRUNC".to_owned(),
            TsigError::Unknown(c) => format!("TSIG error {c}"),
        };
        Err(AttemptError::Fatal(self.rejected(&code, help)))
    }

    fn rcode_error(&self, rcode: ResponseCode, operation: &str) -> DnsError {
        let zone = self.zone.to_string();
        match rcode {
            ResponseCode::NotAuth if self.key.is_none() => DnsError::Unauthorized {
                provider: PROVIDER,
                zone,
                action: "edit",
                detail: format!(
                    "{} answered NOTAUTH to an unsigned request; configure the TSIG key it expects",
                    self.server
                ),
            },
            ResponseCode::NotAuth => DnsError::Unauthorized {
                provider: PROVIDER,
                zone,
                action: "edit",
                detail: format!(
                    "{} answered NOTAUTH: it is not authoritative for the zone, or the key may not update it",
                    self.server
                ),
            },
            ResponseCode::Refused => DnsError::Unauthorized {
                provider: PROVIDER,
                zone,
                action: if operation.contains("transfer") {
                    "read"
                } else {
                    "edit"
                },
                detail: format!(
                    "{} answered REFUSED; allow this key to {} the zone in the server's ACL",
                    self.server,
                    if operation.contains("transfer") {
                        "transfer"
                    } else {
                        "update"
                    }
                ),
            },
            ResponseCode::NotZone => DnsError::invalid(format!(
                "{}: a name in the update is not in zone {zone}",
                self.server
            )),
            ResponseCode::YXRRSet
            | ResponseCode::NXRRSet
            | ResponseCode::YXDomain
            | ResponseCode::NXDomain => DnsError::ZoneChanged {
                provider: PROVIDER,
                detail: format!(
                    "{} answered {}: a record set is not as it was read; nothing was changed",
                    self.server,
                    rcode.to_str()
                ),
            },
            other => DnsError::Api {
                provider: PROVIDER,
                operation: operation.to_owned(),
                status: None,
                message: format!("{} answered {}", self.server, other.to_str()),
                retryable: other == ResponseCode::ServFail,
            },
        }
    }

    async fn transfer(&self) -> Result<Vec<RecordSet>, AttemptError> {
        let mut message = Message::query();
        message.metadata.recursion_desired = false;
        message.add_query(self.zone_query(HType::AXFR)?);
        let mut soas = 0;
        let responses = self
            .exchange(message, "zone transfer (AXFR)", |m| {
                soas += m
                    .answers
                    .iter()
                    .filter(|r| r.record_type() == HType::SOA)
                    .count();
                soas >= 2
            })
            .await?;
        let mut records = Vec::new();
        for r in &responses {
            if r.metadata.response_code != ResponseCode::NoError {
                return Err(self
                    .rcode_error(r.metadata.response_code, "zone transfer")
                    .into());
            }
            records.extend(r.answers.iter().cloned());
        }
        if records.is_empty() {
            return Err(AttemptError::Fatal(DnsError::ZoneNotFound {
                provider: PROVIDER,
                zone: self.zone.to_string(),
                detail: format!("; {} sent an empty transfer", self.server),
            }));
        }
        Ok(group(&self.zone, records)?)
    }
}

/// Groups transferred records into record sets (the closing SOA of an AXFR repeats the first).
fn group(zone: &DnsName, records: Vec<Record>) -> Result<Vec<RecordSet>, DnsError> {
    use std::collections::BTreeMap;
    let mut sets: BTreeMap<(DnsName, RecordType), (u32, Vec<String>)> = BTreeMap::new();
    for r in records {
        let Ok(name) = DnsName::parse(&r.name.to_ascii()) else {
            tracing::debug!(name = %r.name, "skipping a record whose name ferry cannot represent");
            continue;
        };
        if !name.is_in(zone) {
            continue;
        }
        let (rtype, value) = from_rdata(&r.data);
        let entry = sets.entry((name, rtype)).or_insert((r.ttl, Vec::new()));
        entry.1.push(value);
    }
    sets.into_iter()
        .map(|((name, rtype), (ttl, values))| RecordSet::new(name, rtype, ttl, values))
        .collect()
}

fn from_rdata(data: &RData) -> (RecordType, String) {
    match data {
        RData::A(a) => (RecordType::A, a.0.to_string()),
        RData::AAAA(a) => (RecordType::Aaaa, a.0.to_string()),
        RData::CNAME(c) => (RecordType::Cname, c.0.to_ascii()),
        RData::TXT(t) => (
            RecordType::Txt,
            t.txt_data
                .iter()
                .map(|s| String::from_utf8_lossy(s).into_owned())
                .collect::<String>(),
        ),
        other => (
            RecordType::Other(other.record_type().to_string()),
            other.to_string(),
        ),
    }
}

fn to_name(name: &DnsName) -> Result<Name, DnsError> {
    Name::from_ascii(name.fqdn()).map_err(|e| DnsError::InvalidName {
        name: name.to_string(),
        reason: e.to_string(),
    })
}

fn to_records(set: &RecordSet, class: DNSClass, ttl: u32) -> Result<Vec<Record>, DnsError> {
    let name = to_name(&set.name)?;
    if set.alias.is_some() {
        return Err(DnsError::invalid(format!(
            "{}: alias records are a Route53 feature; RFC 2136 servers take CNAME or address records",
            set.key()
        )));
    }
    set.values
        .iter()
        .map(|v| {
            let bad = |reason: String| DnsError::InvalidValue {
                name: set.name.to_string(),
                record_type: set.record_type.to_string(),
                value: v.clone(),
                reason,
            };
            let data = match &set.record_type {
                RecordType::A => RData::A(A(v
                    .parse()
                    .map_err(|_| bad("not an IPv4 address".into()))?)),
                RecordType::Aaaa => RData::AAAA(AAAA(
                    v.parse().map_err(|_| bad("not an IPv6 address".into()))?,
                )),
                RecordType::Cname => RData::CNAME(CNAME(
                    Name::from_ascii(format!("{}.", v.trim_end_matches('.')))
                        .map_err(|e| bad(e.to_string()))?,
                )),
                RecordType::Txt => {
                    let parts = split_txt(v);
                    RData::TXT(TXT::from_bytes(parts.iter().map(Vec::as_slice).collect()))
                }
                RecordType::Other(t) => {
                    return Err(DnsError::invalid(format!(
                        "ferry does not write {t} records ({})",
                        set.name
                    )));
                }
            };
            let mut record = Record::from_rdata(name.clone(), ttl, data);
            record.dns_class = class;
            Ok(record)
        })
        .collect()
}

fn rtype(t: &RecordType) -> HType {
    match t {
        RecordType::A => HType::A,
        RecordType::Aaaa => HType::AAAA,
        RecordType::Cname => HType::CNAME,
        RecordType::Txt => HType::TXT,
        RecordType::Other(s) => HType::from_str(s).unwrap_or(HType::Unknown(0)),
    }
}

/// What a message may hold before TSIG: a DNS message over TCP has at most 65535 bytes; the
/// estimate below ignores name compression (which only shrinks it) and leaves room for TSIG.
const MESSAGE_BUDGET: usize = 60_000;

/// A change's size on the wire, roughly (without compression): its prerequisite and update
/// records, each name, fixed fields and data.
fn wire_size(change: &Change) -> usize {
    let set_size = |set: &RecordSet| -> usize {
        let per = set.name.as_str().len() + 2 + 10;
        set.values
            .iter()
            .map(|v| per + v.len() + 1 + v.len() / 255)
            .sum::<usize>()
            + per
    };
    match change {
        Change::Create { record } => 2 * set_size(record),
        Change::Update { old, new } => 2 * set_size(old) + set_size(new),
        Change::Delete { record } => 2 * set_size(record),
    }
}

/// Splits a change set into parts that each fit one UPDATE message, in order, never between a
/// set's deletion and the creation that replaces it at the same name.
fn split_for_messages(changes: &ChangeSet) -> Vec<ChangeSet> {
    let mut parts: Vec<Vec<Change>> = vec![Vec::new()];
    let mut size = 0;
    let list = changes.changes();
    let mut i = 0;
    while i < list.len() {
        // A delete followed by a create at the same name travels together.
        let mut group = vec![list[i].clone()];
        if let (Change::Delete { record }, Some(next @ Change::Create { record: created })) =
            (&list[i], list.get(i + 1))
            && record.name == created.name
        {
            group.push(next.clone());
        }
        let group_size: usize = group.iter().map(wire_size).sum();
        let current = parts.last().map_or(0, Vec::len);
        if current > 0 && size + group_size > MESSAGE_BUDGET {
            parts.push(Vec::new());
            size = 0;
        }
        size += group_size;
        i += group.len();
        if let Some(last) = parts.last_mut() {
            last.extend(group);
        }
    }
    parts
        .into_iter()
        .filter(|p| !p.is_empty())
        .map(ChangeSet::from)
        .collect()
}

/// The UPDATE message for a change set (RFC 2136 §2.4 prerequisites, §2.5 updates).
fn update_message(zone: Query, changes: &ChangeSet) -> Result<Message, DnsError> {
    let mut message = Message::query();
    message.metadata.op_code = OpCode::Update;
    message.metadata.recursion_desired = false;
    message.add_zone(zone);
    let rrset_absent = |set: &RecordSet| -> Result<Record, DnsError> {
        let mut r = Record::update0(to_name(&set.name)?, 0, rtype(&set.record_type));
        r.dns_class = DNSClass::NONE; // §2.4.3 RRset does not exist
        Ok(r)
    };
    let delete_rrset = |set: &RecordSet| -> Result<Record, DnsError> {
        let mut r = Record::update0(to_name(&set.name)?, 0, rtype(&set.record_type));
        r.dns_class = DNSClass::ANY; // §2.5.2 delete an RRset
        Ok(r)
    };
    for change in changes {
        match change {
            Change::Create { record } => {
                message.add_pre_requisite(rrset_absent(record)?);
                message.add_updates(to_records(record, DNSClass::IN, record.ttl)?);
            }
            Change::Update { old, new } => {
                // §2.4.2 RRset exists (value dependent): class IN, TTL 0, every value.
                message.add_pre_requisites(to_records(old, DNSClass::IN, 0)?);
                message.add_update(delete_rrset(old)?);
                message.add_updates(to_records(new, DNSClass::IN, new.ttl)?);
            }
            Change::Delete { record } => {
                message.add_pre_requisites(to_records(record, DNSClass::IN, 0)?);
                message.add_update(delete_rrset(record)?);
            }
        }
    }
    message
        .edns
        .get_or_insert_with(Edns::new)
        .set_max_payload(4096)
        .set_version(0);
    Ok(message)
}

#[async_trait]
impl DnsProvider for Rfc2136Provider {
    fn name(&self) -> &'static str {
        PROVIDER
    }

    fn zone(&self) -> &DnsName {
        &self.zone
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities {
            atomic: true,
            ..Capabilities::default()
        }
    }

    async fn records(&self) -> Result<Vec<RecordSet>, DnsError> {
        self.retry
            .run(PROVIDER, "zone transfer", || self.transfer())
            .await
    }

    /// Sends the change set as one signed UPDATE. A failure to connect is retried; once the
    /// message is sent it is never resent (it may have been applied: the next run's plan will
    /// show whether it was).
    async fn apply(&self, changes: &ChangeSet) -> Result<(), DnsError> {
        if changes.is_empty() {
            return Ok(());
        }
        let parts = split_for_messages(changes);
        let total = changes.len();
        let mut applied = 0;
        for part in &parts {
            let message = update_message(self.zone_query(HType::SOA)?, part)?;
            let result = async {
                let responses = self
                    .retry
                    .run(PROVIDER, "update", || {
                        self.exchange(message.clone(), "update", |_| true)
                    })
                    .await?;
                let rcode = responses
                    .first()
                    .map_or(ResponseCode::ServFail, |r| r.metadata.response_code);
                if rcode == ResponseCode::NoError {
                    Ok(())
                } else {
                    Err(self.rcode_error(rcode, "update"))
                }
            }
            .await;
            result.map_err(|e| e.after_applied(PROVIDER, applied, total, &part.changes()[0]))?;
            applied += part.len();
        }
        Ok(())
    }

    /// The configured server; for a host name, the address of it that accepts connections
    /// (the one updates went to), so verification asks the server that was changed.
    async fn name_servers(&self) -> Result<Vec<NameServer>, DnsError> {
        if let ServerAddress::Ip(addr) = self.server {
            return Ok(vec![NameServer::Address(addr)]);
        }
        let known = *self.answered.lock().unwrap_or_else(|e| e.into_inner());
        let addr = match known {
            Some(addr) => addr,
            None => {
                let stream = self
                    .retry
                    .run(PROVIDER, "connecting", || self.connect())
                    .await?;
                stream.peer_addr().map_err(|e| {
                    DnsError::transport(PROVIDER, format!("connecting to {}", self.server), e)
                })?
            }
        };
        Ok(vec![NameServer::Address(addr)])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_check_their_secret_and_never_show_it() {
        let key = TsigKey::new(
            "ferry-key",
            TsigAlgorithm::HmacSha256,
            SecretString::from("c2VjcmV0LXNlY3JldA=="),
        )
        .unwrap();
        let shown = format!("{key:?}");
        assert!(!shown.contains("c2VjcmV0"), "{shown}");
        assert!(shown.contains("redacted"));
        let err = TsigKey::new(
            "ferry-key",
            TsigAlgorithm::HmacSha256,
            SecretString::from("not base64!"),
        )
        .unwrap_err();
        assert!(err.to_string().contains("not base64"), "{err}");
        assert!(
            !err.to_string().contains("not base64!"),
            "the secret itself is not echoed: {err}"
        );
        assert!(
            "hmac-md5"
                .parse::<TsigAlgorithm>()
                .unwrap_err()
                .to_string()
                .contains("hmac-sha256")
        );
        assert_eq!(
            "HMAC-SHA512.".parse::<TsigAlgorithm>().unwrap(),
            TsigAlgorithm::HmacSha512
        );
    }

    #[test]
    fn large_change_sets_are_split_into_messages_that_fit_keeping_replacements_whole() {
        let mut changes = Vec::new();
        for i in 0..1500 {
            let name = DnsName::parse(&format!("name-{i}.example.com")).unwrap();
            let a = RecordSet::new(name.clone(), RecordType::A, 60, ["192.0.2.1"]).unwrap();
            let c = RecordSet::new(
                name,
                RecordType::Cname,
                60,
                ["lb-0123456789.elb.us-east-1.amazonaws.com"],
            )
            .unwrap();
            changes.push(Change::Delete { record: a });
            changes.push(Change::Create { record: c });
        }
        let set = ChangeSet::from(changes);
        let parts = split_for_messages(&set);
        assert!(parts.len() > 1);
        assert_eq!(parts.iter().map(ChangeSet::len).sum::<usize>(), 3000);
        let mut q = Query::query(Name::from_ascii("example.com.").unwrap(), HType::SOA);
        q.set_query_class(DNSClass::IN);
        for p in &parts {
            assert!(
                matches!(p.changes()[0], Change::Delete { .. }),
                "a part starts with a whole replacement"
            );
            let bytes = update_message(q.clone(), p).unwrap().to_vec().unwrap();
            assert!(bytes.len() < 65_000, "{}", bytes.len());
        }
        // Small sets stay whole (atomic).
        let small = ChangeSet::from(set.changes()[..10].to_vec());
        assert_eq!(split_for_messages(&small).len(), 1);
    }

    #[test]
    fn one_update_message_carries_every_change_with_its_prerequisite() {
        let zone = DnsName::parse("example.com").unwrap();
        let name = DnsName::parse("app.example.com").unwrap();
        let old = RecordSet::new(name.clone(), RecordType::A, 60, ["192.0.2.1"]).unwrap();
        let new = RecordSet::new(name.clone(), RecordType::A, 60, ["192.0.2.2"]).unwrap();
        let txt = RecordSet::new(
            DnsName::parse("a-app.example.com").unwrap(),
            RecordType::Txt,
            60,
            ["x"],
        )
        .unwrap();
        let changes = ChangeSet::from(vec![
            Change::Create { record: txt },
            Change::Update { old, new },
        ]);
        let mut q = Query::query(to_name(&zone).unwrap(), HType::SOA);
        q.set_query_class(DNSClass::IN);
        let m = update_message(q, &changes).unwrap();
        assert_eq!(m.metadata.op_code, OpCode::Update);
        // Prerequisites: TXT absent (class NONE); A exists with the old value (class IN, TTL 0).
        assert_eq!(m.prerequisites().len(), 2);
        assert_eq!(m.prerequisites()[0].dns_class, DNSClass::NONE);
        assert_eq!(m.prerequisites()[1].dns_class, DNSClass::IN);
        assert_eq!(m.prerequisites()[1].ttl, 0);
        // Updates: add TXT; delete the A RRset (class ANY); add the new A.
        let classes: Vec<DNSClass> = m.updates().iter().map(|r| r.dns_class).collect();
        assert_eq!(classes, [DNSClass::IN, DNSClass::ANY, DNSClass::IN]);
    }
}
