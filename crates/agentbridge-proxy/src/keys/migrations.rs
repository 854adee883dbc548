//! The schema migrations in `migrations/`, embedded in the binary. sqlx's `migrate!` macro
//! does the same, but its proc-macro compiles sqlx, its drivers and SQLite a second time for
//! the build host: most of a minute of every fresh build.

use futures::future::BoxFuture;
use sqlx::error::BoxDynError;
use sqlx::migrate::{Migration, MigrationSource, MigrationType};
use std::borrow::Cow;

/// Every file in `migrations/`, in order (a test checks this list against the directory).
const FILES: &[(&str, &str)] = &[
    (
        "0001_keys.sql",
        include_str!("../../migrations/0001_keys.sql"),
    ),
    (
        "0002_request_log.sql",
        include_str!("../../migrations/0002_request_log.sql"),
    ),
    (
        "0003_request_log_keys.sql",
        include_str!("../../migrations/0003_request_log_keys.sql"),
    ),
    (
        "0004_budget_period_start.sql",
        include_str!("../../migrations/0004_budget_period_start.sql"),
    ),
];

/// The embedded migrations, as a source for `sqlx::migrate::Migrator::new`.
#[derive(Debug, Clone, Copy, Default)]
pub struct Embedded;

impl<'s> MigrationSource<'s> for Embedded {
    fn resolve(self) -> BoxFuture<'s, Result<Vec<Migration>, BoxDynError>> {
        Box::pin(async {
            FILES
                .iter()
                .map(|(name, sql)| migration(name, sql))
                .collect()
        })
    }
}

/// A migration named as sqlx names files: `{version}_{description}.sql` (or `.up.sql` /
/// `.down.sql`), the SQL's checksum computed as sqlx does, so databases migrated by
/// builds that used `migrate!` validate unchanged.
fn migration(name: &'static str, sql: &'static str) -> Result<Migration, BoxDynError> {
    let (version, rest) = name
        .split_once('_')
        .ok_or_else(|| format!("migration {name}: expected VERSION_DESCRIPTION.sql"))?;
    let version: i64 = version
        .parse()
        .map_err(|e| format!("migration {name}: version: {e}"))?;
    let (description, kind) = if let Some(d) = rest.strip_suffix(".up.sql") {
        (d, MigrationType::ReversibleUp)
    } else if let Some(d) = rest.strip_suffix(".down.sql") {
        (d, MigrationType::ReversibleDown)
    } else if let Some(d) = rest.strip_suffix(".sql") {
        (d, MigrationType::Simple)
    } else {
        return Err(format!("migration {name}: not a .sql file").into());
    };
    Ok(Migration::new(
        version,
        Cow::Owned(description.replace('_', " ")),
        kind,
        Cow::Borrowed(sql),
        sql.starts_with("-- no-transaction"),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use sqlx::migrate::Migrator;
    use std::path::Path;

    #[test]
    fn every_file_in_the_directory_is_embedded() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("migrations");
        let mut on_disk: Vec<String> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.ends_with(".sql"))
            .collect();
        on_disk.sort();
        let embedded: Vec<String> = FILES.iter().map(|(n, _)| n.to_string()).collect();
        assert_eq!(
            embedded, on_disk,
            "add new migrations to FILES in keys/migrations.rs"
        );
    }

    #[tokio::test]
    async fn embedded_migrations_match_what_sqlx_reads_from_the_directory() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("migrations");
        let from_disk = Migrator::new(dir.as_path()).await.unwrap();
        let embedded = Migrator::new(Embedded).await.unwrap();
        let key = |m: &Migration| {
            (
                m.version,
                m.description.to_string(),
                m.migration_type,
                m.checksum.to_vec(),
                m.no_tx,
            )
        };
        let a: Vec<_> = embedded.iter().map(key).collect();
        let b: Vec<_> = from_disk.iter().map(key).collect();
        assert!(!a.is_empty());
        assert_eq!(a, b);
    }
}
