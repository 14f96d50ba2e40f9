//! Python: Flask and FastAPI decorators (with `Blueprint(url_prefix=)` / `APIRouter(prefix=)`
//! prefixes), Flask's `add_url_rule` registrations, and Django `urls.py` (`path`, `re_path`,
//! `url`) joined to views.

use super::imports;
use crate::route::join_route;
use crate::ts::{
    self, named_children, string_value, ModuleRef, Mount, ParsedFile, RouteFact, Span, Target,
};
use std::collections::HashMap;
use tree_sitter::Node;

pub(crate) struct Python;

const DECORATOR_VERBS: &[&str] = &["get", "post", "put", "patch", "delete", "head", "options"];

impl ts::Frontend for Python {
    fn grammar(&self, _path: &str) -> tree_sitter::Language {
        tree_sitter_python::LANGUAGE.into()
    }
    fn framework(&self, path: &str, src: &str) -> Option<&'static str> {
        if imports(src, "fastapi") {
            Some("fastapi")
        } else if imports(src, "flask") {
            Some("flask")
        } else if imports(src, "django") || path.ends_with("urls.py") {
            Some("django")
        } else {
            None
        }
    }
    fn function_name(&self, node: Node, src: &str) -> Option<String> {
        (node.kind() == "function_definition")
            .then(|| ts::field_text(node, "name", src).map(str::to_string))
            .flatten()
    }
    fn class_name(&self, node: Node, src: &str) -> Option<String> {
        (node.kind() == "class_definition")
            .then(|| ts::field_text(node, "name", src).map(str::to_string))
            .flatten()
    }
    fn function_extent<'t>(&self, node: Node<'t>) -> (Node<'t>, Node<'t>) {
        match node.parent() {
            Some(p) if p.kind() == "decorated_definition" => (p, p),
            _ => (node, node),
        }
    }
    fn is_import(&self, node: Node, _src: &str) -> bool {
        matches!(
            node.kind(),
            "import_statement" | "import_from_statement" | "future_import_statement"
        )
    }
    fn comment(&self) -> &'static str {
        "#"
    }
    fn methods_hint(&self, code: &str) -> Option<String> {
        for line in code
            .lines()
            .map(str::trim)
            .take_while(|l| l.starts_with('@'))
        {
            if line.starts_with("@require_POST") {
                return Some("POST".into());
            }
            if line.starts_with("@require_GET") || line.starts_with("@require_safe") {
                return Some("GET".into());
            }
            if line.starts_with("@require_http_methods") || line.starts_with("@api_view") {
                let verbs: Vec<&str> = ["GET", "POST", "PUT", "PATCH", "DELETE"]
                    .into_iter()
                    .filter(|v| {
                        line.contains(&format!("\"{v}\"")) || line.contains(&format!("'{v}'"))
                    })
                    .collect();
                if !verbs.is_empty() {
                    return Some(verbs.join(","));
                }
            }
        }
        None
    }
    fn mounts(&self, file: &ParsedFile) -> Vec<Mount> {
        let src = file.src;
        let mut out = blueprint_mounts(file);
        for call in ts::nodes_of_kind(file.root(), &["call"]) {
            if !matches!(
                ts::field_text(call, "function", src),
                Some("path" | "re_path" | "url")
            ) {
                continue;
            }
            let (pos, _) = split_args(call, src);
            let (Some(prefix), Some(inc)) =
                (pos.first().and_then(|p| string_value(*p, src)), pos.get(1))
            else {
                continue;
            };
            if inc.kind() != "call" || ts::field_text(*inc, "function", src) != Some("include") {
                continue;
            }
            // include("shop.urls") or include(("shop.urls", "shop"))
            let (args, _) = split_args(*inc, src);
            let module = args.first().and_then(|a| {
                string_value(*a, src)
                    .or_else(|| a.named_child(0).and_then(|m| string_value(m, src)))
            });
            if let Some(m) = module {
                out.push(Mount {
                    prefix: prefix.trim_start_matches('^').to_string(),
                    module: ModuleRef::Suffix(m.replace('.', "/")),
                });
            }
        }
        out
    }
    fn routes(&self, file: &ParsedFile) -> Vec<RouteFact> {
        let mut out = decorator_routes(file);
        out.extend(url_rule_routes(file));
        if file.path.ends_with("urls.py") || file.src.contains("urlpatterns") {
            out.extend(django_routes(file));
        }
        out
    }
}

