//! The audit log: appended events get increasing seqs and page back oldest first.

use doppel_types::AuditEvent;

use crate::store_trait::Store;

/// Appends three events and pages them back.
pub async fn audit_events_append_and_page(store: &dyn Store) {
    assert!(store.audit_events(0, 10).await.expect("empty").is_empty());
    let event = |target: &str| AuditEvent {
        seq: 0,
        time_ms: 1_700_000_000_000,
        key_id: "ops".into(),
        rpc: "/doppel.v1.Ingest/DeleteCustomer".into(),
        target: target.into(),
        outcome: "OK".into(),
    };
    let mut seqs = Vec::new();
    for target in ["c1", "c2", "c3"] {
        seqs.push(
            store
                .append_audit_event(&event(target))
                .await
                .expect("append"),
        );
    }
    assert!(seqs.windows(2).all(|w| w[0] < w[1]), "{seqs:?}");
    let page = store.audit_events(0, 2).await.expect("page");
    assert_eq!(page.len(), 2);
    assert_eq!(
        page[0],
        AuditEvent {
            seq: seqs[0],
            ..event("c1")
        }
    );
    assert_eq!(page[1].target, "c2");
    let rest = store.audit_events(page[1].seq, 10).await.expect("rest");
    assert_eq!(rest.len(), 1);
    assert_eq!(
        rest[0],
        AuditEvent {
            seq: seqs[2],
            ..event("c3")
        }
    );
}
