//! Seller level scenarios of the store suite, on SQLite
//! (`store::levels::sqlite::*`) and PostgreSQL (`store::levels::postgres::*`):
//! the sellers are listed in pages, a seller's record measures the median
//! time to answer a buyer's first message (an unanswered one counts with
//! its wait so far, old conversations not at all) and days of selling, and
//! the stored level round-trips and reports the one it replaced.

use adapters::sql::SqlStore;
use anyhow::ensure;
use domain::ports::{AccountStore, SellerLevelStore};
use domain::review::{RatingSummary, SellerLevel, SellerRecord};

use super::chat::{send, start};
use super::{create, profile, secs, t0, Result};

macro_rules! levels_suite {
    ($($scenario:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $scenario() {
                    super::super::harness::run_sqlite(super::$scenario).await;
                }
            )*
        }

        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $scenario() {
                    super::super::harness::run_postgres(super::$scenario).await;
                }
            )*
        }
    };
}

levels_suite!(records_measure_response_times, levels_round_trip);

async fn records_measure_response_times(store: SqlStore) -> Result {
    let seller = create(&store, "seller").await?;
    store
        .create_seller_profile(seller.id, &profile(), t0())
        .await?;
    let now = t0() + secs(40 * 86_400);
    let empty = store.seller_record(seller.id, now).await?;
    ensure!(
        empty.completed_orders == 0 && empty.response_secs.is_none(),
        "{empty:?}"
    );
    ensure!(empty.seller_days == 40, "{empty:?}");

    // An old conversation (before the 90-day window) does not count.
    let old_buyer = create(&store, "oldbuyer").await?;
    let old = start(
        &store,
        old_buyer.id,
        seller.id,
        None,
        t0() - secs(200 * 86_400),
    )
    .await?;
    send(&store, old.id, old_buyer.id, t0() - secs(200 * 86_400)).await?;

    // Answered after 60 s, after 600 s (the seller's second message does not
    // count), and one still waiting after 3,600 s at `now`.
    let mut waits = Vec::new();
    for (name, answer) in [
        ("buyer1", Some(60)),
        ("buyer2", Some(600)),
        ("buyer3", None),
    ] {
        let buyer = create(&store, name).await?;
        let asked = now - secs(3_600);
        let conversation = start(&store, buyer.id, seller.id, None, asked).await?;
        send(&store, conversation.id, buyer.id, asked).await?;
        send(&store, conversation.id, buyer.id, asked + secs(5)).await?;
        if let Some(after) = answer {
            send(&store, conversation.id, seller.id, asked + secs(after)).await?;
            send(
                &store,
                conversation.id,
                seller.id,
                asked + secs(after + 900),
            )
            .await?;
        }
        waits.push(answer.unwrap_or(3_600));
    }
    // A conversation the seller started counts from the buyer's first message.
    let buyer = create(&store, "buyer4").await?;
    let conversation = start(&store, seller.id, buyer.id, None, now - secs(500)).await?;
    send(&store, conversation.id, seller.id, now - secs(500)).await?;
    send(&store, conversation.id, buyer.id, now - secs(400)).await?;
    send(&store, conversation.id, seller.id, now - secs(100)).await?;

    let record = store.seller_record(seller.id, now).await?;
    // Waits: 60, 300, 600, 3600 → the median of four is the upper middle.
    ensure!(record.response_secs == Some(600), "{record:?}");
    ensure!(record.completed_orders == 0, "{record:?}");
    ensure!(record.rating == RatingSummary::default(), "{record:?}");
    Ok(())
}

async fn levels_round_trip(store: SqlStore) -> Result {
    let mut sellers = Vec::new();
    for name in ["seller1", "seller2", "seller3"] {
        let user = create(&store, name).await?;
        store
            .create_seller_profile(user.id, &profile(), t0())
            .await?;
        sellers.push(user.id);
    }
    create(&store, "buyer").await?;
    sellers.sort();
    let first = store.sellers_after(None, 2).await?;
    ensure!(first == sellers[..2], "{first:?}");
    let rest = store.sellers_after(first.last().copied(), 2).await?;
    ensure!(rest == sellers[2..], "{rest:?}");

    let seller = sellers[0];
    ensure!(store.level(seller).await?.is_none());
    let record = SellerRecord {
        completed_orders: 7,
        on_time_orders: 6,
        rating: RatingSummary::from_histogram([0, 0, 0, 1, 4]),
        response_secs: Some(120),
        seller_days: 45,
    };
    let before = store
        .set_level(seller, SellerLevel::Level1, &record, t0())
        .await?;
    ensure!(before.is_none());
    let stored = store.level(seller).await?.expect("stored");
    ensure!(
        stored.level == SellerLevel::Level1 && stored.record == record,
        "{stored:?}"
    );
    ensure!(stored.computed_at == t0(), "{stored:?}");
    let before = store
        .set_level(
            seller,
            SellerLevel::New,
            &SellerRecord::default(),
            t0() + secs(1),
        )
        .await?;
    ensure!(before == Some(SellerLevel::Level1), "{before:?}");
    ensure!(store.level(seller).await?.expect("stored").level == SellerLevel::New);
    Ok(())
}
