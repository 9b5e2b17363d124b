//! A request body that charges the bytes it has not yet received whole to the [`Budget`] and
//! fails when they do not arrive in time.

use std::pin::Pin;
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use tokio::time::{Instant, Sleep};

use crate::budget::Budget;
use crate::error::{BoxError, Error};

/// How the body's bytes form requests.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Framing {
    /// The whole body is one request (HTTP): every byte is held until the body ends.
    Raw,
    /// gRPC length-prefixed messages (a 5-byte header, then the message): the bytes of a
    /// message are held until the message is whole, then handed on (and released).
    Grpc,
}

/// What the request-body timeout measures.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scope {
    /// From the request's start to the end of its body (unary calls, HTTP).
    WholeBody,
    /// From a message's first byte to its last (long-lived gRPC streams, whose pauses between
    /// messages are the handler's business).
    PerMessage,
}

/// Which limit failed a body (shared with the layer that answers for it).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Failed {
    Timeout,
    Buffered,
}

pin_project_lite::pin_project! {
    /// A request body under `--max-buffered-request-bytes` and `--request-body-timeout-seconds`.
    ///
    /// The bytes of a request (or message) not yet received whole are charged to the budget as
    /// frames arrive and released once it is whole, or when the body is dropped. A frame that
    /// does not fit fails the body with [`Error::Buffered`]; a body (or message) not whole
    /// within the timeout fails with [`Error::BodyTimeout`].
    #[derive(Debug)]
    pub struct LimitedBody<B> {
        #[pin]
        inner: B,
        state: State,
    }

    impl<B> PinnedDrop for LimitedBody<B> {
        fn drop(this: Pin<&mut Self>) {
            let this = this.project();
            this.state.release_all();
        }
    }
}

#[derive(Debug)]
struct State {
    budget: Budget,
    charged: usize,
    framing: Option<Messages>,
    scope: Scope,
    timeout: Duration,
    deadline: Option<Instant>,
    sleep: Option<Pin<Box<Sleep>>>,
    failed: Option<Arc<OnceLock<Failed>>>,
    done: bool,
}

/// The gRPC framing parser: where the current message stands.
#[derive(Debug, Default)]
struct Messages {
    header: [u8; 5],
    header_len: usize,
    remaining: usize,
    /// Bytes of the current, incomplete message (header included).
    partial: usize,
}

impl Messages {
    /// Walks `data`; true if a message was completed in it.
    fn feed(&mut self, mut data: &[u8]) -> bool {
        let mut completed = false;
        while !data.is_empty() {
            let n = if self.header_len < self.header.len() {
                let n = (self.header.len() - self.header_len).min(data.len());
                self.header[self.header_len..self.header_len + n].copy_from_slice(&data[..n]);
                self.header_len += n;
                if self.header_len == self.header.len() {
                    let [_, a, b, c, d] = self.header;
                    self.remaining = u32::from_be_bytes([a, b, c, d]) as usize;
                }
                n
            } else {
                let n = self.remaining.min(data.len());
                self.remaining -= n;
                n
            };
            self.partial += n;
            data = &data[n..];
            if self.header_len == self.header.len() && self.remaining == 0 {
                *self = Messages::default();
                completed = true;
            }
        }
        completed
    }
}

impl<B> LimitedBody<B> {
    /// Wraps `inner`. With [`Scope::WholeBody`] the timeout runs from now.
    pub fn new(
        inner: B,
        budget: Budget,
        framing: Framing,
        scope: Scope,
        timeout: Duration,
    ) -> Self {
        LimitedBody {
            inner,
            state: State {
                budget,
                charged: 0,
                framing: (framing == Framing::Grpc).then(Messages::default),
                scope,
                timeout,
                deadline: (scope == Scope::WholeBody).then(|| Instant::now() + timeout),
                sleep: None,
                failed: None,
                done: false,
            },
        }
    }

    /// Records which limit failed the body in `slot` (for a layer that answers for it).
    pub(crate) fn report_to(mut self, slot: Arc<OnceLock<Failed>>) -> Self {
        self.state.failed = Some(slot);
        self
    }
}

impl State {
    fn release_all(&mut self) {
        self.budget.release(self.charged);
        self.charged = 0;
    }

