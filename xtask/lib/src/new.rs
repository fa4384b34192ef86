//! `cargo xtask new <name> [--http | --event <type>]`: adds a function to the workspace.
//!
//! Writes a package (typed config, handler, a unit test with `lambda_stage::testing`), adds it
//! to the workspace members unless a glob already covers it, and adds `[functions.<name>]` to
//! `lambda-stage.toml` — both files edited with `toml_edit`, so their comments and layout stay.
//! The result builds, passes `cargo test -p <name>` and answers `cargo xtask invoke <name>`
//! straight away: its config has defaults, so no environment needs a new variable.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{bail, Context as _};
use clap::Args as ClapArgs;
use toml_edit::{value, Array, DocumentMut, InlineTable, Item, Table};

use crate::manifest::{self, Manifest};
use crate::workspace;

#[derive(Debug, ClapArgs)]
pub struct Args {
    /// The function's name: its cargo package and its key in lambda-stage.toml (e.g. `orders`).
    pub name: String,
    /// An HTTP function: an axum router behind API Gateway, an ALB or a function URL.
    #[arg(long, conflicts_with = "event")]
    pub http: bool,
    /// A function for one kind of AWS event: sqs, sns, s3-put, eventbridge, scheduled,
    /// dynamodb-stream, kinesis, cloudwatch-logs.
    #[arg(long, value_name = "TYPE")]
    pub event: Option<String>,
    /// Directory the package goes in, relative to the workspace root (default: `functions`,
    /// or `examples` when only that exists).
    #[arg(long, value_name = "DIR")]
    pub dir: Option<PathBuf>,
}

/// What the function handles.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A JSON event in, a JSON answer out.
    Json,
    /// An axum router.
    Http,
    /// One AWS event type from `aws_lambda_events`.
    Event(&'static EventTemplate),
}

/// An AWS event a function can be scaffolded for (names as in `cargo xtask events`).
#[derive(Debug, PartialEq, Eq)]
pub struct EventTemplate {
    pub name: &'static str,
    description: &'static str,
    /// The `aws_lambda_events` feature that has the type.
    feature: &'static str,
    /// The type's path under `aws_lambda_events::event`.
    type_path: &'static str,
    /// Whether the event is a batch of `records`.
    has_records: bool,
}

pub const EVENTS: &[EventTemplate] = &[
    EventTemplate {
        name: "sqs",
        description: "a batch of SQS messages",
        feature: "sqs",
        type_path: "sqs::SqsEvent",
        has_records: true,
    },
    EventTemplate {
        name: "sns",
        description: "SNS notifications",
        feature: "sns",
        type_path: "sns::SnsEvent",
        has_records: true,
    },
    EventTemplate {
        name: "s3-put",
        description: "S3 object notifications",
        feature: "s3",
        type_path: "s3::S3Event",
        has_records: true,
    },
    EventTemplate {
        name: "eventbridge",
        description: "an EventBridge event",
        feature: "eventbridge",
        type_path: "eventbridge::EventBridgeEvent",
        has_records: false,
    },
    EventTemplate {
        name: "scheduled",
        description: "a scheduled (cron) event",
        feature: "cloudwatch_events",
        type_path: "cloudwatch_events::CloudWatchEvent",
        has_records: false,
    },
    EventTemplate {
        name: "dynamodb-stream",
        description: "DynamoDB stream records",
        feature: "dynamodb",
        type_path: "dynamodb::Event",
        has_records: true,
    },
    EventTemplate {
        name: "kinesis",
        description: "Kinesis stream records",
        feature: "kinesis",
        type_path: "kinesis::KinesisEvent",
        has_records: true,
    },
    EventTemplate {
        name: "cloudwatch-logs",
        description: "a CloudWatch Logs subscription batch",
        feature: "cloudwatch_logs",
        type_path: "cloudwatch_logs::LogsEvent",
        has_records: false,
    },
];

impl Kind {
    pub fn from_flags(http: bool, event: Option<&str>) -> anyhow::Result<Kind> {
        match (http, event) {
            (true, Some(_)) => bail!("choose one of --http and --event"),
            (true, None) => Ok(Kind::Http),
            (false, None) => Ok(Kind::Json),
            (false, Some(name)) => {
                if let Some(template) = EVENTS.iter().find(|e| e.name == name) {
                    return Ok(Kind::Event(template));
                }
                let hint = if ["apigw-rest", "apigw-http", "alb"].contains(&name) {
                    " (HTTP events: use --http, one router serves all three)"
                } else {
                    ""
                };
                bail!(
                    "no function template for event `{name}`{hint}; choose one of: {}",
                    EVENTS.iter().map(|e| e.name).collect::<Vec<_>>().join(", ")
                )
            }
        }
    }
}

