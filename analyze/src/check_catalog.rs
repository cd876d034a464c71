//! The catalogue of checks: one SQL file per check, with its metadata in a TOML block comment
//! at the top. The built-in set (`queries/` of the repository) is embedded in the binary; a
//! directory given at run time adds checks or overrides built-in ones by id.
//!
//! ```sql
//! /* check
//! id = "orphaned_span"
//! title = "Orphaned span"
//! severity = "error"          # error | warning | info
//! is_break = true             # counts against completeness
//! meaning = "..."
//! causes = ["...", "..."]
//! fix = "..."
//! */
//! SELECT trace_id, span_id, service, span_name, time, explanation, related_trace_id, related_span_id
//! FROM spans ...
//! ```
//!
//! Views shared by several checks live in `views/` (`queries/views/<name>.sql` is registered as the
//! view `<name>` before the checks run, each after the views it uses). A
//! view file with a line `-- materialize` is computed once per analysis and kept in memory, for
//! views with a small result that several checks read.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use include_dir::{Dir, include_dir};
use serde::{Deserialize, Serialize};

static BUILT_IN: Dir<'_> = include_dir!("$CARGO_MANIFEST_DIR/../queries");

/// How serious a finding is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// Informational: not a break.
    Info,
    /// A likely break.
    Warning,
    /// A certain break.
    Error,
}

/// One check: its metadata and its SQL.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Check {
    /// Stable id (`orphaned_span`).
    pub id: String,
    /// Short title.
    pub title: String,
    /// Severity of its findings.
    pub severity: Severity,
    /// Whether its findings make a trace incomplete (clock skew does not).
    pub is_break: bool,
    /// What a finding means.
    pub meaning: String,
    /// Typical causes.
    pub causes: Vec<String>,
    /// How to fix it.
    pub fix: String,
    /// The query.
    #[serde(skip_deserializing)]
    pub sql: String,
    /// Where it came from (`built-in` or a file path).
    #[serde(skip_deserializing)]
    pub origin: String,
}

/// A view shared by checks: `views/<name>.sql`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct View {
    /// The view's name (the file stem).
    pub name: String,
    /// Its query.
    pub sql: String,
    /// Where it came from.
    pub origin: String,
    /// Computed once per analysis and kept (a `-- materialize` line in the file): for a view whose
    /// result is small and that several checks read. Kept in memory within a share of the memory
    /// pool, on disk past it ([`crate::materialized_view`]).
    pub materialize: bool,
}

/// The line that asks for a view to be computed once per analysis.
pub const MATERIALIZE_MARKER: &str = "-- materialize";

/// The checks and the views they share.
#[derive(Debug, Clone, Default)]
pub struct Catalog {
    /// The checks, by id.
    pub checks: Vec<Check>,
    /// The shared views, in registration order.
    pub views: Vec<View>,
}

/// Errors loading checks.
#[derive(Debug, thiserror::Error)]
pub enum CatalogError {
    /// A check file has no metadata block or bad metadata.
    #[error("check {origin}: {message}")]
    Invalid {
        /// The file.
        origin: String,
        /// What is wrong.
        message: String,
    },
    /// A directory or file could not be read.
    #[error("{path}: {source}")]
    Io {
        /// The path.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
}

/// Parses one check file.
pub fn parse_check(text: &str, origin: &str) -> Result<Check, CatalogError> {
    let invalid = |message: String| CatalogError::Invalid { origin: origin.to_owned(), message };
    let body = text.trim_start();
    let rest =
        body.strip_prefix("/* check").ok_or_else(|| invalid("must start with a `/* check` metadata block".into()))?;
    let end = rest.find("*/").ok_or_else(|| invalid("the metadata block is not closed with `*/`".into()))?;
    let mut check: Check = toml::from_str(&rest[..end]).map_err(|e| invalid(format!("metadata: {e}")))?;
    check.sql = rest[end + 2..].trim().trim_end_matches(';').to_owned();
    check.origin = origin.to_owned();
    if check.sql.is_empty() {
        return Err(invalid("no query after the metadata block".into()));
    }
    if !check.id.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_') {
        return Err(invalid(format!("id {:?} must be lowercase letters, digits and underscores", check.id)));
    }
    Ok(check)
}

