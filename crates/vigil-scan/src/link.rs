//! From source texts to units: parse every file (in parallel), join each route to its
//! handler (in the same file or, for routing files, in another file of the language), and
//! turn everything no route claims into `Function` / `File` units.

use crate::frontends::frontend_for;
use crate::ts::{self, FileFacts, FuncFact, Span, Target};
use crate::{CodeUnit, Discovery, DiscoveryOptions, Language, SkipReason, Skipped, UnitKind};
use rayon::prelude::*;
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::Path;

struct Analysed {
    path: String,
    language: Language,
    src: String,
    facts: FileFacts,
}

const HTTP_VERBS: &[&str] = &["get", "post", "put", "patch", "delete", "head", "options"];

fn analyse(path: &str, language: Language, src: &str, opts: &DiscoveryOptions) -> FileFacts {
    let fe = frontend_for(language);
    let Some(tree) = ts::parse(&fe.grammar(path), src) else {
        return FileFacts {
            syntax_error: true,
            ..FileFacts::default()
        };
    };
    let framework = fe.framework(path, src);
    let funcs = ts::collect_funcs(fe, &tree, src, opts.max_context_bytes);
    let parsed = ts::ParsedFile {
        path,
        src,
        tree,
        framework,
        funcs,
    };
    let routes = fe.routes(&parsed);
    let mounts = fe.mounts(&parsed);
    let (file_context, residual) =
        ts::top_level(fe, &parsed.tree, src, &routes, opts.max_context_bytes);
    FileFacts {
        framework,
        syntax_error: parsed.tree.root_node().has_error(),
        funcs: parsed.funcs,
        routes,
        file_context,
        mounts,
        residual,
    }
}

/// The prefix each file's routes are mounted under by other files' mounts (nested mounts
/// compose; a bounded number of rounds, so mount cycles end).
fn mount_prefixes(files: &[Analysed]) -> Vec<String> {
    let mut prefix = vec![String::new(); files.len()];
    for _ in 0..8 {
        let mut changed = false;
        for (i, f) in files.iter().enumerate() {
            for m in &f.facts.mounts {
                let p = crate::join_route(&[&prefix[i], &m.prefix]);
                for (j, g) in files.iter().enumerate() {
                    if j != i
                        && g.language == f.language
                        && m.module.matches(&g.path)
                        && prefix[j] != p
                    {
                        prefix[j] = p.clone();
                        changed = true;
                    }
                }
            }
        }
        if !changed {
            break;
        }
    }
    prefix
}

/// Discover units in already-read files; `skipped` carries what the walk skipped.
pub(crate) fn discover_sources(files: Vec<(String, String)>, opts: &DiscoveryOptions) -> Discovery {
    discover_with(files, opts, Vec::new())
}

pub(crate) fn discover_with(
    files: Vec<(String, String)>,
    opts: &DiscoveryOptions,
    mut skipped: Vec<Skipped>,
) -> Discovery {
    let mut sources = Vec::new();
    for (path, src) in files {
        match Language::from_path(Path::new(&path)) {
            None => skipped.push(Skipped {
                path,
                reason: SkipReason::NotSource,
            }),
            Some(_) if src.trim().is_empty() => skipped.push(Skipped {
                path,
                reason: SkipReason::Empty,
            }),
            Some(language) => sources.push((path, language, src)),
        }
    }
    sources.sort_by(|a, b| a.0.cmp(&b.0));
    let files: Vec<Analysed> = sources
        .into_par_iter()
        .map(|(path, language, src)| {
            let facts = analyse(&path, language, &src, opts);
            Analysed {
                path,
                language,
                src,
                facts,
            }
        })
        .collect();
    let mut units = build_units(&files, opts);
    cap_units(&mut units, &mut skipped, opts.max_units_per_file);
    units.sort_by(|a, b| {
        (a.path.as_str(), a.start_line, a.end_line, kind_key(&a.kind)).cmp(&(
            b.path.as_str(),
            b.start_line,
            b.end_line,
            kind_key(&b.kind),
        ))
    });
    skipped.sort_by(|a, b| a.path.cmp(&b.path));
    Discovery { units, skipped }
}

