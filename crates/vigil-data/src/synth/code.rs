//! Vulnerable API endpoints with fixed twins, in ten frameworks.
//!
//! A template is a (language snippet, framework wrapper) pair. The snippet for a
//! vulnerability type gives the handler body twice — vulnerable and fixed — from the same
//! mutated names ([`Ctx`]); the framework wrapper ([`Fw`]) adds imports, routing, parameter
//! binding and responses. Lines inside snippets use a leading `\t` per nesting level; the
//! wrapper turns it into the instance's indentation.

use super::Rng;
use crate::sample::{Sample, SampleKind};
use vigil_taxonomy::Taxonomy;

/// Vulnerability types with code templates (in every framework).
pub const TYPES: &[&str] = &[
    "sql_injection",
    "command_injection",
    "path_traversal",
    "ssrf",
    "bola",
    "open_redirect",
    "hardcoded_secrets",
    "weak_cryptography",
    "mass_assignment",
    "broken_function_level_authorization",
    "xss",
    "insecure_deserialization",
];

/// The ten frameworks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fw {
    Flask,
    FastApi,
    Django,
    Express,
    Nest,
    Spring,
    Laravel,
    Gin,
    Rails,
    AspNet,
}

impl Fw {
    pub const ALL: [Fw; 10] = [
        Fw::Flask,
        Fw::FastApi,
        Fw::Django,
        Fw::Express,
        Fw::Nest,
        Fw::Spring,
        Fw::Laravel,
        Fw::Gin,
        Fw::Rails,
        Fw::AspNet,
    ];
    pub fn language(self) -> &'static str {
        match self {
            Fw::Flask | Fw::FastApi | Fw::Django => "python",
            Fw::Express => "javascript",
            Fw::Nest => "typescript",
            Fw::Spring => "java",
            Fw::Laravel => "php",
            Fw::Gin => "go",
            Fw::Rails => "ruby",
            Fw::AspNet => "csharp",
        }
    }
    pub fn name(self) -> &'static str {
        match self {
            Fw::Flask => "flask",
            Fw::FastApi => "fastapi",
            Fw::Django => "django",
            Fw::Express => "express",
            Fw::Nest => "nestjs",
            Fw::Spring => "spring",
            Fw::Laravel => "laravel",
            Fw::Gin => "gin",
            Fw::Rails => "rails",
            Fw::AspNet => "aspnet",
        }
    }
    /// Weighted pick: Python 46%, JS/TS 25%, Java 15%, PHP/Go/Ruby/C# 14% (the first seed's mix).
    pub fn pick(rng: &mut Rng) -> Fw {
        let x = rng.below(100);
        match x {
            0..=17 => Fw::Flask,
            18..=33 => Fw::FastApi,
            34..=45 => Fw::Django,
            46..=59 => Fw::Express,
            60..=70 => Fw::Nest,
            71..=85 => Fw::Spring,
            86..=89 => Fw::Laravel,
            90..=93 => Fw::Gin,
            94..=96 => Fw::Rails,
            _ => Fw::AspNet,
        }
    }
}

const ENTITIES: &[(&str, &str)] = &[
    ("user", "users"),
    ("order", "orders"),
    ("invoice", "invoices"),
    ("account", "accounts"),
    ("product", "products"),
    ("ticket", "tickets"),
    ("document", "documents"),
    ("project", "projects"),
    ("report", "reports"),
    ("customer", "customers"),
    ("payment", "payments"),
    ("shipment", "shipments"),
    ("booking", "bookings"),
    ("message", "messages"),
    ("profile", "profiles"),
    ("device", "devices"),
    ("subscription", "subscriptions"),
    ("asset", "assets"),
    ("note", "notes"),
    ("review", "reviews"),
    ("coupon", "coupons"),
    ("vendor", "vendors"),
    ("employee", "employees"),
    ("contract", "contracts"),
    ("warehouse", "warehouses"),
    ("patient", "patients"),
    ("course", "courses"),
    ("playlist", "playlists"),
];
const COLUMNS: &[&str] = &[
    "name",
    "email",
    "status",
    "sku",
    "title",
    "slug",
    "username",
    "category",
    "region",
    "code",
    "label",
    "city",
    "tag",
    "country",
    "currency",
    "owner_email",
    "external_ref",
    "batch",
];
const SEARCH_PARAMS: &[&str] = &[
    "q", "term", "filter", "search", "query", "needle", "lookup", "key",
];
const HOST_PARAMS: &[&str] = &[
    "host", "target", "address", "domain", "ip", "hostname", "node", "server",
];
const HOST_CMDS: &[(&str, &[&str])] = &[
    ("ping -c 1", &["ping", "-c", "1"]),
    ("nslookup", &["nslookup"]),
    ("dig +short", &["dig", "+short"]),
    ("host", &["host"]),
    ("whois", &["whois"]),
    ("traceroute -m 8", &["traceroute", "-m", "8"]),
];
const FILE_PARAMS: &[&str] = &[
    "filename",
    "file",
    "name",
    "file_path",
    "doc",
    "attachment",
    "export_name",
    "object_key",
];
const BASE_DIRS: &[&str] = &[
    "/var/app/uploads",
    "/srv/data/files",
    "/opt/reports",
    "/data/exports",
    "/var/lib/app/attachments",
    "/srv/storage/docs",
    "/home/app/media",
    "/mnt/share/invoices",
];
const URL_PARAMS: &[&str] = &[
    "url",
    "target",
    "webhook",
    "callback",
    "image_url",
    "feed",
    "source",
    "avatar",
];
const ALLOWED_HOSTS: &[&str] = &[
    "api.partner.example",
    "cdn.example.com",
    "images.example.org",
    "feeds.example.net",
    "hooks.example.io",
    "static.example.dev",
];
const REDIRECT_PARAMS: &[&str] = &[
    "next_path",
    "return_to",
    "redirect",
    "next_url",
    "url",
    "back",
    "dest",
    "target_url",
];
const SECRET_NAMES: &[&str] = &[
    "API_KEY",
    "STRIPE_SECRET",
    "MAILGUN_KEY",
    "PAYMENT_TOKEN",
    "PARTNER_TOKEN",
    "SLACK_TOKEN",
    "GEO_API_KEY",
    "SMS_SECRET",
];
const UPSTREAMS: &[&str] = &[
    "https://api.payments.example/v1/charges",
    "https://api.mail.example/v3/send",
    "https://geo.example.net/lookup",
    "https://sms.example.io/messages",
    "https://crm.example.com/api/leads",
];
const OWNER_COLS: &[&str] = &[
    "owner_id",
    "user_id",
    "account_id",
    "created_by",
    "tenant_id",
];
const SAFE_FIELDS: &[&str] = &[
    "name",
    "email",
    "bio",
    "phone",
    "timezone",
    "avatar_url",
    "nickname",
    "locale",
];
const PRIV_FIELDS: &[&str] = &[
    "role",
    "is_admin",
    "balance",
    "verified",
    "plan",
    "credit_limit",
];
const PHRASES: &[&str] = &[
    "Results for",
    "You searched for",
    "No matches for",
    "Showing items matching",
    "Search:",
    "Hello,",
    "Welcome back,",
    "Nothing found for",
];
const ROUTE_PREFIX: &[&str] = &[
    "/api",
    "/api/v1",
    "/api/v2",
    "/v1",
    "/v2",
    "/svc",
    "/public/api",
    "/rest",
];
const VERBS_GET: &[&str] = &["get", "fetch", "find", "load", "show", "read", "lookup"];
const DB_NAMES: &[&str] = &["db", "conn", "database", "store", "repo", "pool", "client"];
const ROW_NAMES: &[&str] = &[
    "rows", "result", "records", "items", "data", "matches", "found",
];
const PW_FIELDS: &[&str] = &["password", "passwd", "secret", "pin", "passphrase"];
const BLOB_PARAMS: &[&str] = &[
    "state", "data", "prefs", "payload", "session", "blob", "cart",
];

/// Names and style of one instance; shared by the vulnerable and the fixed variant.
#[derive(Debug, Clone)]
pub struct Ctx {
    pub entity: String,
    pub entities: String,
    pub col: String,
    pub param: String,
    pub cmd: (String, Vec<String>),
    pub base_dir: String,
    pub allowed: Vec<String>,
    pub secret_name: String,
    pub secret_value: String,
    pub upstream: String,
    pub owner: String,
    pub safe: Vec<String>,
    pub privileged: String,
    pub phrase: String,
    pub prefix: String,
    pub verb: String,
    pub db: String,
    pub rows: String,
    pub pw: String,
    pub indent: usize,
    pub dq: bool,
    pub comment: bool,
    pub log: bool,
    pub style: usize,
    /// Independent style selectors for boilerplate (package, class and field names,
    /// injection style, import order); each in 0..6.
    pub knobs: [usize; 6],
    pub fw: Fw,
}

fn hex(rng: &mut Rng, n: usize) -> String {
    (0..n)
        .map(|_| char::from_digit(rng.below(16) as u32, 16).unwrap_or('0'))
        .collect()
}

impl Ctx {
    pub fn new(rng: &mut Rng, fw: Fw, t: &str) -> Ctx {
        let (e, es) = *rng.pick(ENTITIES);
        let col = rng.pick(COLUMNS).to_string();
        let param = match t {
            "sql_injection" => {
                if rng.chance(0.5) {
                    col.clone()
                } else {
                    rng.pick(SEARCH_PARAMS).to_string()
                }
            }
            "command_injection" => rng.pick(HOST_PARAMS).to_string(),
            "path_traversal" => rng.pick(FILE_PARAMS).to_string(),
            "ssrf" => rng.pick(URL_PARAMS).to_string(),
            "open_redirect" => rng.pick(REDIRECT_PARAMS).to_string(),
            "xss" => rng.pick(SEARCH_PARAMS).to_string(),
            "insecure_deserialization" => rng.pick(BLOB_PARAMS).to_string(),
            _ => "id".to_string(),
        };
        let (c, argv) = *rng.pick(HOST_CMDS);
        let mut safe: Vec<String> = Vec::new();
        let n = 2 + rng.below(3);
        while safe.len() < n {
            let f = rng.pick(SAFE_FIELDS).to_string();
            if !safe.contains(&f) {
                safe.push(f);
            }
        }
        let mut allowed = vec![rng.pick(ALLOWED_HOSTS).to_string()];
        let extra = rng.pick(ALLOWED_HOSTS).to_string();
        if !allowed.contains(&extra) {
            allowed.push(extra);
        }
        let secret_prefix = *rng.pick(&["sk_live_", "key-", "tok_", "", "prod_"]);
        let secret_len = 24 + rng.below(12);
        Ctx {
            entity: e.into(),
            entities: es.into(),
            col,
            param,
            cmd: (c.into(), argv.iter().map(|s| s.to_string()).collect()),
            base_dir: rng.pick(BASE_DIRS).to_string(),
            allowed,
            secret_name: rng.pick(SECRET_NAMES).to_string(),
            secret_value: format!("{secret_prefix}{}", hex(rng, secret_len)),
            upstream: rng.pick(UPSTREAMS).to_string(),
            owner: rng.pick(OWNER_COLS).to_string(),
            safe,
            privileged: rng.pick(PRIV_FIELDS).to_string(),
            phrase: rng.pick(PHRASES).to_string(),
            prefix: rng.pick(ROUTE_PREFIX).to_string(),
            verb: rng.pick(VERBS_GET).to_string(),
            db: rng.pick(DB_NAMES).to_string(),
            rows: rng.pick(ROW_NAMES).to_string(),
            pw: rng.pick(PW_FIELDS).to_string(),
            indent: if rng.chance(0.5) { 4 } else { 2 },
            dq: rng.chance(0.6),
            comment: rng.chance(0.4),
            log: rng.chance(0.35),
            style: rng.below(3),
            knobs: [
                rng.below(6),
                rng.below(6),
                rng.below(6),
                rng.below(6),
                rng.below(6),
                rng.below(6),
            ],
            fw,
        }
    }

    fn q(&self) -> char {
        if self.dq {
            '"'
        } else {
            '\''
        }
    }
    /// A string literal in the instance's quote style (no escapes needed for our content).
    fn s(&self, text: &str) -> String {
        let q = self.q();
        format!("{q}{text}{q}")
    }
}

pub fn camel(s: &str) -> String {
    let mut out = String::new();
    let mut up = false;
    for c in s.chars() {
        if c == '_' {
            up = true;
        } else if up {
            out.extend(c.to_uppercase());
            up = false;
        } else {
            out.push(c);
        }
    }
    out
}

pub fn pascal(s: &str) -> String {
    let c = camel(s);
    let mut it = c.chars();
    match it.next() {
        Some(f) => f.to_uppercase().collect::<String>() + it.as_str(),
        None => c,
    }
}