/// What `new` wrote.
#[derive(Debug)]
pub struct Created {
    pub package_dir: PathBuf,
    pub manifest_path: PathBuf,
    pub added_member: bool,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let root = workspace::root()?;
    let kind = Kind::from_flags(args.http, args.event.as_deref())?;
    let created = create(&root, &args.name, kind, args.dir.as_deref())?;
    let relative = created
        .package_dir
        .strip_prefix(&root)
        .unwrap_or(&created.package_dir);
    println!("Created function `{}` in {}", args.name, relative.display());
    if created.added_member {
        println!("  added {} to the workspace members", relative.display());
    }
    println!(
        "  added [functions.{}] to {}",
        args.name,
        created.manifest_path.display()
    );
    let try_it = match kind {
        Kind::Json => format!(
            "cargo xtask invoke {} --data '{{\"name\":\"Ada\"}}'",
            args.name
        ),
        Kind::Http => format!(
            "cargo xtask invoke {} --event apigw-http --path /hello/Ada",
            args.name
        ),
        Kind::Event(template) => {
            format!("cargo xtask invoke {} --event {}", args.name, template.name)
        }
    };
    println!(
        "Next:\n  cargo test -p {}\n  {try_it}\n  cargo xtask deploy --env dev {}",
        args.name, args.name
    );
    Ok(ExitCode::SUCCESS)
}

/// Cargo refuses these as package names, or they clash with cargo's own directories.
const RESERVED_NAMES: &[&str] = &[
    "as",
    "async",
    "await",
    "break",
    "const",
    "continue",
    "crate",
    "dyn",
    "else",
    "enum",
    "extern",
    "false",
    "fn",
    "for",
    "if",
    "impl",
    "in",
    "let",
    "loop",
    "match",
    "mod",
    "move",
    "mut",
    "pub",
    "ref",
    "return",
    "self",
    "Self",
    "static",
    "struct",
    "super",
    "trait",
    "true",
    "type",
    "unsafe",
    "use",
    "where",
    "while",
    "abstract",
    "become",
    "box",
    "do",
    "final",
    "macro",
    "override",
    "priv",
    "typeof",
    "unsized",
    "virtual",
    "yield",
    "try",
    "gen",
    "test",
    "build",
    "deps",
    "examples",
    "incremental",
    "std",
    "core",
    "alloc",
    "proc_macro",
    "proc-macro",
    "xtask",
];

/// A function name must be a cargo package name and fit in a Lambda function name.
pub fn validate_name(name: &str) -> anyhow::Result<()> {
    let fix = "use lower-case letters, digits and `-`, starting with a letter (e.g. `orders-api`)";
    let Some(first) = name.chars().next() else {
        bail!("the function name is empty: {fix}");
    };
    if !first.is_ascii_lowercase() {
        bail!(
            "`{name}` is not a valid function name: it must start with a lower-case letter; {fix}"
        );
    }
    if let Some(bad) = name
        .chars()
        .find(|c| !(c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '-' || *c == '_'))
    {
        bail!("`{name}` is not a valid function name: `{bad}` is not allowed; {fix}");
    }
    if RESERVED_NAMES.contains(&name) {
        bail!("`{name}` is reserved (a Rust keyword or a name cargo uses): choose another name");
    }
    // Lambda function names are at most 64 characters; the app name and env are added to it.
    if name.len() > 40 {
        bail!(
            "`{name}` is {} characters: keep it to 40 so `<app>-{name}[-<env>]` fits Lambda's 64",
            name.len()
        );
    }
    Ok(())
}

