//! The engine on bundles of the committed zoo: many queries of several models in flight at
//! once, under every policy, on this machine's cores (layers spread over the crew's pinned
//! workers); every answer matches the onnxruntime outputs committed beside the model, every
//! accepted query is answered, and a full model refuses more at once.

mod zoo_support;

use std::sync::mpsc::channel;
use std::time::Duration;
use veltair_exec::open_bundle;
use veltair_ir::Tensor;
use veltair_run::engine::{Engine, SubmitError, Tenant};
use veltair_run::sched::{ModelProfile, Policy};
use veltair_tests::{small_zoo, PreparedCase};
use zoo_support::bundle;

/// A zoo model's bundle, name and test case.
type Model = (std::path::PathBuf, String, PreparedCase);

fn inputs(case: &PreparedCase) -> Vec<Tensor> {
    case.feeds[0].clone()
}

fn tenants(models: &[Model], capacity: usize) -> Vec<Tenant> {
    models
        .iter()
        .map(|(path, name, _)| {
            let (plan, _) = open_bundle(path).unwrap();
            let profile = ModelProfile::from_plan(name, &plan, 0.05);
            Tenant::new(plan, profile, capacity).unwrap()
        })
        .collect()
}

fn model(name: &str, versions: usize) -> Model {
    let dir = small_zoo().into_iter().find(|d| d.ends_with(name)).unwrap();
    let (path, _, case) = bundle(&dir, versions);
    (path, name.to_string(), case)
}

#[test]
fn concurrent_queries_match_onnxruntime_under_every_policy() {
    let models: Vec<Model> = ["resnet50", "mobilenetv2", "bert_base"].iter().map(|n| model(n, 3)).collect();
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let polls = [Duration::ZERO, Duration::from_millis(20)];
    for (policy, poll) in
        ["model-wise", "layer-wise", "layer-block", "veltair"].into_iter().zip(polls.into_iter().cycle())
    {
        let engine =
            Engine::start(tenants(&models, 64), Policy::parse(policy).unwrap(), cores, vec![1.0, 1.5], poll).unwrap();
        let (tx, rx) = channel();
        let rounds = 8;
        for round in 0..rounds {
            for (m, (_, _, case)) in models.iter().enumerate() {
                let tx = tx.clone();
                engine.submit(m, inputs(case), Box::new(move |reply| tx.send((round, m, reply)).unwrap())).unwrap();
            }
        }
        drop(tx);
        let answers: Vec<_> = rx.iter().collect();
        assert_eq!(answers.len(), rounds * models.len(), "{policy}: every accepted query is answered");
        for (round, m, reply) in answers {
            let (_, name, case) = &models[m];
            let outputs = reply.unwrap_or_else(|e| panic!("{policy}, {name}: {e}"));
            assert_eq!(outputs.len(), case.expected[0].len(), "{policy}, {name}: output count");
            for (got, want) in outputs.into_iter().zip(&case.expected[0]) {
                let cmp = veltair_ir::compare(&got, want, 1e-3, 1e-4);
                assert!(cmp.ok, "{policy}, {name} round {round}: {cmp:?}");
            }
        }
        assert_eq!(engine.in_flight(), 0);
        assert_eq!(engine.take_completions().len(), rounds * models.len());
        assert!(engine.stats().blocks >= (rounds * models.len()) as u64);
    }
}

#[test]
fn a_full_model_refuses_at_once_and_answers_what_it_accepted() {
    let models = vec![model("resnet50", 1)];
    let engine =
        Engine::start(tenants(&models, 2), Policy::parse("veltair").unwrap(), 1, vec![1.0], Duration::ZERO).unwrap();
    let (tx, rx) = channel();
    let mut refused = 0;
    for _ in 0..50 {
        let tx = tx.clone();
        match engine.submit(0, inputs(&models[0].2), Box::new(move |r| tx.send(r.is_ok()).unwrap())) {
            Ok(()) => {}
            Err(SubmitError::Busy) => refused += 1,
            Err(e) => panic!("{e}"),
        }
    }
    drop(tx);
    let answered: Vec<bool> = rx.iter().collect();
    assert!(refused > 0, "a capacity of 2 must refuse some of 50 immediate submissions");
    assert_eq!(answered.len() + refused, 50);
    assert!(answered.iter().all(|ok| *ok));
    engine.drain();
    let Err(e) = engine.submit(0, inputs(&models[0].2), Box::new(|_| {})) else { panic!("accepted while drained") };
    assert_eq!(e, SubmitError::ShuttingDown);
}
