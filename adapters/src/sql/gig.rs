//! `GigStore`: gigs, the category taxonomy and the search outbox.
//!
//! Every successful `save_gig` appends one outbox entry in the same
//! transaction as the gig write; a failed save appends none.
//! `outbox_enqueue_seller` appends one for each of a seller's gigs that is
//! not deleted, in one statement.

use std::collections::HashMap;

use async_trait::async_trait;
use chrono::Utc;
use domain::gig::{Category, Gig, Subcategory, Taxonomy};
use domain::ids::{GigId, UserId};
use domain::ports::{GigStore, OutboxEntry, StoreError};
use sqlx::types::Json;

use super::rows::{gig_columns, GigRow, OutboxRow};
use super::{on_pool, store_error, ts, SqlStore};

/// How many outbox ids one `DELETE` names; far below either backend's limit
/// on bound parameters.
const ACK_CHUNK: usize = 500;

/// Binds `$1` to `$14` of a gig write: the id and every column an update
/// replaces. The insert adds `$15` seller and `$16` creation time, the update
/// `$15` the expected version.
macro_rules! bind_gig {
    ($query:expr, $gig:expr) => {
        $query
            .bind($gig.id.as_uuid())
            .bind(&$gig.content.title)
            .bind(&$gig.content.description)
            .bind(&$gig.content.category)
            .bind(&$gig.content.subcategory)
            .bind(Json(&$gig.content.tags))
            .bind(Json(&$gig.content.faq))
            .bind(Json(&$gig.content.packages))
            .bind(Json(&$gig.media))
            .bind($gig.status.as_str())
            .bind($gig.version)
            .bind(ts($gig.updated_at))
            .bind($gig.deleted_at.map(ts))
            .bind($gig.removed_from.map(|status| status.as_str()))
    };
}

/// Inserts a new gig, or nothing if its id exists (reported as a conflict
/// without relying on the backend's error text).
const INSERT_GIG: &str = "INSERT INTO gigs (id, title, description, category, subcategory, \
     tags, faq, packages, media, status, version, updated_at, deleted_at, removed_from, \
     seller_id, created_at) \
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16) \
     ON CONFLICT (id) DO NOTHING";

/// Replaces a gig that still has the expected version. The seller and the
/// creation time never change.
const UPDATE_GIG: &str = "UPDATE gigs SET title = $2, description = $3, category = $4, \
     subcategory = $5, tags = $6, faq = $7, packages = $8, media = $9, status = $10, \
     version = $11, updated_at = $12, deleted_at = $13, removed_from = $14 \
     WHERE id = $1 AND version = $15";

#[async_trait]
impl GigStore for SqlStore {
    #[tracing::instrument(level = "debug", skip_all, err(level = "debug"))]
    async fn taxonomy(&self) -> Result<Taxonomy, StoreError> {
        // (slug, name) and (category slug, slug, name).
        type Categories = Vec<(String, String)>;
        type Subcategories = Vec<(String, String, String)>;
        let (categories, subcategories): (Categories, Subcategories) = on_pool!(self, pool => {
            let categories = sqlx::query_as(
                "SELECT slug, name FROM categories ORDER BY position, slug",
            )
            .fetch_all(pool)
            .await
            .map_err(store_error)?;
            let subcategories = sqlx::query_as(
                "SELECT category_slug, slug, name FROM subcategories \
                 ORDER BY category_slug, position, slug",
            )
            .fetch_all(pool)
            .await
            .map_err(store_error)?;
            (categories, subcategories)
        });
        let mut children: HashMap<String, Vec<Subcategory>> = HashMap::new();
        for (parent, slug, name) in subcategories {
            children
                .entry(parent)
                .or_default()
                .push(Subcategory { slug, name });
        }
        Ok(Taxonomy {
            categories: categories
                .into_iter()
                .map(|(slug, name)| Category {
                    subcategories: children.remove(&slug).unwrap_or_default(),
                    slug,
                    name,
                })
                .collect(),
        })
    }

    #[tracing::instrument(level = "debug", skip_all, fields(gig_id = %id), err(level = "debug"))]
    async fn gig(&self, id: GigId) -> Result<Option<Gig>, StoreError> {
        let row: Option<GigRow> = on_pool!(self, pool => {
            sqlx::query_as(concat!("SELECT ", gig_columns!(), " FROM gigs WHERE id = $1"))
                .bind(id.as_uuid())
                .fetch_optional(pool)
                .await
        })
        .map_err(store_error)?;
        row.map(Gig::try_from).transpose()
    }

