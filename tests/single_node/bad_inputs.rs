//! A table of bad requests, each answered by its status naming the field — never a panic,
//! a hang or a lost write.

use doppel_proto::v1 as pb;
use doppel_proto::v1::ingest_client::IngestClient;
use doppel_proto::v1::lookalike_request::Size;
use doppel_proto::v1::model_admin_client::ModelAdminClient;
use doppel_proto::v1::recommendations_client::RecommendationsClient;
use doppel_test_support::TestServer;
use tonic::Code;

use crate::fixture::{audience, count, loaded};

fn expect(
    result: Result<impl std::fmt::Debug, tonic::Status>,
    code: Code,
    field: &str,
    case: &str,
) {
    match result {
        Ok(v) => panic!("{case}: expected {code:?}, got Ok({v:?})"),
        Err(status) => {
            assert_eq!(status.code(), code, "{case}: {status:?}");
            assert!(
                status.message().contains(field),
                "{case}: message `{}` does not name `{field}`",
                status.message()
            );
        }
    }
}

fn recommend(customer: &str, k: u32) -> pb::RecommendRequest {
    pb::RecommendRequest {
        customer_id: customer.to_owned(),
        k,
        ..Default::default()
    }
}

#[tokio::test]
async fn queries_before_any_version_fail_with_failed_precondition() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = TestServer::start(dir.path()).await;
    doppel_client::upload_customers(
        server.channel.clone(),
        vec![pb::Customer {
            id: "c1".into(),
            ..Default::default()
        }],
        |_| {},
    )
    .await
    .expect("upsert");
    let result = RecommendationsClient::new(server.channel.clone())
        .recommend_offers(recommend("c1", 5))
        .await;
    expect(
        result,
        Code::FailedPrecondition,
        "version",
        "no active version",
    );
    server.stop().await;
}

