//! A Server-Sent Events response body fed by a session, which learns when the client goes away.

use std::convert::Infallible;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};

use actix::Addr;
use actix_web::HttpResponse;
use bytes::Bytes;
use futures_util::Stream;
use tokio::sync::mpsc;

use crate::session::{Session, StreamClosed, STREAM_CAPACITY};

/// Distinguishes the streams of one session.
static GENERATION: AtomicU64 = AtomicU64::new(1);

/// The receiving end of a session's events; tells the session when the client drops it.
pub struct EventStream {
    receiver: mpsc::Receiver<Bytes>,
    session: Option<Addr<Session>>,
    generation: u64,
}

impl EventStream {
    /// A new channel: the sender (with its generation) for the session, the stream for the body.
    pub fn channel() -> ((mpsc::Sender<Bytes>, u64), EventStream) {
        let (sender, receiver) = mpsc::channel(STREAM_CAPACITY);
        let generation = GENERATION.fetch_add(1, Ordering::Relaxed);
        let stream = EventStream {
            receiver,
            session: None,
            generation,
        };
        ((sender, generation), stream)
    }

    /// Tells `session` when this stream is dropped.
    pub fn owned_by(mut self, session: Addr<Session>) -> Self {
        self.session = Some(session);
        self
    }

    /// The stream as an SSE response.
    pub fn into_response(self) -> HttpResponse {
        HttpResponse::Ok()
            .content_type("text/event-stream")
            .insert_header(("cache-control", "no-cache"))
            .insert_header(("x-accel-buffering", "no"))
            .streaming(self)
    }
}

impl Stream for EventStream {
    type Item = Result<Bytes, Infallible>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.receiver.poll_recv(cx).map(|event| event.map(Ok))
    }
}

impl Drop for EventStream {
    fn drop(&mut self) {
        if let Some(session) = self.session.take() {
            session.do_send(StreamClosed {
                generation: self.generation,
            });
        }
    }
}

/// One SSE event carrying `data`.
pub fn event(name: &str, data: &str) -> Bytes {
    Bytes::from(format!("event: {name}\ndata: {data}\n\n"))
}