    /// Accounts for a data frame: charges or releases the bytes of the incomplete request.
    fn account(&mut self, data: &[u8]) -> Result<(), Error> {
        let (target, completed) = match &mut self.framing {
            None => (self.charged + data.len(), false),
            Some(m) => {
                let completed = m.feed(data);
                (m.partial, completed)
            }
        };
        if self.scope == Scope::PerMessage {
            if target == 0 {
                self.deadline = None;
            } else if completed || self.deadline.is_none() {
                self.deadline = Some(Instant::now() + self.timeout);
            }
        }
        if target > self.charged {
            if !self.budget.try_charge(target - self.charged) {
                return Err(self.fail(Failed::Buffered));
            }
        } else {
            self.budget.release(self.charged - target);
        }
        self.charged = target;
        Ok(())
    }

    fn fail(&mut self, why: Failed) -> Error {
        self.done = true;
        self.release_all();
        if let Some(slot) = &self.failed {
            let _ = slot.set(why);
        }
        match why {
            Failed::Timeout => Error::BodyTimeout {
                what: match self.scope {
                    Scope::WholeBody => "body",
                    Scope::PerMessage => "message",
                },
                seconds: self.timeout.as_secs(),
            },
            Failed::Buffered => Error::Buffered {
                limit: self.budget.limit(),
            },
        }
    }

    /// Ready once the deadline (if any) has passed; registers the waker otherwise.
    fn poll_deadline(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        let Some(deadline) = self.deadline else {
            return Poll::Pending;
        };
        let sleep = self
            .sleep
            .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(deadline)));
        if sleep.deadline() != deadline {
            sleep.as_mut().reset(deadline);
        }
        sleep.as_mut().poll(cx)
    }
}

