//! Validation of the values the manifest hands to processes: the variables (each environment's
//! and each function's own, plain and secret references) with their names, `required-vars`, the
//! deployed variables' total size, and the `package` and `features` cargo builds with.
//!
//! A value that no process can receive (a NUL byte in a variable, an empty package name) is
//! refused here, at its place in the file, rather than failing later in a build, an `invoke` or
//! a deploy. Values are never repeated in a message: a variable may hold something sensitive.

use std::collections::BTreeMap;

use super::{
    is_legal_variable_name, printable, variables_size, Manifest, Strategy, MAX_VARIABLES_BYTES,
    RESERVED_LAMBDA_VARIABLES, RESERVED_STAGE_VARIABLES, SECRET_REFERENCE_PREFIXES,
};

/// Problems found so far, as (manifest path, message).
#[derive(Default)]
struct Problems(Vec<(Vec<String>, String)>);

impl Problems {
    fn add(&mut self, path: &[&str], message: String) {
        self.0
            .push((path.iter().map(|s| (*s).to_owned()).collect(), message));
    }
}

impl Manifest {
    /// Every problem with variables, packages and features, as (manifest path, message).
    pub(super) fn value_problems(&self) -> Vec<(Vec<String>, String)> {
        let mut problems = Problems::default();
        self.build_problems(&mut problems);
        self.variable_problems(&mut problems);
        self.deployed_variable_problems(&mut problems);
        problems.0
    }

    /// Each function's `package`, `features` (cargo's arguments) and `required-vars`.
    fn build_problems(&self, problems: &mut Problems) {
        for (name, function) in &self.functions {
            let path = |key: &'static str| ["functions", name.as_str(), key];
            if let Some(package) = &function.package {
                if package.is_empty() {
                    problems.add(
                        &path("package"),
                        format!(
                            "`package` is empty: name the cargo package that builds `{name}`, or \
                             remove `package` to build the package named `{name}`"
                        ),
                    );
                } else if !package
                    .chars()
                    .all(|c| c.is_alphanumeric() || c == '-' || c == '_')
                {
                    problems.add(
                        &path("package"),
                        format!(
                            "`{}` is not a cargo package name: use letters, digits, `-` and `_`",
                            printable(package)
                        ),
                    );
                }
            }
            for feature in &function.features {
                // `dep:<name>` and `<package>/<feature>` are cargo's own forms; a `,` or a space
                // would split one feature into several on cargo's command line.
                let legal = !feature.is_empty()
                    && feature
                        .chars()
                        .all(|c| c.is_alphanumeric() || "_-+./:".contains(c));
                if !legal {
                    problems.add(
                        &path("features"),
                        format!(
                            "`{}` is not a cargo feature name: use letters, digits, `_`, `-`, \
                             `+` and `.` (or `dep:<name>`, `<package>/<feature>`), one feature \
                             per string",
                            printable(feature)
                        ),
                    );
                }
            }
            for var in &function.required_vars {
                if !is_legal_variable_name(var) {
                    problems.add(
                        &path("required-vars"),
                        format!(
                            "`{}` is not a legal variable name ([a-zA-Z][a-zA-Z0-9_]+)",
                            printable(var)
                        ),
                    );
                }
            }
        }
    }

    /// The `vars` and `secrets` of every environment (preview templates too), and of each
    /// function in it, key by key.
    fn variable_problems(&self, problems: &mut Problems) {
        for (env, spec) in self.environments.iter().chain(&self.previews) {
            let mut tables = vec![(
                vec!["environments", env.as_str()],
                &spec.vars,
                &spec.secrets,
            )];
            for (function, over) in &spec.functions {
                tables.push((
                    vec!["environments", env.as_str(), "functions", function.as_str()],
                    &over.vars,
                    &over.secrets,
                ));
            }
            for (prefix, plain, secret) in tables {
                for (table, vars) in [("vars", plain), ("secrets", secret)] {
                    for (key, value) in vars {
                        let mut at = prefix.clone();
                        at.extend([table, key.as_str()]);
                        for message in variable_problems(table, key, value, plain) {
                            problems.add(&at, message);
                        }
                    }
                }
            }
        }
    }