    #[tracing::instrument(
        level = "debug",
        skip_all,
        fields(gig_id = %gig.id, version = gig.version, expected_version),
        err(level = "debug")
    )]
    async fn save_gig(&self, gig: &Gig, expected_version: Option<i64>) -> Result<(), StoreError> {
        on_pool!(self, pool => {
            let _gate = self.write_gate().await;
            let mut tx = pool.begin_with(self.begin_write()).await.map_err(store_error)?;
            let written = match expected_version {
                None => {
                    bind_gig!(sqlx::query(INSERT_GIG), gig)
                        .bind(gig.seller_id.as_uuid())
                        .bind(ts(gig.created_at))
                        .execute(&mut *tx)
                        .await
                }
                Some(expected) => {
                    bind_gig!(sqlx::query(UPDATE_GIG), gig)
                        .bind(expected)
                        .execute(&mut *tx)
                        .await
                }
            }
            .map_err(store_error)?
            .rows_affected();
            if written == 0 {
                let error = match expected_version {
                    None => StoreError::Conflict("gig"),
                    Some(_) => {
                        // Inside the write transaction: the answer is current.
                        let stored: Option<(i64,)> =
                            sqlx::query_as("SELECT version FROM gigs WHERE id = $1")
                                .bind(gig.id.as_uuid())
                                .fetch_optional(&mut *tx)
                                .await
                                .map_err(store_error)?;
                        if stored.is_some() {
                            StoreError::VersionConflict
                        } else {
                            StoreError::NotFound
                        }
                    }
                };
                tx.rollback().await.map_err(store_error)?;
                return Err(error);
            }
            sqlx::query("INSERT INTO search_outbox (gig_id, created_at) VALUES ($1, $2)")
                .bind(gig.id.as_uuid())
                .bind(ts(gig.updated_at))
                .execute(&mut *tx)
                .await
                .map_err(store_error)?;
            tx.commit().await.map_err(store_error)
        })
    }

    #[tracing::instrument(level = "debug", skip_all, fields(seller_id = %seller, public_only), err(level = "debug"))]
    async fn gigs_by_seller(
        &self,
        seller: UserId,
        public_only: bool,
    ) -> Result<Vec<Gig>, StoreError> {
        let rows: Vec<GigRow> = on_pool!(self, pool => {
            sqlx::query_as(concat!(
                "SELECT ",
                gig_columns!(),
                " FROM gigs WHERE seller_id = $1 AND deleted_at IS NULL \
                 AND (NOT $2 OR status = 'active') \
                 ORDER BY created_at DESC, id DESC"
            ))
            .bind(seller.as_uuid())
            .bind(public_only)
            .fetch_all(pool)
            .await
        })
        .map_err(store_error)?;
        rows.into_iter().map(Gig::try_from).collect()
    }

    #[tracing::instrument(level = "debug", skip_all, fields(limit), err(level = "debug"))]
    async fn gigs_after(&self, after: Option<GigId>, limit: u32) -> Result<Vec<Gig>, StoreError> {
        // Two statements rather than `$1 IS NULL OR id > $1`, so each keeps a
        // plan that walks the primary key.
        let limit = i64::from(limit);
        let rows: Vec<GigRow> = on_pool!(self, pool => {
            match after {
                Some(after) => {
                    sqlx::query_as(concat!(
                        "SELECT ",
                        gig_columns!(),
                        " FROM gigs WHERE id > $1 ORDER BY id LIMIT $2"
                    ))
                    .bind(after.as_uuid())
                    .bind(limit)
                    .fetch_all(pool)
                    .await
                }
                None => {
                    sqlx::query_as(concat!(
                        "SELECT ",
                        gig_columns!(),
                        " FROM gigs ORDER BY id LIMIT $1"
                    ))
                    .bind(limit)
                    .fetch_all(pool)
                    .await
                }
            }
        })
        .map_err(store_error)?;
        rows.into_iter().map(Gig::try_from).collect()
    }

    #[tracing::instrument(level = "debug", skip_all, fields(limit), err(level = "debug"))]
    async fn outbox_pending(&self, limit: u32) -> Result<Vec<OutboxEntry>, StoreError> {
        let rows: Vec<OutboxRow> = on_pool!(self, pool => {
            sqlx::query_as("SELECT id, gig_id, created_at FROM search_outbox ORDER BY id LIMIT $1")
                .bind(i64::from(limit))
                .fetch_all(pool)
                .await
        })
        .map_err(store_error)?;
        Ok(rows.into_iter().map(Into::into).collect())
    }

    #[tracing::instrument(level = "debug", skip_all, fields(count = ids.len()), err(level = "debug"))]
    async fn outbox_ack(&self, ids: &[i64]) -> Result<(), StoreError> {
        // Acknowledging is idempotent: unknown or already removed ids are
        // ignored.
        for chunk in ids.chunks(ACK_CHUNK) {
            on_pool!(self, pool => {
                let mut query =
                    sqlx::QueryBuilder::new("DELETE FROM search_outbox WHERE id IN (");
                let mut list = query.separated(", ");
                for id in chunk {
                    list.push_bind(*id);
                }
                query.push(")");
                // The statement's text varies with the chunk's length: do not
                // keep it in the prepared statement cache.
                query
                    .build()
                    .persistent(false)
                    .execute(pool)
                    .await
                    .map_err(store_error)?;
            });
        }
        Ok(())
    }

    #[tracing::instrument(level = "debug", skip_all, fields(seller_id = %seller), err(level = "debug"))]
    async fn outbox_enqueue_seller(&self, seller: UserId) -> Result<u64, StoreError> {
        // The entries are stamped with the time they are written: the port
        // takes no time, and the indexer only orders entries by id.
        on_pool!(self, pool => {
            sqlx::query(
                "INSERT INTO search_outbox (gig_id, created_at) \
                 SELECT id, $2 FROM gigs WHERE seller_id = $1 AND deleted_at IS NULL \
                 ORDER BY id",
            )
            .bind(seller.as_uuid())
            .bind(ts(Utc::now()))
            .execute(pool)
            .await
            .map(|done| done.rows_affected())
        })
        .map_err(store_error)
    }
}
