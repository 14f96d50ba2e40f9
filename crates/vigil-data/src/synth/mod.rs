//! The built-in deterministic generator (MISSION M8, `vigil data generate`).
//!
//! - [`code`]: API endpoints in Python (Flask, FastAPI, Django), JavaScript (Express),
//!   TypeScript (NestJS), Java (Spring Boot), PHP (Laravel), Go (Gin), Ruby (Rails) and C#
//!   (ASP.NET Core), each vulnerable variant with its fixed twin, a structured analysis and
//!   the remediated code.
//! - [`http`]: HTTP request / response pairs (security headers, cookies, CORS, reflected
//!   XSS, open redirect, verbose errors and version banners), each with a secure twin.
//!
//! Variety comes from mutations drawn from [`Rng`] (entity and identifier names, routes,
//! parameters, query / ORM style, indentation and quoting, optional logging and comments,
//! user agents, header order). [`Rng`] is a hand-written SplitMix64 so that a given `--seed`
//! yields the same dataset on every platform and with every version of the `rand` crate
//! (whose `StdRng` stream is explicitly not stable across releases).

pub mod code;
pub mod http;

use crate::sample::Sample;

/// SplitMix64 (Steele, Lea, Flood 2014): tiny, fast, and fixed forever.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed ^ 0x9E37_79B9_7F4A_7C15)
    }
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    /// Uniform in 0..n (n > 0).
    pub fn below(&mut self, n: usize) -> usize {
        (((self.next_u64() >> 11) as u128 * n as u128) >> 53) as usize
    }
    pub fn pick<'a, T>(&mut self, xs: &'a [T]) -> &'a T {
        &xs[self.below(xs.len())]
    }
    pub fn chance(&mut self, p: f64) -> bool {
        ((self.next_u64() >> 11) as f64 / (1u64 << 53) as f64) < p
    }
    /// A child generator for one item, independent of how many draws earlier items made.
    pub fn fork(&self, i: u64) -> Rng {
        let mut r = Rng(self.0 ^ i.wrapping_mul(0xD1B5_4A32_D192_ED03));
        r.next_u64();
        r
    }
}

/// What to generate.
#[derive(Debug, Clone)]
pub struct GenOptions {
    pub seed: u64,
    /// Number of samples (twins count separately).
    pub num: usize,
    /// Restrict to these vulnerability type ids (empty: all).
    pub vulns: Vec<String>,
    /// Only the vulnerable variant, no secure twin (the seed's `--nofp`).
    pub nofp: bool,
    /// Share of HTTP pairs (the rest is code); 0.0 to 1.0.
    pub http_share: f64,
}

impl Default for GenOptions {
    fn default() -> Self {
        GenOptions {
            seed: 42,
            num: 1000,
            vulns: Vec::new(),
            nofp: false,
            http_share: 0.25,
        }
    }
}

/// Every vulnerability type the generator can produce (code and HTTP).
pub fn supported_types() -> Vec<&'static str> {
    let mut v: Vec<&str> = code::TYPES.to_vec();
    for t in http::TYPES {
        if !v.contains(t) {
            v.push(t);
        }
    }
    v
}

/// Generate samples. Deterministic: the same options give the same samples in the same order.
pub fn generate(opts: &GenOptions, mut progress: impl FnMut(usize)) -> Result<Vec<Sample>, String> {
    let supported = supported_types();
    for v in &opts.vulns {
        if !supported.contains(&v.as_str()) {
            return Err(format!(
                "the generator has no templates for {v:?}; it knows: {}",
                supported.join(", ")
            ));
        }
    }
    let code_types: Vec<&str> = code::TYPES
        .iter()
        .copied()
        .filter(|t| opts.vulns.is_empty() || opts.vulns.iter().any(|v| v == t))
        .collect();
    let http_types: Vec<&str> = http::TYPES
        .iter()
        .copied()
        .filter(|t| opts.vulns.is_empty() || opts.vulns.iter().any(|v| v == t))
        .collect();
    let root = Rng::new(opts.seed);
    let mut out = Vec::with_capacity(opts.num + 1);
    let mut i = 0u64;
    while out.len() < opts.num {
        let mut rng = root.fork(i);
        let want_http =
            !http_types.is_empty() && (code_types.is_empty() || rng.chance(opts.http_share));
        let group = format!("gen:{}:{}", opts.seed, i);
        let pair = if want_http {
            let t = *rng.pick(&http_types);
            http::instance(&mut rng, t)
        } else {
            let t = *rng.pick(&code_types);
            match code::instance(&mut rng, t) {
                Some(p) => p,
                None => {
                    i += 1;
                    continue;
                }
            }
        };
        let (mut vuln, mut fixed) = pair;
        for s in [&mut vuln, &mut fixed] {
            s.group_id = group.clone();
            s.source = format!("generate:seed={}", opts.seed);
        }
        out.push(vuln);
        if !opts.nofp && out.len() < opts.num {
            out.push(fixed);
        }
        i += 1;
        if i.is_multiple_of(256) {
            progress(out.len());
        }
    }
    progress(out.len());
    Ok(out)
}
