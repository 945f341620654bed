//! The deploy lock (seed property 10): a `coordination.k8s.io/v1` Lease per app and
//! environment, named `ferry.lock.<app>.<env>`.
//!
//! The holder writes its identity (CI run id, host, pid) and renews the lease every third of
//! its duration while it deploys; it deletes the lease when done. A holder that dies stops
//! renewing, so the lease expires after its duration (the TTL) and the next deploy takes it
//! over: a killed deploy never blocks the next one longer than the TTL (helm#4558). Takeover and
//! renewal use the lease's resourceVersion, so two contenders never both win.

use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;
use kube::api::{Api, DeleteParams, ObjectMeta, PostParams, Preconditions};
use tokio::sync::watch;

use crate::clock::{SharedClock, timestamp};
use crate::events::{DeployEvent, EventSink};

/// Why the lock could not be had.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LockError {
    /// Another deploy holds it and waiting was not wanted, or the wait timed out.
    #[error(
        "another deploy holds the lock {lease}: {holder} (lease expires in {expires_in_secs}s unless renewed)"
    )]
    Busy {
        /// The lease.
        lease: String,
        /// Who holds it.
        holder: String,
        /// Seconds until it expires if not renewed.
        expires_in_secs: u64,
    },
    /// The API call failed.
    #[error("cannot {what} the lock lease {lease}")]
    Api {
        /// What was being done.
        what: &'static str,
        /// The lease.
        lease: String,
        /// Why.
        #[source]
        source: kube::Error,
    },
}

/// How to take the lock.
#[derive(Debug, Clone)]
pub struct LockOptions {
    /// The lease's duration: how long a dead holder blocks others.
    pub ttl: Duration,
    /// Wait for a busy lock (true) or fail at once (false).
    pub wait: bool,
    /// Give up waiting after this long.
    pub max_wait: Duration,
}

/// The lease name for an app and environment.
pub fn lease_name(app: &str, env: &str) -> String {
    format!("ferry.lock.{app}.{env}")
}

/// A held lock. Renewed in the background until [`HeldLock::release`]; dropping it stops the
/// renewal (the lease then expires after its TTL).
#[derive(Debug)]
pub struct HeldLock {
    api: Api<Lease>,
    name: String,
    namespace: String,
    renewer: tokio::task::JoinHandle<()>,
    lost: watch::Receiver<bool>,
    resource_version: Arc<std::sync::Mutex<Option<String>>>,
    waited: bool,
}

impl HeldLock {
    /// Whether another holder had the lock when this one asked (so the cluster may have
    /// changed since it was last read).
    pub fn waited(&self) -> bool {
        self.waited
    }

    /// Whether the lease was lost (taken over after a renewal failed for longer than the TTL).
    pub fn is_lost(&self) -> bool {
        *self.lost.borrow()
    }

    /// `namespace/name` of the lease.
    pub fn lease(&self) -> String {
        format!("{}/{}", self.namespace, self.name)
    }

    /// Stops renewing and deletes the lease (if still ours).
    pub async fn release(self) -> Result<(), LockError> {
        self.renewer.abort();
        let rv = self.resource_version.lock().ok().and_then(|g| g.clone());
        let params = DeleteParams {
            preconditions: Some(Preconditions {
                resource_version: rv,
                uid: None,
            }),
            ..DeleteParams::default()
        };
        match self.api.delete(&self.name, &params).await {
            Ok(_) => Ok(()),
            // Gone or taken over: nothing of ours to delete.
            Err(kube::Error::Api(s)) if matches!(s.code, 404 | 409) => Ok(()),
            Err(source) => Err(LockError::Api {
                what: "release",
                lease: self.lease(),
                source,
            }),
        }
    }
}

impl Drop for HeldLock {
    fn drop(&mut self) {
        self.renewer.abort();
    }
}

/// How long until the lease expires if not renewed, to the millisecond (whole seconds would
/// let a contender take a 1 s lease renewed 0.2 s ago as expired), or None once expired.
fn expires_in(lease: &Lease, clock: &SharedClock) -> Option<Duration> {
    let spec = lease.spec.as_ref()?;
    let renewed = spec.renew_time.as_ref().or(spec.acquire_time.as_ref())?.0;
    let ttl_ms = i64::from(spec.lease_duration_seconds.unwrap_or(0).max(0)) * 1000;
    let now = timestamp(clock.as_ref());
    let left = renewed.as_millisecond() + ttl_ms - now.as_millisecond();
    (left > 0).then(|| Duration::from_millis(left.unsigned_abs()))
}

/// Whole seconds, rounded up (a lease with 0.4 s left is not shown as expiring in 0 s).
fn secs_up(d: Duration) -> u64 {
    d.as_millis().div_ceil(1000).try_into().unwrap_or(u64::MAX)
}

fn new_lease(name: &str, holder: &str, ttl: Duration, clock: &SharedClock) -> Lease {
    let now = MicroTime(timestamp(clock.as_ref()));
    Lease {
        metadata: ObjectMeta {
            name: Some(name.to_owned()),
            labels: Some(std::collections::BTreeMap::from([(
                "app.kubernetes.io/managed-by".to_owned(),
                "ferry".to_owned(),
            )])),
            ..ObjectMeta::default()
        },
        spec: Some(LeaseSpec {
            holder_identity: Some(holder.to_owned()),
            lease_duration_seconds: Some(ttl.as_secs().max(1) as i32),
            acquire_time: Some(now.clone()),
            renew_time: Some(now),
            ..LeaseSpec::default()
        }),
    }
}