    /// The variables each function is deployed with: their total within Lambda's 4 KB, and
    /// (single-stack) every name still legal once scoped to its environment.
    fn deployed_variable_problems(&self, problems: &mut Problems) {
        let envs: Vec<&String> = match self.strategy {
            Strategy::SingleStack => self.environments.keys().take(1).collect(),
            Strategy::MultiStack => self.environments.keys().collect(),
        };
        for env in envs {
            for function in self.functions.keys() {
                let at: Vec<&str> = match self.strategy {
                    Strategy::SingleStack => vec!["environments"],
                    Strategy::MultiStack => vec!["environments", env.as_str()],
                };
                let vars = match self.function_variables(function, env) {
                    Ok(vars) => vars,
                    Err(err) => {
                        problems.add(&at, format!("{err:#}"));
                        continue;
                    }
                };
                let size = variables_size(&vars);
                if size > MAX_VARIABLES_BYTES {
                    problems.add(&at, format!(
                        "function `{function}`'s deployed variables take {size} bytes, over Lambda's {MAX_VARIABLES_BYTES}-byte limit{}: move large values to `secrets` (resolved at cold start)",
                        if self.strategy == Strategy::SingleStack { " (single-stack: every environment's variables live in the one function)" } else { "" }
                    ));
                }
                // A name that is illegal as written is reported at its own key; only scoping
                // (`APP_<ENV>__<FIELD>`, single-stack) can make a legal name illegal here.
                if self.strategy == Strategy::SingleStack {
                    for name in self.environment_names(env) {
                        for key in self.env_function_vars(function, &name).keys() {
                            let deployed = self.single_stack_key(key, &name);
                            if is_legal_variable_name(key) && !is_legal_variable_name(&deployed) {
                                problems.add(&at, format!("the deployed variable `{deployed}` (`{key}` of environment `{name}`) is not a legal name (environment names map to `APP_<ENV>__<FIELD>`)"));
                            }
                        }
                    }
                }
            }
        }
    }
}

