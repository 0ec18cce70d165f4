//! ModelAdmin.DeleteVersion through a router (issue 10): refused while any node serves the
//! version or would roll back to it; otherwise gone from the shared store and from every
//! node, so its name can be imported again.

use doppel_proto::v1 as pb;
use doppel_proto::v1::model_admin_client::ModelAdminClient;
use tonic::Code;

use crate::fixture::{VERSION, loaded};

#[tokio::test]
async fn a_router_deletes_versions_no_node_serves_and_refuses_the_rest() {
    let cluster = loaded(2).await;
    let ch = cluster.router.channel.clone();
    let mut admin = ModelAdminClient::new(ch.clone());
    let delete = |version: &str| pb::DeleteVersionRequest {
        model_version: version.to_owned(),
    };
    let import = |version: &'static str| {
        let ch = ch.clone();
        let data = &cluster.data;
        async move {
            doppel_client::import_vectors(
                ch,
                version,
                16,
                &data.customer_vectors,
                &data.item_vectors,
            )
            .await
            .expect("import")
        }
    };

    let active = admin
        .delete_version(delete(VERSION))
        .await
        .expect_err("active");
    assert_eq!(active.code(), Code::FailedPrecondition, "{active:?}");

    import("v2").await;
    doppel_client::activate(ch.clone(), "v2")
        .await
        .expect("activate v2");
    let target = admin
        .delete_version(delete(VERSION))
        .await
        .expect_err("rollback target");
    assert_eq!(target.code(), Code::FailedPrecondition, "{target:?}");

    import("v3").await;
    // Every node builds an imported version in the background; wait for them.
    for _ in 0..600 {
        let d = admin
            .describe_version(pb::DescribeVersionRequest {
                model_version: "v3".into(),
            })
            .await
            .expect("describe v3")
            .into_inner();
        if d.loaded && !d.building {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let deleted = admin
        .delete_version(delete("v3"))
        .await
        .expect("delete v3")
        .into_inner();
    assert_eq!(deleted.state, "ready");
    let gone = admin
        .describe_version(pb::DescribeVersionRequest {
            model_version: "v3".into(),
        })
        .await
        .expect_err("v3 is gone");
    assert_eq!(gone.code(), Code::NotFound, "{gone:?}");
    let unknown = admin.delete_version(delete("v3")).await.expect_err("twice");
    assert_eq!(unknown.code(), Code::NotFound, "{unknown:?}");
    import("v3").await;
    doppel_client::activate(ch.clone(), "v3")
        .await
        .expect("the name is usable again");
}
