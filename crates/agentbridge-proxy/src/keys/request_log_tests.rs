//! Tests of the request log's queries against SQLite.

use super::*;
use crate::keys::request_queries::{Filter, Grouping, Param, where_clause};
use crate::keys::store::remove_db;

async fn store() -> (Store, std::path::PathBuf) {
    let path = std::env::temp_dir().join(format!("agentbridge-reqlog-{}.db", uuid::Uuid::new_v4()));
    let store = Store::connect(&format!("sqlite://{}", path.display()))
        .await
        .unwrap();
    (store, path)
}

fn row(i: i64, key: &str, model: &str, status: i64) -> LogRow {
    LogRow {
        id: format!("req-{i:04}"),
        time_ms: 10 * HOUR_MS + i * 60_000,
        key_hash: key.into(),
        key_alias: None,
        model: model.into(),
        door: "chat".into(),
        deployment: None,
        status,
        latency_ms: 12.0,
        ttft_ms: None,
        input_tokens: 3,
        output_tokens: 4,
        cost: 0.5,
        session: Some("s".into()),
        error_class: None,
    }
}

#[test]
fn the_where_clause_has_only_the_filters_in_use() {
    assert_eq!(
        where_clause(&Filter::default(), None),
        (String::new(), vec![])
    );
    let f = Filter {
        key_hash: "-".into(),
        model: "m".into(),
        status: "error".into(),
    };
    let (sql, params) = where_clause(&f, Some((5, "x")));
    assert_eq!(
        sql,
        "WHERE key_hash = $1 AND model = $2 AND status >= 400 AND (time_ms < $3 OR (time_ms = $3 AND id < $4))"
    );
    assert_eq!(
        params,
        vec![
            Param::Text(String::new()),
            Param::Text("m".into()),
            Param::Int(5),
            Param::Text("x".into())
        ]
    );
    let (sql, params) = where_clause(
        &Filter {
            status: "429".into(),
            ..Filter::default()
        },
        None,
    );
    assert_eq!(
        (sql.as_str(), params),
        ("WHERE status = $1 AND status >= 400", vec![Param::Int(429)])
    );
}

#[tokio::test]
async fn rows_written_twice_count_once_in_the_rollups() {
    let (s, path) = store().await;
    let batch: Vec<LogRow> = (0..70)
        .map(|i| row(i, "k", "m", if i % 10 == 0 { 500 } else { 200 }))
        .collect();
    // Statements of several rows: the second write's second statement holds 15 rows
    // already written and 10 new ones.
    s.write_requests(&batch[..40], Attempt::First)
        .await
        .unwrap();
    s.write_requests(&batch, Attempt::Retry).await.unwrap();
    s.write_requests(&batch[60..], Attempt::Retry)
        .await
        .unwrap();
    let all = s.requests(&Filter::default(), None, 1000).await.unwrap();
    assert_eq!(all.len(), 70);
    let r = s.rollups(0, Grouping::All).await.unwrap();
    // 70 minutes from 10:00: 60 in hour 10, 10 in hour 11.
    assert_eq!(r.len(), 2);
    assert_eq!(
        (r[0].hour, r[0].requests, r[0].errors),
        (10 * HOUR_MS, 60, 6)
    );
    assert_eq!(
        (r[1].hour, r[1].requests, r[1].errors),
        (11 * HOUR_MS, 10, 1)
    );
    assert_eq!(r[0].spend + r[1].spend, 35.0);
    assert_eq!(r[0].input_tokens + r[1].output_tokens, 180 + 40);
    remove_db(&path);
}