/// The parts of one handler.
#[derive(Debug, Clone, Default)]
pub struct Snip {
    pub method: &'static str,
    /// Route below the entity collection, e.g. `/search`, `/{id}`.
    pub route: Route,
    /// Handler name (snake case; converted per language).
    pub name: String,
    pub needs_param: bool,
    pub needs_body: bool,
    pub needs_user: bool,
    pub vuln: Vec<String>,
    pub fixed: Vec<String>,
    /// Module-level lines (constants) for each variant.
    pub top_vuln: Vec<String>,
    pub top_fixed: Vec<String>,
    pub imports: Vec<String>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Route {
    #[default]
    Collection,
    Item,
    Action(&'static str),
}

fn lines(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

// ---------------------------------------------------------------- Python

fn py_io_json(fw: Fw, x: &str) -> String {
    match fw {
        Fw::Flask => format!("return jsonify({x})"),
        Fw::FastApi => format!("return {x}"),
        _ => format!("return JsonResponse({x}, safe=False)"),
    }
}
fn py_io_html(fw: Fw, x: &str) -> String {
    match fw {
        Fw::Flask => format!("return Response({x}, mimetype=\"text/html\")"),
        Fw::FastApi => format!("return HTMLResponse({x})"),
        _ => format!("return HttpResponse({x})"),
    }
}
fn py_io_redirect(fw: Fw, x: &str) -> String {
    match fw {
        Fw::Flask => format!("return redirect({x})"),
        Fw::FastApi => format!("return RedirectResponse({x})"),
        _ => format!("return HttpResponseRedirect({x})"),
    }
}
fn py_io_err(fw: Fw, code: u16, msg: &str) -> String {
    match fw {
        Fw::Flask => format!("return jsonify(error=\"{msg}\"), {code}"),
        Fw::FastApi => format!("raise HTTPException(status_code={code}, detail=\"{msg}\")"),
        _ => format!("return JsonResponse({{\"error\": \"{msg}\"}}, status={code})"),
    }
}
fn py_user(fw: Fw) -> (&'static str, &'static str) {
    match fw {
        Fw::Flask => ("current_user.id", "current_user.is_admin"),
        Fw::FastApi => ("user.id", "user.is_admin"),
        _ => ("request.user.id", "request.user.is_staff"),
    }
}

fn py_snip(t: &str, c: &Ctx) -> Option<Snip> {
    let fw = c.fw;
    let p = &c.param;
    let db = &c.db;
    let rows = &c.rows;
    let tbl = &c.entities;
    let (uid, admin) = py_user(fw);
    let mut s = Snip {
        method: "GET",
        name: format!("{}_{}", c.verb, c.entities),
        ..Default::default()
    };
    s.imports.push("import sqlite3".into());
    let connect = format!("{db} = sqlite3.connect(DB_PATH)");
    match t {
        "sql_injection" => {
            s.needs_param = true;
            s.name = format!("search_{}", c.entities);
            s.route = Route::Action("search");
            let sql = format!("SELECT * FROM {tbl} WHERE {} = ", c.col);
            let vq = match c.style {
                0 => format!("f\"{sql}'{{{p}}}'\""),
                1 => format!("\"{sql}'\" + {p} + \"'\""),
                _ => format!("\"{sql}'%s'\" % {p}"),
            };
            s.vuln = vec![
                connect.clone(),
                format!("{rows} = {db}.execute({vq}).fetchall()"),
                py_io_json(fw, rows),
            ];
            s.fixed = vec![
                connect,
                format!("{rows} = {db}.execute(\"{sql}?\", ({p},)).fetchall()"),
                py_io_json(fw, rows),
            ];
        }
        "command_injection" => {
            s.needs_param = true;
            s.name = format!("diagnose_{}", c.param);
            s.route = Route::Action("diagnostics");
            s.imports
                .extend(lines(&["import re", "import subprocess", "import os"]));
            let cmd = &c.cmd.0;
            let v = match c.style {
                0 => format!("out = subprocess.check_output(f\"{cmd} {{{p}}}\", shell=True, text=True)"),
                1 => format!("out = os.popen(\"{cmd} \" + {p}).read()"),
                _ => format!("out = subprocess.run(\"{cmd} %s\" % {p}, shell=True, capture_output=True, text=True).stdout"),
            };
            s.vuln = vec![v, py_io_json(fw, "{\"output\": out}")];
            let argv = c
                .cmd
                .1
                .iter()
                .map(|a| format!("\"{a}\""))
                .collect::<Vec<_>>()
                .join(", ");
            s.fixed = vec![
                format!("if not re.fullmatch(r\"[A-Za-z0-9.-]{{1,253}}\", {p}):"),
                format!("\t{}", py_io_err(fw, 400, "invalid host")),
                format!("out = subprocess.run([{argv}, {p}], capture_output=True, text=True, timeout=10).stdout"),
                py_io_json(fw, "{\"output\": out}"),
            ];
        }
        "path_traversal" => {
            s.needs_param = true;
            s.name = format!("download_{}", c.entity);
            s.route = Route::Action("download");
            s.imports.push("import os".into());
            s.top_vuln = vec![format!("BASE_DIR = \"{}\"", c.base_dir)];
            s.top_fixed = s.top_vuln.clone();
            let read = vec![
                "with open(full_path, \"rb\") as fh:".to_string(),
                "\tcontent = fh.read()".to_string(),
                py_io_json(fw, "{\"size\": len(content)}"),
            ];
            s.vuln = vec![format!("full_path = os.path.join(BASE_DIR, {p})")];
            s.vuln.extend(read.clone());
            s.fixed = vec![
                format!("full_path = os.path.realpath(os.path.join(BASE_DIR, {p}))"),
                "if not full_path.startswith(os.path.realpath(BASE_DIR) + os.sep):".into(),
                format!("\t{}", py_io_err(fw, 400, "invalid file name")),
            ];
            s.fixed.extend(read);
        }
        "ssrf" => {
            s.needs_param = true;
            s.name = format!("preview_{}", c.param);
            s.route = Route::Action("preview");
            s.imports.extend(lines(&[
                "import requests",
                "from urllib.parse import urlparse",
            ]));
            let hosts = c
                .allowed
                .iter()
                .map(|h| format!("\"{h}\""))
                .collect::<Vec<_>>()
                .join(", ");
            s.top_fixed = vec![format!("ALLOWED_HOSTS = {{{hosts}}}")];
            s.vuln = vec![
                format!("resp = requests.get({p}, timeout=5)"),
                py_io_json(
                    fw,
                    "{\"status\": resp.status_code, \"body\": resp.text[:2000]}",
                ),
            ];
            s.fixed = vec![
                format!("parsed = urlparse({p})"),
                "if parsed.scheme != \"https\" or parsed.hostname not in ALLOWED_HOSTS:".into(),
                format!("\t{}", py_io_err(fw, 400, "host not allowed")),
                format!("resp = requests.get({p}, timeout=5, allow_redirects=False)"),
                py_io_json(
                    fw,
                    "{\"status\": resp.status_code, \"body\": resp.text[:2000]}",
                ),
            ];
        }
        "bola" => {
            s.needs_user = true;
            s.route = Route::Item;
            s.name = format!("{}_{}", c.verb, c.entity);
            let q = format!("SELECT * FROM {tbl} WHERE id = ?");
            let tail = vec![
                "if row is None:".to_string(),
                format!("\t{}", py_io_err(fw, 404, "not found")),
                py_io_json(fw, "dict(row)"),
            ];
            s.vuln = vec![
                connect.clone(),
                format!("row = {db}.execute(\"{q}\", (item_id,)).fetchone()"),
            ];
            s.vuln.extend(tail.clone());
            s.fixed = vec![
                connect,
                format!(
                    "row = {db}.execute(\"{q} AND {} = ?\", (item_id, {uid})).fetchone()",
                    c.owner
                ),
            ];
            s.fixed.extend(tail);
        }
        "open_redirect" => {
            s.needs_param = true;
            s.name = "after_login".into();
            s.route = Route::Action("continue");
            s.vuln = vec![py_io_redirect(fw, p)];
            s.fixed = vec![
                format!("if not {p}.startswith(\"/\") or {p}.startswith(\"//\"):"),
                format!("\t{p} = \"/\""),
                py_io_redirect(fw, p),
            ];
        }
        "hardcoded_secrets" => {
            s.method = "POST";
            s.needs_body = true;
            s.name = format!("notify_{}", c.entity);
            s.route = Route::Action("notify");
            s.imports.extend(lines(&["import os", "import requests"]));
            s.top_vuln = vec![format!("{} = \"{}\"", c.secret_name, c.secret_value)];
            s.top_fixed = vec![format!(
                "{} = os.environ[\"{}\"]",
                c.secret_name, c.secret_name
            )];
            let body = vec![
                format!("resp = requests.post(\"{}\", json=payload, headers={{\"Authorization\": \"Bearer \" + {}}}, timeout=10)", c.upstream, c.secret_name),
                py_io_json(fw, "{\"sent\": resp.ok}"),
            ];
            s.vuln = body.clone();
            s.fixed = body;
        }
        "weak_cryptography" => {
            s.method = "POST";
            s.needs_body = true;
            s.name = format!("register_{}", c.entity);
            s.route = Route::Action("register");
            s.imports
                .extend(lines(&["import hashlib", "import bcrypt"]));
            let pw = &c.pw;
            let algo = if c.style == 1 { "sha1" } else { "md5" };
            let store = vec![
                connect.clone(),
                format!("{db}.execute(\"INSERT INTO {tbl} (email, pw_hash) VALUES (?, ?)\", (payload[\"email\"], digest))"),
                format!("{db}.commit()"),
                py_io_json(fw, "{\"created\": True}"),
            ];
            s.vuln = vec![format!(
                "digest = hashlib.{algo}(payload[\"{pw}\"].encode()).hexdigest()"
            )];
            s.vuln.extend(store.clone());
            s.fixed = vec![format!("digest = bcrypt.hashpw(payload[\"{pw}\"].encode(), bcrypt.gensalt(rounds=12)).decode()")];
            s.fixed.extend(store);
        }
        "mass_assignment" => {
            s.method = "PUT";
            s.needs_body = true;
            s.needs_user = true;
            s.route = Route::Item;
            s.name = format!("update_{}", c.entity);
            let safe = c
                .safe
                .iter()
                .map(|f| format!("\"{f}\""))
                .collect::<Vec<_>>()
                .join(", ");
            let load = format!(
                "obj = {}.query.filter_by(id=item_id, {}={uid}).first_or_404()",
                pascal(&c.entity),
                c.owner
            );
            s.vuln = vec![
                load.clone(),
                "for key, value in payload.items():".into(),
                "\tsetattr(obj, key, value)".into(),
                "db.session.commit()".into(),
                py_io_json(fw, "obj.to_dict()"),
            ];
            s.fixed = vec![
                load,
                format!("for key in ({safe},):"),
                "\tif key in payload:".into(),
                "\t\tsetattr(obj, key, payload[key])".into(),
                "db.session.commit()".into(),
                py_io_json(fw, "obj.to_dict()"),
            ];
        }
        "broken_function_level_authorization" => {
            s.method = "DELETE";
            s.needs_user = true;
            s.route = Route::Item;
            s.name = format!("delete_{}", c.entity);
            let body = vec![
                connect,
                format!("{db}.execute(\"DELETE FROM {tbl} WHERE id = ?\", (item_id,))"),
                format!("{db}.commit()"),
                py_io_json(fw, "{\"deleted\": item_id}"),
            ];
            s.vuln = body.clone();
            s.fixed = vec![
                format!("if not {admin}:"),
                format!("\t{}", py_io_err(fw, 403, "admin only")),
            ];
            s.fixed.extend(body);
        }
        "xss" => {
            s.needs_param = true;
            s.name = format!("search_page_{}", c.entities);
            s.route = Route::Action("page");
            s.imports.push("from html import escape".into());
            s.vuln = vec![py_io_html(fw, &format!("f\"<p>{} {{{p}}}</p>\"", c.phrase))];
            s.fixed = vec![py_io_html(
                fw,
                &format!("f\"<p>{} {{escape({p})}}</p>\"", c.phrase),
            )];
        }
        "insecure_deserialization" => {
            s.method = "POST";
            s.needs_param = true;
            s.name = format!("restore_{}", c.param);
            s.route = Route::Action("restore");
            s.imports
                .extend(lines(&["import base64", "import json", "import pickle"]));
            s.vuln = vec![
                format!("obj = pickle.loads(base64.b64decode({p}))"),
                py_io_json(fw, "{\"restored\": str(obj)[:200]}"),
            ];
            s.fixed = vec![
                format!("obj = json.loads(base64.b64decode({p}))"),
                py_io_json(fw, "{\"restored\": str(obj)[:200]}"),
            ];
        }
        _ => return None,
    }
    Some(s)
}

fn indent_lines(body: &[String], base: usize, unit: &str) -> String {
    let mut out = String::new();
    for l in body {
        let depth = l.chars().take_while(|c| *c == '\t').count();
        let rest = &l[depth..];
        for _ in 0..base + depth {
            out.push_str(unit);
        }
        out.push_str(rest);
        out.push('\n');
    }
    out
}

/// The route path (framework-neutral `{id}` form) of a snippet.
fn route_path(c: &Ctx, r: Route) -> String {
    match r {
        Route::Collection => format!("{}/{}", c.prefix, c.entities),
        Route::Item => format!("{}/{}/{{id}}", c.prefix, c.entities),
        Route::Action(a) => format!("{}/{}/{a}", c.prefix, c.entities),
    }
}

const PY_IMPORTS: &[(&str, &str)] = &[
    ("base64.", "import base64"),
    ("hashlib.", "import hashlib"),
    ("json.", "import json"),
    ("os.", "import os"),
    ("pickle.", "import pickle"),
    ("re.", "import re"),
    ("sqlite3.", "import sqlite3"),
    ("subprocess.", "import subprocess"),
    ("escape(", "from html import escape"),
    ("urlparse(", "from urllib.parse import urlparse"),
    ("bcrypt.", "import bcrypt"),
    ("requests.", "import requests"),
];

fn py_file(c: &Ctx, s: &Snip, fixed: bool) -> String {
    let out = py_rest(c, s, fixed);
    let k = c.knobs;
    let mut imports = imports_by_usage(&out, PY_IMPORTS);
    let names = |module: &str, cands: &[&str]| -> Option<String> {
        let used: Vec<&str> = cands
            .iter()
            .copied()
            .filter(|n| imports_by_usage(&out, &[(n, "x")]).len() == 1)
            .collect();
        (!used.is_empty()).then(|| format!("from {module} import {}", used.join(", ")))
    };
    match c.fw {
        Fw::Flask => {
            imports.extend(names(
                "flask",
                &["Flask", "Response", "jsonify", "redirect", "request"],
            ));
            imports.extend(names("flask_login", &["current_user", "login_required"]));
        }
        Fw::FastApi => {
            imports.extend(names(
                "fastapi",
                &["Body", "Depends", "FastAPI", "HTTPException"],
            ));
            imports.extend(names(
                "fastapi.responses",
                &["HTMLResponse", "RedirectResponse"],
            ));
        }
        _ => {
            imports.extend(names(
                "django.http",
                &["HttpResponse", "HttpResponseRedirect", "JsonResponse"],
            ));
            imports.extend(names("django.contrib.auth.decorators", &["login_required"]));
        }
    }
    if k[1].is_multiple_of(2) {
        imports.sort();
    }
    let future = if k[4] == 0 {
        "from __future__ import annotations\n\n"
    } else {
        ""
    };
    format!("{future}{}\n\n{out}", imports.join("\n"))
}

fn py_rest(c: &Ctx, s: &Snip, fixed: bool) -> String {
    let fw = c.fw;
    let unit = " ".repeat(c.indent);
    let k = c.knobs;
    let app = ["app", "app", "api", "application", "service", "server"][k[2]];
    let mut out = String::new();
    match fw {
        Fw::Flask => out.push_str(&format!("{app} = Flask(__name__)\n")),
        Fw::FastApi => out.push_str(&format!("{app} = FastAPI()\n")),
        _ => {}
    }
    let body_has_db = if fixed { &s.fixed } else { &s.vuln }
        .iter()
        .any(|l| l.contains("DB_PATH"));
    if body_has_db {
        let path = match k[3] {
            0 | 1 => format!("{}.db", c.entities),
            2 => "/var/lib/app/data.db".to_string(),
            3 => format!("instance/{}.sqlite3", c.entity),
            4 => "app.db".to_string(),
            _ => format!("/srv/{}/db.sqlite", c.entities),
        };
        out.push_str(&format!("DB_PATH = \"{path}\"\n"));
    }
    for l in if fixed { &s.top_fixed } else { &s.top_vuln } {
        out.push_str(l);
        out.push('\n');
    }
    out.push_str("\n\n");
    let route = route_path(c, s.route);
    let name = &s.name;
    let p = &c.param;
    let mut sig: Vec<String> = Vec::new();
    let mut pro: Vec<String> = Vec::new();
    match fw {
        Fw::Flask => {
            let r = route.replace("{id}", "<int:item_id>");
            out.push_str(&format!(
                "@{app}.route(\"{r}\", methods=[\"{}\"])\n",
                s.method
            ));
            if s.needs_user {
                out.push_str("@login_required\n");
            }
            if s.route == Route::Item {
                sig.push("item_id".into());
            }
            if s.needs_param {
                pro.push(if s.method == "GET" {
                    format!("{p} = request.args.get({}, \"\")", c.s(p))
                } else {
                    format!("{p} = request.form.get({}, \"\")", c.s(p))
                });
            }
            if s.needs_body {
                pro.push("payload = request.get_json(silent=True) or {}".into());
            }
        }
        Fw::FastApi => {
            out.push_str(&format!(
                "@{app}.{}(\"{}\")\n",
                s.method.to_lowercase(),
                route.replace("{id}", "{item_id}")
            ));
            if s.route == Route::Item {
                sig.push("item_id: int".into());
            }
            if s.needs_param {
                sig.push(format!("{p}: str = \"\""));
            }
            if s.needs_body {
                sig.push("payload: dict = Body(...)".into());
            }
            if s.needs_user {
                sig.push("user=Depends(get_current_user)".into());
            }
        }
        _ => {
            out.push_str(&format!(
                "# urls.py: path(\"{}\", views.{name})\n",
                route
                    .trim_start_matches('/')
                    .replace("{id}", "<int:item_id>")
            ));
            if s.needs_user {
                out.push_str("@login_required\n");
            }
            sig.push("request".into());
            if s.route == Route::Item {
                sig.push("item_id".into());
            }
            if s.needs_param {
                pro.push(if s.method == "GET" {
                    format!("{p} = request.GET.get({}, \"\")", c.s(p))
                } else {
                    format!("{p} = request.POST.get({}, \"\")", c.s(p))
                });
            }
            if s.needs_body {
                pro.push("payload = json.loads(request.body or b\"{}\")".into());
            }
        }
    }
    let asy = if fw == Fw::FastApi && c.style == 2 {
        "async "
    } else {
        ""
    };
    out.push_str(&format!("{asy}def {name}({}):\n", sig.join(", ")));
    if c.comment {
        pro.insert(
            0,
            format!("\"\"\"{} {} endpoint.\"\"\"", s.method, c.entity),
        );
    }
    if c.log {
        pro.push(format!("app_log.info(\"{name} called\")"));
    }
    let mut body = pro;
    body.extend(if fixed {
        s.fixed.clone()
    } else {
        s.vuln.clone()
    });
    out.push_str(&indent_lines(&body, 1, &unit));
    out
}

// ---------------------------------------------------------------- JavaScript / TypeScript

fn js_snip(t: &str, c: &Ctx) -> Option<Snip> {
    let ts = c.fw == Fw::Nest;
    let p = camel(&c.param);
    let db = &c.db;
    let rows = camel(&c.rows);
    let tbl = &c.entities;
    let json = |x: &str| {
        if ts {
            format!("return {x};")
        } else {
            format!("return res.json({x});")
        }
    };
    let err = |code: u16, msg: &str| {
        if ts {
            let ex = match code {
                400 => "BadRequestException",
                403 => "ForbiddenException",
                _ => "NotFoundException",
            };
            format!("throw new {ex}(\"{msg}\");")
        } else {
            format!("return res.status({code}).json({{ error: \"{msg}\" }});")
        }
    };
    let html = |x: &str| {
        if ts {
            format!("return {x};")
        } else {
            format!("return res.type(\"html\").send({x});")
        }
    };
    let redirect = |x: &str| {
        if ts {
            format!("return {{ url: {x} }};")
        } else {
            format!("return res.redirect({x});")
        }
    };
    let (uid, admin) = ("req.user.id", "req.user.isAdmin");
    let mut s = Snip {
        method: "GET",
        name: format!("{}_{}", c.verb, c.entities),
        ..Default::default()
    };
    match t {
        "sql_injection" => {
            s.needs_param = true;
            s.name = format!("search_{}", c.entities);
            s.route = Route::Action("search");
            let sql = format!("SELECT * FROM {tbl} WHERE {} = ", c.col);
            let vq = if c.style == 0 {
                format!("`{sql}'${{{p}}}'`")
            } else {
                format!("\"{sql}'\" + {p} + \"'\"")
            };
            s.vuln = vec![
                format!("const {rows} = await {db}.query({vq});"),
                json(&rows),
            ];
            s.fixed = vec![
                format!("const {rows} = await {db}.query(\"{sql}$1\", [{p}]);"),
                json(&rows),
            ];
        }
        "command_injection" => {
            s.needs_param = true;
            s.name = format!("diagnose_{}", c.param);
            s.route = Route::Action("diagnostics");
            s.imports.push(if ts {
                "import { execFileSync, execSync } from \"child_process\";".into()
            } else {
                "const { execFileSync, execSync } = require(\"child_process\");".into()
            });
            let cmd = &c.cmd.0;
            let v = if c.style == 0 {
                format!("const out = execSync(`{cmd} ${{{p}}}`).toString();")
            } else {
                format!("const out = execSync(\"{cmd} \" + {p}).toString();")
            };
            s.vuln = vec![v, json("{ output: out }")];
            let argv = c
                .cmd
                .1
                .iter()
                .skip(1)
                .map(|a| format!("\"{a}\""))
                .chain(std::iter::once(p.clone()))
                .collect::<Vec<_>>()
                .join(", ");
            s.fixed = vec![
                format!("if (!/^[A-Za-z0-9.-]{{1,253}}$/.test({p})) {{"),
                format!("\t{}", err(400, "invalid host")),
                "}".into(),
                format!(
                    "const out = execFileSync(\"{}\", [{argv}], {{ timeout: 10000 }}).toString();",
                    c.cmd.1[0]
                ),
                json("{ output: out }"),
            ];
        }
        "path_traversal" => {
            s.needs_param = true;
            s.name = format!("download_{}", c.entity);
            s.route = Route::Action("download");
            s.imports.push(if ts {
                "import * as fs from \"fs\";".into()
            } else {
                "const fs = require(\"fs\");".into()
            });
            s.imports.push(if ts {
                "import * as path from \"path\";".into()
            } else {
                "const path = require(\"path\");".into()
            });
            s.top_vuln = vec![format!("const BASE_DIR = \"{}\";", c.base_dir)];
            s.top_fixed = s.top_vuln.clone();
            s.vuln = vec![
                format!("const fullPath = path.join(BASE_DIR, {p});"),
                "const content = fs.readFileSync(fullPath);".into(),
                json("{ size: content.length }"),
            ];
            s.fixed = vec![
                format!("const fullPath = path.resolve(BASE_DIR, {p});"),
                "if (!fullPath.startsWith(path.resolve(BASE_DIR) + path.sep)) {".into(),
                format!("\t{}", err(400, "invalid file name")),
                "}".into(),
                "const content = fs.readFileSync(fullPath);".into(),
                json("{ size: content.length }"),
            ];
        }
        "ssrf" => {
            s.needs_param = true;
            s.name = format!("preview_{}", c.param);
            s.route = Route::Action("preview");
            let hosts = c
                .allowed
                .iter()
                .map(|h| format!("\"{h}\""))
                .collect::<Vec<_>>()
                .join(", ");
            s.top_fixed = vec![format!("const ALLOWED_HOSTS = [{hosts}];")];
            s.vuln = vec![
                format!("const resp = await fetch({p});"),
                "const text = await resp.text();".into(),
                json("{ status: resp.status, body: text.slice(0, 2000) }"),
            ];
            s.fixed = vec![
                format!("const target = new URL({p});"),
                "if (target.protocol !== \"https:\" || !ALLOWED_HOSTS.includes(target.hostname)) {"
                    .into(),
                format!("\t{}", err(400, "host not allowed")),
                "}".into(),
                "const resp = await fetch(target, { redirect: \"manual\" });".into(),
                "const text = await resp.text();".into(),
                json("{ status: resp.status, body: text.slice(0, 2000) }"),
            ];
        }
        "bola" => {
            s.needs_user = true;
            s.route = Route::Item;
            s.name = format!("{}_{}", c.verb, c.entity);
            let q = format!("SELECT * FROM {tbl} WHERE id = $1");
            let tail = vec![
                "if (!row) {".to_string(),
                format!("\t{}", err(404, "not found")),
                "}".into(),
                json("row"),
            ];
            s.vuln = vec![format!("const [row] = await {db}.query(\"{q}\", [id]);")];
            s.vuln.extend(tail.clone());
            s.fixed = vec![format!(
                "const [row] = await {db}.query(\"{q} AND {} = $2\", [id, {uid}]);",
                c.owner
            )];
            s.fixed.extend(tail);
        }
        "open_redirect" => {
            s.needs_param = true;
            s.name = "after_login".into();
            s.route = Route::Action("continue");
            s.vuln = vec![redirect(&p)];
            s.fixed = vec![
                format!(
                    "const dest = {p}.startsWith(\"/\") && !{p}.startsWith(\"//\") ? {p} : \"/\";"
                ),
                redirect("dest"),
            ];
        }
        "hardcoded_secrets" => {
            s.method = "POST";
            s.needs_body = true;
            s.name = format!("notify_{}", c.entity);
            s.route = Route::Action("notify");
            s.top_vuln = vec![format!("const {} = \"{}\";", c.secret_name, c.secret_value)];
            s.top_fixed = vec![format!(
                "const {} = process.env.{};",
                c.secret_name, c.secret_name
            )];
            let b = vec![
                format!("const resp = await fetch(\"{}\", {{ method: \"POST\", headers: {{ Authorization: `Bearer ${{{}}}` }}, body: JSON.stringify(payload) }});", c.upstream, c.secret_name),
                json("{ sent: resp.ok }"),
            ];
            s.vuln = b.clone();
            s.fixed = b;
        }
        "weak_cryptography" => {
            s.method = "POST";
            s.needs_body = true;
            s.name = format!("register_{}", c.entity);
            s.route = Route::Action("register");
            s.imports.push(if ts {
                "import * as crypto from \"crypto\";".into()
            } else {
                "const crypto = require(\"crypto\");".into()
            });
            s.imports.push(if ts {
                "import * as bcrypt from \"bcrypt\";".into()
            } else {
                "const bcrypt = require(\"bcrypt\");".into()
            });
            let algo = if c.style == 1 { "sha1" } else { "md5" };
            let pw = camel(&c.pw);
            let store = vec![
                format!("await {db}.query(\"INSERT INTO {tbl} (email, pw_hash) VALUES ($1, $2)\", [payload.email, digest]);"),
                json("{ created: true }"),
            ];
            s.vuln = vec![format!("const digest = crypto.createHash(\"{algo}\").update(payload.{pw}).digest(\"hex\");")];
            s.vuln.extend(store.clone());
            s.fixed = vec![format!(
                "const digest = await bcrypt.hash(payload.{pw}, 12);"
            )];
            s.fixed.extend(store);
        }
        "mass_assignment" => {
            s.method = "PUT";
            s.needs_body = true;
            s.needs_user = true;
            s.route = Route::Item;
            s.name = format!("update_{}", c.entity);
            let m = pascal(&c.entity);
            let load = format!(
                "const obj = await {m}.findOne({{ where: {{ id, {}: {uid} }} }});",
                camel(&c.owner)
            );
            let safe = c
                .safe
                .iter()
                .map(|f| format!("\"{}\"", camel(f)))
                .collect::<Vec<_>>()
                .join(", ");
            s.vuln = vec![
                load.clone(),
                "Object.assign(obj, payload);".into(),
                "await obj.save();".into(),
                json("obj"),
            ];
            s.fixed = vec![
                load,
                format!("for (const key of [{safe}]) {{"),
                "\tif (key in payload) obj[key] = payload[key];".into(),
                "}".into(),
                "await obj.save();".into(),
                json("obj"),
            ];
        }
        "broken_function_level_authorization" => {
            s.method = "DELETE";
            s.needs_user = true;
            s.route = Route::Item;
            s.name = format!("delete_{}", c.entity);
            let b = vec![
                format!("await {db}.query(\"DELETE FROM {tbl} WHERE id = $1\", [id]);"),
                json("{ deleted: id }"),
            ];
            s.vuln = b.clone();
            s.fixed = vec![
                format!("if (!{admin}) {{"),
                format!("\t{}", err(403, "admin only")),
                "}".into(),
            ];
            s.fixed.extend(b);
        }
        "xss" => {
            s.needs_param = true;
            s.name = format!("search_page_{}", c.entities);
            s.route = Route::Action("page");
            s.imports.push(if ts {
                "import escapeHtml from \"escape-html\";".into()
            } else {
                "const escapeHtml = require(\"escape-html\");".into()
            });
            s.vuln = vec![html(&format!("`<p>{} ${{{p}}}</p>`", c.phrase))];
            s.fixed = vec![html(&format!("`<p>{} ${{escapeHtml({p})}}</p>`", c.phrase))];
        }
        "insecure_deserialization" => {
            s.method = "POST";
            s.needs_param = true;
            s.name = format!("restore_{}", c.param);
            s.route = Route::Action("restore");
            s.imports.push(if ts {
                "import * as serialize from \"node-serialize\";".into()
            } else {
                "const serialize = require(\"node-serialize\");".into()
            });
            let dec = format!("Buffer.from({p}, \"base64\").toString()");
            s.vuln = vec![
                format!("const obj = serialize.unserialize({dec});"),
                json("{ restored: Object.keys(obj) }"),
            ];
            s.fixed = vec![
                format!("const obj = JSON.parse({dec});"),
                json("{ restored: Object.keys(obj) }"),
            ];
        }
        _ => return None,
    }
    Some(s)
}

fn js_file(c: &Ctx, s: &Snip, fixed: bool) -> String {
    let unit = " ".repeat(c.indent);
    let p = camel(&c.param);
    let route = route_path(c, s.route);
    let mut out = String::new();
    let name = camel(&s.name);
    let mut pro = Vec::new();
    if c.comment {
        pro.push(format!("// {} {}", s.method, route));
    }
    if c.log {
        pro.push(format!("logger.info(\"{name} called\");"));
    }
    if c.fw == Fw::Express {
        let k = c.knobs;
        let router = ["router", "router", "routes", "api", "r", "router"][k[2]];
        if k[0] == 0 {
            out.push_str("\"use strict\";\n\n");
        }
        out.push_str("const express = require(\"express\");\n");
        let mut imports = s.imports.clone();
        if k[1].is_multiple_of(2) {
            imports.sort();
        }
        for i in &imports {
            out.push_str(i);
            out.push('\n');
        }
        let db_uses = if fixed { &s.fixed } else { &s.vuln }
            .iter()
            .any(|l| l.contains(&format!("{}.", c.db)));
        if db_uses {
            let from = [
                "../db",
                "../lib/db",
                "./db",
                "../services/database",
                "../db/pool",
                "../../db",
            ][k[3]];
            out.push_str(&format!("const {} = require(\"{from}\");\n", c.db));
        }
        if s.needs_user && s.name.starts_with("update") {
            out.push_str(&format!(
                "const {{ {} }} = require(\"../models\");\n",
                pascal(&c.entity)
            ));
        }
        out.push_str(&format!("\nconst {router} = express.Router();\n"));
        for l in if fixed { &s.top_fixed } else { &s.top_vuln } {
            out.push_str(l);
            out.push('\n');
        }
        out.push('\n');
        let r = route.replace("{id}", ":id");
        let mw = if s.needs_user { "requireLogin, " } else { "" };
        let handler = if k[4].is_multiple_of(2) {
            "async (req, res) =>"
        } else {
            "async function (req, res)"
        };
        out.push_str(&format!(
            "{router}.{}({}, {mw}{handler} {{\n",
            s.method.to_lowercase(),
            c.s(&r)
        ));
        if s.route == Route::Item {
            pro.push("const id = Number(req.params.id);".into());
        }
        if s.needs_param {
            let src = if s.method == "GET" { "query" } else { "body" };
            pro.push(format!(
                "{} {p} = String(req.{src}.{p} || \"\");",
                if s.name == "after_login" {
                    "let"
                } else {
                    "const"
                }
            ));
        }
        if s.needs_body {
            pro.push("const payload = req.body || {};".into());
        }
        let mut body = pro;
        body.extend(if fixed {
            s.fixed.clone()
        } else {
            s.vuln.clone()
        });
        out.push_str(&indent_lines(&body, 1, &unit));
        out.push_str(&format!("}});\n\nmodule.exports = {router};\n"));
    } else {
        out.push_str("import { BadRequestException, Body, Controller, Delete, ForbiddenException, Get, Header, NotFoundException, Param, Post, Put, Query, Redirect, Req, UseGuards } from \"@nestjs/common\";\n");
        for i in &s.imports {
            out.push_str(i);
            out.push('\n');
        }
        out.push_str("import { AuthGuard } from \"../auth/auth.guard\";\n");
        out.push_str(&format!(
            "import {{ {} }} from \"../entities\";\n",
            pascal(&c.entity)
        ));
        for l in if fixed { &s.top_fixed } else { &s.top_vuln } {
            out.push_str(l);
            out.push('\n');
        }
        out.push('\n');
        let base = format!("{}/{}", c.prefix, c.entities);
        out.push_str(&format!(
            "@Controller({})\n",
            c.s(base.trim_start_matches('/'))
        ));
        out.push_str(&format!(
            "export class {}Controller {{\n",
            pascal(&c.entities)
        ));
        out.push_str(&format!(
            "{unit}constructor(private readonly {}: any) {{}}\n\n",
            c.db
        ));
        let sub = match s.route {
            Route::Collection => String::new(),
            Route::Item => ":id".into(),
            Route::Action(a) => a.to_string(),
        };
        let deco = pascal(&s.method.to_lowercase());
        out.push_str(&format!("{unit}@{deco}({})\n", c.s(&sub)));
        if s.needs_user {
            out.push_str(&format!("{unit}@UseGuards(AuthGuard)\n"));
        }
        if s.name.starts_with("search_page") {
            out.push_str(&format!("{unit}@Header(\"Content-Type\", \"text/html\")\n"));
        }
        if s.name == "after_login" {
            out.push_str(&format!("{unit}@Redirect()\n"));
        }
        let mut sig = Vec::new();
        if s.route == Route::Item {
            sig.push("@Param(\"id\") id: number".to_string());
        }
        if s.needs_param {
            let d = if s.method == "GET" { "Query" } else { "Body" };
            sig.push(format!("@{d}(\"{p}\") {p}: string"));
        }
        if s.needs_body {
            sig.push("@Body() payload: any".into());
        }
        if s.needs_user {
            sig.push("@Req() req: any".into());
        }
        out.push_str(&format!("{unit}async {name}({}) {{\n", sig.join(", ")));
        let mut body = pro;
        body.extend(if fixed {
            s.fixed.clone()
        } else {
            s.vuln.clone()
        });
        let body: Vec<String> = body
            .into_iter()
            .map(|l| l.replace("obj[key] = ", "(obj as any)[key] = "))
            .collect();
        out.push_str(&indent_lines(&body, 2, &unit));
        out.push_str(&format!("{unit}}}\n}}\n"));
    }
    out
}

// ---------------------------------------------------------------- Java (Spring Boot)

fn java_snip(t: &str, c: &Ctx) -> Option<Snip> {
    let p = camel(&c.param);
    let tbl = &c.entities;
    let ok = |x: &str| format!("return ResponseEntity.ok({x});");
    let err = |code: u16, msg: &str| {
        format!("return ResponseEntity.status({code}).body(Map.of(\"error\", \"{msg}\"));")
    };
    let mut s = Snip {
        method: "GET",
        name: format!("{}_{}", c.verb, c.entities),
        ..Default::default()
    };
    let rows = camel(&c.rows);
    match t {
        "sql_injection" => {
            s.needs_param = true;
            s.name = format!("search_{}", c.entities);
            s.route = Route::Action("search");
            let sql = format!("SELECT * FROM {tbl} WHERE {} = ", c.col);
            let vq = if c.style == 0 {
                format!("\"{sql}'\" + {p} + \"'\"")
            } else {
                format!("String.format(\"{sql}'%s'\", {p})")
            };
            s.vuln = vec![
                format!("List<Map<String, Object>> {rows} = jdbc.queryForList({vq});"),
                ok(&rows),
            ];
            s.fixed = vec![
                format!("List<Map<String, Object>> {rows} = jdbc.queryForList(\"{sql}?\", {p});"),
                ok(&rows),
            ];
        }
        "command_injection" => {
            s.needs_param = true;
            s.name = format!("diagnose_{}", c.param);
            s.route = Route::Action("diagnostics");
            let cmd = &c.cmd.0;
            s.vuln = vec![
                format!("Process proc = Runtime.getRuntime().exec(new String[] {{\"sh\", \"-c\", \"{cmd} \" + {p}}});"),
                "String out = new String(proc.getInputStream().readAllBytes());".into(),
                ok("Map.of(\"output\", out)"),
            ];
            let argv = c
                .cmd
                .1
                .iter()
                .map(|a| format!("\"{a}\""))
                .chain(std::iter::once(p.clone()))
                .collect::<Vec<_>>()
                .join(", ");
            s.fixed = vec![
                format!("if (!{p}.matches(\"[A-Za-z0-9.-]{{1,253}}\")) {{"),
                format!("\t{}", err(400, "invalid host")),
                "}".into(),
                format!("Process proc = new ProcessBuilder({argv}).start();"),
                "String out = new String(proc.getInputStream().readAllBytes());".into(),
                ok("Map.of(\"output\", out)"),
            ];
        }
        "path_traversal" => {
            s.needs_param = true;
            s.name = format!("download_{}", c.entity);
            s.route = Route::Action("download");
            s.top_vuln = vec![format!(
                "private static final Path BASE_DIR = Paths.get(\"{}\");",
                c.base_dir
            )];
            s.top_fixed = s.top_vuln.clone();
            s.vuln = vec![
                format!("Path file = BASE_DIR.resolve({p});"),
                "byte[] content = Files.readAllBytes(file);".into(),
                ok("Map.of(\"size\", content.length)"),
            ];
            s.fixed = vec![
                format!("Path file = BASE_DIR.resolve({p}).normalize();"),
                "if (!file.startsWith(BASE_DIR)) {".into(),
                format!("\t{}", err(400, "invalid file name")),
                "}".into(),
                "byte[] content = Files.readAllBytes(file);".into(),
                ok("Map.of(\"size\", content.length)"),
            ];
        }
        "ssrf" => {
            s.needs_param = true;
            s.name = format!("preview_{}", c.param);
            s.route = Route::Action("preview");
            let hosts = c
                .allowed
                .iter()
                .map(|h| format!("\"{h}\""))
                .collect::<Vec<_>>()
                .join(", ");
            s.top_fixed = vec![format!(
                "private static final Set<String> ALLOWED_HOSTS = Set.of({hosts});"
            )];
            s.vuln = vec![
                format!("String body = rest.getForObject({p}, String.class);"),
                ok("Map.of(\"body\", body)"),
            ];
            s.fixed = vec![
                format!("URI uri = URI.create({p});"),
                "if (!\"https\".equals(uri.getScheme()) || !ALLOWED_HOSTS.contains(uri.getHost())) {".into(),
                format!("\t{}", err(400, "host not allowed")),
                "}".into(),
                "String body = rest.getForObject(uri, String.class);".into(),
                ok("Map.of(\"body\", body)"),
            ];
        }
        "bola" => {
            s.needs_user = true;
            s.route = Route::Item;
            s.name = format!("{}_{}", c.verb, c.entity);
            let q = format!("SELECT * FROM {tbl} WHERE id = ?");
            s.vuln = vec![format!(
                "List<Map<String, Object>> found = jdbc.queryForList(\"{q}\", id);"
            )];
            s.fixed = vec![format!("List<Map<String, Object>> found = jdbc.queryForList(\"{q} AND {} = ?\", id, principal.getId());", c.owner)];
            for v in [&mut s.vuln, &mut s.fixed] {
                v.extend([
                    "if (found.isEmpty()) {".to_string(),
                    format!("\t{}", err(404, "not found")),
                    "}".into(),
                    ok("found.get(0)"),
                ]);
            }
        }
        "open_redirect" => {
            s.needs_param = true;
            s.name = "after_login".into();
            s.route = Route::Action("continue");
            s.vuln = vec![format!(
                "return ResponseEntity.status(302).location(URI.create({p})).build();"
            )];
            s.fixed = vec![
                format!(
                    "String dest = {p}.startsWith(\"/\") && !{p}.startsWith(\"//\") ? {p} : \"/\";"
                ),
                "return ResponseEntity.status(302).location(URI.create(dest)).build();".into(),
            ];
        }
        "hardcoded_secrets" => {
            s.method = "POST";
            s.needs_body = true;
            s.name = format!("notify_{}", c.entity);
            s.route = Route::Action("notify");
            s.top_vuln = vec![format!(
                "private static final String {} = \"{}\";",
                c.secret_name, c.secret_value
            )];
            s.top_fixed = vec![format!(
                "private static final String {} = System.getenv(\"{}\");",
                c.secret_name, c.secret_name
            )];
            let b = vec![
                "HttpHeaders headers = new HttpHeaders();".to_string(),
                format!("headers.setBearerAuth({});", c.secret_name),
                format!(
                    "rest.postForEntity(\"{}\", new HttpEntity<>(payload, headers), String.class);",
                    c.upstream
                ),
                ok("Map.of(\"sent\", true)"),
            ];
            s.vuln = b.clone();
            s.fixed = b;
        }
        "weak_cryptography" => {
            s.method = "POST";
            s.needs_body = true;
            s.name = format!("register_{}", c.entity);
            s.route = Route::Action("register");
            let algo = if c.style == 1 { "SHA-1" } else { "MD5" };
            let pw = camel(&c.pw);
            let store = vec![
                format!("jdbc.update(\"INSERT INTO {tbl} (email, pw_hash) VALUES (?, ?)\", payload.get(\"email\"), digest);"),
                ok("Map.of(\"created\", true)"),
            ];
            s.vuln = vec![
                format!("MessageDigest md = MessageDigest.getInstance(\"{algo}\");"),
                format!("String digest = HexFormat.of().formatHex(md.digest(payload.get(\"{pw}\").getBytes(StandardCharsets.UTF_8)));"),
            ];
            s.vuln.extend(store.clone());
            s.fixed = vec![format!(
                "String digest = new BCryptPasswordEncoder(12).encode(payload.get(\"{pw}\"));"
            )];
            s.fixed.extend(store);
        }
        "mass_assignment" => {
            s.method = "PUT";
            s.needs_body = true;
            s.needs_user = true;
            s.route = Route::Item;
            s.name = format!("update_{}", c.entity);
            let m = pascal(&c.entity);
            let load = format!(
                "{m} obj = repository.findByIdAndOwnerId(id, principal.getId()).orElseThrow();"
            );
            s.vuln = vec![
                load.clone(),
                "mapper.updateValue(obj, payload);".into(),
                "repository.save(obj);".into(),
                ok("obj"),
            ];
            let safe = c
                .safe
                .iter()
                .map(|f| format!("\"{}\"", camel(f)))
                .collect::<Vec<_>>()
                .join(", ");
            s.fixed = vec![
                load,
                format!("Map<String, String> allowed = new HashMap<>(payload);"),
                format!("allowed.keySet().retainAll(Set.of({safe}));"),
                "mapper.updateValue(obj, allowed);".into(),
                "repository.save(obj);".into(),
                ok("obj"),
            ];
        }
        "broken_function_level_authorization" => {
            s.method = "DELETE";
            s.needs_user = true;
            s.route = Route::Item;
            s.name = format!("delete_{}", c.entity);
            let b = vec![
                format!("jdbc.update(\"DELETE FROM {tbl} WHERE id = ?\", id);"),
                ok("Map.of(\"deleted\", id)"),
            ];
            s.vuln = b.clone();
            s.fixed = vec![
                "if (!principal.isAdmin()) {".into(),
                format!("\t{}", err(403, "admin only")),
                "}".into(),
            ];
            s.fixed.extend(b);
        }
        "xss" => {
            s.needs_param = true;
            s.name = format!("search_page_{}", c.entities);
            s.route = Route::Action("page");
            s.vuln = vec![format!("return ResponseEntity.ok().contentType(MediaType.TEXT_HTML).body(\"<p>{} \" + {p} + \"</p>\");", c.phrase)];
            s.fixed = vec![format!("return ResponseEntity.ok().contentType(MediaType.TEXT_HTML).body(\"<p>{} \" + HtmlUtils.htmlEscape({p}) + \"</p>\");", c.phrase)];
        }
        "insecure_deserialization" => {
            s.method = "POST";
            s.needs_param = true;
            s.name = format!("restore_{}", c.param);
            s.route = Route::Action("restore");
            s.vuln = vec![
                format!("ObjectInputStream in = new ObjectInputStream(new ByteArrayInputStream(Base64.getDecoder().decode({p})));"),
                "Object obj = in.readObject();".into(),
                ok("Map.of(\"restored\", obj.toString())"),
            ];
            s.fixed = vec![
                format!("Map<String, Object> obj = mapper.readValue(Base64.getDecoder().decode({p}), new TypeReference<Map<String, Object>>() {{}});"),
                ok("Map.of(\"restored\", obj.keySet())"),
            ];
        }
        _ => return None,
    }
    Some(s)
}

/// Import lines whose trigger text occurs in `code`, deduplicated, in table order.
fn imports_by_usage(code: &str, table: &[(&str, &str)]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let used = |trigger: &str| {
        let starts_ident = trigger
            .chars()
            .next()
            .is_some_and(|ch| ch.is_alphanumeric() || ch == '_');
        code.match_indices(trigger).any(|(i, _)| {
            !starts_ident
                || !code[..i]
                    .chars()
                    .next_back()
                    .is_some_and(|ch| ch.is_alphanumeric() || ch == '_')
        })
    };
    for (trigger, line) in table {
        if used(trigger) && !out.iter().any(|l| l == line) {
            out.push(line.to_string());
        }
    }
    out
}

const JAVA_IMPORTS: &[(&str, &str)] = &[
    ("ObjectInputStream", "import java.io.ObjectInputStream;"),
    (
        "ByteArrayInputStream",
        "import java.io.ByteArrayInputStream;",
    ),
    ("URI", "import java.net.URI;"),
    (
        "StandardCharsets",
        "import java.nio.charset.StandardCharsets;",
    ),
    ("Files.", "import java.nio.file.Files;"),
    ("Path ", "import java.nio.file.Path;"),
    ("Paths.", "import java.nio.file.Paths;"),
    ("MessageDigest", "import java.security.MessageDigest;"),
    ("Base64", "import java.util.Base64;"),
    ("HashMap", "import java.util.HashMap;"),
    ("HexFormat", "import java.util.HexFormat;"),
    ("List<", "import java.util.List;"),
    ("Map<", "import java.util.Map;"),
    ("Map.of", "import java.util.Map;"),
    ("Set<", "import java.util.Set;"),
    ("Set.of", "import java.util.Set;"),
    (
        "TypeReference",
        "import com.fasterxml.jackson.core.type.TypeReference;",
    ),
    (
        "ObjectMapper",
        "import com.fasterxml.jackson.databind.ObjectMapper;",
    ),
    (
        "@Autowired",
        "import org.springframework.beans.factory.annotation.Autowired;",
    ),
    ("HttpEntity", "import org.springframework.http.HttpEntity;"),
    (
        "HttpHeaders",
        "import org.springframework.http.HttpHeaders;",
    ),
    ("MediaType", "import org.springframework.http.MediaType;"),
    (
        "ResponseEntity",
        "import org.springframework.http.ResponseEntity;",
    ),
    (
        "JdbcTemplate",
        "import org.springframework.jdbc.core.JdbcTemplate;",
    ),
    (
        "@AuthenticationPrincipal",
        "import org.springframework.security.core.annotation.AuthenticationPrincipal;",
    ),
    (
        "BCryptPasswordEncoder",
        "import org.springframework.security.crypto.bcrypt.BCryptPasswordEncoder;",
    ),
    (
        "@RestController",
        "import org.springframework.web.bind.annotation.*;",
    ),
    (
        "RestTemplate",
        "import org.springframework.web.client.RestTemplate;",
    ),
    (
        "HtmlUtils",
        "import org.springframework.web.util.HtmlUtils;",
    ),
    (
        "@RequiredArgsConstructor",
        "import lombok.RequiredArgsConstructor;",
    ),
    ("@Slf4j", "import lombok.extern.slf4j.Slf4j;"),
];

fn java_file(c: &Ctx, s: &Snip, fixed: bool) -> String {
    let unit = " ".repeat(c.indent);
    let p = camel(&c.param);
    let k = c.knobs;
    let pkg = match k[0] {
        0 => "com.example.api".to_string(),
        1 => format!("com.acme.{}", c.entities),
        2 => "io.shop.web".to_string(),
        3 => "org.demo.controller".to_string(),
        4 => format!("net.app.{}.web", c.entity),
        _ => "com.company.service.rest".to_string(),
    };
    let ctrl = match k[1] {
        0 | 1 => format!("{}Controller", pascal(&c.entity)),
        2 => format!("{}Resource", pascal(&c.entity)),
        3 => format!("{}Api", pascal(&c.entities)),
        4 => format!("{}Endpoint", pascal(&c.entity)),
        _ => format!("{}RestController", pascal(&c.entities)),
    };
    let jdbc = ["jdbc", "jdbcTemplate", "template", "db", "sql", "jdbc"][k[2]];
    let rest = ["rest", "restTemplate", "http", "client", "outbound", "rest"][k[3]];
    let mapper = ["mapper", "objectMapper", "json", "mapper", "om", "jackson"][k[4]];
    let rename = |l: &String| {
        l.replace("jdbc.", &format!("{jdbc}."))
            .replace("rest.", &format!("{rest}."))
            .replace("mapper.", &format!("{mapper}."))
    };
    let mut body: Vec<String> = Vec::new();
    if c.log {
        body.push(format!("log.info(\"{} called\");", camel(&s.name)));
    }
    body.extend(if fixed { s.fixed.iter() } else { s.vuln.iter() }.map(rename));
    let body_text = body.join("\n");
    let repo = s.name.starts_with("update");
    // dependencies actually used, and how they are injected
    let mut deps: Vec<(String, String, bool)> = Vec::new(); // (type, name, injected)
    if body_text.contains(&format!("{jdbc}.")) {
        deps.push(("JdbcTemplate".into(), jdbc.into(), true));
    }
    if repo {
        deps.push((
            format!("{}Repository", pascal(&c.entity)),
            "repository".into(),
            true,
        ));
    }
    if body_text.contains(&format!("{rest}.")) {
        deps.push(("RestTemplate".into(), rest.into(), false));
    }
    if body_text.contains(&format!("{mapper}.")) {
        deps.push(("ObjectMapper".into(), mapper.into(), false));
    }
    let inject = k[5] % 3; // 0 constructor, 1 @Autowired fields, 2 lombok
    let mut class = String::new();
    if c.log {
        class.push_str("@Slf4j\n");
    }
    class.push_str("@RestController\n");
    if inject == 2 {
        class.push_str("@RequiredArgsConstructor\n");
    }
    class.push_str(&format!(
        "@RequestMapping(\"{}/{}\")\npublic class {ctrl} {{\n",
        c.prefix, c.entities
    ));
    let mut fields = Vec::new();
    for (ty, name, injected) in &deps {
        if !injected {
            fields.push(format!("private final {ty} {name} = new {ty}();"));
        } else if inject == 1 {
            fields.push(format!("@Autowired\nprivate {ty} {name};"));
        } else {
            fields.push(format!("private final {ty} {name};"));
        }
    }
    fields.extend(if fixed {
        s.top_fixed.clone()
    } else {
        s.top_vuln.clone()
    });
    let fields: Vec<String> = fields
        .iter()
        .flat_map(|f| f.lines().map(String::from).collect::<Vec<_>>())
        .collect();
    if !fields.is_empty() {
        class.push_str(&indent_lines(&fields, 1, &unit));
        class.push('\n');
    }
    let injected: Vec<&(String, String, bool)> = deps.iter().filter(|d| d.2).collect();
    if inject == 0 && !injected.is_empty() {
        let args: Vec<String> = injected
            .iter()
            .map(|(t, n, _)| format!("{t} {n}"))
            .collect();
        let sets: Vec<String> = injected
            .iter()
            .map(|(_, n, _)| format!("this.{n} = {n};"))
            .collect();
        class.push_str(&format!("{unit}public {ctrl}({}) {{\n", args.join(", ")));
        class.push_str(&indent_lines(&sets, 2, &unit));
        class.push_str(&format!("{unit}}}\n\n"));
    }
    let sub = match s.route {
        Route::Collection => String::new(),
        Route::Item => "/{id}".into(),
        Route::Action(a) => format!("/{a}"),
    };
    let m = match s.method {
        "POST" => "PostMapping",
        "PUT" => "PutMapping",
        "DELETE" => "DeleteMapping",
        _ => "GetMapping",
    };
    if c.comment {
        class.push_str(&format!("{unit}// {} {}{}\n", s.method, c.entities, sub));
    }
    class.push_str(&format!("{unit}@{m}(\"{sub}\")\n"));
    let mut sig = Vec::new();
    if s.route == Route::Item {
        sig.push("@PathVariable long id".to_string());
    }
    if s.needs_param {
        sig.push(format!("@RequestParam(\"{p}\") String {p}"));
    }
    if s.needs_body {
        sig.push("@RequestBody Map<String, String> payload".into());
    }
    if s.needs_user {
        sig.push("@AuthenticationPrincipal AppUser principal".into());
    }
    class.push_str(&format!(
        "{unit}public ResponseEntity<?> {}({}) throws Exception {{\n",
        camel(&s.name),
        sig.join(", ")
    ));
    class.push_str(&indent_lines(&body, 2, &unit));
    class.push_str(&format!("{unit}}}\n}}\n"));
    let mut imports = imports_by_usage(&class, JAVA_IMPORTS);
    if k[3] % 2 == 1 {
        imports.sort();
    }
    format!("package {pkg};\n\n{}\n\n{class}", imports.join("\n"))
}

// ---------------------------------------------------------------- PHP (Laravel)

fn php_snip(t: &str, c: &Ctx) -> Option<Snip> {
    let p = format!("${}", camel(&c.param));
    let tbl = &c.entities;
    let json = |x: &str| format!("return response()->json({x});");
    let err =
        |code: u16, msg: &str| format!("return response()->json(['error' => '{msg}'], {code});");
    let mut s = Snip {
        method: "GET",
        name: format!("{}_{}", c.verb, c.entities),
        ..Default::default()
    };
    let rows = format!("${}", camel(&c.rows));
    match t {
        "sql_injection" => {
            s.needs_param = true;
            s.name = format!("search_{}", c.entities);
            s.route = Route::Action("search");
            let sql = format!("SELECT * FROM {tbl} WHERE {} = ", c.col);
            let vq = if c.style == 0 {
                format!("\"{sql}'{p}'\"")
            } else {
                format!("\"{sql}'\" . {p} . \"'\"")
            };
            s.vuln = vec![format!("{rows} = DB::select({vq});"), json(&rows)];
            s.fixed = vec![
                format!("{rows} = DB::select('{sql}?', [{p}]);"),
                json(&rows),
            ];
        }
        "command_injection" => {
            s.needs_param = true;
            s.name = format!("diagnose_{}", c.param);
            s.route = Route::Action("diagnostics");
            s.vuln = vec![
                format!("$out = shell_exec(\"{} \" . {p});", c.cmd.0),
                json("['output' => $out]"),
            ];
            let argv = c
                .cmd
                .1
                .iter()
                .map(|a| format!("'{a}'"))
                .chain(std::iter::once(p.clone()))
                .collect::<Vec<_>>()
                .join(", ");
            s.fixed = vec![
                format!("if (!preg_match('/^[A-Za-z0-9.-]{{1,253}}$/', {p})) {{"),
                format!("\t{}", err(400, "invalid host")),
                "}".into(),
                format!("$process = new Process([{argv}]);"),
                "$process->setTimeout(10);".into(),
                "$process->run();".into(),
                json("['output' => $process->getOutput()]"),
            ];
        }
        "path_traversal" => {
            s.needs_param = true;
            s.name = format!("download_{}", c.entity);
            s.route = Route::Action("download");
            s.top_vuln = vec![format!("private const BASE_DIR = '{}';", c.base_dir)];
            s.top_fixed = s.top_vuln.clone();
            s.vuln = vec![
                format!("$full = self::BASE_DIR . '/' . {p};"),
                "$content = file_get_contents($full);".into(),
                json("['size' => strlen($content)]"),
            ];
            s.fixed = vec![
                format!("$full = realpath(self::BASE_DIR . '/' . {p});"),
                "if ($full === false || !str_starts_with($full, self::BASE_DIR . '/')) {".into(),
                format!("\t{}", err(400, "invalid file name")),
                "}".into(),
                "$content = file_get_contents($full);".into(),
                json("['size' => strlen($content)]"),
            ];
        }
        "ssrf" => {
            s.needs_param = true;
            s.name = format!("preview_{}", c.param);
            s.route = Route::Action("preview");
            let hosts = c
                .allowed
                .iter()
                .map(|h| format!("'{h}'"))
                .collect::<Vec<_>>()
                .join(", ");
            s.top_fixed = vec![format!("private const ALLOWED_HOSTS = [{hosts}];")];
            s.vuln = vec![
                format!("$resp = Http::timeout(5)->get({p});"),
                json("['status' => $resp->status()]"),
            ];
            s.fixed = vec![
                format!("$parts = parse_url({p});"),
                "if (($parts['scheme'] ?? '') !== 'https' || !in_array($parts['host'] ?? '', self::ALLOWED_HOSTS, true)) {".into(),
                format!("\t{}", err(400, "host not allowed")),
                "}".into(),
                format!("$resp = Http::timeout(5)->withoutRedirecting()->get({p});"),
                json("['status' => $resp->status()]"),
            ];
        }
        "bola" => {
            s.needs_user = true;
            s.route = Route::Item;
            s.name = format!("{}_{}", c.verb, c.entity);
            let m = pascal(&c.entity);
            s.vuln = vec![format!("$item = {m}::findOrFail($id);"), json("$item")];
            s.fixed = vec![format!("$item = {m}::where('id', $id)->where('{}', $request->user()->id)->firstOrFail();", c.owner), json("$item")];
        }
        "open_redirect" => {
            s.needs_param = true;
            s.name = "after_login".into();
            s.route = Route::Action("continue");
            s.vuln = vec![format!("return redirect()->away({p});")];
            s.fixed = vec![
                format!("if (!str_starts_with({p}, '/') || str_starts_with({p}, '//')) {{"),
                format!("\t{p} = '/';"),
                "}".into(),
                format!("return redirect({p});"),
            ];
        }
        "hardcoded_secrets" => {
            s.method = "POST";
            s.name = format!("notify_{}", c.entity);
            s.route = Route::Action("notify");
            s.top_vuln = vec![format!(
                "private const {} = '{}';",
                c.secret_name, c.secret_value
            )];
            s.top_fixed = vec![];
            s.vuln = vec![
                format!(
                    "$resp = Http::withToken(self::{})->post('{}', $request->all());",
                    c.secret_name, c.upstream
                ),
                json("['sent' => $resp->ok()]"),
            ];
            s.fixed = vec![
                format!(
                    "$resp = Http::withToken(env('{}'))->post('{}', $request->all());",
                    c.secret_name, c.upstream
                ),
                json("['sent' => $resp->ok()]"),
            ];
        }
        "weak_cryptography" => {
            s.method = "POST";
            s.name = format!("register_{}", c.entity);
            s.route = Route::Action("register");
            let algo = if c.style == 1 { "sha1" } else { "md5" };
            let store = vec![format!("DB::insert('INSERT INTO {tbl} (email, pw_hash) VALUES (?, ?)', [$request->input('email'), $digest]);"), json("['created' => true]")];
            s.vuln = vec![format!("$digest = {algo}($request->input('{}'));", c.pw)];
            s.vuln.extend(store.clone());
            s.fixed = vec![format!(
                "$digest = password_hash($request->input('{}'), PASSWORD_ARGON2ID);",
                c.pw
            )];
            s.fixed.extend(store);
        }
        "mass_assignment" => {
            s.method = "PUT";
            s.needs_user = true;
            s.route = Route::Item;
            s.name = format!("update_{}", c.entity);
            let m = pascal(&c.entity);
            let load = format!(
                "$item = {m}::where('id', $id)->where('{}', $request->user()->id)->firstOrFail();",
                c.owner
            );
            let safe = c
                .safe
                .iter()
                .map(|f| format!("'{f}'"))
                .collect::<Vec<_>>()
                .join(", ");
            s.vuln = vec![
                load.clone(),
                "$item->forceFill($request->all())->save();".into(),
                json("$item"),
            ];
            s.fixed = vec![
                load,
                format!("$item->fill($request->only([{safe}]))->save();"),
                json("$item"),
            ];
        }
        "broken_function_level_authorization" => {
            s.method = "DELETE";
            s.needs_user = true;
            s.route = Route::Item;
            s.name = format!("delete_{}", c.entity);
            let b = vec![
                format!("DB::delete('DELETE FROM {tbl} WHERE id = ?', [$id]);"),
                json("['deleted' => $id]"),
            ];
            s.vuln = b.clone();
            s.fixed = vec![
                "if (!$request->user()->is_admin) {".into(),
                format!("\t{}", err(403, "admin only")),
                "}".into(),
            ];
            s.fixed.extend(b);
        }
        "xss" => {
            s.needs_param = true;
            s.name = format!("search_page_{}", c.entities);
            s.route = Route::Action("page");
            s.vuln = vec![format!(
                "return response('<p>{} ' . {p} . '</p>');",
                c.phrase
            )];
            s.fixed = vec![format!(
                "return response('<p>{} ' . e({p}) . '</p>');",
                c.phrase
            )];
        }
        "insecure_deserialization" => {
            s.method = "POST";
            s.needs_param = true;
            s.name = format!("restore_{}", c.param);
            s.route = Route::Action("restore");
            s.vuln = vec![
                format!("$obj = unserialize(base64_decode({p}));"),
                json("['restored' => gettype($obj)]"),
            ];
            s.fixed = vec![
                format!("$obj = json_decode(base64_decode({p}), true, 32, JSON_THROW_ON_ERROR);"),
                json("['restored' => gettype($obj)]"),
            ];
        }
        _ => return None,
    }
    Some(s)
}

const PHP_USES: &[(&str, &str)] = &[
    ("Request $request", "use Illuminate\\Http\\Request;"),
    ("DB::", "use Illuminate\\Support\\Facades\\DB;"),
    ("Http::", "use Illuminate\\Support\\Facades\\Http;"),
    ("Log::", "use Illuminate\\Support\\Facades\\Log;"),
    ("new Process", "use Symfony\\Component\\Process\\Process;"),
];

fn php_file(c: &Ctx, s: &Snip, fixed: bool) -> String {
    let unit = " ".repeat(c.indent);
    let p = camel(&c.param);
    let k = c.knobs;
    let ns = [
        "App\\Http\\Controllers",
        "App\\Http\\Controllers\\Api",
        "App\\Http\\Controllers\\Api\\V1",
        "App\\Http\\Controllers",
        "Modules\\Shop\\Http\\Controllers",
        "App\\Http\\Controllers\\Admin",
    ][k[0]];
    let model = pascal(&c.entity);
    let ctrl = match k[1] {
        0..=2 => format!("{model}Controller"),
        3 => format!("{}Controller", pascal(&c.entities)),
        4 => format!("{model}ApiController"),
        _ => format!("Manage{}Controller", pascal(&c.entities)),
    };
    let req = [
        "$request",
        "$request",
        "$req",
        "$request",
        "$r",
        "$httpRequest",
    ][k[2]];
    let route = route_path(c, s.route);
    let mut cls = String::new();
    if !k[3].is_multiple_of(3) {
        cls.push_str(&format!(
            "// routes/api.php: Route::{}('{}', [{ctrl}::class, '{}']);\n",
            s.method.to_lowercase(),
            route,
            camel(&s.name)
        ));
    }
    cls.push_str(&format!("class {ctrl} extends Controller\n{{\n"));
    let top = if fixed { &s.top_fixed } else { &s.top_vuln };
    if !top.is_empty() {
        cls.push_str(&indent_lines(top, 1, &unit));
        cls.push('\n');
    }
    let mut sig = vec!["Request $request".to_string()];
    if s.route == Route::Item {
        sig.push("int $id".into());
    }
    let ret = if k[4].is_multiple_of(2) {
        ""
    } else {
        ": JsonResponse|Response|RedirectResponse"
    };
    let ret = if ret.is_empty() {
        String::new()
    } else {
        ret.to_string()
    };
    cls.push_str(&format!(
        "{unit}public function {}({}){ret}\n{unit}{{\n",
        camel(&s.name),
        sig.join(", ")
    ));
    let mut body = Vec::new();
    if c.comment {
        body.push(format!("// {} {}", s.method, route));
    }
    if s.needs_param {
        body.push(format!("${p} = (string) $request->input('{p}', '');"));
    }
    if c.log {
        body.push(format!("Log::info('{} called');", camel(&s.name)));
    }
    body.extend(if fixed {
        s.fixed.clone()
    } else {
        s.vuln.clone()
    });
    cls.push_str(&indent_lines(&body, 2, &unit));
    cls.push_str(&format!("{unit}}}\n}}\n"));
    let cls = cls.replace("$request", req);
    let mut uses = imports_by_usage(&cls.replace(req, "$request"), PHP_USES);
    if !ret.is_empty() {
        uses.push("use Illuminate\\Http\\JsonResponse;".into());
        uses.push("use Illuminate\\Http\\RedirectResponse;".into());
        uses.push("use Illuminate\\Http\\Response;".into());
    }
    if cls.contains(&format!("{model}::")) {
        uses.push(format!("use App\\Models\\{model};"));
    }
    if k[5].is_multiple_of(2) {
        uses.sort();
    }
    format!("<?php\n\nnamespace {ns};\n\n{}\n\n{cls}", uses.join("\n"))
}

// ---------------------------------------------------------------- Go (Gin)

fn go_snip(t: &str, c: &Ctx) -> Option<Snip> {
    let p = camel(&c.param);
    let tbl = &c.entities;
    let json = |x: &str| format!("c.JSON(http.StatusOK, {x})");
    let err = |code: u16, msg: &str| format!("c.JSON({code}, gin.H{{\"error\": \"{msg}\"}})");
    let fail = |v: &mut Vec<String>, what: &str| {
        v.push(format!("if {what} != nil {{"));
        v.push(format!("\t{}", err(500, "internal error")));
        v.push("\treturn".into());
        v.push("}".into());
    };
    let mut s = Snip {
        method: "GET",
        name: format!("{}_{}", c.verb, c.entities),
        ..Default::default()
    };
    let rows = camel(&c.rows);
    match t {
        "sql_injection" => {
            s.needs_param = true;
            s.name = format!("search_{}", c.entities);
            s.route = Route::Action("search");
            let sql = format!("SELECT * FROM {tbl} WHERE {} = ", c.col);
            let vq = if c.style == 0 {
                format!("fmt.Sprintf(\"{sql}'%s'\", {p})")
            } else {
                format!("\"{sql}'\" + {p} + \"'\"")
            };
            s.vuln = vec![format!("{rows}, err := db.Query({vq})")];
            s.fixed = vec![format!("{rows}, err := db.Query(\"{sql}$1\", {p})")];
            for v in [&mut s.vuln, &mut s.fixed] {
                fail(v, "err");
                v.push(format!("defer {rows}.Close()"));
                v.push(json(&format!("scanAll({rows})")));
            }
        }
        "command_injection" => {
            s.needs_param = true;
            s.name = format!("diagnose_{}", c.param);
            s.route = Route::Action("diagnostics");
            s.vuln = vec![format!(
                "out, err := exec.Command(\"sh\", \"-c\", \"{} \"+{p}).Output()",
                c.cmd.0
            )];
            let argv = c
                .cmd
                .1
                .iter()
                .map(|a| format!("\"{a}\""))
                .chain(std::iter::once(p.clone()))
                .collect::<Vec<_>>()
                .join(", ");
            s.fixed = vec![
                format!("if !hostPattern.MatchString({p}) {{"),
                format!("\t{}", err(400, "invalid host")),
                "\treturn".into(),
                "}".into(),
                format!("out, err := exec.Command({argv}).Output()"),
            ];
            s.top_fixed =
                vec!["var hostPattern = regexp.MustCompile(`^[A-Za-z0-9.-]{1,253}$`)".into()];
            for v in [&mut s.vuln, &mut s.fixed] {
                fail(v, "err");
                v.push(json("gin.H{\"output\": string(out)}"));
            }
        }
        "path_traversal" => {
            s.needs_param = true;
            s.name = format!("download_{}", c.entity);
            s.route = Route::Action("download");
            s.top_vuln = vec![format!("const baseDir = \"{}\"", c.base_dir)];
            s.top_fixed = s.top_vuln.clone();
            s.vuln = vec![format!("full := filepath.Join(baseDir, {p})")];
            s.fixed = vec![
                format!("full := filepath.Join(baseDir, filepath.Clean(\"/\"+{p}))"),
                "if !strings.HasPrefix(full, baseDir+string(os.PathSeparator)) {".into(),
                format!("\t{}", err(400, "invalid file name")),
                "\treturn".into(),
                "}".into(),
            ];
            for v in [&mut s.vuln, &mut s.fixed] {
                v.push("content, err := os.ReadFile(full)".into());
                fail(v, "err");
                v.push(json("gin.H{\"size\": len(content)}"));
            }
        }
        "ssrf" => {
            s.needs_param = true;
            s.name = format!("preview_{}", c.param);
            s.route = Route::Action("preview");
            let hosts = c
                .allowed
                .iter()
                .map(|h| format!("\"{h}\": true"))
                .collect::<Vec<_>>()
                .join(", ");
            s.top_fixed = vec![format!("var allowedHosts = map[string]bool{{{hosts}}}")];
            s.vuln = vec![format!("resp, err := http.Get({p})")];
            s.fixed = vec![
                format!("u, perr := url.Parse({p})"),
                "if perr != nil || u.Scheme != \"https\" || !allowedHosts[u.Hostname()] {".into(),
                format!("\t{}", err(400, "host not allowed")),
                "\treturn".into(),
                "}".into(),
                "resp, err := noRedirectClient.Get(u.String())".into(),
            ];
            for v in [&mut s.vuln, &mut s.fixed] {
                fail(v, "err");
                v.push("defer resp.Body.Close()".into());
                v.push(json("gin.H{\"status\": resp.StatusCode}"));
            }
        }
        "bola" => {
            s.needs_user = true;
            s.route = Route::Item;
            s.name = format!("{}_{}", c.verb, c.entity);
            let q = format!("SELECT * FROM {tbl} WHERE id = $1");
            s.vuln = vec![format!("row := db.QueryRow(\"{q}\", id)")];
            s.fixed = vec![format!(
                "row := db.QueryRow(\"{q} AND {} = $2\", id, c.GetInt64(\"userID\"))",
                c.owner
            )];
            for v in [&mut s.vuln, &mut s.fixed] {
                v.push(format!("item, err := scan{}(row)", pascal(&c.entity)));
                v.push("if err != nil {".into());
                v.push(format!("\t{}", err(404, "not found")));
                v.push("\treturn".into());
                v.push("}".into());
                v.push(json("item"));
            }
        }
        "open_redirect" => {
            s.needs_param = true;
            s.name = "after_login".into();
            s.route = Route::Action("continue");
            s.vuln = vec![format!("c.Redirect(http.StatusFound, {p})")];
            s.fixed = vec![
                format!("if !strings.HasPrefix({p}, \"/\") || strings.HasPrefix({p}, \"//\") {{"),
                format!("\t{p} = \"/\""),
                "}".into(),
                format!("c.Redirect(http.StatusFound, {p})"),
            ];
        }
        "hardcoded_secrets" => {
            s.method = "POST";
            s.name = format!("notify_{}", c.entity);
            s.route = Route::Action("notify");
            let name = camel(&c.secret_name.to_lowercase());
            s.top_vuln = vec![format!("const {name} = \"{}\"", c.secret_value)];
            s.top_fixed = vec![format!("var {name} = os.Getenv(\"{}\")", c.secret_name)];
            let b = vec![
                format!(
                    "req, _ := http.NewRequest(\"POST\", \"{}\", c.Request.Body)",
                    c.upstream
                ),
                format!("req.Header.Set(\"Authorization\", \"Bearer \"+{name})"),
                "resp, err := http.DefaultClient.Do(req)".into(),
            ];
            s.vuln = b.clone();
            s.fixed = b;
            for v in [&mut s.vuln, &mut s.fixed] {
                fail(v, "err");
                v.push(json("gin.H{\"sent\": resp.StatusCode < 300}"));
            }
        }
        "weak_cryptography" => {
            s.method = "POST";
            s.needs_body = true;
            s.name = format!("register_{}", c.entity);
            s.route = Route::Action("register");
            let pw = pascal(&c.pw);
            let algo = if c.style == 1 { "sha1" } else { "md5" };
            s.vuln = vec![
                format!("sum := {algo}.Sum([]byte(payload.{pw}))"),
                "digest := hex.EncodeToString(sum[:])".into(),
            ];
            s.fixed = vec![
                format!("hashed, herr := bcrypt.GenerateFromPassword([]byte(payload.{pw}), 12)"),
                "if herr != nil {".into(),
                format!("\t{}", err(500, "internal error")),
                "\treturn".into(),
                "}".into(),
                "digest := string(hashed)".into(),
            ];
            for v in [&mut s.vuln, &mut s.fixed] {
                v.push(format!("_, err := db.Exec(\"INSERT INTO {tbl} (email, pw_hash) VALUES ($1, $2)\", payload.Email, digest)"));
                fail(v, "err");
                v.push(json("gin.H{\"created\": true}"));
            }
        }
        "mass_assignment" => {
            s.method = "PUT";
            s.needs_user = true;
            s.route = Route::Item;
            s.name = format!("update_{}", c.entity);
            let m = pascal(&c.entity);
            let load = vec![
                format!("var item {m}"),
                format!("if err := gormDB.Where(\"id = ? AND {} = ?\", id, c.GetInt64(\"userID\")).First(&item).Error; err != nil {{", c.owner),
                format!("\t{}", err(404, "not found")),
                "\treturn".into(),
                "}".into(),
            ];
            s.vuln = load.clone();
            s.vuln.extend([
                "var changes map[string]interface{}".to_string(),
                "_ = c.ShouldBindJSON(&changes)".into(),
                "gormDB.Model(&item).Updates(changes)".into(),
            ]);
            s.fixed = load;
            let fields = c
                .safe
                .iter()
                .map(|f| format!("{} string `json:\"{f}\"`", pascal(f)))
                .collect::<Vec<_>>()
                .join("; ");
            s.fixed.extend([
                format!("var changes struct {{ {fields} }}"),
                "_ = c.ShouldBindJSON(&changes)".into(),
                "gormDB.Model(&item).Updates(changes)".into(),
            ]);
            for v in [&mut s.vuln, &mut s.fixed] {
                v.push(json("item"));
            }
        }
        "broken_function_level_authorization" => {
            s.method = "DELETE";
            s.needs_user = true;
            s.route = Route::Item;
            s.name = format!("delete_{}", c.entity);
            s.fixed = vec![
                "if !c.GetBool(\"isAdmin\") {".into(),
                format!("\t{}", err(403, "admin only")),
                "\treturn".into(),
                "}".into(),
            ];
            for v in [&mut s.vuln, &mut s.fixed] {
                v.push(format!(
                    "_, err := db.Exec(\"DELETE FROM {tbl} WHERE id = $1\", id)"
                ));
                fail(v, "err");
                v.push(json("gin.H{\"deleted\": id}"));
            }
        }
        "xss" => {
            s.needs_param = true;
            s.name = format!("search_page_{}", c.entities);
            s.route = Route::Action("page");
            s.vuln = vec![format!(
                "c.Data(http.StatusOK, \"text/html\", []byte(\"<p>{} \"+{p}+\"</p>\"))",
                c.phrase
            )];
            s.fixed = vec![format!("c.Data(http.StatusOK, \"text/html\", []byte(\"<p>{} \"+html.EscapeString({p})+\"</p>\"))", c.phrase)];
        }
        // Go's standard decoders (encoding/json, encoding/gob into a typed value) do not
        // instantiate arbitrary types; there is no natural unsafe-deserialization sink.
        _ => return None,
    }
    Some(s)
}

const GO_IMPORTS: &[(&str, &str)] = &[
    ("md5.", "crypto/md5"),
    ("sha1.", "crypto/sha1"),
    ("hex.", "encoding/hex"),
    ("fmt.", "fmt"),
    ("html.", "html"),
    ("logger.", "log"),
    ("http.", "net/http"),
    ("url.", "net/url"),
    ("os.", "os"),
    ("exec.", "os/exec"),
    ("filepath.", "path/filepath"),
    ("regexp.", "regexp"),
    ("strconv.", "strconv"),
    ("strings.", "strings"),
];

fn go_file(c: &Ctx, s: &Snip, fixed: bool) -> String {
    let p = camel(&c.param);
    let k = c.knobs;
    let ctx = "c";
    let fname = pascal(&s.name);
    let route = route_path(c, s.route).replace("{id}", ":id");
    let mut body = Vec::new();
    if s.route == Route::Item {
        body.push("id, _ := strconv.ParseInt(c.Param(\"id\"), 10, 64)".to_string());
    }
    if s.needs_param {
        body.push(if s.method == "GET" {
            format!("{p} := c.Query(\"{p}\")")
        } else {
            format!("{p} := c.PostForm(\"{p}\")")
        });
    }
    if s.needs_body {
        body.push(format!(
            "var payload struct {{ Email string `json:\"email\"`; {} string `json:\"{}\"` }}",
            pascal(&c.pw),
            c.pw
        ));
        body.push("if err := c.ShouldBindJSON(&payload); err != nil {".into());
        body.push("\tc.JSON(400, gin.H{\"error\": \"bad request\"})".into());
        body.push("\treturn".into());
        body.push("}".into());
    }
    if c.log {
        body.push(format!("logger.Printf(\"{fname} called\")"));
    }
    body.extend(if fixed {
        s.fixed.clone()
    } else {
        s.vuln.clone()
    });

    let mut rest = String::new();
    for l in if fixed { &s.top_fixed } else { &s.top_vuln } {
        rest.push_str(l);
        rest.push('\n');
    }
    if k[0].is_multiple_of(2) {
        rest.push_str(&format!(
            "\n// Register{fname} wires the handler.\nfunc Register{fname}(r *gin.Engine) {{\n\tr.{}(\"{route}\", {fname})\n}}\n",
            s.method
        ));
    }
    rest.push('\n');
    if c.comment {
        rest.push_str(&format!("// {fname} handles {} {route}.\n", s.method));
    }
    rest.push_str(&format!("func {fname}({ctx} *gin.Context) {{\n"));
    rest.push_str(&indent_lines(&body, 1, "\t"));
    rest.push_str("}\n");
    let pkg = ["handlers", "api", "routes", "web", "controllers", "httpapi"][k[0]];
    let mut std_imports: Vec<String> = imports_by_usage(&rest, GO_IMPORTS);
    std_imports.sort();
    let mut out = format!("package {pkg}\n\nimport (\n");
    for i in std_imports {
        out.push_str(&format!("\t\"{i}\"\n"));
    }
    out.push_str("\n\t\"github.com/gin-gonic/gin\"\n");
    if rest.contains("bcrypt.") {
        out.push_str("\t\"golang.org/x/crypto/bcrypt\"\n");
    }
    out.push_str(")\n\n");
    out.push_str(&rest);
    out
}

// ---------------------------------------------------------------- Ruby (Rails)

fn rb_snip(t: &str, c: &Ctx) -> Option<Snip> {
    let p = &c.param;
    let tbl = &c.entities;
    let m = pascal(&c.entity);
    let json = |x: &str| format!("render json: {x}");
    let err = |code: u16, msg: &str| {
        format!("return render json: {{ error: \"{msg}\" }}, status: {code}")
    };
    let mut s = Snip {
        method: "GET",
        name: format!("{}_{}", c.verb, c.entities),
        ..Default::default()
    };
    match t {
        "sql_injection" => {
            s.needs_param = true;
            s.name = format!("search_{}", c.entities);
            s.route = Route::Action("search");
            s.vuln = vec![
                format!("{} = {m}.where(\"{} = '#{{{p}}}'\")", c.rows, c.col),
                json(&c.rows),
            ];
            s.fixed = vec![
                format!("{} = {m}.where(\"{} = ?\", {p})", c.rows, c.col),
                json(&c.rows),
            ];
        }
        "command_injection" => {
            s.needs_param = true;
            s.name = format!("diagnose_{}", c.param);
            s.route = Route::Action("diagnostics");
            s.vuln = vec![
                format!("out = `{} #{{{p}}}`", c.cmd.0),
                json("{ output: out }"),
            ];
            let argv = c
                .cmd
                .1
                .iter()
                .map(|a| format!("\"{a}\""))
                .chain(std::iter::once(p.clone()))
                .collect::<Vec<_>>()
                .join(", ");
            s.fixed = vec![
                format!(
                    "{} unless {p}.match?(/\\A[A-Za-z0-9.-]{{1,253}}\\z/)",
                    err(400, "invalid host")
                ),
                format!("out, _status = Open3.capture2({argv})"),
                json("{ output: out }"),
            ];
        }
        "path_traversal" => {
            s.needs_param = true;
            s.name = format!("download_{}", c.entity);
            s.route = Route::Action("download");
            s.top_vuln = vec![format!("BASE_DIR = \"{}\"", c.base_dir)];
            s.top_fixed = s.top_vuln.clone();
            s.vuln = vec![
                format!("full_path = File.join(BASE_DIR, {p})"),
                "send_file full_path".into(),
            ];
            s.fixed = vec![
                format!("full_path = File.expand_path({p}, BASE_DIR)"),
                format!(
                    "{} unless full_path.start_with?(BASE_DIR + \"/\")",
                    err(400, "invalid file name")
                ),
                "send_file full_path".into(),
            ];
        }
        "ssrf" => {
            s.needs_param = true;
            s.name = format!("preview_{}", c.param);
            s.route = Route::Action("preview");
            let hosts = c
                .allowed
                .iter()
                .map(|h| format!("\"{h}\""))
                .collect::<Vec<_>>()
                .join(", ");
            s.top_fixed = vec![format!("ALLOWED_HOSTS = [{hosts}].freeze")];
            s.vuln = vec![
                format!("body = Net::HTTP.get(URI({p}))"),
                json("{ body: body[0, 2000] }"),
            ];
            s.fixed = vec![
                format!("uri = URI.parse({p})"),
                format!(
                    "{} unless uri.scheme == \"https\" && ALLOWED_HOSTS.include?(uri.host)",
                    err(400, "host not allowed")
                ),
                "body = Net::HTTP.get(uri)".into(),
                json("{ body: body[0, 2000] }"),
            ];
        }
        "bola" => {
            s.needs_user = true;
            s.route = Route::Item;
            s.name = "show".into();
            s.vuln = vec![format!("item = {m}.find(params[:id])"), json("item")];
            s.fixed = vec![
                format!(
                    "item = {m}.find_by!(id: params[:id], {}: current_user.id)",
                    c.owner
                ),
                json("item"),
            ];
        }
        "open_redirect" => {
            s.needs_param = true;
            s.name = "after_login".into();
            s.route = Route::Action("continue");
            s.vuln = vec![format!("redirect_to {p}, allow_other_host: true")];
            s.fixed = vec![
                format!("{p} = \"/\" unless {p}.start_with?(\"/\") && !{p}.start_with?(\"//\")"),
                format!("redirect_to {p}"),
            ];
        }
        "hardcoded_secrets" => {
            s.method = "POST";
            s.name = "notify".into();
            s.route = Route::Action("notify");
            s.top_vuln = vec![format!("{} = \"{}\"", c.secret_name, c.secret_value)];
            s.top_fixed = vec![format!(
                "{} = ENV.fetch(\"{}\")",
                c.secret_name, c.secret_name
            )];
            let b = vec![
                format!("uri = URI(\"{}\")", c.upstream),
                format!("resp = Net::HTTP.post(uri, request.raw_post, \"Authorization\" => \"Bearer #{{{}}}\")", c.secret_name),
                json("{ sent: resp.is_a?(Net::HTTPSuccess) }"),
            ];
            s.vuln = b.clone();
            s.fixed = b;
        }
        "weak_cryptography" => {
            s.method = "POST";
            s.name = "register".into();
            s.route = Route::Action("register");
            let algo = if c.style == 1 { "SHA1" } else { "MD5" };
            let store = vec![
                format!("{m}.create!(email: params[:email], pw_hash: digest)"),
                json("{ created: true }"),
            ];
            s.vuln = vec![format!(
                "digest = Digest::{algo}.hexdigest(params[:{}].to_s)",
                c.pw
            )];
            s.vuln.extend(store.clone());
            s.fixed = vec![format!(
                "digest = BCrypt::Password.create(params[:{}].to_s, cost: 12)",
                c.pw
            )];
            s.fixed.extend(store);
        }
        "mass_assignment" => {
            s.method = "PUT";
            s.needs_user = true;
            s.route = Route::Item;
            s.name = "update".into();
            let load = format!(
                "item = {m}.find_by!(id: params[:id], {}: current_user.id)",
                c.owner
            );
            let safe = c
                .safe
                .iter()
                .map(|f| format!(":{f}"))
                .collect::<Vec<_>>()
                .join(", ");
            s.vuln = vec![
                load.clone(),
                format!("item.update!(params.require(:{}).permit!)", c.entity),
                json("item"),
            ];
            s.fixed = vec![
                load,
                format!("item.update!(params.require(:{}).permit({safe}))", c.entity),
                json("item"),
            ];
        }
        "broken_function_level_authorization" => {
            s.method = "DELETE";
            s.needs_user = true;
            s.route = Route::Item;
            s.name = "destroy".into();
            let b = vec![
                format!("{m}.where(id: params[:id]).delete_all"),
                json("{ deleted: params[:id] }"),
            ];
            s.vuln = b.clone();
            s.fixed = vec![format!(
                "{} unless current_user.admin?",
                err(403, "admin only")
            )];
            s.fixed.extend(b);
        }
        "xss" => {
            s.needs_param = true;
            s.name = "page".into();
            s.route = Route::Action("page");
            s.vuln = vec![format!(
                "render html: \"<p>{} #{{{p}}}</p>\".html_safe",
                c.phrase
            )];
            s.fixed = vec![format!(
                "render html: \"<p>{} #{{ERB::Util.html_escape({p})}}</p>\".html_safe",
                c.phrase
            )];
        }
        "insecure_deserialization" => {
            s.method = "POST";
            s.needs_param = true;
            s.name = "restore".into();
            s.route = Route::Action("restore");
            s.vuln = vec![
                format!("obj = Marshal.load(Base64.decode64({p}))"),
                json("{ restored: obj.class.name }"),
            ];
            s.fixed = vec![
                format!("obj = JSON.parse(Base64.decode64({p}))"),
                json("{ restored: obj.class.name }"),
            ];
        }
        _ => return None,
    }
    let _ = tbl;
    Some(s)
}

fn rb_file(c: &Ctx, s: &Snip, fixed: bool) -> String {
    let unit = " ".repeat(if c.indent == 4 { 2 } else { c.indent });
    let p = &c.param;
    let mut out = String::from("require \"net/http\"\nrequire \"open3\"\nrequire \"base64\"\n\n");
    let route = route_path(c, s.route).replace("{id}", ":id");
    out.push_str(&format!(
        "# config/routes.rb: {} \"{route}\", to: \"{}#{}\"\n",
        s.method.to_lowercase(),
        c.entities,
        s.name
    ));
    out.push_str(&format!(
        "class {}Controller < ApplicationController\n",
        pascal(&c.entities)
    ));
    let top = if fixed { &s.top_fixed } else { &s.top_vuln };
    if !top.is_empty() {
        out.push_str(&indent_lines(top, 1, &unit));
        out.push('\n');
    }
    if s.needs_user {
        out.push_str(&format!("{unit}before_action :authenticate_user!\n\n"));
    }
    if c.comment {
        out.push_str(&format!("{unit}# {} {route}\n", s.method));
    }
    out.push_str(&format!("{unit}def {}\n", s.name));
    let mut body = Vec::new();
    if s.needs_param {
        body.push(format!("{p} = params[:{p}].to_s"));
    }
    if c.log {
        body.push(format!("Rails.logger.info(\"{} called\")", s.name));
    }
    body.extend(if fixed {
        s.fixed.clone()
    } else {
        s.vuln.clone()
    });
    out.push_str(&indent_lines(&body, 2, &unit));
    out.push_str(&format!("{unit}end\nend\n"));
    out
}

// ---------------------------------------------------------------- C# (ASP.NET Core)

fn cs_snip(t: &str, c: &Ctx) -> Option<Snip> {
    let p = camel(&c.param);
    let tbl = &c.entities;
    let m = pascal(&c.entity);
    let err =
        |code: u16, msg: &str| format!("return StatusCode({code}, new {{ error = \"{msg}\" }});");
    let mut s = Snip {
        method: "GET",
        name: format!("{}_{}", c.verb, c.entities),
        ..Default::default()
    };
    let rows = camel(&c.rows);
    match t {
        "sql_injection" => {
            s.needs_param = true;
            s.name = format!("search_{}", c.entities);
            s.route = Route::Action("search");
            let sql = format!("SELECT * FROM {tbl} WHERE {} = ", c.col);
            let vq = if c.style == 0 {
                format!("$\"{sql}'{{{p}}}'\"")
            } else {
                format!("\"{sql}'\" + {p} + \"'\"")
            };
            s.vuln = vec![
                format!("var {rows} = _db.{m}s.FromSqlRaw({vq}).ToList();"),
                format!("return Ok({rows});"),
            ];
            s.fixed = vec![
                format!("var {rows} = _db.{m}s.FromSqlRaw(\"{sql}{{0}}\", {p}).ToList();"),
                format!("return Ok({rows});"),
            ];
        }
        "command_injection" => {
            s.needs_param = true;
            s.name = format!("diagnose_{}", c.param);
            s.route = Route::Action("diagnostics");
            s.vuln = vec![
                format!("var psi = new ProcessStartInfo(\"/bin/sh\", \"-c \\\"{} \" + {p} + \"\\\"\") {{ RedirectStandardOutput = true }};", c.cmd.0),
                "using var proc = Process.Start(psi)!;".into(),
                "return Ok(new { output = proc.StandardOutput.ReadToEnd() });".into(),
            ];
            s.fixed = vec![
                format!("if (!Regex.IsMatch({p}, \"^[A-Za-z0-9.-]{{1,253}}$\")) {{"),
                format!("\t{}", err(400, "invalid host")),
                "}".into(),
                format!(
                    "var psi = new ProcessStartInfo(\"{}\") {{ RedirectStandardOutput = true }};",
                    c.cmd.1[0]
                ),
            ];
            for a in c.cmd.1.iter().skip(1) {
                s.fixed.push(format!("psi.ArgumentList.Add(\"{a}\");"));
            }
            s.fixed.extend([
                format!("psi.ArgumentList.Add({p});"),
                "using var proc = Process.Start(psi)!;".into(),
                "return Ok(new { output = proc.StandardOutput.ReadToEnd() });".into(),
            ]);
        }
        "path_traversal" => {
            s.needs_param = true;
            s.name = format!("download_{}", c.entity);
            s.route = Route::Action("download");
            s.top_vuln = vec![format!(
                "private const string BaseDir = \"{}\";",
                c.base_dir
            )];
            s.top_fixed = s.top_vuln.clone();
            s.vuln = vec![
                format!("var full = Path.Combine(BaseDir, {p});"),
                "var content = System.IO.File.ReadAllBytes(full);".into(),
                "return Ok(new { size = content.Length });".into(),
            ];
            s.fixed = vec![
                format!("var full = Path.GetFullPath(Path.Combine(BaseDir, {p}));"),
                "if (!full.StartsWith(BaseDir + Path.DirectorySeparatorChar)) {".into(),
                format!("\t{}", err(400, "invalid file name")),
                "}".into(),
                "var content = System.IO.File.ReadAllBytes(full);".into(),
                "return Ok(new { size = content.Length });".into(),
            ];
        }
        "ssrf" => {
            s.needs_param = true;
            s.name = format!("preview_{}", c.param);
            s.route = Route::Action("preview");
            let hosts = c
                .allowed
                .iter()
                .map(|h| format!("\"{h}\""))
                .collect::<Vec<_>>()
                .join(", ");
            s.top_fixed = vec![format!(
                "private static readonly HashSet<string> AllowedHosts = new() {{ {hosts} }};"
            )];
            s.vuln = vec![
                format!("var body = await _http.GetStringAsync({p});"),
                "return Ok(new { body });".into(),
            ];
            s.fixed = vec![
                format!("if (!Uri.TryCreate({p}, UriKind.Absolute, out var uri) || uri.Scheme != \"https\" || !AllowedHosts.Contains(uri.Host)) {{"),
                format!("\t{}", err(400, "host not allowed")),
                "}".into(),
                "var body = await _http.GetStringAsync(uri);".into(),
                "return Ok(new { body });".into(),
            ];
        }
        "bola" => {
            s.needs_user = true;
            s.route = Route::Item;
            s.name = format!("{}_{}", c.verb, c.entity);
            s.vuln = vec![format!(
                "var item = await _db.{m}s.FirstOrDefaultAsync(x => x.Id == id);"
            )];
            s.fixed = vec![format!("var item = await _db.{m}s.FirstOrDefaultAsync(x => x.Id == id && x.{} == CurrentUserId());", pascal(&c.owner))];
            for v in [&mut s.vuln, &mut s.fixed] {
                v.extend([
                    "if (item == null) {".to_string(),
                    format!("\t{}", err(404, "not found")),
                    "}".into(),
                    "return Ok(item);".into(),
                ]);
            }
        }
        "open_redirect" => {
            s.needs_param = true;
            s.name = "after_login".into();
            s.route = Route::Action("continue");
            s.vuln = vec![format!("return Redirect({p});")];
            s.fixed = vec![
                format!("if (!Url.IsLocalUrl({p})) {{"),
                format!("\t{p} = \"/\";"),
                "}".into(),
                format!("return LocalRedirect({p});"),
            ];
        }
        "hardcoded_secrets" => {
            s.method = "POST";
            s.needs_body = true;
            s.name = format!("notify_{}", c.entity);
            s.route = Route::Action("notify");
            let name = pascal(&c.secret_name.to_lowercase());
            s.top_vuln = vec![format!(
                "private const string {name} = \"{}\";",
                c.secret_value
            )];
            s.top_fixed = vec![format!("private static readonly string {name} = Environment.GetEnvironmentVariable(\"{}\") ?? throw new InvalidOperationException(\"{} is not set\");", c.secret_name, c.secret_name)];
            let b = vec![
                format!("_http.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue(\"Bearer\", {name});"),
                format!("var resp = await _http.PostAsJsonAsync(\"{}\", payload);", c.upstream),
                "return Ok(new { sent = resp.IsSuccessStatusCode });".into(),
            ];
            s.vuln = b.clone();
            s.fixed = b;
        }
        "weak_cryptography" => {
            s.method = "POST";
            s.needs_body = true;
            s.name = format!("register_{}", c.entity);
            s.route = Route::Action("register");
            let pw = pascal(&c.pw);
            let algo = if c.style == 1 { "SHA1" } else { "MD5" };
            s.vuln = vec![format!("var digest = Convert.ToHexString({algo}.HashData(Encoding.UTF8.GetBytes(payload.{pw})));")];
            s.fixed = vec![
                "var salt = RandomNumberGenerator.GetBytes(16);".into(),
                format!("var digest = Convert.ToHexString(salt) + \":\" + Convert.ToHexString(Rfc2898DeriveBytes.Pbkdf2(payload.{pw}, salt, 210000, HashAlgorithmName.SHA512, 32));"),
            ];
            for v in [&mut s.vuln, &mut s.fixed] {
                v.push(format!(
                    "_db.{m}s.Add(new {m} {{ Email = payload.Email, PwHash = digest }});"
                ));
                v.push("await _db.SaveChangesAsync();".into());
                v.push("return Ok(new { created = true });".into());
            }
        }
        "mass_assignment" => {
            s.method = "PUT";
            s.needs_body = true;
            s.needs_user = true;
            s.route = Route::Item;
            s.name = format!("update_{}", c.entity);
            let load = vec![
                format!("var item = await _db.{m}s.FirstOrDefaultAsync(x => x.Id == id && x.{} == CurrentUserId());", pascal(&c.owner)),
                "if (item == null) {".to_string(),
                format!("\t{}", err(404, "not found")),
                "}".into(),
            ];
            s.vuln = load.clone();
            s.vuln
                .push("_db.Entry(item).CurrentValues.SetValues(payload);".into());
            s.fixed = load;
            for f in &c.safe {
                s.fixed.push(format!("item.{0} = payload.{0};", pascal(f)));
            }
            for v in [&mut s.vuln, &mut s.fixed] {
                v.push("await _db.SaveChangesAsync();".into());
                v.push("return Ok(item);".into());
            }
        }
        "broken_function_level_authorization" => {
            s.method = "DELETE";
            s.needs_user = true;
            s.route = Route::Item;
            s.name = format!("delete_{}", c.entity);
            s.fixed = vec![
                "if (!User.IsInRole(\"Admin\")) {".into(),
                format!("\t{}", err(403, "admin only")),
                "}".into(),
            ];
            for v in [&mut s.vuln, &mut s.fixed] {
                v.push(format!("await _db.Database.ExecuteSqlRawAsync(\"DELETE FROM {tbl} WHERE Id = {{0}}\", id);"));
                v.push("return Ok(new { deleted = id });".into());
            }
        }
        "xss" => {
            s.needs_param = true;
            s.name = format!("search_page_{}", c.entities);
            s.route = Route::Action("page");
            s.vuln = vec![format!(
                "return Content(\"<p>{} \" + {p} + \"</p>\", \"text/html\");",
                c.phrase
            )];
            s.fixed = vec![format!("return Content(\"<p>{} \" + HtmlEncoder.Default.Encode({p}) + \"</p>\", \"text/html\");", c.phrase)];
        }
        "insecure_deserialization" => {
            s.method = "POST";
            s.needs_param = true;
            s.name = format!("restore_{}", c.param);
            s.route = Route::Action("restore");
            s.vuln = vec![
                format!("using var ms = new MemoryStream(Convert.FromBase64String({p}));"),
                "var obj = new BinaryFormatter().Deserialize(ms);".into(),
                "return Ok(new { restored = obj.GetType().Name });".into(),
            ];
            s.fixed = vec![
                format!("var obj = JsonSerializer.Deserialize<Dictionary<string, string>>(Convert.FromBase64String({p}));"),
                "return Ok(new { restored = obj?.Count ?? 0 });".into(),
            ];
        }
        _ => return None,
    }
    Some(s)
}

const CS_USINGS: &[(&str, &str)] = &[
    ("ProcessStartInfo", "System.Diagnostics"),
    ("AuthenticationHeaderValue", "System.Net.Http.Headers"),
    ("PostAsJsonAsync", "System.Net.Http.Json"),
    (
        "BinaryFormatter",
        "System.Runtime.Serialization.Formatters.Binary",
    ),
    ("RandomNumberGenerator", "System.Security.Cryptography"),
    ("MD5.", "System.Security.Cryptography"),
    ("SHA1.", "System.Security.Cryptography"),
    ("Encoding.", "System.Text"),
    ("HtmlEncoder", "System.Text.Encodings.Web"),
    ("JsonSerializer", "System.Text.Json"),
    ("Regex.", "System.Text.RegularExpressions"),
    ("[Authorize]", "Microsoft.AspNetCore.Authorization"),
    ("ControllerBase", "Microsoft.AspNetCore.Mvc"),
    ("FirstOrDefaultAsync", "Microsoft.EntityFrameworkCore"),
    ("FromSqlRaw", "Microsoft.EntityFrameworkCore"),
    ("ExecuteSqlRawAsync", "Microsoft.EntityFrameworkCore"),
];

fn cs_file(c: &Ctx, s: &Snip, fixed: bool) -> String {
    let unit = " ".repeat(c.indent);
    let p = camel(&c.param);
    let m = pascal(&c.entity);
    let k = c.knobs;
    let db = ["_db", "_context", "_dbContext", "_store", "_db", "_data"][k[2]];
    let http = [
        "_http",
        "_client",
        "_httpClient",
        "_http",
        "_web",
        "_upstream",
    ][k[3]];
    let ctx_ty = [
        "AppDbContext",
        "ShopContext",
        "ApiDbContext",
        "DataContext",
        "AppDbContext",
        "MainDbContext",
    ][k[4]];
    let ns = [
        "Api.Controllers",
        "Shop.Web.Controllers",
        "Company.Service.Api",
        "App.Endpoints",
        "Backend.Controllers",
        "Portal.Api.Controllers",
    ][k[0]];
    let ctrl = match k[1] {
        0..=3 => format!("{}Controller", pascal(&c.entities)),
        _ => format!("{}ApiController", pascal(&c.entity)),
    };
    let mut body = Vec::new();
    if c.log {
        body.push(format!(
            "_logger.LogInformation(\"{} called\");",
            pascal(&s.name)
        ));
    }
    body.extend(if fixed {
        s.fixed.clone()
    } else {
        s.vuln.clone()
    });
    if !body.iter().any(|l| l.contains("await ")) {
        body.insert(0, "await Task.CompletedTask;".into());
    }
    let body: Vec<String> = body
        .iter()
        .map(|l| {
            l.replace("_db.", &format!("{db}."))
                .replace("_http.", &format!("{http}."))
        })
        .collect();
    let text = body.join("\n");
    let uses_db = text.contains(&format!("{db}."));
    let uses_http = text.contains(&format!("{http}."));
    let mut cls = String::from("[ApiController]\n");
    cls.push_str(&format!(
        "[Route(\"{}/{}\")]\n",
        c.prefix.trim_start_matches('/'),
        c.entities
    ));
    if s.needs_user {
        cls.push_str("[Authorize]\n");
    }
    cls.push_str(&format!("public class {ctrl} : ControllerBase\n{{\n"));
    let mut fields = Vec::new();
    let mut args = Vec::new();
    let mut sets = Vec::new();
    if uses_db {
        fields.push(format!("private readonly {ctx_ty} {db};"));
        args.push(format!("{ctx_ty} db"));
        sets.push(format!("{db} = db;"));
    }
    if uses_http {
        fields.push(format!("private readonly HttpClient {http};"));
        args.push("HttpClient http".to_string());
        sets.push(format!("{http} = http;"));
    }
    fields.extend(if fixed {
        s.top_fixed.clone()
    } else {
        s.top_vuln.clone()
    });
    if !fields.is_empty() {
        cls.push_str(&indent_lines(&fields, 1, &unit));
        cls.push('\n');
    }
    if !args.is_empty() {
        cls.push_str(&format!(
            "{unit}public {ctrl}({})\n{unit}{{\n",
            args.join(", ")
        ));
        cls.push_str(&indent_lines(&sets, 2, &unit));
        cls.push_str(&format!("{unit}}}\n\n"));
    }
    let sub = match s.route {
        Route::Collection => String::new(),
        Route::Item => "{id}".into(),
        Route::Action(a) => a.to_string(),
    };
    let attr = match s.method {
        "POST" => "HttpPost",
        "PUT" => "HttpPut",
        "DELETE" => "HttpDelete",
        _ => "HttpGet",
    };
    if c.comment {
        cls.push_str(&format!("{unit}// {} {}/{sub}\n", s.method, c.entities));
    }
    cls.push_str(&format!("{unit}[{attr}(\"{sub}\")]\n"));
    let mut sig = Vec::new();
    if s.route == Route::Item {
        sig.push("long id".to_string());
    }
    if s.needs_param {
        let from = if s.method == "GET" {
            "FromQuery"
        } else {
            "FromForm"
        };
        sig.push(format!("[{from}] string {p}"));
    }
    if s.needs_body {
        sig.push(format!("[FromBody] {m}Input payload"));
    }
    cls.push_str(&format!(
        "{unit}public async Task<IActionResult> {}({})\n{unit}{{\n",
        pascal(&s.name),
        sig.join(", ")
    ));
    cls.push_str(&indent_lines(&body, 2, &unit));
    cls.push_str(&format!("{unit}}}\n}}\n"));
    let usings = imports_by_usage(&cls, CS_USINGS);
    let mut out = String::new();
    for u in usings {
        out.push_str(&format!("using {u};\n"));
    }
    out.push_str(&format!("\nnamespace {ns};\n\n"));
    out.push_str(&cls);
    out
}

// ---------------------------------------------------------------- samples

fn snippet(t: &str, c: &Ctx) -> Option<Snip> {
    match c.fw.language() {
        "python" => py_snip(t, c),
        "javascript" | "typescript" => js_snip(t, c),
        "java" => java_snip(t, c),
        "php" => php_snip(t, c),
        "go" => go_snip(t, c),
        "ruby" => rb_snip(t, c),
        _ => cs_snip(t, c),
    }
}

/// Render the source file of one variant.
pub fn render_file(c: &Ctx, s: &Snip, fixed: bool) -> String {
    match c.fw {
        Fw::Flask | Fw::FastApi | Fw::Django => py_file(c, s, fixed),
        Fw::Express | Fw::Nest => js_file(c, s, fixed),
        Fw::Spring => java_file(c, s, fixed),
        Fw::Laravel => php_file(c, s, fixed),
        Fw::Gin => go_file(c, s, fixed),
        Fw::Rails => rb_file(c, s, fixed),
        Fw::AspNet => cs_file(c, s, fixed),
    }
}

fn reason(t: &str, c: &Ctx, handler: &str, param: &str) -> (String, String) {
    let v = match t {
        "sql_injection" => format!("`{handler}` builds its SQL statement by inserting the `{param}` request parameter into the query text, so quotes and SQL keywords in `{param}` change the statement: an attacker can dump or modify the `{}` table or bypass filters.", c.entities),
        "command_injection" => format!("`{handler}` passes `{param}` to a shell as part of the `{}` command line; shell metacharacters such as `;` or `$( )` in `{param}` run arbitrary commands on the server.", c.cmd.0),
        "path_traversal" => format!("`{handler}` joins the client-supplied `{param}` to `{}` and reads the result without checking where it points, so `../` sequences or an absolute path read any file the service can access.", c.base_dir),
        "ssrf" => format!("`{handler}` fetches whatever URL arrives in `{param}`; the request leaves from inside the network, so it can reach metadata services and internal APIs."),
        "bola" => format!("`{handler}` loads the {} by the id in the path and returns it without checking that it belongs to the caller, so changing the id reveals other users' records.", c.entity),
        "open_redirect" => format!("`{handler}` redirects to the `{param}` value without validating it, so a link on this site can send users to an attacker's page."),
        "hardcoded_secrets" => format!("The credential `{}` is written in the source file; anyone who can read the repository or the built artefact can use it against `{}`.", c.secret_name, c.upstream.split('/').nth(2).unwrap_or("the upstream API")),
        "weak_cryptography" => format!("`{handler}` stores the `{}` with a single fast unsalted {} digest, which leaked hashes let attackers reverse with precomputed tables and GPUs.", c.pw, if c.style == 1 { "SHA-1" } else { "MD5" }),
        "mass_assignment" => format!("`{handler}` copies every field of the request body onto the {}, so a caller can also set fields such as `{}` that must only change through server-side logic.", c.entity, c.privileged),
        "broken_function_level_authorization" => format!("`{handler}` deletes any {} for any authenticated caller; it never checks for an administrator role, so ordinary users can call this administrative operation.", c.entity),
        "xss" => format!("`{handler}` writes the `{param}` parameter into an HTML response without encoding it, so a crafted link runs script in the victim's browser."),
        "insecure_deserialization" => format!("`{handler}` deserializes the client-controlled `{param}` blob with a deserializer that can instantiate arbitrary types, which lets a crafted payload execute code."),
        _ => String::new(),
    };
    let f = match t {
        "sql_injection" => format!("Pass `{param}` as a bound parameter and keep the SQL text constant."),
        "command_injection" => "Validate the host against a strict pattern and run the program with an argument list, without a shell.".to_string(),
        "path_traversal" => "Resolve the path and refuse it unless it stays inside the base directory.".to_string(),
        "ssrf" => "Allow only https URLs whose host is on an explicit allow-list and do not follow redirects.".to_string(),
        "bola" => format!("Scope the lookup to the authenticated user (`{}`).", c.owner),
        "open_redirect" => "Accept only local paths (starting with one `/`) and fall back to `/`.".to_string(),
        "hardcoded_secrets" => format!("Read `{}` from the environment or a secret manager and rotate the exposed value.", c.secret_name),
        "weak_cryptography" => "Hash passwords with a slow salted algorithm such as bcrypt, argon2 or PBKDF2.".to_string(),
        "mass_assignment" => format!("Bind only the writable fields ({}).", c.safe.join(", ")),
        "broken_function_level_authorization" => "Require the administrator role before deleting.".to_string(),
        "xss" => "HTML-encode the value before writing it into the page.".to_string(),
        "insecure_deserialization" => "Parse the blob as JSON into plain data instead.".to_string(),
        _ => String::new(),
    };
    (v, f)
}

fn safe_reason(t: &str, c: &Ctx, handler: &str, param: &str) -> String {
    match t {
        "sql_injection" => format!("`{handler}` sends `{param}` to the database as a bound parameter; the SQL text is constant, so the value cannot change the query."),
        "command_injection" => format!("`{handler}` checks `{param}` against a strict host pattern and starts `{}` with an argument list, without a shell.", c.cmd.1[0]),
        "path_traversal" => format!("`{handler}` resolves the requested path and rejects it unless it stays under `{}`.", c.base_dir),
        "ssrf" => format!("`{handler}` only fetches https URLs whose host is on the allow-list ({}).", c.allowed.join(", ")),
        "bola" => format!("`{handler}` looks the {} up together with the caller's id (`{}`), so other users' records are not returned.", c.entity, c.owner),
        "open_redirect" => format!("`{handler}` only redirects to local paths; anything else falls back to `/`."),
        "hardcoded_secrets" => format!("The credential `{}` is read from the environment at run time; no secret is present in the source.", c.secret_name),
        "weak_cryptography" => format!("`{handler}` hashes the `{}` with a slow, salted password-hashing function.", c.pw),
        "mass_assignment" => format!("`{handler}` copies only an explicit list of writable fields ({}).", c.safe.join(", ")),
        "broken_function_level_authorization" => format!("`{handler}` checks for the administrator role before deleting the {}.", c.entity),
        "xss" => format!("`{handler}` HTML-encodes `{param}` before writing it into the page."),
        "insecure_deserialization" => format!("`{handler}` parses `{param}` as JSON into plain data; no arbitrary types are instantiated."),
        _ => String::new(),
    }
}

fn handler_name(c: &Ctx, s: &Snip) -> String {
    match c.fw.language() {
        "python" | "ruby" => s.name.clone(),
        "go" | "csharp" => pascal(&s.name),
        _ => camel(&s.name),
    }
}

fn param_name(c: &Ctx) -> String {
    match c.fw.language() {
        "python" | "ruby" => c.param.clone(),
        "php" => format!("${}", camel(&c.param)),
        _ => camel(&c.param),
    }
}

/// One template instance: (vulnerable sample, fixed twin), or `None` where the type has no
/// template in the drawn framework (the caller draws again).
pub fn instance(rng: &mut Rng, t: &str) -> Option<(Sample, Sample)> {
    let fw = Fw::pick(rng);
    instance_in(rng, t, fw)
}

/// Like [`instance`] for a given framework.
pub fn instance_in(rng: &mut Rng, t: &str, fw: Fw) -> Option<(Sample, Sample)> {
    let c = Ctx::new(rng, fw, t);
    let s = snippet(t, &c)?;
    let vt = Taxonomy::builtin().by_id(t)?;
    let vuln_code = render_file(&c, &s, false);
    let fixed_code = render_file(&c, &s, true);
    let endpoint = format!("{} {}", s.method, route_path(&c, s.route));
    let h = handler_name(&c, &s);
    let p = param_name(&c);
    let (why, fix) = reason(t, &c, &h, &p);
    let mut v = Sample::new(SampleKind::Code);
    v.code = Some(vuln_code);
    v.language = Some(fw.language().into());
    v.framework = Some(fw.name().into());
    v.endpoint = Some(endpoint.clone());
    v.is_vulnerable = true;
    v.vuln_type = Some(t.into());
    v.cwe = Some(vt.cwe.id);
    v.severity = Some(vt.severity);
    v.analysis = format!("Reason: {why}\nFix: {fix}");
    v.fixed_code = Some(fixed_code.clone());
    let mut f = Sample::new(SampleKind::Code);
    f.code = Some(fixed_code);
    f.language = v.language.clone();
    f.framework = v.framework.clone();
    f.endpoint = Some(endpoint);
    f.is_vulnerable = false;
    f.vuln_type = Some(t.into());
    f.analysis = format!("Reason: {}", safe_reason(t, &c, &h, &p));
    Some((v, f))
}
