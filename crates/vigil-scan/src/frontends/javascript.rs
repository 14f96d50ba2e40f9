//! JavaScript and TypeScript: Express (`app.get('/x', ...)`, `router.route('/x').post(...)`,
//! `app.use('/prefix', router)`) and NestJS (`@Controller('prefix')` + `@Get(':id')`).

use super::imports;
use crate::route::join_route;
use crate::ts::{
    self, named_children, string_value, ModuleRef, Mount, ParsedFile, RouteFact, Span, Target,
};
use std::collections::HashMap;
use tree_sitter::Node;

pub(crate) struct JavaScript {
    pub typescript: bool,
}

const EXPRESS_VERBS: &[&str] = &[
    "get", "post", "put", "patch", "delete", "all", "options", "head",
];
const NEST_VERBS: &[&str] = &[
    "Get", "Post", "Put", "Patch", "Delete", "All", "Options", "Head",
];
/// Receivers that are HTTP clients, not routers (`axios.get(url, cb)`).
const CLIENTS: &[&str] = &[
    "axios",
    "http",
    "https",
    "fetch",
    "request",
    "client",
    "superagent",
    "$",
    "got",
    "cache",
    "map",
    "params",
    "headers",
    "req",
    "res",
];

fn is_function(n: Node) -> bool {
    matches!(
        n.kind(),
        "arrow_function" | "function_expression" | "function"
    )
}

impl ts::Frontend for JavaScript {
    fn grammar(&self, path: &str) -> tree_sitter::Language {
        if !self.typescript {
            tree_sitter_javascript::LANGUAGE.into()
        } else if path.to_ascii_lowercase().ends_with(".tsx") {
            tree_sitter_typescript::LANGUAGE_TSX.into()
        } else {
            tree_sitter_typescript::LANGUAGE_TYPESCRIPT.into()
        }
    }
    fn framework(&self, _path: &str, src: &str) -> Option<&'static str> {
        if src.contains("@nestjs/") {
            Some("nestjs")
        } else if imports(src, "express") {
            Some("express")
        } else if imports(src, "fastify") {
            Some("fastify")
        } else if imports(src, "koa") {
            Some("koa")
        } else {
            None
        }
    }
    fn function_name(&self, node: Node, src: &str) -> Option<String> {
        match node.kind() {
            "function_declaration" | "generator_function_declaration" | "method_definition" => {
                ts::field_text(node, "name", src).map(str::to_string)
            }
            // class fields: `handle = async (req, res) => { ... }`
            "public_field_definition" | "field_definition" => {
                let value = node.child_by_field_name("value")?;
                let name = node
                    .child_by_field_name("name")
                    .or_else(|| node.child_by_field_name("property"))?;
                is_function(value).then(|| ts::text(name, src).to_string())
            }
            "variable_declarator" => {
                let value = node.child_by_field_name("value")?;
                is_function(value).then(|| ts::field_text(node, "name", src).map(str::to_string))?
            }
            "assignment_expression" => {
                // exports.getUser = async (req, res) => { ... }
                let right = node.child_by_field_name("right")?;
                let left = node.child_by_field_name("left")?;
                if !is_function(right) || node.parent()?.kind() != "expression_statement" {
                    return None;
                }
                let name = match left.kind() {
                    "member_expression" => ts::field_text(left, "property", src)?,
                    "identifier" => ts::text(left, src),
                    _ => return None,
                };
                Some(name.to_string())
            }
            _ => None,
        }
    }
    fn class_name(&self, node: Node, src: &str) -> Option<String> {
        matches!(
            node.kind(),
            "class_declaration" | "class" | "abstract_class_declaration"
        )
        .then(|| ts::field_text(node, "name", src).map(str::to_string))?
    }
    fn function_extent<'t>(&self, node: Node<'t>) -> (Node<'t>, Node<'t>) {
        let mut first = node;
        let mut last = node;
        match node.kind() {
            "variable_declarator" => {
                if let Some(p) = node.parent() {
                    first = p;
                    last = p;
                }
            }
            "assignment_expression" => {
                if let Some(p) = node.parent() {
                    first = p;
                    last = p;
                }
            }
            "method_definition" => {
                // TypeScript puts member decorators before the method, as siblings.
                let mut prev = node.prev_named_sibling();
                while let Some(p) = prev.filter(|p| p.kind() == "decorator") {
                    first = p;
                    prev = p.prev_named_sibling();
                }
            }
            _ => {}
        }
        if let Some(p) = first.parent().filter(|p| p.kind() == "export_statement") {
            first = p;
            last = p;
        }
        (first, last)
    }
    fn is_import(&self, node: Node, _src: &str) -> bool {
        node.kind() == "import_statement"
    }
    fn mounts(&self, file: &ParsedFile) -> Vec<Mount> {
        let src = file.src;
        let mut out = Vec::new();
        for call in ts::nodes_of_kind(file.root(), &["call_expression"]) {
            let Some(f) = call
                .child_by_field_name("function")
                .filter(|f| f.kind() == "member_expression")
            else {
                continue;
            };
            if ts::field_text(f, "property", src) != Some("use") {
                continue;
            }
            let a = args(call);
            let (Some(prefix), Some(target)) =
                (a.first().and_then(|n| route_string(*n, src)), a.last())
            else {
                continue;
            };
            let module = match target.kind() {
                "call_expression" => require_path(*target, src),
                "identifier" => imported_from(file, ts::text(*target, src)),
                _ => None,
            };
            if let Some(m) = module.filter(|m| m.starts_with('.')) {
                out.push(Mount {
                    prefix,
                    module: ModuleRef::Exact(ts::resolve_relative(file.path, &m)),
                });
            }
        }
        out
    }
    fn routes(&self, file: &ParsedFile) -> Vec<RouteFact> {
        let mut out = express_routes(file);
        if file.framework == Some("nestjs") || file.src.contains("@Controller") {
            out.extend(nest_routes(file));
        }
        out
    }
}