/// Which lock, and who wants it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeaseId {
    /// The namespace holding the lease.
    pub namespace: String,
    /// The app.
    pub app: String,
    /// The environment.
    pub env: String,
    /// Who is deploying (CI run id, host, pid).
    pub holder: String,
}

/// Takes the lock for `id.app` in `id.env`, waiting while another holder keeps it alive if
/// `options.wait`.
pub async fn acquire(
    client: &kube::Client,
    id: &LeaseId,
    options: &LockOptions,
    clock: SharedClock,
    sink: &dyn EventSink,
) -> Result<HeldLock, LockError> {
    let (namespace, holder) = (id.namespace.as_str(), id.holder.as_str());
    let api: Api<Lease> = Api::namespaced(client.clone(), namespace);
    let name = lease_name(&id.app, &id.env);
    let shown = format!("{namespace}/{name}");
    let api_err = |what: &'static str| {
        let lease = shown.clone();
        move |source| LockError::Api {
            what,
            lease,
            source,
        }
    };
    let started = tokio::time::Instant::now();
    let mut announced: Option<String> = None;
    loop {
        let existing = api.get_opt(&name).await.map_err(api_err("read"))?;
        let attempt = match &existing {
            None => {
                api.create(
                    &PostParams::default(),
                    &new_lease(&name, holder, options.ttl, &clock),
                )
                .await
            }
            Some(lease) => {
                let current = lease
                    .spec
                    .as_ref()
                    .and_then(|s| s.holder_identity.clone())
                    .unwrap_or_default();
                match expires_in(lease, &clock) {
                    Some(left) if current != holder && !current.is_empty() => {
                        let busy = LockError::Busy {
                            lease: shown.clone(),
                            holder: current.clone(),
                            expires_in_secs: secs_up(left),
                        };
                        if !options.wait || started.elapsed() >= options.max_wait {
                            return Err(busy);
                        }
                        if announced.as_deref() != Some(current.as_str()) {
                            sink.emit(DeployEvent::LockWaiting {
                                holder: current.clone(),
                                expires_in_secs: secs_up(left),
                            });
                            announced = Some(current);
                        }
                        // Renewals come every third of the TTL; expiry at the latest after `left`.
                        let nap = left
                            .min(Duration::from_millis(500))
                            .max(Duration::from_millis(100));
                        tokio::time::sleep(nap).await;
                        continue;
                    }
                    // Expired, released, or ours: take it over (optimistic concurrency).
                    _ => {
                        let mut fresh = new_lease(&name, holder, options.ttl, &clock);
                        fresh.metadata.resource_version = lease.metadata.resource_version.clone();
                        api.replace(&name, &PostParams::default(), &fresh).await
                    }
                }
            }
        };
        match attempt {
            Ok(lease) => {
                sink.emit(DeployEvent::LockAcquired {
                    lease: shown.clone(),
                });
                let mut held =
                    start_renewing(api, name, namespace, holder, options.ttl, clock, lease);
                held.waited = announced.is_some();
                return Ok(held);
            }
            // Someone else won the race: look again.
            Err(kube::Error::Api(s)) if matches!(s.code, 409) => {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            Err(e) => return Err(api_err("take")(e)),
        }
    }
}

fn start_renewing(
    api: Api<Lease>,
    name: String,
    namespace: &str,
    holder: &str,
    ttl: Duration,
    clock: SharedClock,
    lease: Lease,
) -> HeldLock {
    let rv = Arc::new(std::sync::Mutex::new(
        lease.metadata.resource_version.clone(),
    ));
    let (lost_tx, lost_rx) = watch::channel(false);
    let renewer = {
        let (api, name, rv, holder) = (
            api.clone(),
            name.clone(),
            Arc::clone(&rv),
            holder.to_owned(),
        );
        tokio::spawn(async move {
            let every = (ttl / 3).max(Duration::from_millis(200));
            let mut last_ok = tokio::time::Instant::now();
            loop {
                tokio::time::sleep(every).await;
                let mut fresh = new_lease(&name, &holder, ttl, &clock);
                fresh.metadata.resource_version = rv.lock().ok().and_then(|g| g.clone());
                match api.replace(&name, &PostParams::default(), &fresh).await {
                    Ok(l) => {
                        last_ok = tokio::time::Instant::now();
                        if let Ok(mut g) = rv.lock() {
                            *g = l.metadata.resource_version;
                        }
                    }
                    Err(kube::Error::Api(s)) if matches!(s.code, 404 | 409) => {
                        let _ = lost_tx.send(true);
                        tracing::warn!("the deploy lock {name} was taken over");
                        return;
                    }
                    Err(e) => {
                        tracing::debug!(error = %e, "renewing the deploy lock failed; retrying");
                        if last_ok.elapsed() > ttl {
                            let _ = lost_tx.send(true);
                        }
                    }
                }
            }
        })
    };
    HeldLock {
        api,
        name,
        namespace: namespace.to_owned(),
        renewer,
        lost: lost_rx,
        resource_version: rv,
        waited: false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::FnClock;
    use std::time::UNIX_EPOCH;

    fn at(ms: u64) -> SharedClock {
        Arc::new(FnClock(move || UNIX_EPOCH + Duration::from_millis(ms)))
    }

    #[test]
    fn expiry_is_measured_to_the_millisecond() {
        // A 1 s lease renewed at 10.9 s.
        let lease = new_lease("l", "h", Duration::from_secs(1), &at(10_900));
        assert_eq!(
            expires_in(&lease, &at(11_100)),
            Some(Duration::from_millis(800))
        );
        assert_eq!(expires_in(&lease, &at(11_900)), None);
        assert_eq!(secs_up(Duration::from_millis(700)), 1);
        assert_eq!(secs_up(Duration::from_millis(3000)), 3);
    }
}