fn kind_key(k: &UnitKind) -> (u8, String, String) {
    match k {
        UnitKind::Endpoint { method, route, .. } => (0, route.clone(), method.clone()),
        UnitKind::Function { name } => (1, name.clone(), String::new()),
        UnitKind::File => (2, String::new(), String::new()),
    }
}

fn last_segment(name: &str) -> &str {
    name.rsplit(['\\', ':', '.', '/']).next().unwrap_or(name)
}

/// Where each function and class name is defined: name → `(file, func)` in path order.
struct NameIndex {
    by_name: HashMap<String, Vec<(usize, usize)>>,
    by_class: HashMap<String, Vec<(usize, usize)>>,
}

impl NameIndex {
    fn new(files: &[Analysed]) -> NameIndex {
        let mut by_name: HashMap<String, Vec<(usize, usize)>> = HashMap::new();
        let mut by_class: HashMap<String, Vec<(usize, usize)>> = HashMap::new();
        for (j, file) in files.iter().enumerate() {
            for (k, f) in file.facts.funcs.iter().enumerate() {
                by_name.entry(f.name.clone()).or_default().push((j, k));
                if let Some(c) = &f.class {
                    by_class
                        .entry(last_segment(c).to_string())
                        .or_default()
                        .push((j, k));
                }
            }
        }
        NameIndex { by_name, by_class }
    }
}

/// Functions a named target resolves to: `(file, func, method override)`, from the first
/// file (the registering one, then hint matches, then path order) that has any.
fn resolve(
    files: &[Analysed],
    index: &NameIndex,
    from: usize,
    class: Option<&str>,
    name: &str,
    path_hint: Option<&str>,
    class_view: bool,
) -> Vec<(usize, usize, Option<String>)> {
    let lang = files[from].language;
    let class = class.map(last_segment);
    let candidates = if class_view {
        index.by_class.get(name)
    } else {
        index.by_name.get(name)
    };
    let mut hits: Vec<(usize, usize, Option<String>)> = candidates
        .into_iter()
        .flatten()
        .filter(|&&(j, _)| files[j].language == lang)
        .filter_map(|&(j, k)| {
            let f = &files[j].facts.funcs[k];
            let fclass = f.class.as_deref().map(last_segment);
            if class_view {
                HTTP_VERBS
                    .contains(&f.name.as_str())
                    .then(|| (j, k, Some(f.name.to_ascii_uppercase())))
            } else {
                (class.is_none() || fclass == class).then_some((j, k, None))
            }
        })
        .collect();
    // Files are in path order already; prefer the registering file, then hinted paths.
    let rank = |j: usize| {
        let hinted = path_hint.is_some_and(|h| files[j].path.contains(h));
        (j != from, !hinted, j)
    };
    let Some(best) = hits.iter().map(|h| rank(h.0)).min() else {
        return Vec::new();
    };
    hits.retain(|h| rank(h.0) == best);
    if !class_view {
        hits.truncate(1);
    }
    hits
}

struct Draft<'a> {
    file: &'a Analysed,
    span: Span,
    kind: UnitKind,
    class_context: String,
    extra_context: String,
    notes: Vec<String>,
}