#[tokio::test]
async fn each_filter_reads_an_index_in_page_order() {
    let (s, path) = store().await;
    let plan = |f: Filter| {
        let pool = s.pool.clone();
        async move {
            let (clause, _) = where_clause(&f, Some((5, "x")));
            let sql = format!(
                "EXPLAIN QUERY PLAN SELECT {ROW_COLUMNS} FROM request_log {clause} ORDER BY time_ms DESC, id DESC LIMIT 50"
            );
            // The placeholders stay unbound (NULL): the plan does not depend on them.
            let rows = sqlx::query(&sql).fetch_all(&pool).await.unwrap();
            rows.iter()
                .map(|r| r.try_get::<String, _>("detail").unwrap())
                .collect::<Vec<_>>()
                .join("; ")
        }
    };
    let by = |k: &str, m: &str, st: &str| Filter {
        key_hash: k.into(),
        model: m.into(),
        status: st.into(),
    };
    for (f, index) in [
        (by("", "", ""), "sqlite_autoindex_request_log_1"),
        (by("", "", "ok"), "sqlite_autoindex_request_log_1"),
        (by("k", "", ""), "request_log_key"),
        (by("", "m", ""), "request_log_model"),
        (by("", "", "error"), "request_log_errors"),
        (by("", "", "503"), "request_log_errors"),
    ] {
        let p = plan(f.clone()).await;
        assert!(p.contains(index), "{f:?}: {p}");
        assert!(!p.contains("TEMP B-TREE"), "{f:?} sorts: {p}");
    }
    remove_db(&path);
}

#[tokio::test]
async fn rollups_are_summed_in_the_database_per_bucket_key_or_model() {
    let (s, path) = store().await;
    // 3 hours x 2 keys x 2 models, one request a minute.
    let rows: Vec<LogRow> = (0..180)
        .map(|i| {
            row(
                i,
                ["a", "b"][i as usize % 2],
                ["m1", "m2"][i as usize / 2 % 2],
                200,
            )
        })
        .collect();
    s.write_requests(&rows, Attempt::First).await.unwrap();
    assert_eq!(s.rollups(0, Grouping::All).await.unwrap().len(), 12);
    let buckets = s.rollups(0, Grouping::Bucket(2 * HOUR_MS)).await.unwrap();
    let got: Vec<(i64, i64)> = buckets.iter().map(|r| (r.hour, r.requests)).collect();
    assert_eq!(got, vec![(10 * HOUR_MS, 120), (12 * HOUR_MS, 60)]);
    assert_eq!(buckets[0].spend, 60.0);
    let keys = s.rollups(0, Grouping::Key).await.unwrap();
    let got: Vec<(&str, i64)> = keys
        .iter()
        .map(|r| (r.key_hash.as_str(), r.requests))
        .collect();
    assert_eq!(got, vec![("a", 90), ("b", 90)]);
    let models = s.rollups(11 * HOUR_MS, Grouping::Model).await.unwrap();
    let got: Vec<(&str, i64)> = models
        .iter()
        .map(|r| (r.model.as_str(), r.requests))
        .collect();
    assert_eq!(got, vec![("m1", 60), ("m2", 60)]);
    let one = s
        .rollups(0, Grouping::KeyBucket(HOUR_MS, vec!["b".into()]))
        .await
        .unwrap();
    assert_eq!(one.len(), 3);
    assert!(one.iter().all(|r| r.key_hash == "b" && r.requests == 30));
    assert!(
        s.rollups(0, Grouping::KeyBucket(HOUR_MS, vec![]))
            .await
            .unwrap()
            .is_empty()
    );
    remove_db(&path);
}

