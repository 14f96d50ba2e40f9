//! Route strings: joining prefixes and comparing routes across framework syntaxes.

/// Join route pieces the way frameworks concatenate a prefix and a sub-route: one `/`
/// between pieces, a leading `/`, no trailing `/` (except for the root itself).
pub fn join_route(parts: &[&str]) -> String {
    let mut segs: Vec<&str> = Vec::new();
    for p in parts {
        segs.extend(p.split('/').filter(|s| !s.is_empty()));
    }
    format!("/{}", segs.join("/"))
}

/// A framework-neutral form of a route for comparison: every path parameter (`{id}`,
/// `<int:id>`, `:id`, `{id:int}`, `*path`) becomes `{}`, and the route is re-joined.
pub fn route_pattern(route: &str) -> String {
    let segs: Vec<String> = route
        .split('/')
        .filter(|s| !s.is_empty())
        .map(|s| {
            let param = (s.starts_with('{') && s.ends_with('}'))
                || (s.starts_with('<') && s.ends_with('>'))
                || s.starts_with(':')
                || s.starts_with('*');
            if param {
                "{}".to_string()
            } else {
                s.to_string()
            }
        })
        .collect();
    format!("/{}", segs.join("/"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn joins_without_doubled_or_trailing_slashes() {
        assert_eq!(join_route(&["/api/", "/users/"]), "/api/users");
        assert_eq!(join_route(&["api", ""]), "/api");
        assert_eq!(join_route(&["", ""]), "/");
        assert_eq!(join_route(&["/v1", ":id"]), "/v1/:id");
    }

    #[test]
    fn parameters_of_every_syntax_compare_equal() {
        let want = "/api/users/{}";
        for r in [
            "/api/users/{id}",
            "/api/users/<int:item_id>",
            "api/users/:id",
            "/api/users/{id:long}",
        ] {
            assert_eq!(route_pattern(r), want, "{r}");
        }
        assert_ne!(route_pattern("/api/users/search"), want);
    }
}
