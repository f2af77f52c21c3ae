//! `SecurityStore` for both backends: part of the queries written once (`sql.rs`), so compiled inside each backend module.

use sqlx::Row as _;
use time::OffsetDateTime;

use super::{Backend, Conn, Row, dialect, expect_one, keyed, row_by, rows_by};
use crate::store::codec::{checked_from_ms, to_ms};
use crate::store::model::Redacted;
use crate::store::security::{
    BootstrapTokenRecord, CertificateRecord, RepoCredentialRecord, SecurityStore, SessionRecord,
    StoredCa,
};
use crate::store::{Result, StoreError};

fn opt_ms(ms: Option<i64>) -> Result<Option<OffsetDateTime>> {
    ms.map(checked_from_ms).transpose()
}

fn strings(json: &str) -> Result<Vec<String>> {
    Ok(serde_json::from_str(json)?)
}

fn to_json(values: &[String]) -> Result<String> {
    Ok(serde_json::to_string(values)?)
}

fn token_from_row(row: &Row) -> Result<BootstrapTokenRecord> {
    Ok(BootstrapTokenRecord {
        id: row.try_get("id")?,
        cluster: row.try_get("cluster")?,
        secret_hash: Redacted(row.try_get("secret_hash")?),
        created_at: checked_from_ms(row.try_get("created_at")?)?,
        expires_at: checked_from_ms(row.try_get("expires_at")?)?,
        used_at: opt_ms(row.try_get("used_at")?)?,
    })
}

fn certificate_from_row(row: &Row) -> Result<CertificateRecord> {
    Ok(CertificateRecord {
        serial: row.try_get("serial")?,
        cluster: row.try_get("cluster")?,
        not_before: checked_from_ms(row.try_get("not_before")?)?,
        not_after: checked_from_ms(row.try_get("not_after")?)?,
        issued_at: checked_from_ms(row.try_get("issued_at")?)?,
        revoked_at: opt_ms(row.try_get("revoked_at")?)?,
    })
}

fn session_from_row(row: &Row) -> Result<SessionRecord> {
    let admin: i64 = row.try_get("admin")?;
    Ok(SessionRecord {
        token_hash: Redacted(row.try_get("token_hash")?),
        subject: row.try_get("subject")?,
        groups: strings(&row.try_get::<String, _>("groups_json")?)?,
        admin: admin != 0,
        grants: strings(&row.try_get::<String, _>("grants_json")?)?,
        method: row.try_get("method")?,
        created_at: checked_from_ms(row.try_get("created_at")?)?,
        expires_at: checked_from_ms(row.try_get("expires_at")?)?,
    })
}

fn repo_from_row(row: &Row) -> Result<RepoCredentialRecord> {
    Ok(RepoCredentialRecord {
        url_prefix: row.try_get("url_prefix")?,
        projects: strings(&row.try_get::<String, _>("projects_json")?)?,
        sealed: Redacted(row.try_get("sealed")?),
        updated_at: checked_from_ms(row.try_get("updated_at")?)?,
    })
}

const CERT_COLUMNS: &str = "serial, cluster, not_before, not_after, issued_at, revoked_at";

