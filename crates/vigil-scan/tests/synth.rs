//! Every sample of vigil-data's synthetic generator (all twelve vulnerability types in all
//! ten frameworks, vulnerable and fixed) must yield an Endpoint unit whose method and route
//! match the sample's `endpoint` field.
//!
//! Some generated files carry their routing only as a comment naming the routing file
//! (Django `# urls.py: path(...)`, Laravel `// routes/api.php: Route::get(...)`, Rails
//! `# config/routes.rb: get ...`), as a single file of a real project would not contain its
//! routes. The test writes that routing file next to the handler, as the project would have
//! it, so the cross-file join is what is tested. The Laravel line spells the full path, so
//! it goes to `routes/web.php` (a `routes/api.php` would add Laravel's implicit `/api`).
//! Gin samples without a `Register…` function and Laravel samples without the comment hold
//! no route at all: those must still yield a Function unit for the handler.

use std::collections::BTreeMap;
use vigil_data::synth::code::{instance_in, Fw, TYPES};
use vigil_data::synth::Rng;
use vigil_data::Sample;
use vigil_scan::{discover_files, route_pattern, DiscoveryOptions, UnitKind};

/// The handler file's name and, when the sample names one, its routing file.
fn files_for(fw: Fw, code: &str) -> Vec<(String, String)> {
    let comment = |marker: &str| {
        code.lines().find_map(|l| {
            l.trim()
                .split_once(marker)
                .map(|(_, r)| r.trim().to_string())
        })
    };
    let mut files = Vec::new();
    let main = match fw {
        Fw::Flask => "app.py",
        Fw::FastApi => "main.py",
        Fw::Django => "shop/views.py",
        Fw::Express => "routes/items.js",
        Fw::Nest => "src/items.controller.ts",
        Fw::Spring => "src/main/java/ItemController.java",
        Fw::Laravel => "app/Http/Controllers/ItemController.php",
        Fw::Gin => "handlers/items.go",
        Fw::Rails => "app/controllers/items_controller.rb",
        Fw::AspNet => "Controllers/ItemsController.cs",
    };
    files.push((main.to_string(), code.to_string()));
    match fw {
        Fw::Django => {
            if let Some(line) = comment("# urls.py:") {
                files.push((
                    "shop/urls.py".into(),
                    format!("from django.urls import path\nfrom . import views\n\nurlpatterns = [\n    {line},\n]\n"),
                ));
            }
        }
        Fw::Laravel => {
            if let Some(line) = comment("// routes/api.php:") {
                files.push((
                    "routes/web.php".into(),
                    format!("<?php\n\nuse Illuminate\\Support\\Facades\\Route;\n\n{line}\n"),
                ));
            }
        }
        Fw::Rails => {
            if let Some(line) = comment("# config/routes.rb:") {
                files.push((
                    "config/routes.rb".into(),
                    format!("Rails.application.routes.draw do\n  {line}\nend\n"),
                ));
            }
        }
        _ => {}
    }
    files
}

fn has_route_info(fw: Fw, code: &str) -> bool {
    match fw {
        Fw::Gin => code.contains("(r *gin.Engine)"),
        Fw::Laravel => code.contains("// routes/api.php:"),
        _ => true,
    }
}

#[derive(Default)]
struct Tally {
    samples: usize,
    with_routes: usize,
    hits: usize,
    function_units: usize,
    misses: Vec<String>,
}

fn check(fw: Fw, s: &Sample, tally: &mut Tally) {
    let code = s.code.as_deref().expect("code sample");
    let (method, route) = s
        .endpoint
        .as_deref()
        .and_then(|e| e.split_once(' '))
        .expect("endpoint");
    let d = discover_files(files_for(fw, code), &DiscoveryOptions::default());
    tally.samples += 1;
    if !has_route_info(fw, code) {
        // No route anywhere: the handler must still be analysed as a function.
        if d.units
            .iter()
            .any(|u| matches!(&u.kind, UnitKind::Function { .. }))
        {
            tally.function_units += 1;
        } else {
            tally.misses.push(format!("no Function unit:\n{code}"));
        }
        return;
    }
    tally.with_routes += 1;
    let hit = d.endpoints().any(|u| match &u.kind {
        UnitKind::Endpoint {
            method: m,
            route: r,
            ..
        } => route_pattern(r) == route_pattern(route) && (m == method || m == "ANY"),
        _ => false,
    });
    if hit {
        tally.hits += 1;
    } else {
        let found: Vec<_> = d.endpoints().map(|u| format!("{:?}", u.kind)).collect();
        tally
            .misses
            .push(format!("want {method} {route}, found {found:?}\n{code}"));
    }
}

#[test]
fn every_generated_endpoint_is_discovered() {
    let root = Rng::new(7);
    let mut tallies: BTreeMap<&str, Tally> = BTreeMap::new();
    let mut n = 0u64;
    for fw in Fw::ALL {
        for t in TYPES {
            for rep in 0..4 {
                let mut rng = root.fork(n * 31 + rep);
                n += 1;
                let Some((vuln, fixed)) = instance_in(&mut rng, t, fw) else {
                    continue;
                };
                let tally = tallies.entry(fw.name()).or_default();
                check(fw, &vuln, tally);
                check(fw, &fixed, tally);
            }
        }
    }
    let mut report = String::from("framework  samples  with-route  endpoint-hits  function-only\n");
    for (fw, t) in &tallies {
        report.push_str(&format!(
            "{fw:<10} {:>7} {:>11} {:>10} ({:>3}%) {:>8}\n",
            t.samples,
            t.with_routes,
            t.hits,
            (100 * t.hits).checked_div(t.with_routes).unwrap_or(100),
            t.function_units
        ));
    }
    println!("{report}");
    assert_eq!(tallies.len(), 10, "all ten frameworks generated");
    for (fw, t) in &tallies {
        assert!(
            t.misses.is_empty(),
            "{fw}: {} misses; first:\n{}\n{report}",
            t.misses.len(),
            t.misses[0]
        );
        assert!(t.samples > 0);
    }
}