fn parse_view(text: &str, name: &str, origin: &str) -> Result<View, CatalogError> {
    let sql = text.trim().trim_end_matches(';').to_owned();
    if sql.is_empty() {
        return Err(CatalogError::Invalid { origin: origin.to_owned(), message: "empty view".into() });
    }
    if !name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_') {
        return Err(CatalogError::Invalid {
            origin: origin.to_owned(),
            message: format!("view name {name:?} must be lowercase letters, digits and underscores"),
        });
    }
    let materialize = sql.lines().any(|line| line.trim() == MATERIALIZE_MARKER);
    Ok(View { name: name.to_owned(), sql, origin: origin.to_owned(), materialize })
}

fn is_sql(path: &Path) -> bool {
    path.extension().is_some_and(|e| e == "sql")
}

fn stem(path: &Path) -> String {
    path.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default()
}

fn text_of(file: &'static include_dir::File<'static>, origin: &str) -> Result<&'static str, CatalogError> {
    file.contents_utf8().ok_or_else(|| CatalogError::Invalid { origin: origin.to_owned(), message: "not UTF-8".into() })
}

/// The built-in checks by id, and views by name.
fn built_in() -> Result<(BTreeMap<String, Check>, BTreeMap<String, View>), CatalogError> {
    let mut checks = BTreeMap::new();
    for file in BUILT_IN.files().filter(|f| is_sql(f.path())) {
        let origin = format!("built-in {}", file.path().display());
        let check = parse_check(text_of(file, &origin)?, &origin)?;
        checks.insert(check.id.clone(), check);
    }
    let mut views = BTreeMap::new();
    for file in BUILT_IN.get_dir("views").map(|d| d.files()).into_iter().flatten().filter(|f| is_sql(f.path())) {
        let origin = format!("built-in {}", file.path().display());
        let view = parse_view(text_of(file, &origin)?, &stem(file.path()), &origin)?;
        views.insert(view.name.clone(), view);
    }
    Ok((checks, views))
}

/// The built-in checks, by id.
pub fn built_in_checks() -> Result<BTreeMap<String, Check>, CatalogError> {
    Ok(built_in()?.0)
}

fn sql_files(directory: &Path) -> Result<Vec<PathBuf>, CatalogError> {
    let io = |source| CatalogError::Io { path: directory.to_owned(), source };
    let mut paths: Vec<PathBuf> = std::fs::read_dir(directory)
        .map_err(io)?
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|path| is_sql(path) && path.is_file())
        .collect();
    paths.sort();
    Ok(paths)
}

fn read(path: &Path) -> Result<String, CatalogError> {
    std::fs::read_to_string(path).map_err(|source| CatalogError::Io { path: path.to_owned(), source })
}

/// The built-in catalogue plus the checks of `directory` (`*.sql`) and its views (`views/*.sql`),
/// which override built-ins by id or name.
pub fn load_catalog(directory: Option<&Path>) -> Result<Catalog, CatalogError> {
    let (mut checks, mut views) = built_in()?;
    if let Some(directory) = directory {
        for path in sql_files(directory)? {
            let check = parse_check(&read(&path)?, &path.display().to_string())?;
            checks.insert(check.id.clone(), check);
        }
        let view_directory = directory.join("views");
        if view_directory.is_dir() {
            for path in sql_files(&view_directory)? {
                let view = parse_view(&read(&path)?, &stem(&path), &path.display().to_string())?;
                views.insert(view.name.clone(), view);
            }
        }
    }
    Ok(Catalog { checks: checks.into_values().collect(), views: in_dependency_order(views) })
}

/// The views in the order they can be registered: each after the views its query names (outside
/// `--` comments), and otherwise in name order. Views that name each other in a cycle keep name
/// order, and registering them then says which table is missing.
fn in_dependency_order(views: BTreeMap<String, View>) -> Vec<View> {
    let names: Vec<String> = views.keys().cloned().collect();
    let uses = |view: &View| -> Vec<String> {
        let code: String =
            view.sql.lines().map(|line| line.split("--").next().unwrap_or_default()).collect::<Vec<_>>().join("\n");
        let words: BTreeSet<&str> = code.split(|c: char| !(c.is_alphanumeric() || c == '_')).collect();
        names.iter().filter(|name| **name != view.name && words.contains(name.as_str())).cloned().collect()
    };
    let mut pending: Vec<(View, Vec<String>)> = views
        .into_values()
        .map(|view| {
            let used = uses(&view);
            (view, used)
        })
        .collect();
    let mut registered = BTreeSet::new();
    let mut ordered = Vec::with_capacity(pending.len());
    while !pending.is_empty() {
        let next = pending.iter().position(|(_, used)| used.iter().all(|name| registered.contains(name))).unwrap_or(0);
        let (view, _) = pending.remove(next);
        registered.insert(view.name.clone());
        ordered.push(view);
    }
    ordered
}

