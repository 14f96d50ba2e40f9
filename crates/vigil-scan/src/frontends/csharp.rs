//! C#: ASP.NET Core controllers (`[Route]` on the class with `[controller]` / `[action]`
//! tokens, `[HttpGet("x")]` … on actions, `~/` absolute templates) and minimal APIs
//! (`app.MapGet("/x", handler)` with `MapGroup` prefixes).

use crate::route::join_route;
use crate::ts::{self, named_children, string_value, ParsedFile, RouteFact, Span, Target};
use std::collections::HashMap;
use tree_sitter::Node;

pub(crate) struct CSharp;

const HTTP_ATTRS: &[(&str, &str)] = &[
    ("HttpGet", "GET"),
    ("HttpPost", "POST"),
    ("HttpPut", "PUT"),
    ("HttpPatch", "PATCH"),
    ("HttpDelete", "DELETE"),
    ("HttpHead", "HEAD"),
    ("HttpOptions", "OPTIONS"),
];
const MAPS: &[(&str, &str)] = &[
    ("MapGet", "GET"),
    ("MapPost", "POST"),
    ("MapPut", "PUT"),
    ("MapPatch", "PATCH"),
    ("MapDelete", "DELETE"),
    ("Map", "ANY"),
];

impl ts::Frontend for CSharp {
    fn grammar(&self, _path: &str) -> tree_sitter::Language {
        tree_sitter_c_sharp::LANGUAGE.into()
    }
    fn framework(&self, _path: &str, src: &str) -> Option<&'static str> {
        (src.contains("Microsoft.AspNetCore")
            || src.contains("ControllerBase")
            || src.contains("[ApiController]")
            || src.contains(".MapGet(")
            || src.contains("[Http"))
        .then_some("aspnet")
    }
    fn function_name(&self, node: Node, src: &str) -> Option<String> {
        (node.kind() == "method_declaration")
            .then(|| ts::field_text(node, "name", src).map(str::to_string))?
    }
    fn class_name(&self, node: Node, src: &str) -> Option<String> {
        matches!(
            node.kind(),
            "class_declaration"
                | "record_declaration"
                | "struct_declaration"
                | "interface_declaration"
        )
        .then(|| ts::field_text(node, "name", src).map(str::to_string))?
    }
    fn is_import(&self, node: Node, _src: &str) -> bool {
        matches!(
            node.kind(),
            "using_directive" | "file_scoped_namespace_declaration"
        )
    }
    fn routes(&self, file: &ParsedFile) -> Vec<RouteFact> {
        let mut out = controller_routes(file);
        out.extend(minimal_routes(file));
        out
    }
}

/// Attributes of a declaration: (name without `Attribute`, first unnamed string argument).
fn attributes(decl: Node, src: &str) -> Vec<(String, Option<String>)> {
    let mut out = Vec::new();
    for list in named_children(decl)
        .into_iter()
        .filter(|n| n.kind() == "attribute_list")
    {
        for a in named_children(list)
            .into_iter()
            .filter(|n| n.kind() == "attribute")
        {
            let name = ts::field_text(a, "name", src).unwrap_or("");
            let name = name.rsplit('.').next().unwrap_or(name);
            let name = name.strip_suffix("Attribute").unwrap_or(name).to_string();
            let template = named_children(a)
                .into_iter()
                .filter(|n| n.kind() == "attribute_argument_list")
                .flat_map(named_children)
                .filter(|arg| {
                    arg.kind() == "attribute_argument"
                        && arg.child_by_field_name("name").is_none()
                        && !ts::text(*arg, src).contains('=')
                })
                .find_map(|arg| arg.named_child(0).and_then(|e| string_value(e, src)));
            out.push((name, template));
        }
    }
    out
}

