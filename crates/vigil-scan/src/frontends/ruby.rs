//! Ruby: Rails `config/routes.rb` (`get 'x', to: 'c#a'`, `'x' => 'c#a'`, `match … via:`,
//! `root`, `resources` / `resource` with `only:` / `except:`, nested `member` /
//! `collection`, `namespace` and `scope`) joined to controller actions.

use crate::route::join_route;
use crate::ts::{self, named_children, string_value, ParsedFile, RouteFact, Span, Target};
use tree_sitter::Node;

pub(crate) struct Ruby;

const VERBS: &[&str] = &["get", "post", "put", "patch", "delete"];

impl ts::Frontend for Ruby {
    fn grammar(&self, _path: &str) -> tree_sitter::Language {
        tree_sitter_ruby::LANGUAGE.into()
    }
    fn framework(&self, path: &str, src: &str) -> Option<&'static str> {
        (path.ends_with("routes.rb") || src.contains("Controller") || src.contains("Rails."))
            .then_some("rails")
            .or_else(|| src.contains("Sinatra").then_some("sinatra"))
    }
    fn function_name(&self, node: Node, src: &str) -> Option<String> {
        matches!(node.kind(), "method" | "singleton_method")
            .then(|| ts::field_text(node, "name", src).map(str::to_string))?
    }
    fn class_name(&self, node: Node, src: &str) -> Option<String> {
        matches!(node.kind(), "class" | "module")
            .then(|| ts::field_text(node, "name", src).map(str::to_string))?
    }
    fn is_import(&self, node: Node, src: &str) -> bool {
        node.kind() == "call"
            && matches!(
                ts::field_text(node, "method", src),
                Some("require" | "require_relative")
            )
    }
    fn comment(&self) -> &'static str {
        "#"
    }
    fn routes(&self, file: &ParsedFile) -> Vec<RouteFact> {
        if !(file.path.ends_with("routes.rb") || file.src.contains("routes.draw")) {
            return Vec::new();
        }
        let src = file.src;
        let mut out = Vec::new();
        for call in ts::nodes_of_kind(file.root(), &["call"]) {
            if call.child_by_field_name("receiver").is_some() {
                continue;
            }
            let verb = ts::field_text(call, "method", src).unwrap_or("");
            let scope = Scope::of(call, src);
            let a = Args::of(call, src);
            match verb {
                v if VERBS.contains(&v) || v == "match" || v == "root" => {
                    let path = if v == "root" {
                        String::new()
                    } else {
                        a.first.clone().unwrap_or_default()
                    };
                    let methods: Vec<String> = if v == "match" {
                        a.list("via")
                            .into_iter()
                            .map(|m| m.to_ascii_uppercase())
                            .collect()
                    } else if v == "root" {
                        vec!["GET".into()]
                    } else {
                        vec![v.to_ascii_uppercase()]
                    };
                    let to = a
                        .get("to")
                        .or(a.rocket_to.clone())
                        .or_else(|| if v == "root" { a.first.clone() } else { None })
                        .or_else(|| {
                            let c = a.get("controller").or(scope.resource.clone())?;
                            let act = a
                                .get("action")
                                .unwrap_or_else(|| path.trim_start_matches('/').to_string());
                            Some(format!("{c}#{act}"))
                        })
                        .or_else(|| {
                            // `get 'users/index'` routes to users#index
                            let p = path.trim_start_matches('/');
                            let (c, act) = p.split_once('/')?;
                            (!act.contains('/') && !act.contains(':')).then(|| format!("{c}#{act}"))
                        });
                    let path = if a.rocket_to.is_some() {
                        a.rocket_path.clone().unwrap_or_default()
                    } else {
                        path
                    };
                    let Some((controller, action)) = to.as_deref().and_then(|t| t.split_once('#'))
                    else {
                        continue;
                    };
                    for method in methods {
                        out.push(RouteFact {
                            method: if method == "ALL" {
                                "ANY".into()
                            } else {
                                method
                            },
                            route: join_route(&[&scope.path, &path]),
                            target: target(&scope.module, controller, action, false),
                            registration: Span::of(call),
                        });
                    }
                }
                "resources" | "resource" => {
                    let Some(name) = a.first.clone() else {
                        continue;
                    };
                    let plural = verb == "resources";
                    let controller = a.get("controller").unwrap_or_else(|| {
                        if plural {
                            name.clone()
                        } else {
                            format!("{name}s")
                        }
                    });
                    let member = if plural { "/:id" } else { "" };
                    let mut actions: Vec<(&str, String, &str)> = vec![
                        ("GET", format!("{name}/new"), "new"),
                        ("POST", name.clone(), "create"),
                        ("GET", format!("{name}{member}"), "show"),
                        ("GET", format!("{name}{member}/edit"), "edit"),
                        ("PATCH", format!("{name}{member}"), "update"),
                        ("DELETE", format!("{name}{member}"), "destroy"),
                    ];
                    if plural {
                        actions.insert(0, ("GET", name.clone(), "index"));
                    }
                    let only = a.list("only");
                    let except = a.list("except");
                    for (method, path, action) in actions {
                        if (!only.is_empty() && !only.iter().any(|o| o == action))
                            || except.iter().any(|e| e == action)
                        {
                            continue;
                        }
                        out.push(RouteFact {
                            method: method.into(),
                            route: join_route(&[&scope.path, &path]),
                            target: target(&scope.module, &controller, action, true),
                            registration: Span::of(call),
                        });
                    }
                }
                _ => {}
            }
        }
        out
    }
}