#[tokio::test]
async fn bad_requests_get_clear_statuses() {
    let fx = loaded().await;
    let ch = fx.channel();
    let customer = fx.data.customers[0].id.clone();
    let seeds = fx.seeds(0, 5);
    let mut rec = RecommendationsClient::new(ch.clone());

    expect(
        rec.recommend_offers(recommend(&customer, 0)).await,
        Code::InvalidArgument,
        "k",
        "k = 0",
    );
    expect(
        rec.recommend_offers(recommend(&customer, 1_001)).await,
        Code::InvalidArgument,
        "k",
        "k > 1000",
    );
    expect(
        rec.recommend_offers(recommend("nobody", 5)).await,
        Code::NotFound,
        "customer_id",
        "unknown customer",
    );
    expect(
        rec.recommend_offers(recommend("", 5)).await,
        Code::InvalidArgument,
        "customer_id",
        "empty id",
    );
    let mut bad_price = recommend(&customer, 5);
    bad_price.filter = Some(pb::OfferFilter {
        categories: vec![],
        max_price: Some(-1.0),
    });
    expect(
        rec.recommend_offers(bad_price).await,
        Code::InvalidArgument,
        "filter.max_price",
        "negative price",
    );
    expect(
        rec.similar_items(pb::SimilarItemsRequest {
            item_id: "nothing".into(),
            k: 5,
        })
        .await,
        Code::NotFound,
        "item_id",
        "unknown item",
    );

    expect(
        audience(ch.clone(), count(vec![], 10)).await,
        Code::InvalidArgument,
        "seed_customer_ids",
        "no seeds",
    );
    expect(
        audience(ch.clone(), count(vec!["ghost".into()], 10)).await,
        Code::NotFound,
        "seed_customer_ids",
        "unknown seed",
    );
    let mut no_size = count(seeds.clone(), 1);
    no_size.size = None;
    expect(
        audience(ch.clone(), no_size).await,
        Code::InvalidArgument,
        "size",
        "no size",
    );
    expect(
        audience(ch.clone(), count(seeds.clone(), 0)).await,
        Code::InvalidArgument,
        "count",
        "count 0",
    );
    expect(
        audience(ch.clone(), count(seeds.clone(), 10_000_000)).await,
        Code::InvalidArgument,
        "count",
        "count beyond the population",
    );
    let mut pct = count(seeds.clone(), 1);
    pct.size = Some(Size::TopPercent(150.0));
    expect(
        audience(ch.clone(), pct).await,
        Code::InvalidArgument,
        "top_percent",
        "150 %",
    );
    let mut score = count(seeds.clone(), 1);
    score.size = Some(Size::MinScore(f32::NAN));
    expect(
        audience(ch.clone(), score).await,
        Code::InvalidArgument,
        "min_score",
        "NaN score",
    );
    let mut big_filter = count(seeds.clone(), 1);
    big_filter.filter = (0..65).map(|i| (format!("k{i}"), "v".to_owned())).collect();
    expect(
        audience(ch.clone(), big_filter).await,
        Code::InvalidArgument,
        "filter",
        "a filter of 65 entries",
    );
    let too_many: Vec<String> = (0..100_001).map(|i| format!("s{i}")).collect();
    expect(
        audience(ch.clone(), count(too_many, 10)).await,
        Code::ResourceExhausted,
        "seed_customer_ids",
        "too many seeds",
    );
    audience_planning_inputs(ch.clone(), &seeds).await;

    let mut ingest = IngestClient::new(ch.clone());
    expect(
        ingest
            .get_customer(pb::GetCustomerRequest {
                customer_id: String::new(),
            })
            .await,
        Code::InvalidArgument,
        "customer_id",
        "empty id",
    );

    // Streamed writes keep the good records and report the bad ones by index and field.
    let summary = doppel_client::upload_customers(
        ch.clone(),
        vec![
            pb::Customer {
                id: "ok-1".into(),
                ..Default::default()
            },
            pb::Customer {
                id: String::new(),
                ..Default::default()
            },
            pb::Customer {
                id: "ok-2".into(),
                ..Default::default()
            },
        ],
        |_| {},
    )
    .await;
    match summary {
        Err(doppel_client::Error::Rejected {
            rejected,
            index,
            field,
            ..
        }) => {
            assert_eq!((rejected, index, field.as_str()), (1, 1, "id"));
        }
        other => panic!("expected a rejection, got {other:?}"),
    }
    for id in ["ok-1", "ok-2"] {
        ingest
            .get_customer(pb::GetCustomerRequest {
                customer_id: id.into(),
            })
            .await
            .expect("good records were kept");
    }
    let events = vec![pb::Event {
        customer_id: customer.clone(),
        item_id: "no-such-item".into(),
        r#type: pb::EventType::Purchase as i32,
        timestamp_ms: 1_700_000_000_000,
        quantity: 1,
        ..Default::default()
    }];
    match doppel_client::upload_events(ch.clone(), events, |_| {}).await {
        Err(doppel_client::Error::Rejected { field, .. }) => assert_eq!(field, "item_id"),
        other => panic!("expected a rejection, got {other:?}"),
    }

    // Imports: shape, values, immutability; activation of what does not exist.
    let mut admin = ModelAdminClient::new(ch.clone());
    let chunk = |version: &str, dim: u32, values: Vec<f32>| pb::EmbeddingChunk {
        model_version: version.into(),
        entity: pb::Entity::Item as i32,
        dim,
        ids: vec!["i-x".into()],
        values,
        ..Default::default()
    };
    expect(
        admin
            .import_embeddings(tokio_stream::iter(vec![chunk(
                "bad-shape",
                4,
                vec![1.0; 3],
            )]))
            .await,
        Code::InvalidArgument,
        "values",
        "values ≠ ids × dim",
    );
    expect(
        admin
            .import_embeddings(tokio_stream::iter(vec![chunk(
                "bad-nan",
                2,
                vec![1.0, f32::NAN],
            )]))
            .await,
        Code::InvalidArgument,
        "values",
        "NaN",
    );
    expect(
        admin
            .import_embeddings(tokio_stream::iter(vec![pb::EmbeddingChunk {
                scan_vectors: "int4".into(),
                ..chunk("bad-scan", 2, vec![1.0, 0.0])
            }]))
            .await,
        Code::InvalidArgument,
        "scan_vectors",
        "unknown scan vectors",
    );
    expect(
        admin
            .import_embeddings(tokio_stream::iter(vec![chunk(
                "bad dim",
                2,
                vec![1.0, 0.0],
            )]))
            .await,
        Code::InvalidArgument,
        "model_version",
        "bad version name",
    );
    expect(
        admin
            .import_embeddings(tokio_stream::iter(vec![chunk("v1", 16, vec![1.0; 16])]))
            .await,
        Code::FailedPrecondition,
        "model_version",
        "existing version",
    );
    expect(
        admin
            .activate_version(pb::ActivateVersionRequest {
                model_version: "nope".into(),
                ..Default::default()
            })
            .await,
        Code::NotFound,
        "model_version",
        "unknown version",
    );

    // The server is still healthy and answering after all of that.
    rec.recommend_offers(recommend(&customer, 3))
        .await
        .expect("still serving");
}