/// What is wrong with variable `key` = `value` of `table` (`vars` or `secrets`); `plain` is the
/// same place's `vars`.
fn variable_problems(
    table: &str,
    key: &str,
    value: &str,
    plain: &BTreeMap<String, String>,
) -> Vec<String> {
    let mut problems = Vec::new();
    if !is_legal_variable_name(key) {
        problems.push(format!(
            "`{}` is not a legal variable name: Lambda accepts [a-zA-Z][a-zA-Z0-9_]+",
            printable(key)
        ));
    } else if RESERVED_LAMBDA_VARIABLES.contains(&key) {
        problems.push(format!("`{key}` is reserved by Lambda and cannot be set"));
    } else if RESERVED_STAGE_VARIABLES.contains(&key) {
        problems.push(format!("`{key}` is set by lambda-stage itself"));
    }
    let secret = table == "secrets";
    if value.contains('\0') {
        let what = if secret { "reference" } else { "value" };
        problems.push(format!(
            "the {what} contains a NUL byte (`\\u0000`), which no process's environment can \
             hold: remove it"
        ));
    }
    if secret
        && !SECRET_REFERENCE_PREFIXES
            .iter()
            .any(|p| value.starts_with(p))
    {
        problems.push(
            "a secret must be a reference (`ssm:/path` or `secretsmanager:name`), never the \
             value itself"
                .to_owned(),
        );
    }
    if secret && plain.contains_key(key) {
        problems.push(format!("`{key}` is in both `vars` and `secrets`"));
    }
    problems
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::super::{Manifest, ManifestError};

    fn errors(text: &str) -> String {
        Manifest::parse(Path::new("lambda-stage.toml"), text)
            .expect_err("manifest should be rejected")
            .to_string()
    }

    const BASE: &str = "app = \"demo\"\n[functions.hello]\n";

    #[test]
    fn a_nul_byte_in_an_environments_variable_value_is_located_and_not_printable() {
        let err = errors(&format!(
            "{BASE}[environments.dev]\nvars = {{ APP_GREETING = \"CANARY\\u0000x\" }}\n"
        ));
        assert!(
            err.contains(
                "lambda-stage.toml:4:10: `environments.dev.vars.APP_GREETING`: the value contains a NUL byte"
            ),
            "{err}"
        );
        assert!(!err.contains("CANARY"), "{err}");
    }

    #[test]
    fn a_nul_byte_in_a_secret_reference_is_located() {
        let err = errors(&format!(
            "{BASE}[environments.dev]\n[environments.dev.secrets]\nAPP_KEY = \"ssm:/demo/\\u0000key\"\n"
        ));
        assert!(
            err.contains(
                "lambda-stage.toml:5:1: `environments.dev.secrets.APP_KEY`: the reference contains a NUL byte"
            ),
            "{err}"
        );
        assert!(!err.contains("/demo/"), "{err}");
    }

    #[test]
    fn a_nul_byte_in_a_functions_own_variable_is_located() {
        let err = errors(&format!(
            "{BASE}[environments.dev]\n[environments.dev.functions.hello]\nvars = {{ APP_MODE = \"a\\u0000\" }}\n"
        ));
        assert!(
            err.contains(
                "lambda-stage.toml:5:10: `environments.dev.functions.hello.vars.APP_MODE`: the value contains a NUL byte"
            ),
            "{err}"
        );
    }

    #[test]
    fn a_nul_byte_in_a_variable_name_is_located_and_shown_escaped() {
        let err = errors(&format!(
            "{BASE}[environments.dev]\nvars = {{ \"APP_A\\u0000B\" = \"x\" }}\n"
        ));
        assert!(
            err.contains("lambda-stage.toml:4:10: ")
                && err.contains("`APP_A\\0B` is not a legal variable name"),
            "{err}"
        );
        assert!(!err.contains('\0'), "{err:?}");
    }

    #[test]
    fn an_empty_package_is_located() {
        let err = errors("app = \"demo\"\n[functions.hello]\npackage = \"\"\n[environments.dev]\n");
        assert!(
            err.contains(
                "lambda-stage.toml:3:1: `functions.hello.package`: `package` is empty: name the cargo package"
            ),
            "{err}"
        );
    }

    #[test]
    fn a_package_name_cargo_cannot_take_is_located() {
        let err = errors(
            "app = \"demo\"\n[functions.hello]\npackage = \"hel\\u0000lo\"\n[environments.dev]\n",
        );
        assert!(
            err.contains("lambda-stage.toml:3:1: `functions.hello.package`: `hel\\0lo` is not a cargo package name"),
            "{err}"
        );
    }

    #[test]
    fn empty_or_split_features_are_located() {
        let err = errors(
            "app = \"demo\"\n[functions.hello]\nfeatures = [\"\", \"secrets,http\", \"dep:aws-sdk-ssm\"]\n[environments.dev]\n",
        );
        assert!(
            err.contains(
                "lambda-stage.toml:3:1: `functions.hello.features`: `` is not a cargo feature name"
            ),
            "{err}"
        );
        assert!(
            err.contains("`secrets,http` is not a cargo feature name"),
            "{err}"
        );
        assert!(!err.contains("`dep:aws-sdk-ssm`"), "{err}");
    }

    #[test]
    fn every_problem_of_a_manifest_is_reported_at_once() {
        let ManifestError { problems } = Manifest::parse(
            Path::new("lambda-stage.toml"),
            &format!(
                "{BASE}package = \"\"\n[environments.dev]\nvars = {{ APP_A = \"\\u0000\", APP_B = \"\\u0000\" }}\n"
            ),
        )
        .unwrap_err();
        assert_eq!(problems.len(), 3, "{problems:?}");
    }
}