#[tokio::test]
async fn pages_follow_each_other_without_gaps_or_repeats_under_filters() {
    let (s, path) = store().await;
    let mut rows = Vec::new();
    for i in 0..45 {
        let key = if i % 3 == 0 { "a" } else { "b" };
        let model = if i % 2 == 0 { "m1" } else { "m2" };
        rows.push(row(i, key, model, if i % 5 == 0 { 429 } else { 200 }));
    }
    // Two rows in the same millisecond: the id breaks the tie.
    let mut twin = row(44, "a", "m1", 200);
    twin.id = "req-0044b".into();
    rows.push(twin);
    s.write_requests(&rows, Attempt::First).await.unwrap();
    for (f, want) in [
        (Filter::default(), 46),
        (
            Filter {
                key_hash: "a".into(),
                ..Filter::default()
            },
            16,
        ),
        (
            Filter {
                model: "m2".into(),
                ..Filter::default()
            },
            22,
        ),
        (
            Filter {
                status: "error".into(),
                ..Filter::default()
            },
            9,
        ),
        (
            Filter {
                status: "429".into(),
                key_hash: "b".into(),
                ..Filter::default()
            },
            6,
        ),
    ] {
        let mut seen: Vec<String> = Vec::new();
        let mut before: Option<(i64, String)> = None;
        loop {
            let page = s
                .requests(&f, before.as_ref().map(|(t, id)| (*t, id.as_str())), 7)
                .await
                .unwrap();
            if page.is_empty() {
                break;
            }
            assert!(
                page.windows(2)
                    .all(|w| (w[0].time_ms, &w[0].id) > (w[1].time_ms, &w[1].id))
            );
            let last = page.last().unwrap();
            before = Some((last.time_ms, last.id.clone()));
            seen.extend(page.iter().map(|r| r.id.clone()));
        }
        let mut unique = seen.clone();
        unique.sort();
        unique.dedup();
        assert_eq!((seen.len(), unique.len()), (want, want), "{f:?}");
    }
    remove_db(&path);
}

#[tokio::test]
async fn pruning_deletes_rows_and_rollups_past_the_retention() {
    let (s, path) = store().await;
    let rows: Vec<LogRow> = (0..120).map(|i| row(i, "k", "m", 200)).collect();
    s.write_requests(&rows, Attempt::First).await.unwrap();
    assert_eq!(s.prune_requests(11 * HOUR_MS).await.unwrap(), 60);
    assert_eq!(
        s.requests(&Filter::default(), None, 1000)
            .await
            .unwrap()
            .len(),
        60
    );
    let r = s.rollups(0, Grouping::All).await.unwrap();
    assert_eq!(
        r.iter().map(|r| r.hour).collect::<Vec<_>>(),
        vec![11 * HOUR_MS]
    );
    remove_db(&path);
}

#[tokio::test]
async fn the_buffer_drops_its_oldest_rows_when_full_and_writes_the_rest() {
    let (s, path) = store().await;
    let b = RequestLogBuffer::bounded(BATCH + 10);
    for i in 0..(BATCH as i64 + 13) {
        b.push(row(i, "k", "m", 200));
    }
    assert_eq!((b.len(), b.dropped()), (BATCH + 10, 3));
    let n = b.flush(&s).await.unwrap();
    assert_eq!(n, BATCH + 10);
    assert!(b.is_empty());
    let all = s.requests(&Filter::default(), None, 1000).await.unwrap();
    assert_eq!(all.len(), BATCH + 10);
    assert_eq!(all[0].id, format!("req-{:04}", BATCH + 12));
    assert_eq!(
        all.last().unwrap().id,
        "req-0003",
        "the 3 oldest were dropped"
    );
    remove_db(&path);
}

#[test]
fn a_flush_takes_only_the_rows_buffered_when_it_began() {
    let b = RequestLogBuffer::default();
    for i in 0..(BATCH as i64 + 3) {
        b.push(row(i, "k", "m", 200));
    }
    let mut left = b.len();
    let (first, how) = b.take_batch(&mut left).unwrap();
    assert_eq!((first.len(), how), (BATCH, Attempt::First));
    // Rows that finish while the first batch is written.
    for i in 0..10 {
        b.push(row(1000 + i, "k", "m", 200));
    }
    let (second, _) = b.take_batch(&mut left).unwrap();
    assert_eq!(
        second.len(),
        3,
        "the rest of what was there, not the newcomers"
    );
    assert_eq!(second[2].id, format!("req-{:04}", BATCH + 2));
    assert!(b.take_batch(&mut left).is_none());
    assert_eq!(b.len(), 10, "the newcomers wait for the next flush");
}