/// The positional and keyword arguments of a call.
fn split_args<'t>(call: Node<'t>, src: &str) -> (Vec<Node<'t>>, HashMap<String, Node<'t>>) {
    let mut pos = Vec::new();
    let mut kw = HashMap::new();
    if let Some(args) = call.child_by_field_name("arguments") {
        for a in named_children(args) {
            if a.kind() == "keyword_argument" {
                if let (Some(n), Some(v)) = (
                    a.child_by_field_name("name"),
                    a.child_by_field_name("value"),
                ) {
                    kw.insert(ts::text(n, src).to_string(), v);
                }
            } else if !a.kind().contains("comment") {
                pos.push(a);
            }
        }
    }
    (pos, kw)
}

/// Calls of a method named `name` on any object (`app.add_url_rule(...)`), with the
/// object's text.
fn method_calls<'f>(file: &'f ParsedFile, name: &str) -> Vec<(Node<'f>, &'f str)> {
    let src = file.src;
    ts::nodes_of_kind(file.root(), &["call"])
        .into_iter()
        .filter_map(|call| {
            let func = call
                .child_by_field_name("function")
                .filter(|f| f.kind() == "attribute")?;
            (ts::field_text(func, "attribute", src) == Some(name))
                .then(|| (call, ts::field_text(func, "object", src).unwrap_or("")))
        })
        .collect()
}

/// The upper-cased verbs of a `methods=[...]` keyword argument (empty when absent).
fn listed_methods(kw: &HashMap<String, Node>, src: &str) -> Vec<String> {
    kw.get("methods")
        .map(|l| {
            named_children(*l)
                .into_iter()
                .filter_map(|m| string_value(m, src))
                .map(|m| m.to_ascii_uppercase())
                .collect()
        })
        .unwrap_or_default()
}

/// `name = Blueprint(..., url_prefix="/x")` / `APIRouter(prefix="/x")` at module level.
fn prefixes(file: &ParsedFile) -> HashMap<String, String> {
    let mut out = HashMap::new();
    for stmt in named_children(file.root()) {
        let Some(assign) = stmt.named_child(0).filter(|n| n.kind() == "assignment") else {
            continue;
        };
        let (Some(left), Some(right)) = (
            assign.child_by_field_name("left"),
            assign.child_by_field_name("right"),
        ) else {
            continue;
        };
        if right.kind() != "call" {
            continue;
        }
        let (_, kw) = split_args(right, file.src);
        if let Some(p) = kw
            .get("url_prefix")
            .or(kw.get("prefix"))
            .and_then(|v| string_value(*v, file.src))
        {
            out.insert(file.text(left).to_string(), p);
        }
    }
    out
}