fn build_units(files: &[Analysed], opts: &DiscoveryOptions) -> Vec<CodeUnit> {
    let mut drafts: Vec<Draft> = Vec::new();
    // (file, func) pairs an endpoint uses, and endpoint spans per file.
    let mut claimed: HashSet<(usize, usize)> = HashSet::new();
    let mut endpoint_spans: Vec<Vec<Span>> = vec![Vec::new(); files.len()];
    let mut seen: HashSet<(usize, String, String, usize)> = HashSet::new();
    let mounted = mount_prefixes(files);
    let index = NameIndex::new(files);
    for (i, file) in files.iter().enumerate() {
        for r in &file.facts.routes {
            let mut r = r.clone();
            if !mounted[i].is_empty() {
                r.route = crate::join_route(&[&mounted[i], &r.route]);
            }
            let r = &r;
            match &r.target {
                Target::Here { span, name } => {
                    if !seen.insert((i, r.method.clone(), r.route.clone(), span.start_byte)) {
                        continue;
                    }
                    let mut class_context = String::new();
                    for (k, f) in file.facts.funcs.iter().enumerate() {
                        if span.contains(&f.span) {
                            claimed.insert((i, k));
                        }
                        if f.span.contains(span) {
                            class_context = f.class_context.clone();
                        }
                    }
                    endpoint_spans[i].push(*span);
                    drafts.push(Draft {
                        file,
                        span: *span,
                        kind: UnitKind::Endpoint {
                            method: r.method.clone(),
                            route: r.route.clone(),
                            handler: name.clone(),
                        },
                        class_context,
                        extra_context: String::new(),
                        notes: Vec::new(),
                    });
                }
                Target::Named {
                    class,
                    name,
                    path_hint,
                    class_view,
                    implicit,
                } => {
                    let hits = resolve(
                        files,
                        &index,
                        i,
                        class.as_deref(),
                        name,
                        path_hint.as_deref(),
                        *class_view,
                    );
                    let qualified = match class {
                        Some(c) => format!("{}.{name}", last_segment(c)),
                        None => name.clone(),
                    };
                    if hits.is_empty() {
                        if *implicit {
                            continue;
                        }
                        if !seen.insert((
                            i,
                            r.method.clone(),
                            r.route.clone(),
                            r.registration.start_byte,
                        )) {
                            continue;
                        }
                        endpoint_spans[i].push(r.registration);
                        drafts.push(Draft {
                            file,
                            span: r.registration,
                            kind: UnitKind::Endpoint {
                                method: r.method.clone(),
                                route: r.route.clone(),
                                handler: qualified.clone(),
                            },
                            class_context: String::new(),
                            extra_context: String::new(),
                            notes: vec![format!(
                                "handler {qualified} was not found in the scanned files; the unit is the route registration only"
                            )],
                        });
                        continue;
                    }
                    let reg_line = file
                        .src
                        .get(r.registration.start_byte..r.registration.end_byte)
                        .and_then(|t| t.lines().next())
                        .unwrap_or("")
                        .trim();
                    for (j, k, method) in hits {
                        let f: &FuncFact = &files[j].facts.funcs[k];
                        let target_fe = frontend_for(files[j].language);
                        let method = method.unwrap_or_else(|| {
                            let code = files[j]
                                .src
                                .get(f.span.start_byte..f.span.end_byte)
                                .unwrap_or("");
                            match target_fe.methods_hint(code) {
                                Some(m) if r.method == "ANY" => m,
                                _ => r.method.clone(),
                            }
                        });
                        if !seen.insert((j, method.clone(), r.route.clone(), f.span.start_byte)) {
                            continue;
                        }
                        claimed.insert((j, k));
                        endpoint_spans[j].push(f.span);
                        let extra = if j == i && f.span.contains(&r.registration) {
                            String::new()
                        } else {
                            format!(
                                "{} route {method} {} -> {} ({}:{}): {reg_line}\n",
                                target_fe.comment(),
                                r.route,
                                f.qualified(),
                                file.path,
                                r.registration.start_line
                            )
                        };
                        drafts.push(Draft {
                            file: &files[j],
                            span: f.span,
                            kind: UnitKind::Endpoint {
                                method,
                                route: r.route.clone(),
                                handler: f.qualified(),
                            },
                            class_context: f.class_context.clone(),
                            extra_context: extra,
                            notes: Vec::new(),
                        });
                    }
                }
            }
        }
    }
    for (i, file) in files.iter().enumerate() {
        for (k, f) in file.facts.funcs.iter().enumerate() {
            if claimed.contains(&(i, k)) || endpoint_spans[i].iter().any(|s| f.span.contains(s)) {
                continue;
            }
            drafts.push(Draft {
                file,
                span: f.span,
                kind: UnitKind::Function {
                    name: f.qualified(),
                },
                class_context: f.class_context.clone(),
                extra_context: String::new(),
                notes: Vec::new(),
            });
        }
        let whole_file = (file.facts.funcs.is_empty() && file.facts.routes.is_empty())
            || file.facts.syntax_error;
        if !whole_file {
            for span in &file.facts.residual {
                drafts.push(Draft {
                    file,
                    span: *span,
                    kind: UnitKind::File,
                    class_context: String::new(),
                    extra_context: String::new(),
                    notes: vec!["module-level code outside any function".to_string()],
                });
            }
        }
        // A file with syntax errors is also analysed whole: the parser's recovery can fold
        // later functions into an error node, and nothing may be lost.
        if whole_file {
            let lines = file.src.lines().count().max(1);
            drafts.push(Draft {
                file,
                span: Span {
                    start_byte: 0,
                    end_byte: file.src.len(),
                    start_line: 1,
                    end_line: lines,
                },
                kind: UnitKind::File,
                class_context: String::new(),
                extra_context: String::new(),
                notes: Vec::new(),
            });
        }
    }
    drafts.into_iter().map(|d| finish(d, opts)).collect()
}

