//! PHP: Laravel route files (`Route::get('/x', [C::class, 'm'])`, `'C@m'`, closures,
//! `Route::match`, `Route::resource` / `apiResource`, `Route::prefix('x')->group(...)` and
//! `Route::group(['prefix' => 'x'], ...)`) joined to controller methods. `routes/api.php`
//! gets Laravel's implicit `/api` prefix.

use crate::route::join_route;
use crate::ts::{self, named_children, string_value, ParsedFile, RouteFact, Span, Target};
use tree_sitter::Node;

pub(crate) struct Php;

const VERBS: &[&str] = &["get", "post", "put", "patch", "delete", "options", "any"];

impl ts::Frontend for Php {
    fn grammar(&self, _path: &str) -> tree_sitter::Language {
        tree_sitter_php::LANGUAGE_PHP.into()
    }
    fn framework(&self, _path: &str, src: &str) -> Option<&'static str> {
        (src.contains("Illuminate\\")
            || src.contains("Route::")
            || src.contains("extends Controller"))
        .then_some("laravel")
    }
    fn function_name(&self, node: Node, src: &str) -> Option<String> {
        matches!(node.kind(), "function_definition" | "method_declaration")
            .then(|| ts::field_text(node, "name", src).map(str::to_string))?
    }
    fn class_name(&self, node: Node, src: &str) -> Option<String> {
        matches!(node.kind(), "class_declaration" | "trait_declaration")
            .then(|| ts::field_text(node, "name", src).map(str::to_string))?
    }
    fn is_import(&self, node: Node, _src: &str) -> bool {
        matches!(
            node.kind(),
            "namespace_use_declaration" | "namespace_definition"
        )
    }
    fn routes(&self, file: &ParsedFile) -> Vec<RouteFact> {
        if !file.src.contains("Route::") {
            return Vec::new();
        }
        let src = file.src;
        let base = if file.path.ends_with("routes/api.php") {
            "/api"
        } else {
            ""
        };
        let mut out = Vec::new();
        for call in ts::nodes_of_kind(file.root(), &["scoped_call_expression"]) {
            let scope = ts::field_text(call, "scope", src).unwrap_or("");
            if scope.rsplit('\\').next() != Some("Route") {
                continue;
            }
            let verb = ts::field_text(call, "name", src).unwrap_or("");
            let a = args(call);
            let prefix = format!("{base}/{}", group_prefix(call, src));
            match verb {
                v if VERBS.contains(&v) => {
                    let (Some(path), Some(h)) =
                        (a.first().and_then(|n| string_value(*n, src)), a.get(1))
                    else {
                        continue;
                    };
                    let method = if v == "any" {
                        "ANY".into()
                    } else {
                        v.to_ascii_uppercase()
                    };
                    if let Some(target) = handler(call, *h, src) {
                        out.push(fact(method, join_route(&[&prefix, &path]), target, call));
                    }
                }
                "match" => {
                    let (Some(ms), Some(path), Some(h)) = (
                        a.first(),
                        a.get(1).and_then(|n| string_value(*n, src)),
                        a.get(2),
                    ) else {
                        continue;
                    };
                    let methods: Vec<String> =
                        ts::nodes_of_kind(*ms, &["string", "encapsed_string"])
                            .into_iter()
                            .filter_map(|s| string_value(s, src))
                            .map(|m| m.to_ascii_uppercase())
                            .collect();
                    for method in methods {
                        if let Some(target) = handler(call, *h, src) {
                            out.push(fact(method, join_route(&[&prefix, &path]), target, call));
                        }
                    }
                }
                "resource" | "apiResource" => {
                    let (Some(name), Some(class)) = (
                        a.first().and_then(|n| string_value(*n, src)),
                        a.get(1).and_then(|n| class_ref(*n, src)),
                    ) else {
                        continue;
                    };
                    let param =
                        format!("{{{}}}", singular(name.rsplit('.').next().unwrap_or(&name)));
                    let mut actions = vec![
                        ("GET", String::new(), "index"),
                        ("POST", String::new(), "store"),
                        ("GET", param.clone(), "show"),
                        ("PUT", param.clone(), "update"),
                        ("DELETE", param.clone(), "destroy"),
                    ];
                    if verb == "resource" {
                        actions.push(("GET", "create".into(), "create"));
                        actions.push(("GET", format!("{param}/edit"), "edit"));
                    }
                    for (method, sub, action) in actions {
                        out.push(fact(
                            method.into(),
                            join_route(&[&prefix, &name.replace('.', "/"), &sub]),
                            Target::Named {
                                class: Some(class.clone()),
                                name: action.into(),
                                path_hint: None,
                                class_view: false,
                                implicit: true,
                            },
                            call,
                        ));
                    }
                }
                _ => {}
            }
        }
        out
    }
}