async fn insert_certificate(conn: &mut Conn, cert: &CertificateRecord) -> sqlx::Result<()> {
    sqlx::query(
        "INSERT INTO cluster_certificates (serial, cluster, not_before, not_after, issued_at) \
         VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(&cert.serial)
    .bind(&cert.cluster)
    .bind(to_ms(cert.not_before))
    .bind(to_ms(cert.not_after))
    .bind(to_ms(cert.issued_at))
    .execute(conn)
    .await?;
    Ok(())
}

impl Backend {
    async fn get_hub_ca(&self) -> Result<Option<StoredCa>> {
        let row = sqlx::query("SELECT cert_pem, key_sealed, created_at FROM hub_ca WHERE id = 1")
            .fetch_optional(self.pool())
            .await?;
        row.map(|row| {
            Ok(StoredCa {
                cert_pem: row.try_get("cert_pem")?,
                key_sealed: Redacted(row.try_get("key_sealed")?),
                created_at: checked_from_ms(row.try_get("created_at")?)?,
            })
        })
        .transpose()
    }

    async fn insert_hub_ca(&self, ca: &StoredCa) -> Result<bool> {
        let result = sqlx::query(
            "INSERT INTO hub_ca (id, cert_pem, key_sealed, created_at) \
             VALUES (1, $1, $2, $3) ON CONFLICT (id) DO NOTHING",
        )
        .bind(&ca.cert_pem)
        .bind(&ca.key_sealed.0)
        .bind(to_ms(ca.created_at))
        .execute(self.pool())
        .await?;
        Ok(result.rows_affected() == 1)
    }

    async fn reseal_hub_ca(&self, old: &str, new: &str) -> Result<bool> {
        let result =
            sqlx::query("UPDATE hub_ca SET key_sealed = $1 WHERE id = 1 AND key_sealed = $2")
                .bind(new)
                .bind(old)
                .execute(self.pool())
                .await?;
        Ok(result.rows_affected() == 1)
    }

    async fn create_bootstrap_token(&self, token: &BootstrapTokenRecord) -> Result<()> {
        sqlx::query(
            "INSERT INTO bootstrap_tokens \
             (id, cluster, secret_hash, created_at, expires_at) \
             VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(&token.id)
        .bind(&token.cluster)
        .bind(&token.secret_hash.0)
        .bind(to_ms(token.created_at))
        .bind(to_ms(token.expires_at))
        .execute(self.pool())
        .await
        .map_err(StoreError::classify(|| {
            format!("bootstrap token for cluster {}", token.cluster)
        }))?;
        Ok(())
    }

    async fn get_bootstrap_token(&self, id: &str) -> Result<BootstrapTokenRecord> {
        let select = "SELECT id, cluster, secret_hash, created_at, expires_at, used_at \
                      FROM bootstrap_tokens WHERE id = $1";
        let row = row_by(self.pool(), select, &[id], || {
            format!("bootstrap token {id}")
        })
        .await?;
        token_from_row(&row)
    }

    async fn consume_bootstrap_token(
        &self,
        id: &str,
        secret_hash: &str,
        now: OffsetDateTime,
        certificate: &CertificateRecord,
    ) -> Result<bool> {
        let mut tx = self.pool().begin_with(dialect::BEGIN_WRITE).await?;
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
        .bind(to_ms(now))
        .bind(&certificate.cluster)
        .execute(&mut *tx)
        .await?;
        if used.rows_affected() != 1 {
            return Ok(false);
        }
        insert_certificate(&mut tx, certificate).await?;
        tx.commit().await?;
        Ok(true)
    }

    async fn record_certificate(&self, certificate: &CertificateRecord) -> Result<()> {
        let mut conn = self.pool().acquire().await?;
        insert_certificate(&mut conn, certificate)
            .await
            .map_err(StoreError::classify(|| {
                format!("certificate {}", certificate.serial)
            }))
    }

    async fn get_certificate(&self, serial: &str) -> Result<CertificateRecord> {
        let select = format!("SELECT {CERT_COLUMNS} FROM cluster_certificates WHERE serial = $1");
        let row = row_by(self.pool(), &select, &[serial], || {
            format!("certificate {serial}")
        })
        .await?;
        certificate_from_row(&row)
    }

    async fn list_certificates(&self, cluster: &str) -> Result<Vec<CertificateRecord>> {
        let select = format!(
            "SELECT {CERT_COLUMNS} FROM cluster_certificates WHERE cluster = $1 ORDER BY issued_at, serial"
        );
        rows_by(self.pool(), &select, &[cluster], certificate_from_row).await
    }

    async fn revoke_certificates(&self, cluster: &str, at: OffsetDateTime) -> Result<u64> {
        let result = sqlx::query(
            "UPDATE cluster_certificates SET revoked_at = $2 \
             WHERE cluster = $1 AND revoked_at IS NULL",
        )
        .bind(cluster)
        .bind(to_ms(at))
        .execute(self.pool())
        .await?;
        Ok(result.rows_affected())
    }

    async fn create_session(&self, session: &SessionRecord) -> Result<()> {
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
        .bind(to_ms(session.created_at))
        .bind(to_ms(session.expires_at))
        .execute(self.pool())
        .await
        .map_err(StoreError::classify(|| {
            format!("session of {}", session.subject)
        }))?;
        // Expired sessions are useless: drop them as we go.
        sqlx::query("DELETE FROM sessions WHERE expires_at < $1")
            .bind(to_ms(session.created_at))
            .execute(self.pool())
            .await?;
        Ok(())
    }

    async fn find_session(&self, token_hash: &str) -> Result<SessionRecord> {
        let select = "SELECT token_hash, subject, groups_json, admin, grants_json, method, \
                      created_at, expires_at FROM sessions WHERE token_hash = $1";
        let row = row_by(self.pool(), select, &[token_hash], || "session".to_owned()).await?;
        session_from_row(&row)
    }

    async fn delete_session(&self, token_hash: &str) -> Result<()> {
        let delete = keyed("DELETE FROM sessions WHERE token_hash = $1", &[token_hash]);
        delete.execute(self.pool()).await?;
        Ok(())
    }

    async fn delete_sessions_of(&self, subject: &str) -> Result<u64> {
        let delete = keyed("DELETE FROM sessions WHERE subject = $1", &[subject]);
        Ok(delete.execute(self.pool()).await?.rows_affected())
    }

    async fn put_repo_credential(&self, credential: &RepoCredentialRecord) -> Result<()> {
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
        .bind(to_ms(credential.updated_at))
        .execute(self.pool())
        .await?;
        Ok(())
    }

    async fn list_repo_credentials(&self) -> Result<Vec<RepoCredentialRecord>> {
        let select = "SELECT url_prefix, projects_json, sealed, updated_at FROM repo_credentials \
                      ORDER BY url_prefix";
        rows_by(self.pool(), select, &[], repo_from_row).await
    }

    async fn delete_repo_credential(&self, url_prefix: &str) -> Result<()> {
        let delete = keyed(
            "DELETE FROM repo_credentials WHERE url_prefix = $1",
            &[url_prefix],
        );
        let deleted = delete.execute(self.pool()).await?.rows_affected();
        expect_one(deleted, || format!("repository credential {url_prefix}"))
    }

    async fn reseal_repo_credential(&self, url_prefix: &str, old: &str, new: &str) -> Result<bool> {
        let result = sqlx::query(
            "UPDATE repo_credentials SET sealed = $1 WHERE url_prefix = $2 AND sealed = $3",
        )
        .bind(new)
        .bind(url_prefix)
        .bind(old)
        .execute(self.pool())
        .await?;
        Ok(result.rows_affected() == 1)
    }
}

boxed_impl! {
    impl SecurityStore {}
    fn get_hub_ca(&self) -> Option<StoredCa>;
    fn insert_hub_ca(&self, ca: &'a StoredCa) -> bool;
    fn reseal_hub_ca(&self, old: &'a str, new: &'a str) -> bool;
    fn create_bootstrap_token(&self, token: &'a BootstrapTokenRecord) -> ();
    fn get_bootstrap_token(&self, id: &'a str) -> BootstrapTokenRecord;
    fn consume_bootstrap_token(&self, id: &'a str, secret_hash: &'a str, now: OffsetDateTime, certificate: &'a CertificateRecord) -> bool;
    fn record_certificate(&self, certificate: &'a CertificateRecord) -> ();
    fn get_certificate(&self, serial: &'a str) -> CertificateRecord;
    fn list_certificates(&self, cluster: &'a str) -> Vec<CertificateRecord>;
    fn revoke_certificates(&self, cluster: &'a str, at: OffsetDateTime) -> u64;
    fn create_session(&self, session: &'a SessionRecord) -> ();
    fn find_session(&self, token_hash: &'a str) -> SessionRecord;
    fn delete_session(&self, token_hash: &'a str) -> ();
    fn delete_sessions_of(&self, subject: &'a str) -> u64;
    fn put_repo_credential(&self, credential: &'a RepoCredentialRecord) -> ();
    fn list_repo_credentials(&self) -> Vec<RepoCredentialRecord>;
    fn delete_repo_credential(&self, url_prefix: &'a str) -> ();
    fn reseal_repo_credential(&self, url_prefix: &'a str, old: &'a str, new: &'a str) -> bool;
}
