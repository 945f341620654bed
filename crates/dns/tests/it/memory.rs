use std::sync::Arc;

use ferry_dns::{DnsName, InMemoryProvider};

use crate::conformance::{Expect, run};

#[tokio::test]
async fn in_memory_provider_passes_the_conformance_suite() {
    let p = InMemoryProvider::new(DnsName::parse("example.com").unwrap());
    run(
        Arc::new(p),
        &crate::unique("mem"),
        Expect {
            checks_preconditions: true,
        },
    )
    .await;
}
