//! The dual head on the real default model: one prefill feeds the head and the answer, the
//! verdict line always parses and always agrees with the head, and the head sees exactly the
//! features it was trained on.

use vigil_analyst::{Analyst, AnalyzeOptions, Explain, PromptForm, Subject};
use vigil_data::prompt::parse_verdict_line;
use vigil_data::synth::{generate, GenOptions};
use vigil_head::{
    train_head, FeatureCache, FeatureSpec, HeadFile, HeadMeta, HeadTrainConfig, Thresholds,
};

fn analyst() -> Analyst {
    let path = vigil_hub::pull("smollm2-135m-instruct")
        .expect("cannot fetch the default model")
        .path;
    let model = vigil_model::Model::load(&path).unwrap();
    Analyst::base(model, "smollm2-test".into()).unwrap()
}

#[test]
fn dual_head_shares_one_prefill_and_constrains_the_verdict_line() {
    let mut analyst = analyst();
    let samples = generate(
        &GenOptions {
            seed: 3,
            num: 22,
            vulns: vec![],
            nofp: false,
            http_share: 0.0,
        },
        |_| {},
    )
    .unwrap();
    let subjects: Vec<Subject> = samples.iter().filter_map(Subject::of_sample).collect();
    let prompts: Vec<_> = subjects
        .iter()
        .map(|s| s.messages(PromptForm::Engineered))
        .collect();
    let n_layers = analyst.model.config().num_layers;
    let spec = FeatureSpec::final_layer(n_layers);
    let cache_dir = tempfile::tempdir().unwrap();
    let cache = FeatureCache::new(cache_dir.path());
    let (x, computed) = analyst
        .features(&prompts, &spec, None, &cache, &mut |_| {})
        .unwrap();
    assert_eq!(computed, prompts.len());
    // A second pass is served from the cache, identically.
    let (x2, computed2) = analyst
        .features(&prompts, &spec, None, &cache, &mut |_| {})
        .unwrap();
    assert_eq!((computed2, &x2), (0, &x));

    let y: Vec<usize> = samples.iter().map(|s| s.is_vulnerable as usize).collect();
    let cfg = HeadTrainConfig {
        epochs: 30,
        ..Default::default()
    };
    let (head, training) = train_head(&x[..16], &y[..16], &x[16..], &y[16..], 2, &cfg).unwrap();
    let mut file = HeadFile {
        meta: HeadMeta {
            name: "test".into(),
            target: "verdict".into(),
            classes: vec!["clean".into(), "vulnerable".into()],
            input_dim: x[0].len(),
            shape: cfg.shape.clone(),
            features: spec.clone(),
            model_id: analyst.model_id.clone(),
            adapter_id: None,
            task: "code".into(),
            thresholds: Thresholds::default(),
            clean_thresholds: None,
            training,
            validation: serde_json::Value::Null,
        },
        head,
    };
    let batch_p = file.head.probabilities(&x[..1]).unwrap()[0][1];
    // The same prompt alone (a batch of one, as generation runs it).
    let single_cache = tempfile::tempdir().unwrap();
    let (x1, _) = analyst
        .features(
            &prompts[..1],
            &spec,
            None,
            &FeatureCache::new(single_cache.path()),
            &mut |_| {},
        )
        .unwrap();
    let single_p = file.head.probabilities(&x1).unwrap()[0][1];
    let opts = AnalyzeOptions {
        explain: Explain::Never,
        max_tokens: 48,
        ..Default::default()
    };

    // Threshold 0: every subject is vulnerable; the line names a taxonomy type.
    file.meta.thresholds.chosen = 0.0;
    analyst.add_head("code", "verdict", file.clone()).unwrap();
    let a = analyst.analyze(&subjects[0], &opts).unwrap();
    assert_eq!(a.decided_by, "head");
    // The head saw, inside generation, the features the batched extractor computes: the
    // generation continues the system prompt's cached prefix, the extractor runs that
    // prefix once and right-padded batches after it, and the prompt alone runs whole. On
    // SmolLM2 (row-count-independent kernels) all three agree bit for bit.
    let p = a.probability.unwrap();
    assert_eq!(
        p, single_p,
        "generation prefill p vs features of the prompt alone"
    );
    assert_eq!(p, batch_p, "generation p vs batched features p");
    let (line, _) = parse_verdict_line(&a.text).unwrap_or_else(|| panic!("{:?}", a.text));
    assert!(line.vulnerable && a.vulnerable);
    let t = line.vuln_type.expect("a type");
    assert!(
        vigil_taxonomy::Taxonomy::builtin().by_id(&t).is_some(),
        "{t}"
    );
    assert!(a.owasp.is_some() && a.cwe.is_some());

    // Threshold above 1: every subject is clean, and nothing but the verdict is written.
    file.meta.thresholds.chosen = 1.01;
    analyst.add_head("code", "verdict", file.clone()).unwrap();
    let a = analyst.analyze(&subjects[0], &opts).unwrap();
    assert!(!a.vulnerable);
    assert_eq!(a.text, r#"{"verdict":"not vulnerable"}"#);
    assert!((a.confidence - (1.0 - p)).abs() < 1e-6);

    // Triage, precision first: a head without a confident "clean" threshold dismisses
    // nothing, even when its verdict is "clean".
    let call = analyst.triage_call(&subjects[0], &a);
    assert!(call.true_positive, "{call:?}");
    // With one: dismissed exactly when p is at or below 1 − at_target.
    for (at_target, dismissed) in [(1.0 - p - 1e-3, true), (1.0 - p + 1e-3, false)] {
        file.meta.clean_thresholds = Some(Thresholds {
            at_target: Some(at_target),
            ..Thresholds::default()
        });
        analyst.add_head("code", "verdict", file.clone()).unwrap();
        let call = analyst.triage_call(&subjects[0], &a);
        assert_eq!(call.true_positive, !dismissed, "{call:?}");
        assert!((call.probability - p).abs() < 1e-6);
        assert!((call.threshold - (1.0 - at_target)).abs() < 1e-6);
    }
}

#[test]
fn without_a_head_the_verdict_comes_from_constrained_generation() {
    let analyst = analyst();
    let subject = Subject::Code {
        language: Some("python".into()),
        framework: Some("flask".into()),
        endpoint: Some("GET /users".into()),
        code: "@app.route('/users')\ndef users():\n    q = request.args['q']\n    return db.execute(\"SELECT * FROM users WHERE name = '\" + q + \"'\")".into(),
    };
    let opts = AnalyzeOptions {
        explain: Explain::Never,
        max_tokens: 48,
        samples: 3,
        temperature: 0.9,
        seed: 1,
        ..Default::default()
    };
    let a = analyst.analyze(&subject, &opts).unwrap();
    assert_eq!(a.decided_by, "generation");
    assert_eq!(a.votes_total, 3);
    let (line, _) = parse_verdict_line(&a.text).unwrap_or_else(|| panic!("{:?}", a.text));
    assert_eq!(line.vulnerable, a.vulnerable);
    // The vote's confidence is the winning share.
    let share = if a.vulnerable {
        a.votes_vulnerable
    } else {
        3 - a.votes_vulnerable
    };
    assert!((a.confidence - share as f32 / 3.0).abs() < 1e-6 && share >= 2);

    let p = analyst
        .verdict_token_probabilities(
            &[
                subject.messages(PromptForm::Engineered),
                subject.messages(PromptForm::Plain),
            ],
            None,
            &mut |_| {},
        )
        .unwrap();
    assert!(
        p.iter().all(|p| (0.0..=1.0).contains(p) && p.is_finite()),
        "{p:?}"
    );
}

#[test]
fn the_analysis_cache_returns_what_the_model_said_and_misses_on_any_change() {
    let analyst = analyst();
    let dir = tempfile::tempdir().unwrap();
    let cache = vigil_analyst::AnalysisCache::new(dir.path());
    let subject = Subject::Code {
        language: Some("javascript".into()),
        framework: Some("express".into()),
        endpoint: Some("GET /ping".into()),
        code: "app.get('/ping', (req, res) => exec('ping ' + req.query.host, (e, out) => res.send(out)));".into(),
    };
    let opts = AnalyzeOptions {
        explain: Explain::Never,
        max_tokens: 40,
        ..Default::default()
    };
    let key = vigil_analyst::AnalysisCache::key(&analyst, &opts, &subject);
    assert!(cache.get(&key).is_none());
    let a = analyst.analyze(&subject, &opts).unwrap();
    cache.put(&key, &a).unwrap();
    assert_eq!(cache.get(&key).as_ref(), Some(&a));

    // Other code, other options: other keys.
    let mut other = subject.clone();
    if let Subject::Code { code, .. } = &mut other {
        code.push_str("\n// changed");
    }
    assert_ne!(
        key,
        vigil_analyst::AnalysisCache::key(&analyst, &opts, &other)
    );
    let longer = AnalyzeOptions {
        max_tokens: 41,
        ..opts.clone()
    };
    assert_ne!(
        key,
        vigil_analyst::AnalysisCache::key(&analyst, &longer, &subject)
    );

    // A corrupt entry is a miss, not an error, and the next put repairs it.
    let entry = std::fs::read_dir(dir.path().join(&key[..2]))
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    std::fs::write(&entry, b"{not json").unwrap();
    assert!(cache.get(&key).is_none());
    cache.put(&key, &a).unwrap();
    assert_eq!(cache.get(&key).as_ref(), Some(&a));
}

#[test]
fn analyze_all_keeps_order_runs_in_parallel_and_reuses_the_cache() {
    let analyst = analyst();
    let dir = tempfile::tempdir().unwrap();
    let cache = vigil_analyst::AnalysisCache::new(dir.path());
    let subjects: Vec<Subject> = [
        "eval(req.query.x)",
        "res.send('ok')",
        "fs.readFile(req.query.f)",
    ]
    .iter()
    .map(|c| Subject::Code {
        language: Some("javascript".into()),
        framework: None,
        endpoint: None,
        code: c.to_string(),
    })
    .collect();
    let opts = AnalyzeOptions {
        explain: Explain::Never,
        max_tokens: 40,
        ..Default::default()
    };
    let hits = std::sync::atomic::AtomicUsize::new(0);
    let count = |_: usize, cached: bool| {
        if cached {
            hits.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
    };
    let first = analyst.analyze_all(&subjects, &opts, Some(&cache), 2, &count);
    assert_eq!(hits.load(std::sync::atomic::Ordering::Relaxed), 0);
    // Same order as one by one (greedy decoding is deterministic).
    for (s, r) in subjects.iter().zip(&first) {
        let alone = analyst.analyze(s, &opts).unwrap();
        let r = r.as_ref().unwrap();
        assert_eq!((r.vulnerable, &r.text), (alone.vulnerable, &alone.text));
    }
    let again = analyst.analyze_all(&subjects, &opts, Some(&cache), 1, &count);
    assert_eq!(hits.load(std::sync::atomic::Ordering::Relaxed), 3);
    let texts = |v: &[vigil_analyst::Result<vigil_analyst::Analysis>]| {
        v.iter()
            .map(|r| r.as_ref().unwrap().text.clone())
            .collect::<Vec<_>>()
    };
    assert_eq!(texts(&first), texts(&again));
}

/// Features (and verdict-token scores) of many prompts run as one shared prefix plus
/// right-padded batches of their own tokens equal, bit for bit, those of each prompt
/// prefilled whole and alone (how
/// generation without a prefix runs it), for both poolings and a mix of layers. SmolLM2's
/// kernels sum in an order that does not depend on a matmul's row count, and a row after
/// the prefix sees its keys at the same slots as alone, so nothing may differ.
#[test]
fn shared_prefix_features_equal_whole_prompt_features() {
    let analyst = analyst();
    let samples = generate(
        &GenOptions {
            seed: 11,
            num: 12,
            vulns: vec![],
            nofp: false,
            http_share: 0.0,
        },
        |_| {},
    )
    .unwrap();
    let prompts: Vec<_> = samples
        .iter()
        .filter_map(Subject::of_sample)
        .map(|s| s.messages(PromptForm::Engineered))
        .collect();
    // The prompts do share a system prompt long enough to be run once.
    let ids: Vec<Vec<u32>> = prompts
        .iter()
        .map(|m| analyst.prompt_ids(m, "").unwrap())
        .collect();
    let shared = (0..ids[0].len())
        .take_while(|&k| ids.iter().all(|p| p.get(k) == ids[0].get(k)))
        .count();
    assert!(
        shared >= vigil_model::MIN_SHARED_PREFIX,
        "{shared} shared tokens"
    );
    let lens: std::collections::BTreeSet<usize> = ids.iter().map(Vec::len).collect();
    assert!(
        lens.len() > 3,
        "rows of several lengths are padded: {lens:?}"
    );

    let n_layers = analyst.model.config().num_layers;
    for pooling in [vigil_head::Pooling::Mean, vigil_head::Pooling::Last] {
        let spec = FeatureSpec {
            layers: vec![n_layers / 2, n_layers],
            pooling,
            adapter: None,
        };
        let features = |prompts: &[vigil_data::prompt::Messages]| {
            let dir = tempfile::tempdir().unwrap();
            let cache = FeatureCache::new(dir.path());
            analyst
                .features(prompts, &spec, None, &cache, &mut |_| {})
                .unwrap()
                .0
        };
        let batched = features(&prompts);
        for (i, m) in prompts.iter().enumerate() {
            let alone = features(std::slice::from_ref(m));
            assert_eq!(alone[0], batched[i], "{pooling:?} pooling, prompt {i}");
        }
    }
    // The verdict-token scores (the SC variants) take the same path: one prefix, then
    // right-padded batches whose logits are read at each row's own last token.
    let scores = |m: &[vigil_data::prompt::Messages]| {
        analyst
            .verdict_token_probabilities(m, None, &mut |_| {})
            .unwrap()
    };
    let batched = scores(&prompts);
    for (i, m) in prompts.iter().enumerate() {
        assert_eq!(scores(std::slice::from_ref(m))[0], batched[i], "prompt {i}");
    }
}