fn decorator_routes(file: &ParsedFile) -> Vec<RouteFact> {
    let src = file.src;
    let prefix = prefixes(file);
    let mut out = Vec::new();
    for dd in ts::nodes_of_kind(file.root(), &["decorated_definition"]) {
        let Some(def) = dd
            .child_by_field_name("definition")
            .filter(|d| d.kind() == "function_definition")
        else {
            continue;
        };
        let span = Span::of(dd);
        let name = file
            .func_at(&span)
            .map(|f| f.qualified())
            .unwrap_or_else(|| ts::field_text(def, "name", src).unwrap_or("").to_string());
        for deco in named_children(dd)
            .into_iter()
            .filter(|n| n.kind() == "decorator")
        {
            let Some(call) = deco.named_child(0).filter(|c| c.kind() == "call") else {
                continue;
            };
            let Some(func) = call
                .child_by_field_name("function")
                .filter(|f| f.kind() == "attribute")
            else {
                continue;
            };
            let attr = ts::field_text(func, "attribute", src).unwrap_or("");
            let object = ts::field_text(func, "object", src).unwrap_or("");
            let (pos, kw) = split_args(call, src);
            // Routes start with `/` (or are empty: a blueprint's root); `@cache.get("key")`
            // is not a route.
            let Some(path) = pos
                .first()
                .and_then(|p| string_value(*p, src))
                .filter(|p| p.is_empty() || p.starts_with('/'))
            else {
                continue;
            };
            let methods: Vec<String> = if attr == "route" || attr == "api_route" {
                let listed = listed_methods(&kw, src);
                if listed.is_empty() {
                    vec!["GET".into()]
                } else {
                    listed
                }
            } else if DECORATOR_VERBS.contains(&attr) {
                vec![attr.to_ascii_uppercase()]
            } else {
                continue;
            };
            let route = join_route(&[prefix.get(object).map(String::as_str).unwrap_or(""), &path]);
            let target = Target::Here {
                span,
                name: name.clone(),
            };
            push_routes(&mut out, methods, &route, &target, Span::of(deco));
        }
    }
    out
}

/// Where an imported name comes from: `from .users import bp` gives `.users` for `bp`;
/// `from . import users` gives `.users` for `users` (a module itself).
fn import_source(file: &ParsedFile, local: &str) -> Option<String> {
    let src = file.src;
    for stmt in ts::nodes_of_kind(file.root(), &["import_from_statement"]) {
        let module = ts::field_text(stmt, "module_name", src)?.to_string();
        let mut cursor = stmt.walk();
        for name in stmt.children_by_field_name("name", &mut cursor) {
            let (imported, bound) = match name.kind() {
                "aliased_import" => (
                    ts::field_text(name, "name", src).unwrap_or(""),
                    ts::field_text(name, "alias", src).unwrap_or(""),
                ),
                _ => (ts::text(name, src), ts::text(name, src)),
            };
            if bound == local {
                // `from . import users`: the name is a module under the package.
                return Some(if module.chars().all(|c| c == '.') {
                    format!("{module}{imported}")
                } else {
                    module
                });
            }
        }
    }
    None
}

/// A Python module name as a [`ModuleRef`]: relative ones (`.users`, `..api.v1`) resolved
/// against this file, absolute ones matched by their trailing path.
fn module_ref(file: &ParsedFile, module: &str) -> ModuleRef {
    let dots = module.chars().take_while(|&c| c == '.').count();
    let rest = module[dots..].replace('.', "/");
    if dots == 0 {
        return ModuleRef::Suffix(rest);
    }
    let up = if dots == 1 {
        "./".to_string()
    } else {
        "../".repeat(dots - 1)
    };
    ModuleRef::Exact(ts::resolve_relative(file.path, &format!("{up}{rest}")))
}

/// Flask's `app.register_blueprint(bp, url_prefix="/v1")` where `bp` (or `mod.bp`) is
/// imported from another module: that module's routes get the prefix. (Flask lets the
/// registration's prefix replace one the blueprint set itself; such a blueprint gets both
/// here.)
fn blueprint_mounts(file: &ParsedFile) -> Vec<Mount> {
    let src = file.src;
    let mut out = Vec::new();
    for (call, _) in method_calls(file, "register_blueprint") {
        let (pos, kw) = split_args(call, src);
        let (Some(bp), Some(prefix)) = (
            pos.first(),
            kw.get("url_prefix").and_then(|v| string_value(*v, src)),
        ) else {
            continue;
        };
        let module = match bp.kind() {
            "identifier" => import_source(file, ts::text(*bp, src)),
            "attribute" => ts::field_text(*bp, "object", src).and_then(|o| import_source(file, o)),
            _ => None,
        };
        if let Some(m) = module {
            out.push(Mount {
                prefix,
                module: module_ref(file, &m),
            });
        }
    }
    out
}