/// Adds function `name` of `kind` to the workspace at `root`.
pub fn create(root: &Path, name: &str, kind: Kind, dir: Option<&Path>) -> anyhow::Result<Created> {
    validate_name(name)?;
    let cargo_path = root.join("Cargo.toml");
    let cargo_text = std::fs::read_to_string(&cargo_path)
        .with_context(|| format!("could not read {}", cargo_path.display()))?;
    let mut cargo_doc: DocumentMut = cargo_text
        .parse()
        .with_context(|| format!("{} is not valid TOML", cargo_path.display()))?;
    if cargo_doc
        .get("workspace")
        .and_then(Item::as_table_like)
        .is_none()
    {
        bail!(
            "{} has no [workspace]: `cargo xtask new` adds functions to a cargo workspace",
            cargo_path.display()
        );
    }

    let manifest_path = root.join(manifest::FILE_NAME);
    let manifest_text = match std::fs::read_to_string(&manifest_path) {
        Ok(text) => text,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => starter_manifest(root),
        Err(err) => {
            return Err(err).with_context(|| format!("could not read {}", manifest_path.display()))
        }
    };
    let manifest = Manifest::parse(&manifest_path, &manifest_text)?;
    if manifest.function(name).is_some() {
        bail!(
            "function `{name}` already exists in {}: choose another name",
            manifest_path.display()
        );
    }
    for env in manifest.environments.keys() {
        let full = manifest.function_name(name, env);
        if full.len() > 64 {
            bail!("`{name}` would be deployed as `{full}` in `{env}`, over Lambda's 64-character limit: choose a shorter name");
        }
    }
    if let Some(taken) = workspace_package_dir(root, name)? {
        bail!(
            "the workspace already has a package named `{name}` ({}): choose another name",
            taken.display()
        );
    }

    let dir = dir.map(Path::to_path_buf).unwrap_or_else(|| {
        if !root.join("functions").is_dir() && root.join("examples").is_dir() {
            PathBuf::from("examples")
        } else {
            PathBuf::from("functions")
        }
    });
    let relative = dir.join(name);
    let package_dir = root.join(&relative);
    if package_dir.exists() {
        bail!(
            "{} already exists: choose another name or remove it",
            package_dir.display()
        );
    }
    let member = relative
        .to_str()
        .context("the package path is not UTF-8")?
        .replace('\\', "/");

    let package_toml = package_manifest(&cargo_doc, name, kind)?;
    let added_member = add_member(&mut cargo_doc, &member)?;
    let manifest_text = add_function(&manifest_text, name)?;
    // Check the edit before writing anything.
    Manifest::parse(&manifest_path, &manifest_text)?;

    std::fs::create_dir_all(package_dir.join("src"))
        .with_context(|| format!("could not create {}", package_dir.display()))?;
    std::fs::write(package_dir.join("Cargo.toml"), package_toml)?;
    std::fs::write(package_dir.join("src/main.rs"), main_rs(name, kind))?;
    if added_member {
        std::fs::write(&cargo_path, cargo_doc.to_string())
            .with_context(|| format!("could not write {}", cargo_path.display()))?;
    }
    std::fs::write(&manifest_path, manifest_text)
        .with_context(|| format!("could not write {}", manifest_path.display()))?;
    Ok(Created {
        package_dir,
        manifest_path,
        added_member,
    })
}

/// The manifest a workspace without one starts with.
fn starter_manifest(root: &Path) -> String {
    let app: String = root
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or("app")
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' {
                c.to_ascii_lowercase()
            } else {
                '-'
            }
        })
        .collect();
    format!(
        "# The app `cargo xtask deploy` deploys: its functions and environments.\n\
         app = \"{app}\"\n\
         strategy = \"single-stack\"\n\n\
         [environments.dev]\n\n\
         [environments.staging]\n\n\
         [environments.prod]\n\
         protected = true\n"
    )
}

/// The directory of the workspace package called `name`, if there is one.
fn workspace_package_dir(root: &Path, name: &str) -> anyhow::Result<Option<PathBuf>> {
    let metadata = cargo_metadata::MetadataCommand::new()
        .cargo_path(workspace::cargo())
        .current_dir(root)
        .manifest_path(root.join("Cargo.toml"))
        .no_deps()
        .exec()
        .context("could not read the workspace's packages (`cargo metadata`)")?;
    Ok(metadata
        .workspace_packages()
        .into_iter()
        .find(|package| package.name.as_str() == name)
        .and_then(|package| {
            package
                .manifest_path
                .parent()
                .map(|dir| dir.as_std_path().to_path_buf())
        }))
}