fn finish(d: Draft, opts: &DiscoveryOptions) -> CodeUnit {
    // Start at the beginning of the line when only indentation precedes the unit, so the
    // first line keeps the indentation of the rest.
    let src = d.file.src.as_str();
    let line_start = src
        .get(..d.span.start_byte)
        .and_then(|s| s.rfind('\n'))
        .map_or(0, |i| i + 1);
    let start = match src.get(line_start..d.span.start_byte) {
        Some(indent) if indent.trim().is_empty() => line_start,
        _ => d.span.start_byte,
    };
    let full = src.get(start..d.span.end_byte).unwrap_or("");
    let (code, cut) = ts::truncate(full, opts.max_unit_bytes);
    let mut notes = d.notes;
    if cut {
        notes.push(format!(
            "code truncated to {} of {} bytes",
            code.len(),
            full.len()
        ));
    }
    if d.file.facts.syntax_error {
        notes.push(
            "the file has syntax errors; this unit is what the parser could recover".to_string(),
        );
    }
    let is_file = matches!(d.kind, UnitKind::File);
    let mut context = String::new();
    if !is_file {
        context.push_str(&d.file.facts.file_context);
        context.push_str(&d.class_context);
    }
    context.push_str(&d.extra_context);
    let (context, _) = ts::truncate(&context, opts.max_context_bytes);
    let mut h = Sha256::new();
    h.update(code.as_bytes());
    h.update([0u8]);
    h.update(context.as_bytes());
    let content_hash = h
        .finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect::<String>();
    CodeUnit {
        path: d.file.path.clone(),
        language: d.file.language,
        framework: d.file.facts.framework.map(str::to_string),
        kind: d.kind,
        start_line: d.span.start_line,
        end_line: d.span.end_line,
        code,
        context,
        content_hash,
        notes,
    }
}

fn cap_units(units: &mut Vec<CodeUnit>, skipped: &mut Vec<Skipped>, limit: usize) {
    let mut per_file: BTreeMap<String, Vec<CodeUnit>> = BTreeMap::new();
    for u in units.drain(..) {
        per_file.entry(u.path.clone()).or_default().push(u);
    }
    for (path, mut list) in per_file {
        if list.len() > limit {
            list.sort_by_key(|u| (u.start_line, u.end_line));
            let dropped = list.len() - limit;
            list.truncate(limit);
            skipped.push(Skipped {
                path,
                reason: SkipReason::UnitCap { dropped, limit },
            });
        }
        units.extend(list);
    }
}
