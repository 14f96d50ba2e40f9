//! Java: Spring (`@RestController` / `@Controller`, a class-level `@RequestMapping` prefix,
//! `@GetMapping` … `@RequestMapping(method = …)`) and JAX-RS (`@Path` + `@GET` …).

use crate::route::join_route;
use crate::ts::{self, named_children, string_value, ParsedFile, RouteFact, Span, Target};
use tree_sitter::Node;

pub(crate) struct Java;

const MAPPINGS: &[(&str, &str)] = &[
    ("GetMapping", "GET"),
    ("PostMapping", "POST"),
    ("PutMapping", "PUT"),
    ("PatchMapping", "PATCH"),
    ("DeleteMapping", "DELETE"),
    ("RequestMapping", "ANY"),
];
const JAXRS: &[&str] = &["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"];

impl ts::Frontend for Java {
    fn grammar(&self, _path: &str) -> tree_sitter::Language {
        tree_sitter_java::LANGUAGE.into()
    }
    fn framework(&self, _path: &str, src: &str) -> Option<&'static str> {
        if src.contains("org.springframework")
            || src.contains("@RestController")
            || src.contains("Mapping(")
        {
            Some("spring")
        } else if src.contains("javax.ws.rs") || src.contains("jakarta.ws.rs") {
            Some("jaxrs")
        } else if src.contains("HttpServlet") {
            Some("servlet")
        } else {
            None
        }
    }
    fn function_name(&self, node: Node, src: &str) -> Option<String> {
        (node.kind() == "method_declaration")
            .then(|| ts::field_text(node, "name", src).map(str::to_string))?
    }
    fn class_name(&self, node: Node, src: &str) -> Option<String> {
        matches!(
            node.kind(),
            "class_declaration"
                | "interface_declaration"
                | "enum_declaration"
                | "record_declaration"
        )
        .then(|| ts::field_text(node, "name", src).map(str::to_string))?
    }
    fn is_import(&self, node: Node, _src: &str) -> bool {
        matches!(node.kind(), "import_declaration" | "package_declaration")
    }
    fn routes(&self, file: &ParsedFile) -> Vec<RouteFact> {
        let src = file.src;
        let mut out = Vec::new();
        for class in ts::nodes_of_kind(file.root(), &["class_declaration"]) {
            let class_name = ts::field_text(class, "name", src).unwrap_or("");
            let annotations = annotations_of(class);
            let mut prefixes: Vec<String> = Vec::new();
            for a in &annotations {
                let n = annotation_name(*a, src);
                if n == "RequestMapping" || n == "Path" {
                    prefixes.extend(paths(*a, src));
                }
            }
            if prefixes.is_empty() {
                prefixes.push(String::new());
            }
            let Some(body) = class.child_by_field_name("body") else {
                continue;
            };
            for m in named_children(body)
                .into_iter()
                .filter(|m| m.kind() == "method_declaration")
            {
                let name = ts::field_text(m, "name", src).unwrap_or("");
                let anns = annotations_of(m);
                let mut routes: Vec<(String, Vec<String>)> = Vec::new();
                let mut jaxrs_method = None;
                let mut jaxrs_path = None;
                for a in &anns {
                    let an = annotation_name(*a, src);
                    if let Some((_, verb)) = MAPPINGS.iter().find(|(n, _)| *n == an) {
                        let mut methods = vec![verb.to_string()];
                        if *verb == "ANY" {
                            let listed = request_methods(*a, src);
                            if !listed.is_empty() {
                                methods = listed;
                            }
                        }
                        let mut ps = paths(*a, src);
                        if ps.is_empty() {
                            ps.push(String::new());
                        }
                        for p in ps {
                            routes.push((p, methods.clone()));
                        }
                    } else if JAXRS.contains(&an) {
                        jaxrs_method = Some(an.to_string());
                    } else if an == "Path" {
                        jaxrs_path = paths(*a, src).into_iter().next();
                    }
                }
                if let Some(v) = jaxrs_method {
                    routes.push((jaxrs_path.unwrap_or_default(), vec![v]));
                }
                for (p, methods) in routes {
                    for prefix in &prefixes {
                        for method in &methods {
                            out.push(RouteFact {
                                method: method.clone(),
                                route: join_route(&[prefix, &p]),
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
        }
        out
    }
}

fn annotations_of(decl: Node) -> Vec<Node> {
    named_children(decl)
        .into_iter()
        .filter(|n| n.kind() == "modifiers")
        .flat_map(named_children)
        .filter(|n| matches!(n.kind(), "annotation" | "marker_annotation"))
        .collect()
}

fn annotation_name<'s>(a: Node, src: &'s str) -> &'s str {
    let n = ts::field_text(a, "name", src).unwrap_or("");
    n.rsplit('.').next().unwrap_or(n)
}

/// Strings of an element value: `"x"` or `{"x", "y"}`.
fn strings(v: Node, src: &str) -> Vec<String> {
    if let Some(s) = string_value(v, src) {
        return vec![s];
    }
    if v.kind() == "element_value_array_initializer" {
        return named_children(v)
            .into_iter()
            .filter_map(|e| string_value(e, src))
            .collect();
    }
    Vec::new()
}

/// The paths of a mapping annotation: its positional value, `value =` or `path =`.
fn paths(a: Node, src: &str) -> Vec<String> {
    let Some(args) = a.child_by_field_name("arguments") else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for arg in named_children(args) {
        if arg.kind() == "element_value_pair" {
            let key = ts::field_text(arg, "key", src).unwrap_or("");
            if key == "value" || key == "path" {
                if let Some(v) = arg.child_by_field_name("value") {
                    out.extend(strings(v, src));
                }
            }
        } else {
            out.extend(strings(arg, src));
        }
    }
    out
}

/// `method = RequestMethod.POST` or `method = {RequestMethod.GET, RequestMethod.POST}`.
fn request_methods(a: Node, src: &str) -> Vec<String> {
    let Some(args) = a.child_by_field_name("arguments") else {
        return Vec::new();
    };
    for arg in named_children(args) {
        if arg.kind() == "element_value_pair" && ts::field_text(arg, "key", src) == Some("method") {
            let v = ts::field_text(arg, "value", src).unwrap_or("");
            return v
                .split(|c: char| !(c.is_ascii_alphanumeric() || c == '.' || c == '_'))
                .filter(|t| !t.is_empty())
                .map(|t| t.rsplit('.').next().unwrap_or(t).to_ascii_uppercase())
                .collect();
        }
    }
    Vec::new()
}