/// Adds `member` to `[workspace] members` unless a member entry or glob covers it.
fn add_member(doc: &mut DocumentMut, member: &str) -> anyhow::Result<bool> {
    let workspace = doc["workspace"]
        .as_table_like_mut()
        .context("[workspace] is not a table")?;
    let members = workspace
        .entry("members")
        .or_insert(value(Array::new()))
        .as_array_mut()
        .context("[workspace] members is not an array")?;
    let parent = member.rsplit_once('/').map_or("", |(parent, _)| parent);
    let covered = members.iter().filter_map(|m| m.as_str()).any(|pattern| {
        let pattern = pattern.trim_end_matches('/');
        pattern == member || pattern.strip_suffix("/*").is_some_and(|dir| dir == parent)
    });
    if covered {
        return Ok(false);
    }
    members.push(member);
    Ok(true)
}

/// Adds `[functions.<name>]` after the last function, keeping every comment and the layout.
fn add_function(text: &str, name: &str) -> anyhow::Result<String> {
    let mut doc: DocumentMut = text.parse().context("the manifest is not valid TOML")?;
    let functions = doc
        .entry("functions")
        .or_insert_with(|| {
            let mut table = Table::new();
            table.set_implicit(true);
            Item::Table(table)
        })
        .as_table_mut()
        .context("`functions` in the manifest is not a table")?;
    let last_position = functions
        .iter()
        .filter_map(|(_, item)| item.as_table().and_then(Table::position))
        .max();
    let mut table = Table::new();
    table.decor_mut().set_prefix("\n");
    table["memory"] = value(i64::from(manifest::DEFAULT_MEMORY_MB));
    table["timeout"] = value(i64::from(manifest::DEFAULT_TIMEOUT_SECS));
    table["arch"] = value(manifest::DEFAULT_ARCH.as_str());
    // Deploy creates a logs-only execution role; replace with `role = "arn:..."` to bring one.
    table["create-role"] = value(true);
    if let Some(position) = last_position {
        // Same position as the last function: it renders right after it, before environments.
        table.set_position(position);
    }
    functions.insert(name, Item::Table(table));
    Ok(doc.to_string())
}

/// A dependency line: the workspace's own declaration when it has one, else a version.
fn dependency(
    workspace_deps: Option<&dyn toml_edit::TableLike>,
    name: &str,
    fallback: &str,
    features: &[&str],
) -> Item {
    let mut spec = InlineTable::new();
    if workspace_deps.is_some_and(|deps| deps.contains_key(name)) {
        spec.insert("workspace", true.into());
    } else {
        spec.insert("version", fallback.into());
    }
    if !features.is_empty() {
        spec.insert(
            "features",
            Array::from_iter(features.iter().copied()).into(),
        );
    }
    value(spec)
}

fn package_manifest(cargo_doc: &DocumentMut, name: &str, kind: Kind) -> anyhow::Result<String> {
    let workspace = cargo_doc["workspace"].as_table_like();
    let deps = workspace
        .and_then(|ws| ws.get("dependencies"))
        .and_then(Item::as_table_like);
    if !deps.is_some_and(|deps| deps.contains_key("lambda-stage")) {
        bail!(
            "the workspace's Cargo.toml does not declare `lambda-stage` in [workspace.dependencies]: \
             add `lambda-stage = {{ git = \"<repository>\" }}` (or `{{ path = \"...\" }}`) there first"
        );
    }
    let inherits = |key: &str| {
        workspace
            .and_then(|ws| ws.get("package"))
            .and_then(Item::as_table_like)
            .is_some_and(|package| package.contains_key(key))
    };
    let mut doc = DocumentMut::new();
    let mut package = Table::new();
    package["name"] = value(name);
    for key in ["version", "edition", "license"] {
        if inherits(key) {
            let mut inherit = InlineTable::new();
            inherit.insert("workspace", true.into());
            package[key] = value(inherit);
        } else if key == "version" {
            package[key] = value("0.1.0");
        } else if key == "edition" {
            package[key] = value("2021");
        }
    }
    package["publish"] = value(false);
    doc["package"] = Item::Table(package);

    let mut dependencies = Table::new();
    let http = matches!(kind, Kind::Http);
    dependencies["lambda-stage"] =
        dependency(deps, "lambda-stage", "", if http { &["http"] } else { &[] });
    dependencies["serde"] = dependency(deps, "serde", "1", &["derive"]);
    dependencies["tokio"] = dependency(deps, "tokio", "1", &["macros", "rt-multi-thread"]);
    let mut dev = Table::new();
    match kind {
        Kind::Json => {
            dev["serde_json"] = dependency(deps, "serde_json", "1", &[]);
        }
        Kind::Http => {
            dependencies["axum"] = dependency(deps, "axum", "0.8", &[]);
            dependencies["serde_json"] = dependency(deps, "serde_json", "1", &[]);
            dev["tower"] = dependency(deps, "tower", "0.5", &["util"]);
            dev["http-body-util"] = dependency(deps, "http-body-util", "0.1", &[]);
        }
        Kind::Event(template) => {
            let mut events = match dependency(deps, "aws_lambda_events", "1.2", &[template.feature])
            {
                Item::Value(toml_edit::Value::InlineTable(table)) => table,
                _ => unreachable!("dependency() returns an inline table"),
            };
            if !events.contains_key("workspace") {
                events.insert("default-features", false.into());
            }
            dependencies["aws_lambda_events"] = value(events);
            dev["serde_json"] = dependency(deps, "serde_json", "1", &[]);
        }
    }
    doc["dependencies"] = Item::Table(dependencies);
    doc["dev-dependencies"] = Item::Table(dev);
    Ok(doc.to_string())
}