fn fact(method: String, route: String, target: Target, call: Node) -> RouteFact {
    RouteFact {
        method,
        route,
        target,
        registration: Span::of(ts::statement_of(call)),
    }
}

fn singular(s: &str) -> String {
    s.strip_suffix("ies")
        .map(|b| format!("{b}y"))
        .or_else(|| s.strip_suffix('s').map(str::to_string))
        .unwrap_or_else(|| s.to_string())
}

/// Argument expressions of a call.
fn args(call: Node) -> Vec<Node> {
    let Some(a) = call.child_by_field_name("arguments") else {
        return Vec::new();
    };
    named_children(a)
        .into_iter()
        .filter(|n| n.kind() == "argument")
        .filter_map(|n| named_children(n).into_iter().rfind(|c| c.kind() != "name"))
        .collect()
}

/// `C::class` → `C`.
fn class_ref(n: Node, src: &str) -> Option<String> {
    if n.kind() != "class_constant_access_expression" {
        return string_value(n, src);
    }
    let t = ts::text(n, src);
    t.strip_suffix("::class")
        .map(|c| c.rsplit('\\').next().unwrap_or(c).to_string())
}

fn handler(call: Node, h: Node, src: &str) -> Option<Target> {
    let named = |class: Option<String>, name: &str| Target::Named {
        class,
        name: name.to_string(),
        path_hint: None,
        class_view: false,
        implicit: false,
    };
    match h.kind() {
        "anonymous_function" | "arrow_function" => Some(Target::Here {
            span: Span::of(ts::statement_of(call)),
            name: "(closure)".into(),
        }),
        "array_creation_expression" => {
            let elems: Vec<Node> = named_children(h)
                .into_iter()
                .filter_map(|e| e.named_child(0))
                .collect();
            let class = class_ref(*elems.first()?, src)?;
            match elems.get(1).and_then(|m| string_value(*m, src)) {
                Some(m) => Some(named(Some(class), &m)),
                None => Some(named(Some(class), "__invoke")),
            }
        }
        "class_constant_access_expression" => Some(named(class_ref(h, src), "__invoke")),
        _ => {
            let s = string_value(h, src)?;
            let (c, m) = s.split_once('@')?;
            Some(named(
                Some(c.rsplit('\\').next().unwrap_or(c).to_string()),
                m,
            ))
        }
    }
}

/// Prefixes of the enclosing `->group(...)` closures, outermost first.
fn group_prefix(call: Node, src: &str) -> String {
    let mut parts = Vec::new();
    let mut n = call.parent();
    while let Some(x) = n {
        if matches!(x.kind(), "anonymous_function" | "arrow_function") {
            // closure → argument → arguments → the group call
            let group = x.parent().and_then(|a| a.parent()).and_then(|a| a.parent());
            if let Some(g) = group.filter(|g| ts::field_text(*g, "name", src) == Some("group")) {
                if let Some(p) = chain_prefix(g, src) {
                    parts.push(p);
                }
            }
        }
        n = x.parent();
    }
    parts.reverse();
    parts.join("/")
}

/// The prefix a group call carries: `Route::prefix('x')->…->group()` or
/// `Route::group(['prefix' => 'x'], …)`.
fn chain_prefix(group: Node, src: &str) -> Option<String> {
    if group.kind() == "scoped_call_expression" {
        let first = *args(group).first()?;
        for e in ts::nodes_of_kind(first, &["array_element_initializer"]) {
            let kids = named_children(e);
            if kids.len() == 2 && string_value(kids[0], src).as_deref() == Some("prefix") {
                return string_value(kids[1], src);
            }
        }
        return None;
    }
    let mut n = group.child_by_field_name("object");
    while let Some(x) = n {
        if ts::field_text(x, "name", src) == Some("prefix") {
            return args(x).first().and_then(|a| string_value(*a, src));
        }
        n = x.child_by_field_name("object");
    }
    None
}
