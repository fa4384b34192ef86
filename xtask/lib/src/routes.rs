//! HTTP API routes as API Gateway matches them: route keys (`GET /hello/{name}`,
//! `ANY /{proxy+}`, `$default`) against a request's method and path.
//!
//! The most specific route wins, in this order:
//! 1. a route without a greedy `{name+}` beats one with it;
//! 2. segment by segment from the left, a literal beats a `{param}` (and, between greedy
//!    routes, a longer prefix before the greedy variable beats a shorter one);
//! 3. a route for the request's method beats `ANY` on the same path;
//! 4. `$default` catches only what no other route matches.
//!
//! A method must match exactly unless the route is `ANY`; `{param}` takes one non-empty segment
//! and `{name+}` one or more, so `ANY /{proxy+}` does not match `/`.

use std::collections::BTreeMap;

use anyhow::bail;
use lambda_stage_events::DEFAULT_STAGE_OR_ROUTE;

use crate::manifest::triggers::check_route;

/// One parsed route key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    key: String,
    pattern: Pattern,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Pattern {
    /// `$default`.
    CatchAll,
    Path {
        /// `None`: `ANY`.
        method: Option<String>,
        segments: Vec<Segment>,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Segment {
    Literal(String),
    Param(String),
    /// `{name+}`, always last.
    Greedy(String),
}

/// How specific a matching route is; the greatest wins.
#[derive(Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Specificity {
    without_greedy: bool,
    /// 1 for a literal, 0 for a `{param}`, left to right, up to any greedy variable.
    segments: Vec<u8>,
    exact_method: bool,
}

impl Route {
    /// Parses a route key as the manifest's `http.routes` holds it.
    pub fn parse(key: &str) -> anyhow::Result<Route> {
        if let Err(message) = check_route(key) {
            bail!("{message}");
        }
        if key == DEFAULT_STAGE_OR_ROUTE {
            return Ok(Route {
                key: key.to_owned(),
                pattern: Pattern::CatchAll,
            });
        }
        let (method, path) = key.split_once(' ').expect("check_route: `METHOD /path`");
        let segments = path
            .trim_start_matches('/')
            .split('/')
            .filter(|segment| !segment.is_empty())
            .map(
                |segment| match segment.strip_prefix('{').and_then(|s| s.strip_suffix('}')) {
                    Some(name) => match name.strip_suffix('+') {
                        Some(greedy) => Segment::Greedy(greedy.to_owned()),
                        None => Segment::Param(name.to_owned()),
                    },
                    None => Segment::Literal(segment.to_owned()),
                },
            )
            .collect();
        Ok(Route {
            key: key.to_owned(),
            pattern: Pattern::Path {
                method: (method != "ANY").then(|| method.to_owned()),
                segments,
            },
        })
    }

    /// The route key as written (`GET /hello/{name}`).
    pub fn key(&self) -> &str {
        &self.key
    }

    /// The method and path a client would use (`$default` shows as `* /*`), for listings.
    pub fn display_parts(&self) -> (&str, &str) {
        match &self.pattern {
            Pattern::CatchAll => ("*", "/*"),
            Pattern::Path { method, .. } => (
                method.as_deref().unwrap_or("ANY"),
                self.key.split_once(' ').map_or("/", |(_, path)| path),
            ),
        }
    }

    /// A request this route matches: `GET` for `ANY`, and each path variable filled with its own
    /// name (`GET /hello/{name}` → `GET /hello/name`), so the event shows which value went where.
    pub fn sample_request(&self) -> (String, String) {
        match &self.pattern {
            Pattern::CatchAll => ("GET".to_owned(), "/".to_owned()),
            Pattern::Path { method, segments } => {
                let path: String = segments
                    .iter()
                    .map(|segment| match segment {
                        Segment::Literal(text) | Segment::Param(text) | Segment::Greedy(text) => {
                            format!("/{text}")
                        }
                    })
                    .collect();
                (
                    method.clone().unwrap_or_else(|| "GET".to_owned()),
                    if path.is_empty() {
                        "/".to_owned()
                    } else {
                        path
                    },
                )
            }
        }
    }

    /// The path parameters and specificity when this route (other than `$default`) matches.
    fn matches(&self, method: &str, path: &str) -> Option<(BTreeMap<String, String>, Specificity)> {
        let Pattern::Path {
            method: route_method,
            segments,
        } = &self.pattern
        else {
            return None;
        };
        if route_method.as_deref().is_some_and(|m| m != method) {
            return None;
        }
        let request: Vec<&str> = match path.strip_prefix('/')? {
            "" => Vec::new(),
            rest => rest.split('/').collect(),
        };
        let mut parameters = BTreeMap::new();
        let mut specificity = Specificity {
            without_greedy: true,
            segments: Vec::new(),
            exact_method: route_method.is_some(),
        };
        for (index, segment) in segments.iter().enumerate() {
            match segment {
                Segment::Greedy(name) => {
                    let rest = request.get(index..).unwrap_or_default().join("/");
                    if rest.is_empty() {
                        return None;
                    }
                    parameters.insert(name.clone(), decode(&rest));
                    specificity.without_greedy = false;
                    return Some((parameters, specificity));
                }
                Segment::Literal(text) => {
                    if request.get(index) != Some(&text.as_str()) {
                        return None;
                    }
                    specificity.segments.push(1);
                }
                Segment::Param(name) => {
                    let value = request.get(index).filter(|value| !value.is_empty())?;
                    parameters.insert(name.clone(), decode(value));
                    specificity.segments.push(0);
                }
            }
        }
        (request.len() == segments.len()).then_some((parameters, specificity))
    }
}

/// API Gateway hands path variables to the integration decoded (`Ada%20L` → `Ada L`).
fn decode(text: &str) -> String {
    percent_encoding::percent_decode_str(text)
        .decode_utf8_lossy()
        .into_owned()
}

/// The route that takes a request, its path variables, and what it leads to.
#[derive(Debug, PartialEq, Eq)]
pub struct Matched<'a, T> {
    pub route: &'a Route,
    pub target: &'a T,
    pub path_parameters: BTreeMap<String, String>,
}