fn args<'t>(call: Node<'t>) -> Vec<Node<'t>> {
    call.child_by_field_name("arguments")
        .map(|a| {
            named_children(a)
                .into_iter()
                .filter(|n| !n.kind().contains("comment"))
                .collect()
        })
        .unwrap_or_default()
}

/// `require("./x")` → `./x`.
fn require_path(call: Node, src: &str) -> Option<String> {
    (ts::field_text(call, "function", src)? == "require")
        .then(|| args(call).first().and_then(|a| string_value(*a, src)))?
}

/// The module a name was bound from: `const users = require("./users")` or
/// `import users from "./users"`.
fn imported_from(file: &ParsedFile, name: &str) -> Option<String> {
    let src = file.src;
    for n in ts::nodes_of_kind(file.root(), &["variable_declarator", "import_statement"]) {
        if n.kind() == "variable_declarator" {
            if ts::field_text(n, "name", src) == Some(name) {
                if let Some(v) = n
                    .child_by_field_name("value")
                    .filter(|v| v.kind() == "call_expression")
                {
                    return require_path(v, src);
                }
            }
        } else {
            let binds = ts::nodes_of_kind(n, &["identifier"])
                .into_iter()
                .any(|i| ts::text(i, src) == name);
            if binds {
                return n
                    .child_by_field_name("source")
                    .and_then(|s| string_value(s, src));
            }
        }
    }
    None
}

fn route_string(n: Node, src: &str) -> Option<String> {
    let s = string_value(n, src)?;
    (s.starts_with('/') || s == "*" || s.is_empty()).then_some(s)
}

/// `app.use('/api', router)`: prefixes of routers mounted in this file.
fn mounts(file: &ParsedFile) -> HashMap<String, String> {
    let mut out = HashMap::new();
    for call in ts::nodes_of_kind(file.root(), &["call_expression"]) {
        let Some(f) = call
            .child_by_field_name("function")
            .filter(|f| f.kind() == "member_expression")
        else {
            continue;
        };
        if ts::field_text(f, "property", file.src) != Some("use") {
            continue;
        }
        let a = args(call);
        if let (Some(p), Some(r)) = (a.first().and_then(|n| route_string(*n, file.src)), a.get(1)) {
            if r.kind() == "identifier" {
                out.insert(file.text(*r).to_string(), p);
            }
        }
    }
    out
}

fn express_routes(file: &ParsedFile) -> Vec<RouteFact> {
    let src = file.src;
    let express = file.framework == Some("express");
    let mounted = mounts(file);
    let mut out = Vec::new();
    for call in ts::nodes_of_kind(file.root(), &["call_expression"]) {
        let Some(f) = call
            .child_by_field_name("function")
            .filter(|f| f.kind() == "member_expression")
        else {
            continue;
        };
        let verb = ts::field_text(f, "property", src).unwrap_or("");
        if !EXPRESS_VERBS.contains(&verb) {
            continue;
        }
        let Some(object) = f.child_by_field_name("object") else {
            continue;
        };
        let a = args(call);
        // router.route('/x').get(handler) or router.get('/x', ...handlers)
        let (receiver, path, handlers) = if object.kind() == "call_expression" {
            let Some(of) = object
                .child_by_field_name("function")
                .filter(|f| f.kind() == "member_expression")
            else {
                continue;
            };
            if ts::field_text(of, "property", src) != Some("route") {
                continue;
            }
            let Some(p) = args(object).first().and_then(|n| route_string(*n, src)) else {
                continue;
            };
            // the router is the receiver at the start of the chain
            let mut root = of.child_by_field_name("object");
            while let Some(r) = root.filter(|r| r.kind() != "identifier") {
                root = r
                    .child_by_field_name("function")
                    .and_then(|f| f.child_by_field_name("object"))
                    .or_else(|| r.child_by_field_name("object"));
            }
            (root.map(|r| ts::text(r, src)).unwrap_or(""), p, a)
        } else {
            let Some(p) = a.first().and_then(|n| route_string(*n, src)) else {
                continue;
            };
            if a.len() < 2 {
                continue;
            }
            (ts::text(object, src), p, a[1..].to_vec())
        };
        if CLIENTS.contains(&receiver)
            || (!express
                && !["app", "router", "routes", "api", "r", "server", "routers"]
                    .contains(&receiver))
        {
            continue;
        }
        let Some(handler) = handlers.last().copied() else {
            continue;
        };
        let target = if is_function(handler) {
            let stmt = call.parent().filter(|p| {
                p.kind() == "expression_statement" && object.kind() != "call_expression"
            });
            Target::Here {
                span: Span::of(stmt.unwrap_or(handler)),
                name: "(inline)".into(),
            }
        } else {
            let name = match handler.kind() {
                "identifier" => ts::text(handler, src),
                "member_expression" => ts::field_text(handler, "property", src).unwrap_or(""),
                _ => continue,
            };
            Target::Named {
                class: None,
                name: name.to_string(),
                path_hint: None,
                class_view: false,
                implicit: false,
            }
        };
        let method = if verb == "all" {
            "ANY".to_string()
        } else {
            verb.to_ascii_uppercase()
        };
        let prefix = mounted.get(receiver).map(String::as_str).unwrap_or("");
        out.push(RouteFact {
            method,
            route: join_route(&[prefix, &path]),
            target,
            registration: Span::of(call),
        });
    }
    out
}