impl<B> Body for LimitedBody<B>
where
    B: Body<Data = Bytes>,
    B::Error: Into<BoxError>,
{
    type Data = Bytes;
    type Error = Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Error>>> {
        let this = self.project();
        let state = this.state;
        if state.done {
            return Poll::Ready(None);
        }
        match this.inner.poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(data) = frame.data_ref()
                    && let Err(e) = state.account(data)
                {
                    return Poll::Ready(Some(Err(e)));
                }
                Poll::Ready(Some(Ok(frame)))
            }
            Poll::Ready(Some(Err(e))) => {
                state.done = true;
                state.release_all();
                Poll::Ready(Some(Err(Error::Body(e.into()))))
            }
            Poll::Ready(None) => {
                state.done = true;
                state.deadline = None;
                state.release_all();
                Poll::Ready(None)
            }
            Poll::Pending => match state.poll_deadline(cx) {
                Poll::Ready(()) => Poll::Ready(Some(Err(state.fail(Failed::Timeout)))),
                Poll::Pending => Poll::Pending,
            },
        }
    }

    fn is_end_stream(&self) -> bool {
        self.state.done || self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use std::convert::Infallible;

    use futures_util::StreamExt as _;
    use futures_util::stream;
    use http_body_util::{BodyExt as _, StreamBody};

    use super::*;

    type Frames = Vec<Result<Frame<Bytes>, Infallible>>;

    fn frames(chunks: &[&[u8]]) -> Frames {
        chunks
            .iter()
            .map(|c| Ok(Frame::data(Bytes::copy_from_slice(c))))
            .collect()
    }

    /// A body that yields `chunks`, then waits forever.
    fn stalled(chunks: &[&[u8]]) -> impl Body<Data = Bytes, Error = Infallible> + use<> {
        StreamBody::new(stream::iter(frames(chunks)).chain(stream::pending()))
    }

    fn grpc_message(len: usize) -> Vec<u8> {
        let mut m = vec![0u8];
        m.extend_from_slice(&(len as u32).to_be_bytes());
        m.extend(std::iter::repeat_n(7u8, len));
        m
    }

    #[tokio::test(start_paused = true)]
    async fn grpc_bytes_are_held_until_the_message_is_whole() {
        let budget = Budget::new(1 << 20);
        let two = [grpc_message(100), grpc_message(50)].concat();
        // Split inside the first header, inside the first message, across both, inside the
        // second.
        let (a, rest) = two.split_at(3);
        let (b, rest) = rest.split_at(40);
        let (c, d) = rest.split_at(80);
        let mut body = LimitedBody::new(
            stalled(&[a, b, c, d]),
            budget.clone(),
            Framing::Grpc,
            Scope::PerMessage,
            Duration::from_secs(30),
        );
        let mut seen = Vec::new();
        for _ in 0..4 {
            body.frame().await.unwrap().unwrap();
            seen.push(budget.used());
        }
        // 3 header bytes; 43 bytes of message 1; message 1 whole (105) and 18 of message 2;
        // message 2 whole.
        assert_eq!(seen, [3, 43, 18, 0]);
    }

    #[tokio::test(start_paused = true)]
    async fn a_frame_beyond_the_budget_fails_the_body_and_releases_it() {
        let budget = Budget::new(1000);
        let other = LimitedBody::new(
            stalled(&[&[0, 0, 0, 3, 232], &[1; 900]]),
            budget.clone(),
            Framing::Grpc,
            Scope::PerMessage,
            Duration::from_secs(30),
        );
        let mut other = Box::pin(other);
        other.frame().await.unwrap().unwrap();
        other.frame().await.unwrap().unwrap();
        assert_eq!(budget.used(), 905);
        let mut body = LimitedBody::new(
            stalled(&[&[1; 50], &[1; 50]]),
            budget.clone(),
            Framing::Raw,
            Scope::WholeBody,
            Duration::from_secs(30),
        );
        body.frame().await.unwrap().unwrap();
        assert_eq!(budget.used(), 955);
        let err = body.frame().await.unwrap().unwrap_err();
        assert!(matches!(err, Error::Buffered { limit: 1000 }), "{err}");
        assert_eq!(err.field(), Some("max_buffered_request_bytes"));
        assert_eq!(budget.used(), 905, "the failed body released its bytes");
        assert!(body.frame().await.is_none(), "a failed body ends");
        drop(other);
        assert_eq!(budget.used(), 0, "a dropped body releases its bytes");
    }

    #[tokio::test(start_paused = true)]
    async fn a_stalled_message_times_out_but_a_pause_between_messages_does_not() {
        let budget = Budget::new(1 << 20);
        let whole = grpc_message(10);
        let mut body = LimitedBody::new(
            stalled(&[&whole]),
            budget.clone(),
            Framing::Grpc,
            Scope::PerMessage,
            Duration::from_secs(5),
        );
        body.frame().await.unwrap().unwrap();
        // Between messages: no deadline, the body just waits.
        let waited = tokio::time::timeout(Duration::from_secs(3600), body.frame()).await;
        assert!(waited.is_err(), "no timeout between messages");

        let start = Instant::now();
        let mut body = LimitedBody::new(
            stalled(&[&whole[..8]]),
            budget.clone(),
            Framing::Grpc,
            Scope::PerMessage,
            Duration::from_secs(5),
        );
        body.frame().await.unwrap().unwrap();
        assert_eq!(budget.used(), 8);
        let err = body.frame().await.unwrap().unwrap_err();
        assert_eq!(start.elapsed(), Duration::from_secs(5));
        assert!(
            err.to_string().contains(
                "message was not received whole within 5 s (--request-body-timeout-seconds)"
            ),
            "{err}"
        );
        assert_eq!(budget.used(), 0);
    }

    #[tokio::test(start_paused = true)]
    async fn a_whole_body_timeout_runs_from_the_request_start() {
        let budget = Budget::new(1 << 20);
        let start = Instant::now();
        let mut body = LimitedBody::new(
            stalled(&[]),
            budget,
            Framing::Raw,
            Scope::WholeBody,
            Duration::from_secs(7),
        );
        let err = body.frame().await.unwrap().unwrap_err();
        assert_eq!(start.elapsed(), Duration::from_secs(7));
        assert_eq!(err.field(), Some("request_body_timeout_seconds"));
        let status = tonic::Status::from(err);
        assert_eq!(status.code(), tonic::Code::DeadlineExceeded);
    }

    #[tokio::test(start_paused = true)]
    async fn a_body_that_ends_releases_everything() {
        let budget = Budget::new(1 << 20);
        let body = LimitedBody::new(
            StreamBody::new(stream::iter(frames(&[&[1; 10], &[2; 20]]))),
            budget.clone(),
            Framing::Raw,
            Scope::WholeBody,
            Duration::from_secs(7),
        );
        let collected = body.collect().await.unwrap().to_bytes();
        assert_eq!(collected.len(), 30);
        assert_eq!(budget.used(), 0);
    }
}