/// Routes, each leading to a `T` (a function), matched as one API Gateway HTTP API matches
/// them.
#[derive(Debug, Clone)]
pub struct RouteTable<T> {
    routes: Vec<(Route, T)>,
}

impl<T> Default for RouteTable<T> {
    fn default() -> Self {
        RouteTable { routes: Vec::new() }
    }
}

impl<T> RouteTable<T> {
    pub fn add(&mut self, route: Route, target: T) {
        self.routes.push((route, target));
    }

    pub fn is_empty(&self) -> bool {
        self.routes.is_empty()
    }

    /// The routes in the order they were added.
    pub fn iter(&self) -> impl Iterator<Item = (&Route, &T)> {
        self.routes.iter().map(|(route, target)| (route, target))
    }

    /// The route a request for `method` and `path` (on the API, after any stage; still
    /// percent-encoded, no query) takes, or `None` where API Gateway answers 404.
    pub fn find(&self, method: &str, path: &str) -> Option<Matched<'_, T>> {
        let best = self
            .routes
            .iter()
            .filter_map(|(route, target)| {
                let (parameters, specificity) = route.matches(method, path)?;
                Some((specificity, route, target, parameters))
            })
            // On a tie (only the same key twice), the first added wins.
            .rev()
            .max_by(|a, b| a.0.cmp(&b.0));
        if let Some((_, route, target, path_parameters)) = best {
            return Some(Matched {
                route,
                target,
                path_parameters,
            });
        }
        self.routes
            .iter()
            .find(|(route, _)| route.pattern == Pattern::CatchAll)
            .map(|(route, target)| Matched {
                route,
                target,
                path_parameters: BTreeMap::new(),
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(keys: &[&'static str]) -> RouteTable<&'static str> {
        let mut table = RouteTable::default();
        for key in keys {
            table.add(Route::parse(key).unwrap(), *key);
        }
        table
    }

    /// The key of the route `METHOD /path` takes, or `None` for API Gateway's 404.
    fn winner(table: &RouteTable<&'static str>, request: &str) -> Option<&'static str> {
        let (method, path) = request.split_once(' ').unwrap();
        table.find(method, path).map(|matched| *matched.target)
    }

    #[test]
    fn literals_beat_parameters_which_beat_greedy_variables() {
        // API Gateway's own example of precedence.
        let routes = table(&[
            "ANY /{proxy+}",
            "GET /pets/{proxy+}",
            "GET /pets/dog/{id}",
            "GET /pets/dog/1",
            "$default",
        ]);
        assert_eq!(winner(&routes, "GET /pets/dog/1"), Some("GET /pets/dog/1"));
        assert_eq!(
            winner(&routes, "GET /pets/dog/2"),
            Some("GET /pets/dog/{id}")
        );
        assert_eq!(
            winner(&routes, "GET /pets/cat/1"),
            Some("GET /pets/{proxy+}")
        );
        assert_eq!(winner(&routes, "GET /test"), Some("ANY /{proxy+}"));
        assert_eq!(winner(&routes, "POST /pets/dog/1"), Some("ANY /{proxy+}"));
        // `{proxy+}` needs at least one segment: the root falls to `$default`.
        assert_eq!(winner(&routes, "GET /"), Some("$default"));
    }

    #[test]
    fn the_leftmost_literal_and_the_longer_greedy_prefix_win() {
        let routes = table(&[
            "GET /{kind}/dog",
            "GET /pets/{name}",
            "GET /{proxy+}",
            "GET /files/{proxy+}",
            "GET /files/img/{proxy+}",
        ]);
        assert_eq!(winner(&routes, "GET /pets/dog"), Some("GET /pets/{name}"));
        assert_eq!(winner(&routes, "GET /cats/dog"), Some("GET /{kind}/dog"));
        assert_eq!(
            winner(&routes, "GET /files/img/a/b.png"),
            Some("GET /files/img/{proxy+}")
        );
        assert_eq!(
            winner(&routes, "GET /files/doc/a.txt"),
            Some("GET /files/{proxy+}")
        );
        assert_eq!(winner(&routes, "GET /other/x/y"), Some("GET /{proxy+}"));
    }

    #[test]
    fn the_method_must_match_unless_any_and_beats_any_on_the_same_path() {
        let routes = table(&["ANY /orders/{id}", "DELETE /orders/{id}", "GET /hello"]);
        assert_eq!(
            winner(&routes, "DELETE /orders/7"),
            Some("DELETE /orders/{id}")
        );
        assert_eq!(winner(&routes, "PATCH /orders/7"), Some("ANY /orders/{id}"));
        assert_eq!(winner(&routes, "POST /hello"), None);
        assert_eq!(winner(&routes, "GET /hello"), Some("GET /hello"));
    }

    #[test]
    fn nothing_matches_without_default_where_segments_differ() {
        let routes = table(&["GET /hello/{name}"]);
        assert_eq!(winner(&routes, "GET /hello"), None);
        assert_eq!(winner(&routes, "GET /hello/"), None);
        assert_eq!(winner(&routes, "GET /hello/Ada/more"), None);
        assert_eq!(
            winner(&routes, "GET /Hello/Ada"),
            None,
            "literals are case-sensitive"
        );
    }

    #[test]
    fn path_parameters_are_decoded_and_greedy_takes_the_rest() {
        let routes = table(&["GET /hello/{name}", "ANY /files/{path+}", "POST /"]);
        let matched = routes.find("GET", "/hello/Ada%20Lovelace").unwrap();
        assert_eq!(matched.route.key(), "GET /hello/{name}");
        assert_eq!(matched.path_parameters["name"], "Ada Lovelace");
        let matched = routes.find("PUT", "/files/a/b/c.txt").unwrap();
        assert_eq!(matched.path_parameters["path"], "a/b/c.txt");
        let root = routes.find("POST", "/").unwrap();
        assert!(root.path_parameters.is_empty());
    }

    #[test]
    fn a_sample_request_matches_its_own_route() {
        for key in ["GET /hello/{name}", "ANY /{proxy+}", "POST /", "$default"] {
            let route = Route::parse(key).unwrap();
            let (method, path) = route.sample_request();
            let routes = table(&[key]);
            assert_eq!(
                routes.find(&method, &path).map(|m| m.route.key()),
                Some(key),
                "{method} {path}"
            );
        }
        assert_eq!(
            Route::parse("GET /hello/{name}").unwrap().sample_request(),
            ("GET".to_owned(), "/hello/name".to_owned())
        );
    }

    #[test]
    fn an_invalid_key_is_refused_with_the_manifest_rule() {
        let err = Route::parse("GET hello").unwrap_err().to_string();
        assert!(err.contains("must start with `/`"), "{err}");
    }
}
