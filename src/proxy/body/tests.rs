//! The progress rule on a body fed by the test (real time, short windows).

use std::time::Duration;

use bytes::Bytes;
use http_body_util::BodyExt;
use tokio::sync::mpsc;

use super::*;

type Chunk = Bytes;

/// A body fed through a channel; closing the sender ends it.
struct Fed(mpsc::Receiver<Chunk>);

impl http_body::Body for Fed {
    type Data = Bytes;
    type Error = std::convert::Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        self.0.poll_recv(cx).map(|c| c.map(|b| Ok(Frame::data(b))))
    }
}

const WINDOW: Duration = Duration::from_millis(500);

/// `d` within the slack a loaded machine needs.
fn about(d: Duration, want: Duration) -> bool {
    d >= want && d < want + Duration::from_secs(1)
}

fn rule() -> ProgressRule {
    ProgressRule {
        min_bytes: 100,
        interval: WINDOW,
    }
}

/// A body the test feeds, held to `rule()`.
fn body() -> (mpsc::Sender<Chunk>, Progress<Fed>, Stalled) {
    let (tx, rx) = mpsc::channel(16);
    let stalled = Stalled::default();
    (tx, Progress::new(Fed(rx), rule(), stalled.clone()), stalled)
}

fn data(n: usize) -> Chunk {
    Bytes::from(vec![b'a'; n])
}

#[tokio::test]
async fn a_trickle_is_cut_at_the_end_of_the_window() {
    let (tx, mut body, stalled) = body();
    tokio::spawn(async move {
        loop {
            if tx.send(data(1)).await.is_err() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    });
    let start = tokio::time::Instant::now();
    let err = loop {
        match body.frame().await {
            Some(Ok(_)) => {}
            Some(Err(e)) => break e,
            None => panic!("the body ended"),
        }
    };
    assert!(err.is::<TooSlow>(), "{err}");
    assert!(stalled.is_set());
    assert!(about(start.elapsed(), WINDOW), "{:?}", start.elapsed());
    // It stays failed.
    assert!(matches!(body.frame().await, Some(Err(_))));
}

#[tokio::test]
async fn silence_is_cut_too_and_enough_bytes_per_window_pass() {
    let (_tx, mut silent, _) = body();
    let start = tokio::time::Instant::now();
    assert!(matches!(silent.frame().await, Some(Err(_))));
    assert!(about(start.elapsed(), WINDOW), "{:?}", start.elapsed());

    // 100 bytes every 100 ms, for 0.7 s: enough in every window.
    let (tx, mut body, stalled) = body();
    tokio::spawn(async move {
        for _ in 0..7 {
            tokio::time::sleep(Duration::from_millis(100)).await;
            tx.send(data(100)).await.unwrap();
        }
    });
    let mut got = 0;
    while let Some(frame) = body.frame().await {
        got += frame.unwrap().into_data().unwrap().len();
    }
    assert_eq!(got, 700);
    assert!(!stalled.is_set());
}

#[tokio::test]
async fn time_the_consumer_takes_is_not_counted() {
    let (tx, mut body, stalled) = body();
    tx.send(data(1)).await.unwrap();
    assert!(body.frame().await.is_some());
    // The consumer (the upstream) does not ask for more for 4 windows;
    // the client sent what it had meanwhile.
    tokio::time::sleep(WINDOW * 4).await;
    tx.send(data(100)).await.unwrap();
    drop(tx);
    let frame = body.frame().await.unwrap().unwrap();
    assert_eq!(frame.into_data().unwrap().len(), 100);
    assert!(body.frame().await.is_none());
    assert!(!stalled.is_set());
}