#[tokio::test]
async fn ui_sessions_expire_and_end() {
    use crate::keys::ui_sessions::UiSession;
    let (s, path) = store().await;
    let live = UiSession {
        csrf: "c1".into(),
        expires_at: 200,
    };
    s.create_session("h1", &live).await.unwrap();
    s.create_session(
        "h2",
        &UiSession {
            csrf: "c2".into(),
            expires_at: 50,
        },
    )
    .await
    .unwrap();
    assert_eq!(s.session("h1", 100).await.unwrap(), Some(live));
    assert_eq!(s.session("h2", 100).await.unwrap(), None, "expired");
    assert_eq!(s.session("nope", 100).await.unwrap(), None);
    assert_eq!(s.prune_sessions(100).await.unwrap(), 1);
    s.delete_session("h1").await.unwrap();
    assert_eq!(s.session("h1", 100).await.unwrap(), None, "signed out");
    remove_db(&path);
}

#[test]
fn inserts_number_postgresql_placeholders_and_leave_sqlites_anonymous() {
    let pg = insert_sql(2, false, Attempt::Retry);
    assert!(pg.contains("($1, $2, "), "{pg}");
    assert!(pg.contains("$29, $30) ON CONFLICT"), "{pg}");
    let lite = insert_sql(2, true, Attempt::Retry);
    assert_eq!(lite.matches('?').count(), 30, "{lite}");
    assert!(!lite.contains('$'), "{lite}");
    let first = insert_sql(2, true, Attempt::First);
    assert!(
        first.ends_with("?)"),
        "a first write neither skips nor returns rows: {first}"
    );
}

#[tokio::test]
async fn a_first_write_meeting_a_row_already_there_fails_and_its_retry_counts_each_row_once() {
    let (s, path) = store().await;
    let rows: Vec<LogRow> = (0..30).map(|i| row(i, "k", "m", 200)).collect();
    // As if an earlier write of the first ten had committed and its answer been lost.
    s.write_requests(&rows[..10], Attempt::First).await.unwrap();
    let b = RequestLogBuffer::bounded(BATCH);
    for r in &rows {
        b.push(r.clone());
    }
    assert!(b.flush(&s).await.is_err(), "a plain INSERT meets the ten");
    assert_eq!(b.len(), 30, "the batch went back");
    let r = s.rollups(0, Grouping::All).await.unwrap();
    assert_eq!(r[0].requests, 10, "the failed write changed nothing");
    assert_eq!(b.flush(&s).await.unwrap(), 30);
    assert_eq!(
        s.requests(&Filter::default(), None, 100)
            .await
            .unwrap()
            .len(),
        30
    );
    let r = s.rollups(0, Grouping::All).await.unwrap();
    assert_eq!(r[0].requests, 30, "each row counted once");
    // Rows pushed after the retry are first writes again.
    b.push(row(30, "k", "m", 200));
    assert_eq!(b.flush(&s).await.unwrap(), 1);
    let r = s.rollups(0, Grouping::All).await.unwrap();
    assert_eq!(r[0].requests, 31);
    remove_db(&path);
}

#[tokio::test]
async fn a_batch_that_fails_goes_back_in_front_of_newer_rows_within_the_bound() {
    let (down, down_path) = store().await;
    down.pool.close().await;
    let b = RequestLogBuffer::bounded(BATCH + 5);
    for i in 0..(BATCH as i64 + 2) {
        b.push(row(i, "k", "m", 200));
    }
    assert!(b.flush(&down).await.is_err());
    assert_eq!((b.len(), b.dropped()), (BATCH + 2, 0), "nothing lost");
    // Newer rows queue behind it; over the bound, the oldest go.
    for i in (BATCH as i64 + 2)..(BATCH as i64 + 9) {
        b.push(row(i, "k", "m", 200));
    }
    assert_eq!((b.len(), b.dropped()), (BATCH + 5, 4));
    let (up, up_path) = store().await;
    assert_eq!(b.flush(&up).await.unwrap(), BATCH + 5);
    let all = up.requests(&Filter::default(), None, 1000).await.unwrap();
    let ids: Vec<i64> = all
        .iter()
        .rev()
        .map(|r| r.id[4..].parse().unwrap())
        .collect();
    assert_eq!(ids, (4..(BATCH as i64 + 9)).collect::<Vec<_>>());
    remove_db(&down_path);
    remove_db(&up_path);
}