fn main_rs(name: &str, kind: Kind) -> String {
    match kind {
        Kind::Json => include_str!("../templates/new/json.rs").replace("{{name}}", name),
        Kind::Http => include_str!("../templates/new/http.rs").replace("{{name}}", name),
        Kind::Event(template) => {
            let type_name = template
                .type_path
                .rsplit("::")
                .next()
                .unwrap_or(template.type_path);
            let (param, records, sample) = if template.has_records {
                (
                    "event",
                    "event.records.len()",
                    format!("let mut event: {type_name} = Default::default();\n        event.records.push(Default::default());"),
                )
            } else {
                (
                    "_event",
                    "1",
                    // The annotation lets generic events (`EventBridgeEvent<T = Value>`) use their default.
                    format!("let event: {type_name} = Default::default();"),
                )
            };
            include_str!("../templates/new/event.rs")
                .replace("{{name}}", name)
                .replace("{{description}}", template.description)
                .replace("{{type_path}}", template.type_path)
                .replace("{{type}}", type_name)
                .replace("{{event}}", template.name)
                .replace("{{param}}", param)
                .replace("{{records}}", records)
                .replace("{{sample}}", &sample)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_must_be_package_names() {
        for bad in [
            "",
            "Orders",
            "9lives",
            "orders api",
            "orders.api",
            "fn",
            "test",
            "ü",
        ] {
            assert!(validate_name(bad).is_err(), "`{bad}` should be refused");
        }
        for good in ["orders", "orders-api", "a1_b2"] {
            validate_name(good).unwrap();
        }
    }

    #[test]
    fn the_function_table_lands_after_the_last_function_and_keeps_comments() {
        let text = "# The app.\napp = \"demo\" # trailing\n\n[functions.hello]\nmemory = 256 # more\n\n# Environments below.\n[environments.dev]\nvars = { APP_GREETING = \"hi\" }\n";
        let edited = add_function(text, "orders").unwrap();
        assert!(
            edited.starts_with("# The app.\napp = \"demo\" # trailing\n"),
            "{edited}"
        );
        let orders = edited.find("[functions.orders]").expect(&edited);
        assert!(
            orders > edited.find("memory = 256 # more").unwrap(),
            "{edited}"
        );
        assert!(
            orders < edited.find("# Environments below.").unwrap(),
            "{edited}"
        );
        let manifest = Manifest::parse(Path::new("lambda-stage.toml"), &edited).unwrap();
        assert!(manifest.function("orders").unwrap().create_role);
    }

    #[test]
    fn members_are_added_unless_a_glob_covers_them() {
        let mut doc: DocumentMut = "[workspace]\nmembers = [\"xtask\", \"examples/*\"]\n"
            .parse()
            .unwrap();
        assert!(!add_member(&mut doc, "examples/orders").unwrap());
        assert!(add_member(&mut doc, "functions/orders").unwrap());
        assert!(doc.to_string().contains("\"functions/orders\""), "{doc}");
    }
}
