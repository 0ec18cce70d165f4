//! Bad hyper-parameters are refused with the offending field's name.

use doppel_train::{
    AlsParams, ConfidenceConfig, Error, Interactions, SegmentConfig, no_progress, train,
};

fn field(result: doppel_train::Result<()>) -> &'static str {
    match result {
        Err(Error::InvalidParameter { name, .. }) => name,
        other => panic!("expected InvalidParameter, got {other:?}"),
    }
}

#[test]
fn als_params_name_the_bad_field() {
    let d = AlsParams::default;
    let cases = [
        (AlsParams { factors: 0, ..d() }, "factors"),
        (
            AlsParams {
                factors: 1_025,
                ..d()
            },
            "factors",
        ),
        (
            AlsParams {
                regularization: -0.1,
                ..d()
            },
            "regularization",
        ),
        (
            AlsParams {
                regularization: f32::NAN,
                ..d()
            },
            "regularization",
        ),
        (
            AlsParams {
                regularization: f32::INFINITY,
                ..d()
            },
            "regularization",
        ),
        (
            AlsParams {
                unobserved_weight: 0.0,
                ..d()
            },
            "unobserved_weight",
        ),
        (
            AlsParams {
                unobserved_weight: 1_000.5,
                ..d()
            },
            "unobserved_weight",
        ),
        (
            AlsParams {
                unobserved_weight: f32::NAN,
                ..d()
            },
            "unobserved_weight",
        ),
        (
            AlsParams {
                regularization_exponent: -0.1,
                ..d()
            },
            "regularization_exponent",
        ),
        (
            AlsParams {
                regularization_exponent: 1.5,
                ..d()
            },
            "regularization_exponent",
        ),
        (
            AlsParams {
                regularization_exponent: f32::NAN,
                ..d()
            },
            "regularization_exponent",
        ),
        (
            AlsParams {
                iterations: 0,
                ..d()
            },
            "iterations",
        ),
        (
            AlsParams {
                iterations: 1_001,
                ..d()
            },
            "iterations",
        ),
        (AlsParams { cg_steps: 0, ..d() }, "cg_steps"),
        (
            AlsParams {
                threads: 100_000,
                ..d()
            },
            "threads",
        ),
    ];
    for (params, name) in cases {
        assert_eq!(field(params.validate()), name, "{params:?}");
    }
    assert!(d().validate().is_ok());
}

#[test]
fn train_refuses_bad_params_and_empty_data() {
    let empty = Interactions::default();
    let bad = AlsParams {
        factors: 0,
        ..AlsParams::default()
    };
    assert!(matches!(
        train(&empty, &bad, &no_progress),
        Err(Error::InvalidParameter {
            name: "factors",
            ..
        })
    ));
    assert!(matches!(
        train(&empty, &AlsParams::default(), &no_progress),
        Err(Error::NoInteractions)
    ));
}

#[test]
fn confidence_and_segment_configs_name_the_bad_field() {
    let c = ConfidenceConfig::default;
    assert_eq!(
        field(
            ConfidenceConfig {
                purchase_weight: -1.0,
                ..c()
            }
            .validate()
        ),
        "purchase_weight"
    );
    assert_eq!(
        field(
            ConfidenceConfig {
                half_life_days: f32::NAN,
                ..c()
            }
            .validate()
        ),
        "half_life_days"
    );
    assert_eq!(
        field(ConfidenceConfig { alpha: -2.0, ..c() }.validate()),
        "alpha"
    );

    let s = || SegmentConfig::new(0);
    assert_eq!(
        field(
            SegmentConfig {
                margin_rate: 1.5,
                ..s()
            }
            .validate()
        ),
        "margin_rate"
    );
    assert_eq!(
        field(
            SegmentConfig {
                horizon_days: -1.0,
                ..s()
            }
            .validate()
        ),
        "horizon_days"
    );
    assert_eq!(
        field(SegmentConfig { clusters: 0, ..s() }.validate()),
        "clusters"
    );
    assert_eq!(
        field(
            SegmentConfig {
                kmeans_iterations: 0,
                ..s()
            }
            .validate()
        ),
        "kmeans_iterations"
    );
}