fn camel(s: &str) -> String {
    s.split('_')
        .map(|w| {
            let mut c = w.chars();
            c.next()
                .map(|f| f.to_ascii_uppercase().to_string() + c.as_str())
                .unwrap_or_default()
        })
        .collect()
}

/// `users#show` inside `namespace :admin` → `Admin::UsersController#show`, preferring files
/// under `controllers/admin/`.
fn target(module: &[String], controller: &str, action: &str, implicit: bool) -> Target {
    let mut parts: Vec<String> = module.to_vec();
    parts.extend(controller.split('/').map(str::to_string));
    let class = format!(
        "{}Controller",
        camel(parts.last().map(String::as_str).unwrap_or(""))
    );
    let dir = parts[..parts.len() - 1].join("/");
    Target::Named {
        class: Some(class),
        name: action.to_string(),
        path_hint: Some(if dir.is_empty() {
            "controllers/".into()
        } else {
            format!("controllers/{dir}/")
        }),
        class_view: false,
        implicit,
    }
}

/// The arguments of a route call.
#[derive(Default)]
struct Args {
    first: Option<String>,
    values: Vec<(String, Vec<String>)>,
    rocket_path: Option<String>,
    rocket_to: Option<String>,
}

impl Args {
    fn of(call: Node, src: &str) -> Args {
        let mut out = Args::default();
        let Some(list) = call.child_by_field_name("arguments") else {
            return out;
        };
        for a in named_children(list) {
            let pairs: Vec<Node> = match a.kind() {
                "pair" => vec![a],
                "hash" => named_children(a)
                    .into_iter()
                    .filter(|p| p.kind() == "pair")
                    .collect(),
                _ => {
                    if out.first.is_none() {
                        out.first = string_value(a, src);
                    }
                    continue;
                }
            };
            for p in pairs {
                let (Some(k), Some(v)) =
                    (p.child_by_field_name("key"), p.child_by_field_name("value"))
                else {
                    continue;
                };
                let vals: Vec<String> = match string_value(v, src) {
                    Some(s) => vec![s],
                    None => named_children(v)
                        .into_iter()
                        .filter_map(|e| string_value(e, src))
                        .collect(),
                };
                if k.kind() == "hash_key_symbol" || k.kind() == "simple_symbol" {
                    let key = ts::text(k, src).trim_matches(':').to_string();
                    out.values.push((key, vals));
                } else if let Some(path) = string_value(k, src) {
                    // 'photos/:id' => 'photos#show'
                    out.rocket_path = Some(path);
                    out.rocket_to = vals.into_iter().next();
                }
            }
        }
        out
    }
    fn get(&self, key: &str) -> Option<String> {
        self.values
            .iter()
            .find(|(k, _)| k == key)
            .and_then(|(_, v)| v.first().cloned())
    }
    fn list(&self, key: &str) -> Vec<String> {
        self.values
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.clone())
            .unwrap_or_default()
    }
}

/// Path prefix, controller module and enclosing resource of a call, from the blocks
/// (`namespace`, `scope`, `resources … do`, `member`, `collection`) around it.
#[derive(Default)]
struct Scope {
    path: String,
    module: Vec<String>,
    resource: Option<String>,
}

impl Scope {
    fn of(call: Node, src: &str) -> Scope {
        let mut blocks = Vec::new();
        let mut n = call.parent();
        while let Some(x) = n {
            if x.kind() == "call"
                && x.child_by_field_name("block").is_some_and(|b| {
                    b.start_byte() <= call.start_byte() && call.end_byte() <= b.end_byte()
                })
            {
                blocks.push(x);
            }
            n = x.parent();
        }
        blocks.reverse();
        let mut s = Scope::default();
        let mut parts: Vec<String> = Vec::new();
        for (i, b) in blocks.iter().enumerate() {
            let m = ts::field_text(*b, "method", src).unwrap_or("");
            let a = Args::of(*b, src);
            match m {
                "namespace" => {
                    let name = a.first.clone().unwrap_or_default();
                    parts.push(a.get("path").unwrap_or_else(|| name.clone()));
                    s.module.push(a.get("module").unwrap_or(name));
                }
                "scope" => {
                    if let Some(p) = a.first.clone().or_else(|| a.get("path")) {
                        parts.push(p);
                    }
                    if let Some(m) = a.get("module") {
                        s.module.push(m);
                    }
                }
                "resources" | "resource" => {
                    let name = a.first.clone().unwrap_or_default();
                    let inner = blocks
                        .get(i + 1)
                        .and_then(|n| ts::field_text(*n, "method", src));
                    let member = m == "resources" && inner != Some("collection");
                    parts.push(name.clone());
                    if member {
                        let id = if inner == Some("member") {
                            ":id".to_string()
                        } else {
                            format!(":{}_id", name.trim_end_matches('s'))
                        };
                        parts.push(id);
                    }
                    s.resource = Some(a.get("controller").unwrap_or(name));
                }
                _ => {}
            }
        }
        s.path = join_route(&parts.iter().map(String::as_str).collect::<Vec<_>>());
        s
    }
}