fn controller_routes(file: &ParsedFile) -> Vec<RouteFact> {
    let src = file.src;
    let mut out = Vec::new();
    for class in ts::nodes_of_kind(file.root(), &["class_declaration"]) {
        let class_name = ts::field_text(class, "name", src).unwrap_or("");
        let controller = class_name.strip_suffix("Controller").unwrap_or(class_name);
        let class_routes: Vec<String> = attributes(class, src)
            .into_iter()
            .filter(|(n, _)| n == "Route")
            .filter_map(|(_, t)| t)
            .collect();
        let prefixes = if class_routes.is_empty() {
            vec![String::new()]
        } else {
            class_routes
        };
        let Some(body) = class.child_by_field_name("body") else {
            continue;
        };
        for m in named_children(body)
            .into_iter()
            .filter(|m| m.kind() == "method_declaration")
        {
            let name = ts::field_text(m, "name", src).unwrap_or("");
            let attrs = attributes(m, src);
            let mut verbs: Vec<(String, Option<String>)> = attrs
                .iter()
                .filter_map(|(n, t)| {
                    HTTP_ATTRS
                        .iter()
                        .find(|(a, _)| a == n)
                        .map(|(_, v)| (v.to_string(), t.clone()))
                })
                .collect();
            let own_route = attrs
                .iter()
                .find(|(n, _)| n == "Route")
                .and_then(|(_, t)| t.clone());
            if verbs.is_empty() {
                if own_route.is_none() {
                    continue;
                }
                verbs.push(("ANY".into(), None));
            }
            for (method, template) in verbs {
                let sub = template.or(own_route.clone()).unwrap_or_default();
                let sub = sub
                    .replace("[action]", name)
                    .replace("[controller]", controller);
                let routes: Vec<String> = if sub.starts_with('/') || sub.starts_with("~/") {
                    vec![join_route(&[sub.trim_start_matches('~')])]
                } else {
                    prefixes
                        .iter()
                        .map(|p| {
                            join_route(&[
                                &p.replace("[controller]", controller)
                                    .replace("[action]", name),
                                &sub,
                            ])
                        })
                        .collect()
                };
                for route in routes {
                    out.push(RouteFact {
                        method: method.clone(),
                        route,
                        target: Target::Here {
                            span: Span::of(m),
                            name: format!("{class_name}.{name}"),
                        },
                        registration: Span::of(m),
                    });
                }
            }
        }
    }
    out
}

fn invocation<'s>(call: Node, src: &'s str) -> Option<(&'s str, &'s str)> {
    let f = call
        .child_by_field_name("function")
        .filter(|f| f.kind() == "member_access_expression")?;
    Some((
        ts::field_text(f, "expression", src)?,
        ts::field_text(f, "name", src)?,
    ))
}

fn args(call: Node) -> Vec<Node> {
    call.child_by_field_name("arguments")
        .map(|a| {
            named_children(a)
                .into_iter()
                .filter(|n| n.kind() == "argument")
                .filter_map(|n| n.named_child(n.named_child_count().saturating_sub(1)))
                .collect()
        })
        .unwrap_or_default()
}

fn minimal_routes(file: &ParsedFile) -> Vec<RouteFact> {
    let src = file.src;
    let calls = ts::nodes_of_kind(file.root(), &["invocation_expression"]);
    let mut groups: HashMap<String, String> = HashMap::new();
    for call in &calls {
        let Some((recv, "MapGroup")) = invocation(*call, src) else {
            continue;
        };
        let Some(p) = args(*call).first().and_then(|a| string_value(*a, src)) else {
            continue;
        };
        let Some(decl) = ts::enclosing(*call, &["variable_declarator"]) else {
            continue;
        };
        let var = decl.child_by_field_name("name").or_else(|| {
            named_children(decl)
                .into_iter()
                .find(|n| n.kind() == "identifier")
        });
        if let Some(v) = var {
            let parent = groups.get(recv).cloned().unwrap_or_default();
            groups.insert(ts::text(v, src).to_string(), join_route(&[&parent, &p]));
        }
    }
    let mut out = Vec::new();
    for call in calls {
        let Some((recv, name)) = invocation(call, src) else {
            continue;
        };
        let Some((_, method)) = MAPS.iter().find(|(m, _)| *m == name) else {
            continue;
        };
        let a = args(call);
        let (Some(path), Some(h)) = (a.first().and_then(|n| string_value(*n, src)), a.last())
        else {
            continue;
        };
        if a.len() < 2 {
            continue;
        }
        let target = match h.kind() {
            "lambda_expression" | "anonymous_method_expression" => Target::Here {
                span: Span::of(ts::statement_of(call)),
                name: "(lambda)".into(),
            },
            "identifier" | "member_access_expression" => {
                let t = ts::text(*h, src);
                Target::Named {
                    class: None,
                    name: t.rsplit('.').next().unwrap_or(t).to_string(),
                    path_hint: None,
                    class_view: false,
                    implicit: false,
                }
            }
            _ => continue,
        };
        let recv = recv.split('.').next().unwrap_or(recv);
        let prefix = groups.get(recv).map(String::as_str).unwrap_or("");
        out.push(RouteFact {
            method: method.to_string(),
            route: join_route(&[prefix, &path]),
            target,
            registration: Span::of(call),
        });
    }
    out
}
