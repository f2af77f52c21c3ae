//! `SecurityStore` for both backends: the SQL is identical on SQLite and PostgreSQL (numbered parameters, BIGINT milliseconds, TEXT), so one macro expands it over each pool type.

use futures::FutureExt as _;
use sqlx::Row as _;
use time::OffsetDateTime;

use super::model::Redacted;
use super::security::{
    BootstrapTokenRecord, CertificateRecord, RepoCredentialRecord, SecurityStore, SessionRecord,
    StoredCa,
};
use super::{PgStore, Result, SqliteStore, StoreError};

fn ms(at: OffsetDateTime) -> i64 {
    i64::try_from(at.unix_timestamp_nanos() / 1_000_000).unwrap_or(i64::MAX)
}

fn from_ms(ms: i64) -> Result<OffsetDateTime> {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000).map_err(|error| {
        StoreError::Corrupt {
            reason: format!("timestamp {ms}: {error}"),
        }
    })
}

fn opt_ms(ms: Option<i64>) -> Result<Option<OffsetDateTime>> {
    ms.map(from_ms).transpose()
}

fn not_found(what: String) -> StoreError {
    StoreError::NotFound { what }
}

fn strings(json: &str) -> Result<Vec<String>> {
    Ok(serde_json::from_str(json)?)
}

fn to_json(values: &[String]) -> Result<String> {
    Ok(serde_json::to_string(values)?)
}

macro_rules! row_fns {
    ($row:ty) => {
        fn token_from_row(row: &$row) -> Result<BootstrapTokenRecord> {
            Ok(BootstrapTokenRecord {
                id: row.try_get("id")?,
                cluster: row.try_get("cluster")?,
                secret_hash: Redacted(row.try_get("secret_hash")?),
                created_at: from_ms(row.try_get("created_at")?)?,
                expires_at: from_ms(row.try_get("expires_at")?)?,
                used_at: opt_ms(row.try_get("used_at")?)?,
            })
        }

        fn certificate_from_row(row: &$row) -> Result<CertificateRecord> {
            Ok(CertificateRecord {
                serial: row.try_get("serial")?,
                cluster: row.try_get("cluster")?,
                not_before: from_ms(row.try_get("not_before")?)?,
                not_after: from_ms(row.try_get("not_after")?)?,
                issued_at: from_ms(row.try_get("issued_at")?)?,
                revoked_at: opt_ms(row.try_get("revoked_at")?)?,
            })
        }

        fn session_from_row(row: &$row) -> Result<SessionRecord> {
            let admin: i64 = row.try_get("admin")?;
            Ok(SessionRecord {
                token_hash: Redacted(row.try_get("token_hash")?),
                subject: row.try_get("subject")?,
                groups: strings(&row.try_get::<String, _>("groups_json")?)?,
                admin: admin != 0,
                grants: strings(&row.try_get::<String, _>("grants_json")?)?,
                method: row.try_get("method")?,
                created_at: from_ms(row.try_get("created_at")?)?,
                expires_at: from_ms(row.try_get("expires_at")?)?,
            })
        }

        fn repo_from_row(row: &$row) -> Result<RepoCredentialRecord> {
            Ok(RepoCredentialRecord {
                url_prefix: row.try_get("url_prefix")?,
                projects: strings(&row.try_get::<String, _>("projects_json")?)?,
                sealed: Redacted(row.try_get("sealed")?),
                updated_at: from_ms(row.try_get("updated_at")?)?,
            })
        }
    };
}

const CERT_COLUMNS: &str = "serial, cluster, not_before, not_after, issued_at, revoked_at";
const INSERT_CERT: &str = "INSERT INTO cluster_certificates \
     (serial, cluster, not_before, not_after, issued_at) VALUES ($1, $2, $3, $4, $5)";