#[tokio::test]
async fn a_message_over_the_size_limit_is_resource_exhausted() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = TestServer::start(dir.path()).await;
    let mut attributes = std::collections::HashMap::new();
    attributes.insert(
        "blob".to_owned(),
        "x".repeat(doppel_types::limits::MAX_MESSAGE_BYTES + 1),
    );
    let item = pb::Item {
        id: "big".into(),
        category: "c".into(),
        in_stock: true,
        attributes,
        ..Default::default()
    };
    let status = IngestClient::new(server.channel.clone())
        .upsert_items(tokio_stream::iter(vec![item]))
        .await
        .expect_err("over 16 MiB");
    assert_eq!(status.code(), Code::ResourceExhausted, "{status:?}");
    assert!(
        status.message().contains("too large"),
        "{}",
        status.message()
    );
}

/// Audits, balancing and reach curves: each bad field named.
async fn audience_planning_inputs(ch: tonic::transport::Channel, seeds: &[String]) {
    let with = |edit: &dyn Fn(&mut pb::LookalikeRequest)| {
        let mut r = count(seeds.to_vec(), 10);
        edit(&mut r);
        r
    };
    let cases: Vec<(pb::LookalikeRequest, &str, &str)> = vec![
        (
            with(&|r| r.audit_attributes = (0..9).map(|i| format!("a{i}")).collect()),
            "audit_attributes",
            "nine audited attributes",
        ),
        (
            with(&|r| r.audit_attributes = vec!["country".into(), "country".into()]),
            "audit_attributes[1]",
            "an attribute audited twice",
        ),
        (
            with(&|r| r.audit_attributes = vec![String::new()]),
            "audit_attributes[0]",
            "an empty attribute",
        ),
        (
            with(&|r| r.balance_attribute = "country".into()),
            "min_selection_ratio",
            "balance without a ratio",
        ),
        (
            with(&|r| {
                r.balance_attribute = "country".into();
                r.min_selection_ratio = 1.5;
            }),
            "min_selection_ratio",
            "a ratio above 1",
        ),
        (
            with(&|r| r.min_selection_ratio = 0.8),
            "balance_attribute",
            "a ratio without an attribute",
        ),
        (
            with(&|r| {
                r.balance_attribute = "country".into();
                r.min_selection_ratio = 0.8;
                r.explain = true;
            }),
            "explain",
            "explanations of a balanced audience",
        ),
        (
            with(&|r| {
                r.balance_attribute = "country".into();
                r.min_selection_ratio = 0.8;
                r.size = Some(Size::MinScore(0.5));
            }),
            "min_score",
            "a balanced min_score audience",
        ),
        (
            with(&|r| {
                r.audit_attributes = (0..8).map(|i| format!("a{i}")).collect();
                r.balance_attribute = "country".into();
                r.min_selection_ratio = 0.8;
            }),
            "balance_attribute",
            "eight audited attributes and a ninth to balance",
        ),
    ];
    for (request, field, case) in cases {
        expect(
            audience(ch.clone(), request).await,
            Code::InvalidArgument,
            field,
            case,
        );
    }
    let mut client = doppel_proto::v1::audiences_client::AudiencesClient::new(ch);
    let reach = |top_percents: Vec<f64>, min_scores: Vec<f32>| pb::ReachRequest {
        query: Some(count(seeds.to_vec(), 1)),
        top_percents,
        min_scores,
    };
    let cases = vec![
        (reach(vec![0.0], vec![]), "top_percents[0]", "a 0 % point"),
        (
            reach(vec![5.0, 150.0], vec![]),
            "top_percents[1]",
            "a 150 % point",
        ),
        (
            reach(vec![], vec![f32::NAN]),
            "min_scores[0]",
            "a NaN cut-off",
        ),
        (
            reach(vec![1.0; 40], vec![0.5; 25]),
            "top_percents",
            "65 points",
        ),
        (
            pb::ReachRequest {
                query: None,
                ..Default::default()
            },
            "query",
            "no query",
        ),
        (
            pb::ReachRequest {
                query: Some(with(&|r| {
                    r.balance_attribute = "country".into();
                    r.min_selection_ratio = 0.8;
                })),
                ..Default::default()
            },
            "query.balance_attribute",
            "a balanced reach curve",
        ),
    ];
    for (request, field, case) in cases {
        expect(
            client.estimate_reach(request).await,
            Code::InvalidArgument,
            field,
            case,
        );
    }
}