/// `@Name(args)` or `@Name` → (name, first argument).
fn decorator_call<'t>(d: Node<'t>, src: &str) -> Option<(String, Option<Node<'t>>)> {
    let inner = d.named_child(0)?;
    match inner.kind() {
        "identifier" => Some((ts::text(inner, src).to_string(), None)),
        "call_expression" => {
            let f = inner.child_by_field_name("function")?;
            Some((ts::text(f, src).to_string(), args(inner).first().copied()))
        }
        _ => None,
    }
}

/// A decorator argument as a path: a string, or `{ path: 'x' }`.
fn decorator_path(arg: Option<Node>, src: &str) -> String {
    let Some(a) = arg else {
        return String::new();
    };
    if let Some(s) = string_value(a, src) {
        return s;
    }
    if a.kind() == "object" {
        for pair in named_children(a) {
            if pair.kind() == "pair"
                && ts::field_text(pair, "key", src).map(|k| k.trim_matches(['"', '\'']))
                    == Some("path")
            {
                if let Some(v) = pair
                    .child_by_field_name("value")
                    .and_then(|v| string_value(v, src))
                {
                    return v;
                }
            }
        }
    }
    String::new()
}

fn nest_routes(file: &ParsedFile) -> Vec<RouteFact> {
    let src = file.src;
    let mut out = Vec::new();
    for class in ts::nodes_of_kind(
        file.root(),
        &["class_declaration", "abstract_class_declaration"],
    ) {
        let mut decorators: Vec<Node> = named_children(class)
            .into_iter()
            .filter(|n| n.kind() == "decorator")
            .collect();
        if let Some(p) = class.parent().filter(|p| p.kind() == "export_statement") {
            decorators.extend(
                named_children(p)
                    .into_iter()
                    .filter(|n| n.kind() == "decorator"),
            );
        }
        let Some(prefix) = decorators
            .iter()
            .filter_map(|d| decorator_call(*d, src))
            .find(|(n, _)| n == "Controller")
            .map(|(_, a)| decorator_path(a, src))
        else {
            continue;
        };
        let class_name = ts::field_text(class, "name", src).unwrap_or("").to_string();
        let Some(body) = class.child_by_field_name("body") else {
            continue;
        };
        let members = named_children(body);
        for (i, m) in members.iter().enumerate() {
            if m.kind() != "method_definition" {
                continue;
            }
            let mut decos: Vec<Node> = named_children(*m)
                .into_iter()
                .filter(|n| n.kind() == "decorator")
                .collect();
            let mut k = i;
            while k > 0 && members[k - 1].kind() == "decorator" {
                decos.push(members[k - 1]);
                k -= 1;
            }
            let first = if k < i { members[k] } else { *m };
            let name = ts::field_text(*m, "name", src).unwrap_or("");
            for d in decos {
                let Some((verb, arg)) = decorator_call(d, src) else {
                    continue;
                };
                if !NEST_VERBS.contains(&verb.as_str()) {
                    continue;
                }
                let method = if verb == "All" {
                    "ANY".to_string()
                } else {
                    verb.to_ascii_uppercase()
                };
                out.push(RouteFact {
                    method,
                    route: join_route(&[&prefix, &decorator_path(arg, src)]),
                    target: Target::Here {
                        span: Span::between(first, *m),
                        name: format!("{class_name}.{name}"),
                    },
                    registration: Span::of(d),
                });
            }
        }
    }
    out
}