/// The function a view expression names: `views.show` → (Some("views"), "show", false);
/// `Things.as_view("things")` → (None, "Things", true), a class whose verb methods serve it.
fn view_target(view: Node, src: &str) -> Option<(Option<String>, String, bool)> {
    match view.kind() {
        "identifier" => Some((None, ts::text(view, src).to_string(), false)),
        "attribute" => Some((
            ts::field_text(view, "object", src).map(str::to_string),
            ts::field_text(view, "attribute", src)?.to_string(),
            false,
        )),
        "call" => {
            let f = view
                .child_by_field_name("function")
                .filter(|f| f.kind() == "attribute")?;
            (ts::field_text(f, "attribute", src) == Some("as_view")).then(|| {
                let obj = ts::field_text(f, "object", src).unwrap_or("");
                (
                    None,
                    obj.rsplit('.').next().unwrap_or(obj).to_string(),
                    true,
                )
            })
        }
        _ => None,
    }
}

/// Flask's `app.add_url_rule("/path", "endpoint", view_func, methods=[...])` (on an app or
/// a blueprint, whose prefix applies).
fn url_rule_routes(file: &ParsedFile) -> Vec<RouteFact> {
    let src = file.src;
    let prefix = prefixes(file);
    let mut out = Vec::new();
    for (call, object) in method_calls(file, "add_url_rule") {
        let (pos, kw) = split_args(call, src);
        let Some(path) = pos
            .first()
            .or(kw.get("rule"))
            .and_then(|p| string_value(*p, src))
        else {
            continue;
        };
        let Some((module, name, class_view)) = kw
            .get("view_func")
            .or(pos.get(2))
            .and_then(|v| view_target(*v, src))
        else {
            continue;
        };
        let listed = listed_methods(&kw, src);
        let methods = match (listed.is_empty(), class_view) {
            (false, _) => listed,
            (true, true) => vec!["ANY".to_string()],
            (true, false) => vec!["GET".to_string()],
        };
        let route = join_route(&[prefix.get(object).map(String::as_str).unwrap_or(""), &path]);
        let target = Target::Named {
            class: None,
            name: name.clone(),
            path_hint: module.as_ref().map(|m| m.replace('.', "/")),
            class_view,
            implicit: false,
        };
        push_routes(&mut out, methods, &route, &target, Span::of(call));
    }
    out
}

fn django_routes(file: &ParsedFile) -> Vec<RouteFact> {
    let src = file.src;
    let mut out = Vec::new();
    for call in ts::nodes_of_kind(file.root(), &["call"]) {
        let fname = ts::field_text(call, "function", src).unwrap_or("");
        if !matches!(fname, "path" | "re_path" | "url") {
            continue;
        }
        let (pos, _) = split_args(call, src);
        let (Some(p), Some(view)) = (pos.first().and_then(|p| string_value(*p, src)), pos.get(1))
        else {
            continue;
        };
        let route = if fname == "path" {
            join_route(&["/", &p])
        } else {
            join_route(&[p.trim_start_matches('^').trim_end_matches('$')])
        };
        let target = view_target(*view, src);
        let Some((module, name, class_view)) = target else {
            continue;
        };
        out.push(RouteFact {
            method: "ANY".into(),
            route,
            target: Target::Named {
                class: None,
                name,
                path_hint: module.map(|m| m.replace('.', "/")),
                class_view,
                implicit: false,
            },
            registration: Span::of(call),
        });
    }
    out
}

/// One route fact per HTTP method, all for the same route and handler.
fn push_routes(
    out: &mut Vec<RouteFact>,
    methods: Vec<String>,
    route: &str,
    target: &Target,
    registration: Span,
) {
    out.extend(methods.into_iter().map(|method| RouteFact {
        method,
        route: route.to_string(),
        target: target.clone(),
        registration,
    }));
}
