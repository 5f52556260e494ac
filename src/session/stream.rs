//! The session's outbound stream: putting messages on it, keep-alives, and what happens when
//! it is attached, closed or stops being read.

use std::time::Instant;

use actix::prelude::*;
use bytes::Bytes;
use serde_json::Value;
use tokio::sync::mpsc;

use super::{AttachStream, Session, StreamClosed, Transport, STREAM_CAPACITY};

/// The most bytes of an event in one slot of a session's stream ([`Session::push_raw`]).
const PIECE: usize = 16 * 1024;

impl Session {
    /// Puts one JSON-RPC message on the outbound stream, if there is one.
    pub(super) fn push(&mut self, message: &Value, ctx: &mut Context<Self>) {
        let event = match self.transport {
            Transport::Stdio => format!("{message}\n"),
            _ => format!("event: message\ndata: {message}\n\n"),
        };
        self.push_raw(Bytes::from(event), ctx);
    }

    /// Puts `event` on the stream with [`send_pieces`]. A stream with no room for all of an
    /// event's pieces ends the session.
    pub(super) fn push_raw(&mut self, event: Bytes, ctx: &mut Context<Self>) {
        let Some((sender, _)) = &self.stream else {
            return;
        };
        match send_pieces(sender, event) {
            Ok(()) => {}
            Err(mpsc::error::TrySendError::Full(())) => {
                let id = self.shown_id();
                log::warn!("session {id} does not read its stream; ending it");
                ctx.stop();
            }
            Err(mpsc::error::TrySendError::Closed(())) => self.stream_gone(ctx),
        }
    }

    pub(super) fn stream_gone(&mut self, ctx: &mut Context<Self>) {
        self.stream = None;
        if let Some(presence) = &self.presence {
            presence.streaming(false);
        }
        if self.transport != Transport::Streamable {
            ctx.stop();
        }
    }

    /// The client was heard from now.
    pub(super) fn heard(&mut self) {
        self.last_seen = Instant::now();
        if let Some(presence) = &self.presence {
            presence.seen();
        }
    }

    /// Ends an idle Streamable HTTP session; probes the stream of any session.
    pub(super) fn tick(&mut self, ctx: &mut Context<Self>) {
        if self.stream.is_some() && self.transport != Transport::Stdio {
            self.push_raw(Bytes::from_static(b": keep-alive\n\n"), ctx);
        } else if self.transport == Transport::Streamable
            && self.last_seen.elapsed() > self.gateway.server.session_idle_timeout()
        {
            log::info!("session {} idle; ending it", self.shown_id());
            ctx.stop();
        }
    }
}

impl Handler<AttachStream> for Session {
    type Result = ();

    fn handle(&mut self, msg: AttachStream, _ctx: &mut Self::Context) {
        self.heard();
        self.stream = Some((msg.sender, msg.generation));
        if let Some(presence) = &self.presence {
            presence.streaming(true);
        }
    }
}

impl Handler<StreamClosed> for Session {
    type Result = ();

    fn handle(&mut self, msg: StreamClosed, ctx: &mut Self::Context) {
        if self
            .stream
            .as_ref()
            .is_some_and(|(_, g)| *g == msg.generation)
        {
            self.heard();
            self.stream_gone(ctx);
        }
    }
}

/// Puts `event` on a stream in pieces of at most [`PIECE`] bytes, one slot of the channel each,
/// so that a client that does not read holds at most about `STREAM_CAPACITY × PIECE` bytes of
/// the gateway's memory, not that many whole messages. All of the pieces or none go.
pub(crate) fn send_pieces(
    sender: &mpsc::Sender<Bytes>,
    mut event: Bytes,
) -> Result<(), mpsc::error::TrySendError<()>> {
    let pieces = event.len().div_ceil(PIECE).clamp(1, STREAM_CAPACITY / 2);
    let size = event.len().div_ceil(pieces).max(1);
    for permit in sender.try_reserve_many(pieces)? {
        if event.is_empty() {
            break;
        }
        permit.send(event.split_to(size.min(event.len())));
    }
    Ok(())
}
