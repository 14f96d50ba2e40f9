//! Go: Gin / Echo style `r.GET("/x", h)` with `Group("/prefix")` variables, chi style
//! `r.Get`, and net/http `HandleFunc("/x", h)` (Go 1.22 `"GET /x"` patterns included).

use super::imports;
use crate::route::join_route;
use crate::ts::{self, named_children, string_value, ParsedFile, RouteFact, Span, Target};
use std::collections::HashMap;
use tree_sitter::Node;

pub(crate) struct Go;

const UPPER: &[&str] = &[
    "GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS", "Any",
];
const CHI: &[&str] = &["Get", "Post", "Put", "Patch", "Delete", "Head", "Options"];

impl ts::Frontend for Go {
    fn grammar(&self, _path: &str) -> tree_sitter::Language {
        tree_sitter_go::LANGUAGE.into()
    }
    fn framework(&self, _path: &str, src: &str) -> Option<&'static str> {
        if imports(src, "github.com/gin-gonic/gin") {
            Some("gin")
        } else if imports(src, "labstack/echo") {
            Some("echo")
        } else if imports(src, "go-chi/chi") {
            Some("chi")
        } else if imports(src, "net/http") {
            Some("net/http")
        } else {
            None
        }
    }
    fn function_name(&self, node: Node, src: &str) -> Option<String> {
        matches!(node.kind(), "function_declaration" | "method_declaration")
            .then(|| ts::field_text(node, "name", src).map(str::to_string))?
    }
    fn class_name(&self, _node: Node, _src: &str) -> Option<String> {
        None
    }
    fn method_class(&self, node: Node, src: &str) -> Option<String> {
        let recv = node.child_by_field_name("receiver")?;
        let ty = ts::nodes_of_kind(recv, &["type_identifier"])
            .into_iter()
            .next()?;
        Some(ts::text(ty, src).to_string())
    }
    fn is_import(&self, node: Node, _src: &str) -> bool {
        matches!(node.kind(), "import_declaration" | "package_clause")
    }
    fn routes(&self, file: &ParsedFile) -> Vec<RouteFact> {
        let src = file.src;
        let calls = ts::nodes_of_kind(file.root(), &["call_expression"]);
        // v1 := r.Group("/v1") — source order, so nested groups see their parent.
        let mut groups: HashMap<String, String> = HashMap::new();
        for decl in ts::nodes_of_kind(
            file.root(),
            &["short_var_declaration", "assignment_statement", "var_spec"],
        ) {
            let left = decl
                .child_by_field_name("left")
                .or_else(|| decl.child_by_field_name("name"));
            let right = decl
                .child_by_field_name("right")
                .or_else(|| decl.child_by_field_name("value"));
            let (Some(left), Some(right)) = (left, right) else {
                continue;
            };
            let Some(call) = ts::nodes_of_kind(right, &["call_expression"])
                .into_iter()
                .next()
            else {
                continue;
            };
            let Some((recv, field)) = selector(call, src) else {
                continue;
            };
            if field != "Group" {
                continue;
            }
            if let Some(p) = args(call).first().and_then(|a| string_value(*a, src)) {
                let parent = groups.get(recv).cloned().unwrap_or_default();
                let name = ts::text(left, src)
                    .split(',')
                    .next()
                    .unwrap_or("")
                    .trim()
                    .to_string();
                groups.insert(name, join_route(&[&parent, &p]));
            }
        }
        let mut out = Vec::new();
        for call in calls {
            let Some((recv, field)) = selector(call, src) else {
                continue;
            };
            let a = args(call);
            let (methods, path, rest) = if UPPER.contains(&field)
                || (CHI.contains(&field) && file.framework == Some("chi"))
            {
                let Some(p) = a.first().and_then(|n| string_value(*n, src)) else {
                    continue;
                };
                let m = if field == "Any" {
                    "ANY".to_string()
                } else {
                    field.to_ascii_uppercase()
                };
                (m, p, &a[1.min(a.len())..])
            } else if matches!(field, "HandleFunc" | "Handle") {
                let Some(p) = a.first().and_then(|n| string_value(*n, src)) else {
                    continue;
                };
                if field == "Handle" && file.framework == Some("gin") {
                    // gin's r.Handle("GET", "/x", h)
                    let Some(p2) = a.get(1).and_then(|n| string_value(*n, src)) else {
                        continue;
                    };
                    (p.to_ascii_uppercase(), p2, &a[2.min(a.len())..])
                } else {
                    match p.split_once(' ') {
                        Some((m, path)) => {
                            (m.to_ascii_uppercase(), path.trim().to_string(), &a[1..])
                        }
                        None => ("ANY".to_string(), p, &a[1..]),
                    }
                }
            } else {
                continue;
            };
            if !path.starts_with('/') {
                continue;
            }
            let Some(h) = rest.last() else {
                continue;
            };
            let target = match h.kind() {
                "func_literal" => Target::Here {
                    span: Span::of(ts::statement_of(call)),
                    name: "(inline)".into(),
                },
                "identifier" => named(ts::text(*h, src)),
                "selector_expression" => named(ts::field_text(*h, "field", src).unwrap_or("")),
                // http.HandlerFunc(h)
                "call_expression" => match args(*h).first() {
                    Some(i) if i.kind() == "identifier" => named(ts::text(*i, src)),
                    _ => continue,
                },
                _ => continue,
            };
            let prefix = groups.get(recv).map(String::as_str).unwrap_or("");
            out.push(RouteFact {
                method: methods,
                route: join_route(&[prefix, &path]),
                target,
                registration: Span::of(call),
            });
        }
        out
    }
}

fn named(name: &str) -> Target {
    Target::Named {
        class: None,
        name: name.to_string(),
        path_hint: None,
        class_view: false,
        implicit: false,
    }
}

/// `recv.Field(...)` → (recv text, Field).
fn selector<'s>(call: Node, src: &'s str) -> Option<(&'s str, &'s str)> {
    let f = call
        .child_by_field_name("function")
        .filter(|f| f.kind() == "selector_expression")?;
    Some((
        ts::field_text(f, "operand", src)?,
        ts::field_text(f, "field", src)?,
    ))
}

fn args(call: Node) -> Vec<Node> {
    call.child_by_field_name("arguments")
        .map(|a| {
            named_children(a)
                .into_iter()
                .filter(|n| n.kind() != "comment")
                .collect()
        })
        .unwrap_or_default()
}