macro_rules! impl_security_store {
    ($store:ty, $module:ident, $row:ty) => {
        mod $module {
            use super::*;

            row_fns!($row);

            impl SecurityStore for $store {
                fn get_hub_ca(&self) -> futures::future::BoxFuture<'_, Result<Option<StoredCa>>> {
                    async move {
                        let row = sqlx::query(
                            "SELECT cert_pem, key_sealed, created_at FROM hub_ca WHERE id = 1",
                        )
                        .fetch_optional(self.pool())
                        .await?;
                        row.map(|row| {
                            Ok(StoredCa {
                                cert_pem: row.try_get("cert_pem")?,
                                key_sealed: Redacted(row.try_get("key_sealed")?),
                                created_at: from_ms(row.try_get("created_at")?)?,
                            })
                        })
                        .transpose()
                    }
                    .boxed()
                }

                fn insert_hub_ca<'a>(
                    &'a self,
                    ca: &'a StoredCa,
                ) -> futures::future::BoxFuture<'a, Result<bool>> {
                    async move {
                        let result = sqlx::query(
                            "INSERT INTO hub_ca (id, cert_pem, key_sealed, created_at) \
                             VALUES (1, $1, $2, $3) ON CONFLICT (id) DO NOTHING",
                        )
                        .bind(&ca.cert_pem)
                        .bind(&ca.key_sealed.0)
                        .bind(ms(ca.created_at))
                        .execute(self.pool())
                        .await?;
                        Ok(result.rows_affected() == 1)
                    }
                    .boxed()
                }

                fn create_bootstrap_token<'a>(
                    &'a self,
                    token: &'a BootstrapTokenRecord,
                ) -> futures::future::BoxFuture<'a, Result<()>> {
                    async move {
                        sqlx::query(
                            "INSERT INTO bootstrap_tokens \
                             (id, cluster, secret_hash, created_at, expires_at) \
                             VALUES ($1, $2, $3, $4, $5)",
                        )
                        .bind(&token.id)
                        .bind(&token.cluster)
                        .bind(&token.secret_hash.0)
                        .bind(ms(token.created_at))
                        .bind(ms(token.expires_at))
                        .execute(self.pool())
                        .await
                        .map_err(StoreError::classify(|| {
                            format!("bootstrap token for cluster {}", token.cluster)
                        }))?;
                        Ok(())
                    }
                    .boxed()
                }

                fn get_bootstrap_token<'a>(
                    &'a self,
                    id: &'a str,
                ) -> futures::future::BoxFuture<'a, Result<BootstrapTokenRecord>> {
                    async move {
                        let row = sqlx::query(
                            "SELECT id, cluster, secret_hash, created_at, expires_at, used_at \
                             FROM bootstrap_tokens WHERE id = $1",
                        )
                        .bind(id)
                        .fetch_optional(self.pool())
                        .await?
                        .ok_or_else(|| not_found(format!("bootstrap token {id}")))?;
                        token_from_row(&row)
                    }
                    .boxed()
                }

                fn consume_bootstrap_token<'a>(
                    &'a self,
                    id: &'a str,
                    secret_hash: &'a str,
                    now: OffsetDateTime,
                    certificate: &'a CertificateRecord,
                ) -> futures::future::BoxFuture<'a, Result<bool>> {
                    async move {
                        let mut tx = self.pool().begin().await?;
                        // The conditional update is the single point of
                        // truth: only one transaction, on any replica, can
                        // move `used_at` from NULL.
                        let used = sqlx::query(
                            "UPDATE bootstrap_tokens SET used_at = $3 \
                             WHERE id = $1 AND secret_hash = $2 AND used_at IS NULL \
                             AND expires_at > $3 AND cluster = $4",
                        )
                        .bind(id)
                        .bind(secret_hash)
                        .bind(ms(now))
                        .bind(&certificate.cluster)
                        .execute(&mut *tx)
                        .await?;
                        if used.rows_affected() != 1 {
                            return Ok(false);
                        }
                        sqlx::query(INSERT_CERT)
                            .bind(&certificate.serial)
                            .bind(&certificate.cluster)
                            .bind(ms(certificate.not_before))
                            .bind(ms(certificate.not_after))
                            .bind(ms(certificate.issued_at))
                            .execute(&mut *tx)
                            .await?;
                        tx.commit().await?;
                        Ok(true)
                    }
                    .boxed()
                }

                fn record_certificate<'a>(
                    &'a self,
                    certificate: &'a CertificateRecord,
                ) -> futures::future::BoxFuture<'a, Result<()>> {
                    async move {
                        sqlx::query(INSERT_CERT)
                            .bind(&certificate.serial)
                            .bind(&certificate.cluster)
                            .bind(ms(certificate.not_before))
                            .bind(ms(certificate.not_after))
                            .bind(ms(certificate.issued_at))
                            .execute(self.pool())
                            .await
                            .map_err(StoreError::classify(|| {
                                format!("certificate {}", certificate.serial)
                            }))?;
                        Ok(())
                    }
                    .boxed()
                }

                fn get_certificate<'a>(
                    &'a self,
                    serial: &'a str,
                ) -> futures::future::BoxFuture<'a, Result<CertificateRecord>> {
                    async move {
                        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
                            "SELECT {CERT_COLUMNS} FROM cluster_certificates WHERE serial = $1"
                        )))
                        .bind(serial)
                        .fetch_optional(self.pool())
                        .await?
                        .ok_or_else(|| not_found(format!("certificate {serial}")))?;
                        certificate_from_row(&row)
                    }
                    .boxed()
                }

                fn list_certificates<'a>(
                    &'a self,
                    cluster: &'a str,
                ) -> futures::future::BoxFuture<'a, Result<Vec<CertificateRecord>>> {
                    async move {
                        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
                            "SELECT {CERT_COLUMNS} FROM cluster_certificates \
                             WHERE cluster = $1 ORDER BY issued_at, serial"
                        )))
                        .bind(cluster)
                        .fetch_all(self.pool())
                        .await?;
                        rows.iter().map(certificate_from_row).collect()
                    }
                    .boxed()
                }

                fn revoke_certificates<'a>(
                    &'a self,
                    cluster: &'a str,
                    at: OffsetDateTime,
                ) -> futures::future::BoxFuture<'a, Result<u64>> {
                    async move {
                        let result = sqlx::query(
                            "UPDATE cluster_certificates SET revoked_at = $2 \
                             WHERE cluster = $1 AND revoked_at IS NULL",
                        )
                        .bind(cluster)
                        .bind(ms(at))
                        .execute(self.pool())
                        .await?;
                        Ok(result.rows_affected())
                    }
                    .boxed()
                }

                fn create_session<'a>(
                    &'a self,
                    session: &'a SessionRecord,
                ) -> futures::future::BoxFuture<'a, Result<()>> {
                    async move {
                        sqlx::query(
                            "INSERT INTO sessions (token_hash, subject, groups_json, admin, \
                             grants_json, method, created_at, expires_at) \
                             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
                        )
                        .bind(&session.token_hash.0)
                        .bind(&session.subject)
                        .bind(to_json(&session.groups)?)
                        .bind(i64::from(session.admin))
                        .bind(to_json(&session.grants)?)
                        .bind(&session.method)
                        .bind(ms(session.created_at))
                        .bind(ms(session.expires_at))
                        .execute(self.pool())
                        .await
                        .map_err(StoreError::classify(|| {
                            format!("session of {}", session.subject)
                        }))?;
                        // Expired sessions are useless: drop them as we go.
                        sqlx::query("DELETE FROM sessions WHERE expires_at < $1")
                            .bind(ms(session.created_at))
                            .execute(self.pool())
                            .await?;
                        Ok(())
                    }
                    .boxed()
                }

                fn find_session<'a>(
                    &'a self,
                    token_hash: &'a str,
                ) -> futures::future::BoxFuture<'a, Result<SessionRecord>> {
                    async move {
                        let row = sqlx::query(
                            "SELECT token_hash, subject, groups_json, admin, grants_json, \
                             method, created_at, expires_at FROM sessions WHERE token_hash = $1",
                        )
                        .bind(token_hash)
                        .fetch_optional(self.pool())
                        .await?
                        .ok_or_else(|| not_found("session".to_owned()))?;
                        session_from_row(&row)
                    }
                    .boxed()
                }

                fn delete_session<'a>(
                    &'a self,
                    token_hash: &'a str,
                ) -> futures::future::BoxFuture<'a, Result<()>> {
                    async move {
                        sqlx::query("DELETE FROM sessions WHERE token_hash = $1")
                            .bind(token_hash)
                            .execute(self.pool())
                            .await?;
                        Ok(())
                    }
                    .boxed()
                }

                fn delete_sessions_of<'a>(
                    &'a self,
                    subject: &'a str,
                ) -> futures::future::BoxFuture<'a, Result<u64>> {
                    async move {
                        let result = sqlx::query("DELETE FROM sessions WHERE subject = $1")
                            .bind(subject)
                            .execute(self.pool())
                            .await?;
                        Ok(result.rows_affected())
                    }
                    .boxed()
                }

                fn put_repo_credential<'a>(
                    &'a self,
                    credential: &'a RepoCredentialRecord,
                ) -> futures::future::BoxFuture<'a, Result<()>> {
                    async move {
                        sqlx::query(
                            "INSERT INTO repo_credentials \
                             (url_prefix, projects_json, sealed, updated_at) \
                             VALUES ($1, $2, $3, $4) ON CONFLICT (url_prefix) DO UPDATE SET \
                             projects_json = excluded.projects_json, \
                             sealed = excluded.sealed, updated_at = excluded.updated_at",
                        )
                        .bind(&credential.url_prefix)
                        .bind(to_json(&credential.projects)?)
                        .bind(&credential.sealed.0)
                        .bind(ms(credential.updated_at))
                        .execute(self.pool())
                        .await?;
                        Ok(())
                    }
                    .boxed()
                }

                fn list_repo_credentials(
                    &self,
                ) -> futures::future::BoxFuture<'_, Result<Vec<RepoCredentialRecord>>> {
                    async move {
                        let rows = sqlx::query(
                            "SELECT url_prefix, projects_json, sealed, updated_at \
                             FROM repo_credentials ORDER BY url_prefix",
                        )
                        .fetch_all(self.pool())
                        .await?;
                        rows.iter().map(repo_from_row).collect()
                    }
                    .boxed()
                }

                fn delete_repo_credential<'a>(
                    &'a self,
                    url_prefix: &'a str,
                ) -> futures::future::BoxFuture<'a, Result<()>> {
                    async move {
                        let result =
                            sqlx::query("DELETE FROM repo_credentials WHERE url_prefix = $1")
                                .bind(url_prefix)
                                .execute(self.pool())
                                .await?;
                        if result.rows_affected() == 0 {
                            return Err(not_found(format!(
                                "repository credential {url_prefix}"
                            )));
                        }
                        Ok(())
                    }
                    .boxed()
                }
            }
        }
    };
}

impl_security_store!(SqliteStore, sqlite_impl, sqlx::sqlite::SqliteRow);
impl_security_store!(PgStore, postgres_impl, sqlx::postgres::PgRow);