/// The built-in checks plus those of `directory` (see [`load_catalog`]).
pub fn load_checks(directory: Option<&Path>) -> Result<Vec<Check>, CatalogError> {
    Ok(load_catalog(directory)?.checks)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_built_in_check_parses_and_says_what_to_do() {
        let checks = built_in_checks().unwrap();
        assert!(checks.contains_key("orphaned_span"));
        for check in checks.values() {
            assert!(!check.meaning.is_empty() && !check.fix.is_empty() && !check.causes.is_empty(), "{}", check.id);
            assert!(check.sql.to_lowercase().contains("select"), "{}", check.id);
        }
    }

    /// Ballista's plan codec cannot carry decorrelated subqueries (`[NOT] IN (SELECT …)`,
    /// `[NOT] EXISTS (…)`): built-in checks write them as joins so that they run on a cluster.
    #[test]
    fn built_in_queries_use_joins_not_subquery_predicates() {
        let (checks, views) = built_in().unwrap();
        let texts = checks.values().map(|c| (&c.id, &c.sql)).chain(views.values().map(|v| (&v.name, &v.sql)));
        for (name, sql) in texts {
            let flat = sql.to_lowercase().split_whitespace().collect::<Vec<_>>().join(" ");
            for pattern in ["exists (", "exists(", " in (select", " in(select"] {
                assert!(!flat.contains(pattern), "{name} uses `{pattern}`: write it as a join");
            }
        }
    }

    #[test]
    fn views_are_registered_after_the_views_they_use() {
        let directory = tempfile::tempdir().unwrap();
        let views = directory.path().join("views");
        std::fs::create_dir(&views).unwrap();
        // `a_late` sorts first but reads `z_early`; a name in a comment is not a use.
        std::fs::write(views.join("a_late.sql"), "-- not b_free\nSELECT * FROM z_early").unwrap();
        std::fs::write(views.join("b_free.sql"), "-- reads a_late? no\nSELECT 1 AS one").unwrap();
        std::fs::write(views.join("z_early.sql"), "SELECT * FROM spans").unwrap();
        let catalog = load_catalog(Some(directory.path())).unwrap();
        let names: Vec<&str> = catalog.views.iter().map(|view| view.name.as_str()).collect();
        let position = |name: &str| names.iter().position(|n| *n == name).unwrap();
        assert!(position("z_early") < position("a_late"), "{names:?}");
        assert!(position("b_free") < position("z_early"), "name order otherwise: {names:?}");
        let built_in: Vec<&str> =
            names.iter().copied().filter(|n| !["a_late", "b_free", "z_early"].contains(n)).collect();
        assert!(
            built_in.iter().position(|n| *n == "callee_services")
                < built_in.iter().position(|n| *n == "call_destinations")
        );
    }

    #[test]
    fn a_file_without_metadata_is_refused_with_its_name() {
        let error = parse_check("SELECT 1", "mine.sql").unwrap_err();
        assert_eq!(error.to_string(), "check mine.sql: must start with a `/* check` metadata block");
        let error = parse_check("/* check\nid = 3\n*/ SELECT 1", "mine.sql").unwrap_err();
        assert!(error.to_string().starts_with("check mine.sql: metadata: "), "{error}");
    }

    #[test]
    fn a_directory_overrides_built_ins_by_id_and_adds_new_ones() {
        let directory = tempfile::tempdir().unwrap();
        let meta = |id: &str| {
            format!(
                "/* check\nid = \"{id}\"\ntitle = \"t\"\nseverity = \"info\"\nis_break = false\nmeaning = \"m\"\ncauses = [\"c\"]\nfix = \"f\"\n*/\nSELECT 1"
            )
        };
        std::fs::write(directory.path().join("a.sql"), meta("orphaned_span")).unwrap();
        std::fs::write(directory.path().join("b.sql"), meta("my_check")).unwrap();
        let checks = load_checks(Some(directory.path())).unwrap();
        let orphaned = checks.iter().find(|c| c.id == "orphaned_span").unwrap();
        assert_eq!(orphaned.severity, Severity::Info);
        assert!(checks.iter().any(|c| c.id == "my_check"));
    }
}
