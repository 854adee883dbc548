//! The admin UI's sign-in sessions, kept in the key store's database so that every
//! instance behind a load balancer knows them and signing out ends them everywhere. Only
//! the SHA-256 of a session's cookie value is stored.

use super::store::{DB_TIMEOUT, Store, bounded};
use sqlx::Row;

/// A signed-in session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UiSession {
    /// The form token (CSRF) of this session.
    pub csrf: String,
    /// Unix seconds after which the session is over.
    pub expires_at: i64,
}

impl Store {
    /// Stores a new session under the hash of its cookie value.
    pub async fn create_session(&self, id_hash: &str, s: &UiSession) -> Result<(), sqlx::Error> {
        bounded(DB_TIMEOUT, async {
            sqlx::query("INSERT INTO ui_sessions (id_hash, csrf, expires_at) VALUES ($1, $2, $3)")
                .bind(id_hash)
                .bind(&s.csrf)
                .bind(s.expires_at)
                .execute(&self.pool)
                .await?;
            Ok(())
        })
        .await
    }

    /// The session with this hash, if it exists and has not expired at `now`.
    pub async fn session(&self, id_hash: &str, now: i64) -> Result<Option<UiSession>, sqlx::Error> {
        bounded(DB_TIMEOUT, async {
            let row = sqlx::query(
                "SELECT csrf, expires_at FROM ui_sessions WHERE id_hash = $1 AND expires_at > $2",
            )
            .bind(id_hash)
            .bind(now)
            .fetch_optional(&self.pool)
            .await?;
            row.map(|r| {
                Ok(UiSession {
                    csrf: r.try_get("csrf")?,
                    expires_at: r.try_get("expires_at")?,
                })
            })
            .transpose()
        })
        .await
    }

    /// Ends a session.
    pub async fn delete_session(&self, id_hash: &str) -> Result<(), sqlx::Error> {
        bounded(DB_TIMEOUT, async {
            sqlx::query("DELETE FROM ui_sessions WHERE id_hash = $1")
                .bind(id_hash)
                .execute(&self.pool)
                .await?;
            Ok(())
        })
        .await
    }

    /// Deletes sessions expired at `now`.
    pub async fn prune_sessions(&self, now: i64) -> Result<u64, sqlx::Error> {
        bounded(DB_TIMEOUT, async {
            let r = sqlx::query("DELETE FROM ui_sessions WHERE expires_at <= $1")
                .bind(now)
                .execute(&self.pool)
                .await?;
            Ok(r.rows_affected())
        })
        .await
    }
}
